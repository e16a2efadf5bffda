"""add and mul with NumPy broadcasting.

The output's dimensions are coalesced with each operand's strides (a run of dimensions that every
operand walks contiguously, or broadcasts over entirely, becomes one), leaving at most three:
[D0, D1, D2]. Each program then takes [BR, BC] tiles of [D1, D2]; an operand broadcast along a
dimension has stride 0 there, which the DMA reads without materialising the broadcast. The strides
are compile-time constants of the kernel (one compilation per broadcasting pattern).
"""

from __future__ import annotations

from typing import Any

import numpy as np

import npulang as npu
from kernel_lib import arguments
from kernel_lib.errors import OperatorError
from kernel_lib.launching import cores, launch_first_fitting, pow2_at_least

DTYPES = (*arguments.FLOAT_DTYPES, np.dtype(np.int32))


@npu.jit
def _binary_kernel(a_ptr, b_ptr, y_ptr, d0, d1, d2, A0: npu.constexpr, A1: npu.constexpr, A2: npu.constexpr,
                   B0: npu.constexpr, B1: npu.constexpr, B2: npu.constexpr, OP: npu.constexpr, BR: npu.constexpr,
                   BC: npu.constexpr, num_stages: npu.constexpr):
    pid = npu.program_id(0)
    step = npu.num_programs(0)
    r_tiles = npu.cdiv(d1, BR)
    c_tiles = npu.cdiv(d2, BC)
    for t in npu.range(pid, d0 * r_tiles * c_tiles, step, num_stages=num_stages):
        i0 = t // (r_tiles * c_tiles)
        r = (t // c_tiles) % r_tiles * BR + npu.arange(0, BR)
        c = t % c_tiles * BC + npu.arange(0, BC)
        mask = (r[:, None] < d1) & (c[None, :] < d2)
        a = npu.load(a_ptr + i0 * A0 + r[:, None] * A1 + c[None, :] * A2, mask=mask, other=0)
        b = npu.load(b_ptr + i0 * B0 + r[:, None] * B1 + c[None, :] * B2, mask=mask, other=0)
        if OP == "add":
            y = a + b
        else:
            y = a * b
        npu.store(y_ptr + (i0 * d1 + r[:, None]) * d2 + c[None, :], y, mask=mask)


def coalesce(shape: tuple[int, ...], strides: list[tuple[int, ...]]) -> tuple[list[int], list[list[int]]]:
    """Merge dimensions every operand walks alike: (dims, per-operand element strides), outermost first."""
    dims: list[int] = []
    out: list[list[int]] = [[] for _ in strides]
    for axis, size in enumerate(shape):
        if size == 1:
            continue
        if dims and all(st[-1] == s[axis] * size for st, s in zip(out, strides)):
            dims[-1] *= size
            for st, s in zip(out, strides):
                st[-1] = s[axis]
            continue
        dims.append(size)
        for st, s in zip(out, strides):
            st.append(s[axis])
    return dims, out


def _operand(op: str, name: str, value: Any, other: Any) -> np.ndarray:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and isinstance(other, np.ndarray):
        return np.asarray(value, dtype=other.dtype)  # a Python scalar takes the array's dtype, as in NumPy
    if isinstance(value, np.ndarray) and value.ndim == 0:
        return value
    return arguments.array(op, name, value, DTYPES)


def _binary(op: str, a: Any, b: Any) -> np.ndarray:
    a, b = _operand(op, "a", a, b), _operand(op, "b", b, a)
    if a.dtype not in DTYPES:
        raise OperatorError(f"kernel_lib.{op}: dtype {a.dtype} is not supported; {op} takes "
                            f"{arguments.dtype_names(DTYPES)}")
    arguments.same_dtype(op, a=a, b=b)
    try:
        shape = np.broadcast_shapes(a.shape, b.shape)
    except ValueError:
        raise OperatorError(f"kernel_lib.{op}: shapes {a.shape} and {b.shape} do not broadcast") from None
    y = np.empty(shape, a.dtype)
    if y.size == 0:
        return y
    strides = [tuple(s // x.itemsize for x in (np.broadcast_to(x, shape),) for s in x.strides) for x in (a, b, y)]
    dims, (sa, sb, _) = coalesce(shape, strides)
    if len(dims) > 3:
        raise OperatorError(f"kernel_lib.{op}: shapes {a.shape} and {b.shape} broadcast in {len(dims)} "
                            f"separate runs of dimensions; at most 3 are supported (make one operand "
                            f"contiguous in the result's shape with np.broadcast_to(...).copy())")
    pad = 3 - len(dims)
    d = [1] * pad + dims
    sa, sb = [0] * pad + sa, [0] * pad + sb
    bc = min(pow2_at_least(d[2]), 8192)
    candidates = [{"A0": sa[0], "A1": sa[1], "A2": sa[2], "B0": sb[0], "B1": sb[1], "B2": sb[2], "OP": op,
                   "BR": min(pow2_at_least(d[1]), max(1, budget // c)), "BC": c, "num_stages": 2}
                  for budget in (8192, 4096, 2048) for c in (min(bc, budget),)]
    launch_first_fitting(op, _binary_kernel, lambda meta: (cores(),), (a, b, y, *d), candidates)
    return y


def add(a: Any, b: Any) -> np.ndarray:
    """a + b with NumPy broadcasting; both in one dtype (float16, bfloat16, float32 or int32), or a Python scalar."""
    return _binary("add", a, b)


def mul(a: Any, b: Any) -> np.ndarray:
    """a * b with NumPy broadcasting; both in one dtype (float16, bfloat16, float32 or int32), or a Python scalar."""
    return _binary("mul", a, b)
