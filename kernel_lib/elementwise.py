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
from autotune import Config
from kernel_lib import arguments
from kernel_lib.errors import OperatorError
from kernel_lib.launching import Meta, cores, pow2_at_least
from kernel_lib.tuning import Problem, TunedKernel

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


def _prune(configs: list[Config], named: dict[str, Any]) -> list[Config]:
    """Tiles taller or wider than the inner two dimensions (rounded up to a power of two) only move padding."""
    d1, d2 = named["d1"], named["d2"]
    return [k for k in configs if k.kwargs["BR"] <= pow2_at_least(d1) and k.kwargs["BC"] <= max(
        128, pow2_at_least(d2))] or configs


# The search space (npu-tune): [BR, BC] tiles of the inner two coalesced dimensions and the tile loop's
# pipelining depth. The key: the coalesced dimensions, both operands' strides (the broadcasting pattern)
# and the operation.
BINARY = TunedKernel("binary", _binary_kernel, {"BR": [1, 2, 4, 8, 16, 32, 64],
                                                "BC": [128, 256, 512, 1024, 2048, 4096, 8192],
                                                "num_stages": [1, 2, 3]},
                     key=["d0", "d1", "d2", "A0", "A1", "A2", "B0", "B1", "B2", "OP"], prune=_prune)


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
        try:  # a Python scalar takes the array's dtype, as in NumPy
            return np.asarray(value, dtype=other.dtype)
        except OverflowError:
            raise OperatorError(f"kernel_lib.{op}: the scalar {value} does not fit {'b' if name == 'a' else 'a'}'s "
                                f"dtype {other.dtype}") from None
    if isinstance(value, np.ndarray) and value.ndim == 0:
        return value
    return arguments.array(op, name, value, DTYPES)


def rule(d1: int, d2: int) -> list[Meta]:
    """Rows of up to 8192 columns, as many rows as keep a block within 8192 elements, double-buffered; then
    blocks of 4096 and 2048 elements."""
    bc = min(pow2_at_least(d2), 8192)
    return [{"BR": min(pow2_at_least(d1), max(1, budget // c)), "BC": c, "num_stages": 2}
            for budget in (8192, 4096, 2048) for c in (min(bc, budget),)]


def _written(shape: tuple[int, ...]) -> str:
    return "x".join(map(str, shape)) or "1"  # a scalar operand as a one-element array


def problem(op: str, a: np.ndarray, b: np.ndarray, y: np.ndarray) -> Problem:
    """The launch of `a op b` into y (y.shape is the broadcast shape; y.size > 0); roofline: each operand read
    once (a broadcast one at its own size), y written once."""
    strides = [tuple(s // x.itemsize for x in (np.broadcast_to(x, y.shape),) for s in x.strides) for x in (a, b, y)]
    dims, (sa, sb, _) = coalesce(y.shape, strides)
    if len(dims) > 3:
        raise OperatorError(f"kernel_lib.{op}: shapes {a.shape} and {b.shape} broadcast in {len(dims)} "
                            f"separate runs of dimensions; at most 3 are supported (make one operand "
                            f"contiguous in the result's shape with np.broadcast_to(...).copy())")
    pad = 3 - len(dims)
    d = [1] * pad + dims
    sa, sb = [0] * pad + sa, [0] * pad + sb
    flags = {"A0": sa[0], "A1": sa[1], "A2": sa[2], "B0": sb[0], "B1": sb[1], "B2": sb[2], "OP": op}
    roof = (a.nbytes + b.nbytes + y.nbytes) / npu.get_machine().hbm_bytes_per_cycle
    shape = _written(a.shape) + ("" if a.shape == b.shape else ":" + _written(b.shape))
    return Problem(BINARY, lambda meta: (cores(),), (a, b, y, *d), flags, rule(d[1], d[2]), roof, "HBM",
                   shape=shape, op=op)


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
    problem(op, a, b, y).launch()
    return y


def add(a: Any, b: Any) -> np.ndarray:
    """a + b with NumPy broadcasting; both in one dtype (float16, bfloat16, float32 or int32), or a Python scalar."""
    return _binary("add", a, b)


def mul(a: Any, b: Any) -> np.ndarray:
    """a * b with NumPy broadcasting; both in one dtype (float16, bfloat16, float32 or int32), or a Python scalar."""
    return _binary("mul", a, b)
