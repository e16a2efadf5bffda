"""softmax and log_softmax along one axis.

Rows that fit on chip run one pass: a persistent program per core takes BR rows at a time (so short
rows still move large DMA blocks), and each element is read once and written once. Longer rows run an
online softmax in BN-wide chunks (a running max and a rescaled running sum per lane), then a second
pass writes the result; the re-read of a row hits in L2. A reduction along another axis than the last
moves that axis last on the host first (a copy that is not part of the simulated cycles).
"""

from __future__ import annotations

import numpy as np

import npulang as npu
from kernel_lib import arguments
from kernel_lib.launching import CHUNKS_SPACE, ROWS_SPACE, cores, pow2_at_least, row_rules
from kernel_lib.tuning import Problem, TunedKernel


@npu.jit
def _softmax_rows(x_ptr, y_ptr, n_rows, n_cols, LOG: npu.constexpr, BR: npu.constexpr, BN: npu.constexpr,
                  num_stages: npu.constexpr):
    pid = npu.program_id(0)
    step = npu.num_programs(0)
    cols = npu.arange(0, BN)
    for r0 in npu.range(pid * BR, n_rows, step * BR, num_stages=num_stages):
        rows = r0 + npu.arange(0, BR)
        mask = (rows[:, None] < n_rows) & (cols[None, :] < n_cols)
        offs = rows[:, None] * n_cols + cols[None, :]
        x = npu.load(x_ptr + offs, mask=mask, other=-float("inf")).to(npu.float32)
        z = x - npu.max(x, axis=1)[:, None]
        e = npu.exp(z)
        s = npu.sum(e, axis=1)[:, None]
        if LOG:
            y = z - npu.log(s)
        else:
            y = e / s
        npu.store(y_ptr + offs, y.to(y_ptr.dtype.element_ty), mask=mask)


@npu.jit
def _softmax_wide(x_ptr, y_ptr, n_rows, n_cols, LOG: npu.constexpr, BN: npu.constexpr,
                  num_stages: npu.constexpr):
    pid = npu.program_id(0)
    step = npu.num_programs(0)
    for row in range(pid, n_rows, step):
        base = row * n_cols
        m_lane = npu.full([BN], -3.0e38, dtype=npu.float32)
        s_lane = npu.zeros([BN], dtype=npu.float32)
        for off in npu.range(0, n_cols, BN, num_stages=num_stages):
            cols = off + npu.arange(0, BN)
            x = npu.load(x_ptr + base + cols, mask=cols < n_cols, other=-float("inf")).to(npu.float32)
            m_new = npu.maximum(m_lane, x)
            s_lane = s_lane * npu.exp(m_lane - m_new) + npu.exp(x - m_new)
            m_lane = m_new
        m = npu.max(m_lane, axis=0)
        s = npu.sum(s_lane * npu.exp(m_lane - m), axis=0)
        for off in npu.range(0, n_cols, BN, num_stages=num_stages):
            cols = off + npu.arange(0, BN)
            mask = cols < n_cols
            x = npu.load(x_ptr + base + cols, mask=mask, other=0.0).to(npu.float32)
            if LOG:
                y = x - m - npu.log(s)
            else:
                y = npu.exp(x - m) / s
            npu.store(y_ptr + base + cols, y.to(y_ptr.dtype.element_ty), mask=mask)


ROWS = TunedKernel("softmax", _softmax_rows, ROWS_SPACE, key=["n_rows", "n_cols", "LOG"])
WIDE = TunedKernel("softmax", _softmax_wide, CHUNKS_SPACE, key=["n_rows", "n_cols", "LOG"])


def problems(x: np.ndarray, y: np.ndarray, log: bool, op: str = "") -> list[Problem]:
    """The one-pass and the chunked launch over the rows of x (its last axis), in that order; the rule is
    `launching.row_rules`."""
    n_cols = x.shape[-1]
    n_rows = x.size // n_cols
    roof = 2 * x.nbytes / npu.get_machine().hbm_bytes_per_cycle
    one_pass, chunked = row_rules(n_cols)
    grid = lambda meta: (cores(),)  # noqa: E731  (persistent: one program per core)
    args = (x, y, n_rows, n_cols)
    shape = f"{n_rows}x{n_cols}"
    return [Problem(ROWS, grid, args, {"LOG": log, "BN": pow2_at_least(n_cols)}, one_pass, roof, "HBM",
                    shape=shape, op=op),
            Problem(WIDE, grid, args, {"LOG": log}, chunked, roof, "HBM", shape=shape, op=op)]


def _softmax(op: str, x: np.ndarray, axis: int, log: bool) -> np.ndarray:
    x = arguments.array(op, "x", x, min_ndim=1)
    ax = arguments.axis(op, axis, x.ndim)
    moved = np.ascontiguousarray(np.moveaxis(x, ax, -1)) if ax != x.ndim - 1 else x
    y = np.empty_like(moved)
    rows, wide = problems(moved, y, log, op)
    try:
        rows.launch()
    except arguments.OperatorError:
        wide.launch()
    return np.moveaxis(y, -1, ax) if ax != x.ndim - 1 else y


def softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """exp(x) / sum(exp(x)) along `axis`, computed in fp32 and returned in x's dtype."""
    return _softmax("softmax", x, axis, False)


def log_softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """x - log(sum(exp(x))) along `axis`, computed in fp32 and returned in x's dtype."""
    return _softmax("log_softmax", x, axis, True)
