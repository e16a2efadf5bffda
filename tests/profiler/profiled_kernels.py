"""Kernels whose bound is known by construction, for the profiler's verdict tests."""

from __future__ import annotations

import numpy as np

import npulang as npu


@npu.jit
def add(x_ptr, y_ptr, out_ptr, n, BLOCK: npu.constexpr):
    """Streams two inputs and an output once each through HBM: nothing to reuse, HBM-bound."""
    pid = npu.program_id(0)
    offs = pid * BLOCK + npu.arange(0, BLOCK)
    mask = offs < n
    x = npu.load(x_ptr + offs, mask=mask, other=0.0)
    y = npu.load(y_ptr + offs, mask=mask, other=0.0)
    npu.store(out_ptr + offs, x + y, mask=mask)


@npu.jit
def matmul(a_ptr, b_ptr, c_ptr, M, N, K, BM: npu.constexpr, BN: npu.constexpr, BK: npu.constexpr):
    """C = A @ B, one BM x BN tile per program; a small BK means many short loads per mmad."""
    pid_m = npu.program_id(0)
    pid_n = npu.program_id(1)
    rm = pid_m * BM + npu.arange(0, BM)
    rn = pid_n * BN + npu.arange(0, BN)
    rk = npu.arange(0, BK)
    acc = npu.zeros((BM, BN), dtype=npu.float32)
    for k in range(0, K, BK):
        a = npu.load(a_ptr + rm[:, None] * K + (k + rk)[None, :])
        b = npu.load(b_ptr + (k + rk)[:, None] * N + rn[None, :])
        acc = npu.dot(a, b, acc)
    npu.store(c_ptr + rm[:, None] * N + rn[None, :], acc)


@npu.jit
def repeated_dot(a_ptr, b_ptr, c_ptr, R, B: npu.constexpr):
    """Loads one B x B pair per program and multiplies it R times: all cube, next to no traffic."""
    pid = npu.program_id(0)
    r = npu.arange(0, B)
    a = npu.load(a_ptr + pid * B * B + r[:, None] * B + r[None, :])
    b = npu.load(b_ptr + pid * B * B + r[:, None] * B + r[None, :])
    acc = npu.zeros((B, B), dtype=npu.float32)
    for _ in range(R):
        acc = npu.dot(a, b, acc)
    npu.store(c_ptr + pid * B * B + r[:, None] * B + r[None, :], acc)


@npu.jit
def repeated_exp(x_ptr, out_ptr, R, BLOCK: npu.constexpr):
    """Loads a block once and applies exp(-|x|) R times in UB: all vector work."""
    pid = npu.program_id(0)
    offs = pid * BLOCK + npu.arange(0, BLOCK)
    x = npu.load(x_ptr + offs)
    for _ in range(R):
        x = npu.exp(-npu.abs(x))
    npu.store(out_ptr + offs, x)


def stream(n: int = 1 << 20, block: int = 4096) -> np.ndarray:
    """The HBM-bound launch, checked against numpy; also what `npu-prof` runs in the CLI test."""
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((2, n)).astype(np.float32)
    out = np.empty_like(x)
    add[(npu.cdiv(n, block),)](x, y, out, n, BLOCK=block)
    np.testing.assert_array_equal(out, x + y)
    return out
