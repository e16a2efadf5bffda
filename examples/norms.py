"""RMS norm as Triton users write it: one row per program, the whole row in one block.

    y = x / sqrt(mean(x²) + eps) * w

A grid of one program per row is many short programs; on a grid larger than the machine they run
as one persistent loop per core, pipelined across rows (README, "How programs map to cores").
"""

from __future__ import annotations

from typing import Any

import numpy as np

import npulang as npu


@npu.jit
def rms_norm_fwd(X, Y, W, Rstd, stride, N, eps, BLOCK_SIZE: npu.constexpr):
    row = npu.program_id(0)
    cols = npu.arange(0, BLOCK_SIZE)
    mask = cols < N
    x = npu.load(X + row * stride + cols, mask=mask, other=0.).to(npu.float32)
    rstd = 1 / npu.sqrt(npu.sum(x * x, axis=0) / N + eps)
    npu.store(Rstd + row, rstd)
    w = npu.load(W + cols, mask=mask, other=0.).to(npu.float32)
    npu.store(Y + row * stride + cols, x * rstd * w, mask=mask)


def run_rms_norm(x: np.ndarray, w: np.ndarray, eps: float = 1e-6,
                 **launch: Any) -> tuple[tuple[np.ndarray, np.ndarray], Any]:
    """Normalise each row of `x` (m×n, any float dtype); returns ((y, rstd), the run record)."""
    m, n = x.shape
    y = np.zeros_like(x)
    rstd = np.zeros(m, np.float32)
    block = 1 << max(n - 1, 0).bit_length()
    run = rms_norm_fwd[(m,)](x, y, w, rstd, x.shape[1], n, eps, BLOCK_SIZE=block, **launch)
    return (y, rstd), run


def ref_rms_norm(x: np.ndarray, w: np.ndarray, eps: float = 1e-6) -> tuple[np.ndarray, np.ndarray]:
    """numpy reference, in fp32 as the kernel computes."""
    x32 = x.astype(np.float32)
    rstd = 1 / np.sqrt((x32 * x32).mean(axis=1) + np.float32(eps))
    return x32 * rstd[:, None] * w.astype(np.float32), rstd.astype(np.float32)
