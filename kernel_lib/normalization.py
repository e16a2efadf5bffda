"""The row kernels behind layer_norm and rms_norm (one module, since they differ in one term).

Rows that fit on chip run one pass: a persistent program per core takes BR rows at a time, reads each
element once and writes it once; weight and bias are loaded once per program. Longer rows go in
BN-wide chunks: one pass for the mean (layer norm only), one for the variance around it, one to write;
the re-reads of a row hit in L2.
"""

from __future__ import annotations

from typing import Any

import numpy as np

import npulang as npu
from kernel_lib import arguments
from kernel_lib.errors import OperatorError
from kernel_lib.launching import CHUNKS_SPACE, ROWS_SPACE, cores, pow2_at_least, row_rules
from kernel_lib.tuning import Problem, TunedKernel


@npu.jit
def _norm_rows(x_ptr, w_ptr, b_ptr, y_ptr, n_rows, n_cols, eps, RMS: npu.constexpr, HAS_W: npu.constexpr,
               HAS_B: npu.constexpr, BR: npu.constexpr, BN: npu.constexpr, num_stages: npu.constexpr):
    pid = npu.program_id(0)
    step = npu.num_programs(0)
    cols = npu.arange(0, BN)
    cmask = cols < n_cols
    if HAS_W:
        w = npu.load(w_ptr + cols, mask=cmask, other=0.0).to(npu.float32)
    if HAS_B:
        b = npu.load(b_ptr + cols, mask=cmask, other=0.0).to(npu.float32)
    for r0 in npu.range(pid * BR, n_rows, step * BR, num_stages=num_stages):
        rows = r0 + npu.arange(0, BR)
        mask = (rows[:, None] < n_rows) & cmask[None, :]
        offs = rows[:, None] * n_cols + cols[None, :]
        x = npu.load(x_ptr + offs, mask=mask, other=0.0).to(npu.float32)
        if RMS:
            xc = x
        else:
            xc = npu.where(mask, x - (npu.sum(x, axis=1) / n_cols)[:, None], 0.0)
        y = xc * npu.rsqrt(npu.sum(xc * xc, axis=1) / n_cols + eps)[:, None]
        if HAS_W and HAS_B:  # one vector pass for both (the fp16 kernel is vector-bound)
            y = npu.fma(y, w[None, :], b[None, :])
        elif HAS_W:
            y = y * w[None, :]
        elif HAS_B:
            y = y + b[None, :]
        npu.store(y_ptr + offs, y.to(y_ptr.dtype.element_ty), mask=mask)


@npu.jit
def _norm_wide(x_ptr, w_ptr, b_ptr, y_ptr, n_rows, n_cols, eps, RMS: npu.constexpr, HAS_W: npu.constexpr,
               HAS_B: npu.constexpr, BN: npu.constexpr, num_stages: npu.constexpr):
    pid = npu.program_id(0)
    step = npu.num_programs(0)
    for row in range(pid, n_rows, step):
        base = row * n_cols
        mean = 0.0
        if not RMS:
            acc = npu.zeros([BN], dtype=npu.float32)
            for off in npu.range(0, n_cols, BN, num_stages=num_stages):
                cols = off + npu.arange(0, BN)
                acc += npu.load(x_ptr + base + cols, mask=cols < n_cols, other=0.0).to(npu.float32)
            mean = npu.sum(acc, axis=0) / n_cols
        acc2 = npu.zeros([BN], dtype=npu.float32)
        for off in npu.range(0, n_cols, BN, num_stages=num_stages):
            cols = off + npu.arange(0, BN)
            mask = cols < n_cols
            xc = npu.where(mask, npu.load(x_ptr + base + cols, mask=mask, other=0.0).to(npu.float32) - mean, 0.0)
            acc2 = npu.fma(xc, xc, acc2)
        rstd = npu.rsqrt(npu.sum(acc2, axis=0) / n_cols + eps)
        for off in npu.range(0, n_cols, BN, num_stages=num_stages):
            cols = off + npu.arange(0, BN)
            mask = cols < n_cols
            y = (npu.load(x_ptr + base + cols, mask=mask, other=0.0).to(npu.float32) - mean) * rstd
            if HAS_W and HAS_B:
                y = npu.fma(y, npu.load(w_ptr + cols, mask=mask, other=0.0).to(npu.float32),
                            npu.load(b_ptr + cols, mask=mask, other=0.0).to(npu.float32))
            elif HAS_W:
                y = y * npu.load(w_ptr + cols, mask=mask, other=0.0).to(npu.float32)
            elif HAS_B:
                y = y + npu.load(b_ptr + cols, mask=mask, other=0.0).to(npu.float32)
            npu.store(y_ptr + base + cols, y.to(y_ptr.dtype.element_ty), mask=mask)


def normalized_shape(op: str, value: Any, x: np.ndarray) -> tuple[int, ...]:
    """PyTorch's `normalized_shape`: an int or the trailing dimensions of x."""
    shape = (value,) if isinstance(value, (int, np.integer)) else tuple(value)
    if not shape or any(not isinstance(d, (int, np.integer)) for d in shape) or x.shape[-len(shape):] != shape:
        raise OperatorError(f"kernel_lib.{op}: normalized_shape {value!r} must be x's trailing dimension(s); "
                            f"x has shape {x.shape}")
    return tuple(int(d) for d in shape)


def normalize_rows(op: str, x: np.ndarray, norm_shape: Any, weight: np.ndarray | None, bias: np.ndarray | None,
                   eps: float, rms: bool) -> np.ndarray:
    """Normalise x over its trailing `norm_shape` dimensions, then scale by weight and shift by bias."""
    x = arguments.array(op, "x", x, min_ndim=1)
    shape = normalized_shape(op, norm_shape, x)
    weight = None if weight is None else arguments.array(op, "weight", weight)
    bias = None if bias is None else arguments.array(op, "bias", bias)
    arguments.shape(op, "weight", weight, shape)
    arguments.shape(op, "bias", bias, shape)
    arguments.same_dtype(op, x=x, weight=weight, bias=bias)
    y = np.empty_like(x)
    rows, wide = problems(x, weight, bias, y, int(np.prod(shape)), eps, rms, op)
    try:
        rows.launch()
    except OperatorError:
        wide.launch()
    return y


ROWS = TunedKernel("norm", _norm_rows, ROWS_SPACE, key=["n_rows", "n_cols", "RMS"])
WIDE = TunedKernel("norm", _norm_wide, CHUNKS_SPACE, key=["n_rows", "n_cols", "RMS"])


def problems(x: np.ndarray, weight: np.ndarray | None, bias: np.ndarray | None, y: np.ndarray, n_cols: int,
             eps: float, rms: bool, op: str = "") -> list[Problem]:
    """The one-pass and the chunked launch over rows of `n_cols` elements, in that order; the rule is
    `launching.row_rules`."""
    n_rows = x.size // n_cols
    args = (x, x if weight is None else weight, x if bias is None else bias, y, n_rows, n_cols, eps)
    flags = {"RMS": rms, "HAS_W": weight is not None, "HAS_B": bias is not None}
    moved = 2 * x.nbytes + sum(a.nbytes for a in (weight, bias) if a is not None)
    roof = moved / npu.get_machine().hbm_bytes_per_cycle
    one_pass, chunked = row_rules(n_cols)
    grid = lambda meta: (cores(),)  # noqa: E731  (persistent: one program per core)
    shape = f"{n_rows}x{n_cols}"
    return [Problem(ROWS, grid, args, {**flags, "BN": pow2_at_least(n_cols)}, one_pass, roof, "HBM", shape=shape,
                    op=op),
            Problem(WIDE, grid, args, flags, chunked, roof, "HBM", shape=shape, op=op)]
