"""Kernels written the way Triton users write them, with the idioms npulang compiles fast:

- `linear_kernel`: y = x @ Wᵀ with W stored [N, K] (a linear layer's weight) and read as the [K, N]
  operand through its strides. Its unit stride is specialised (an int argument equal to 1 compiles as
  the constant), so the compiler loads W's rows contiguously and the L1 -> L0B move transposes them;
  `linear_trans_kernel` is the same product written with `npu.trans`.
- `conv2d_nhwc_kernel`: a direct convolution written Triton-style, its padding as masks (a two-sided
  bound and a scalar term), so every input tile is a strided DMA with zero fill, never a gather.
- `cross_entropy_kernel`: one row per program, the label's logit picked with a data-dependent scalar
  load (`label` itself loaded from memory), and an early exit for programs past the last row.

Each has a `run_*` helper (numpy in, numpy out) and a `ref_*` numpy reference.
"""

from __future__ import annotations

from typing import Any

import numpy as np

import npulang as npu


@npu.jit
def _block_offsets(BLOCK_M: npu.constexpr, BLOCK_N: npu.constexpr, BLOCK_K: npu.constexpr):
    """This program's rows and columns of y (grid axes 0 and 1), and the k offsets of one step."""
    offs_m = npu.program_id(0) * BLOCK_M + npu.arange(0, BLOCK_M)
    offs_n = npu.program_id(1) * BLOCK_N + npu.arange(0, BLOCK_N)
    return offs_m, offs_n, npu.arange(0, BLOCK_K)


@npu.jit
def _store_y(y_ptr, acc, offs_m, offs_n, M, N, stride_ym):
    """The accumulator, in y's dtype, into its [BLOCK_M, BLOCK_N] block of y (ragged edges masked)."""
    y_ptrs = y_ptr + offs_m[:, None] * stride_ym + offs_n[None, :]
    npu.store(y_ptrs, acc.to(y_ptr.dtype.element_ty), mask=(offs_m[:, None] < M) & (offs_n[None, :] < N))


@npu.jit
def linear_kernel(x_ptr, w_ptr, y_ptr, M, N, K, stride_xm, stride_xk, stride_wn, stride_wk, stride_ym,
                  BLOCK_M: npu.constexpr, BLOCK_N: npu.constexpr, BLOCK_K: npu.constexpr):
    """y[M, N] = x[M, K] @ w[N, K]ᵀ, fp32 accumulation, stored as y's dtype."""
    offs_m, offs_n, offs_k = _block_offsets(BLOCK_M, BLOCK_N, BLOCK_K)
    x_ptrs = x_ptr + offs_m[:, None] * stride_xm + offs_k[None, :] * stride_xk
    w_ptrs = w_ptr + offs_k[:, None] * stride_wk + offs_n[None, :] * stride_wn  # [BLOCK_K, BLOCK_N] of wᵀ
    acc = npu.zeros((BLOCK_M, BLOCK_N), dtype=npu.float32)
    for k in range(0, npu.cdiv(K, BLOCK_K)):
        k_left = K - k * BLOCK_K
        x = npu.load(x_ptrs, mask=(offs_m[:, None] < M) & (offs_k[None, :] < k_left), other=0.0)
        w = npu.load(w_ptrs, mask=(offs_k[:, None] < k_left) & (offs_n[None, :] < N), other=0.0)
        acc = npu.dot(x, w, acc)
        x_ptrs += BLOCK_K * stride_xk
        w_ptrs += BLOCK_K * stride_wk
    _store_y(y_ptr, acc, offs_m, offs_n, M, N, stride_ym)


# The same kernel with its strides left unspecialised: the "before" of the specialisation (the column
# stride of wᵀ is a runtime value, so the load of w stays element-strided).
linear_kernel_unspecialised = npu.jit(linear_kernel.fn, do_not_specialize=["stride_wk"])


@npu.jit
def linear_trans_kernel(x_ptr, w_ptr, y_ptr, M, N, K, stride_xm, stride_wn, stride_ym,
                        BLOCK_M: npu.constexpr, BLOCK_N: npu.constexpr, BLOCK_K: npu.constexpr):
    """The same product, loading [BLOCK_N, BLOCK_K] tiles of w and transposing them with npu.trans."""
    offs_m, offs_n, offs_k = _block_offsets(BLOCK_M, BLOCK_N, BLOCK_K)
    x_ptrs = x_ptr + offs_m[:, None] * stride_xm + offs_k[None, :]
    w_ptrs = w_ptr + offs_n[:, None] * stride_wn + offs_k[None, :]
    acc = npu.zeros((BLOCK_M, BLOCK_N), dtype=npu.float32)
    for k in range(0, npu.cdiv(K, BLOCK_K)):
        k_left = K - k * BLOCK_K
        x = npu.load(x_ptrs, mask=(offs_m[:, None] < M) & (offs_k[None, :] < k_left), other=0.0)
        w = npu.load(w_ptrs, mask=(offs_n[:, None] < N) & (offs_k[None, :] < k_left), other=0.0)
        acc = npu.dot(x, npu.trans(w), acc)
        x_ptrs += BLOCK_K
        w_ptrs += BLOCK_K
    _store_y(y_ptr, acc, offs_m, offs_n, M, N, stride_ym)


def run_linear(x: np.ndarray, w: np.ndarray, block: tuple[int, int, int] = (32, 32, 32), *,
               kernel: Any = linear_kernel, **launch: Any) -> tuple[np.ndarray, Any]:
    """y = x @ wᵀ for x [M, K] and w [N, K] (fp16), y fp16; `kernel` is one of the two stride kernels."""
    M, K = x.shape
    N = w.shape[0]
    y = np.zeros((M, N), x.dtype)
    bm, bn, bk = block
    run = kernel[(npu.cdiv(M, bm), npu.cdiv(N, bn))](x, w, y, M, N, K, K, 1, K, 1, N, BLOCK_M=bm, BLOCK_N=bn,
                                                     BLOCK_K=bk, **launch)
    return y, run


def run_linear_trans(x: np.ndarray, w: np.ndarray, block: tuple[int, int, int] = (32, 32, 32),
                     **launch: Any) -> tuple[np.ndarray, Any]:
    M, K = x.shape
    N = w.shape[0]
    y = np.zeros((M, N), x.dtype)
    bm, bn, bk = block
    run = linear_trans_kernel[(npu.cdiv(M, bm), npu.cdiv(N, bn))](x, w, y, M, N, K, K, K, N, BLOCK_M=bm,
                                                                  BLOCK_N=bn, BLOCK_K=bk, **launch)
    return y, run


def ref_linear(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    return (x.astype(np.float32) @ w.astype(np.float32).T).astype(x.dtype)


@npu.jit
def conv2d_nhwc_kernel(x_ptr, w_ptr, y_ptr, H, W, C, K, OH, OW, STRIDE: npu.constexpr, PAD: npu.constexpr,
                       R: npu.constexpr, S: npu.constexpr, BLOCK_W: npu.constexpr, BLOCK_K: npu.constexpr,
                       BLOCK_C: npu.constexpr):
    """A direct convolution written Triton-style: y[n, oh, ow, k] = sum over r, s, c of
    x[n, oh*STRIDE - PAD + r, ow*STRIDE - PAD + s, c] * w[r, s, c, k] (x NHWC, w RSCK, y NHWC).

    Program (n*OH + oh, ow block, k block); one loop over the taps (r, s) and C blocks, one dot each. The
    padding is masks: a two-sided bound on iw, a scalar term for ih, so every x tile is one strided DMA
    with zero fill.
    """
    n = npu.program_id(0) // OH
    oh = npu.program_id(0) % OH
    ow = npu.program_id(1) * BLOCK_W + npu.arange(0, BLOCK_W)
    k = npu.program_id(2) * BLOCK_K + npu.arange(0, BLOCK_K)
    c_blocks = npu.cdiv(C, BLOCK_C)
    acc = npu.zeros((BLOCK_W, BLOCK_K), dtype=npu.float32)
    for t in range(0, R * S * c_blocks):
        tap = t // c_blocks
        ih = oh * STRIDE - PAD + tap // S
        iw = ow * STRIDE - PAD + tap % S
        c = (t % c_blocks) * BLOCK_C + npu.arange(0, BLOCK_C)
        inside = (iw[:, None] >= 0) & (iw[:, None] < W) & (c[None, :] < C) & (ih >= 0) & (ih < H)
        xt = npu.load(x_ptr + ((n * H + ih) * W + iw[:, None]) * C + c[None, :], mask=inside, other=0.0)
        wt = npu.load(w_ptr + (tap * C + c[:, None]) * K + k[None, :], mask=(c[:, None] < C) & (k[None, :] < K),
                      other=0.0)
        acc = npu.dot(xt, wt, acc)
    y_ptrs = y_ptr + ((n * OH + oh) * OW + ow[:, None]) * K + k[None, :]
    npu.store(y_ptrs, acc.to(y_ptr.dtype.element_ty), mask=(ow[:, None] < OW) & (k[None, :] < K))


def run_conv2d_nhwc(x: np.ndarray, w: np.ndarray, stride: int = 1, pad: int = 0,
                    block: tuple[int, int, int] = (32, 32, 32), **launch: Any) -> tuple[np.ndarray, Any]:
    """y = conv2d(x, w) for x [N, H, W, C] and w [R, S, C, K] (fp16), y [N, OH, OW, K] fp16."""
    N, H, W, C = x.shape
    R, S, _, K = w.shape
    OH, OW = (H + 2 * pad - R) // stride + 1, (W + 2 * pad - S) // stride + 1
    y = np.zeros((N, OH, OW, K), x.dtype)
    bw, bk, bc = block
    grid = (N * OH, npu.cdiv(OW, bw), npu.cdiv(K, bk))
    run = conv2d_nhwc_kernel[grid](x, w, y, H, W, C, K, OH, OW, STRIDE=stride, PAD=pad, R=R, S=S, BLOCK_W=bw,
                                   BLOCK_K=bk, BLOCK_C=bc, **launch)
    return y, run


def ref_conv2d_nhwc(x: np.ndarray, w: np.ndarray, stride: int = 1, pad: int = 0) -> np.ndarray:
    N, H, W, C = x.shape
    R, S, _, K = w.shape
    xp = np.pad(x.astype(np.float32), ((0, 0), (pad, pad), (pad, pad), (0, 0)))
    OH, OW = (H + 2 * pad - R) // stride + 1, (W + 2 * pad - S) // stride + 1
    y = np.zeros((N, OH, OW, K), np.float32)
    for r in range(R):
        for s in range(S):
            win = xp[:, r:r + stride * (OH - 1) + 1:stride, s:s + stride * (OW - 1) + 1:stride, :]
            y += win @ w[r, s].astype(np.float32)
    return y.astype(x.dtype)


@npu.jit
def cross_entropy_kernel(logits_ptr, labels_ptr, loss_ptr, n_rows, n_cols, BLOCK: npu.constexpr):
    """loss[row] = logsumexp(logits[row]) - logits[row, labels[row]], one row per program."""
    row = npu.program_id(0)
    if row >= n_rows:  # a grid rounded up to a multiple of the cores may have idle programs
        return
    offs = npu.arange(0, BLOCK)
    x = npu.load(logits_ptr + row * n_cols + offs, mask=offs < n_cols, other=-float("inf")).to(npu.float32)
    m = npu.max(x, axis=0)
    lse = m + npu.log(npu.sum(npu.exp(x - m), axis=0))
    label = npu.load(labels_ptr + row)
    picked = npu.load(logits_ptr + row * n_cols + label).to(npu.float32)  # a data-dependent address
    npu.store(loss_ptr + row, lse - picked)


def run_cross_entropy(logits: np.ndarray, labels: np.ndarray, programs: int | None = None,
                      **launch: Any) -> tuple[np.ndarray, Any]:
    """Per-row cross-entropy of `logits` [rows, cols] (fp32 or fp16) against int32 `labels`; the grid may
    have more programs than rows (`programs`), which exit early."""
    rows, cols = logits.shape
    loss = np.zeros(rows, np.float32)
    block = 1 << max(cols - 1, 1).bit_length()
    run = cross_entropy_kernel[(programs or rows,)](logits, labels, loss, rows, cols, BLOCK=block, **launch)
    return loss, run


def ref_cross_entropy(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    x = logits.astype(np.float32)
    m = x.max(axis=1)
    lse = m + np.log(np.exp(x - m[:, None]).sum(axis=1))
    return (lse - x[np.arange(len(x)), labels]).astype(np.float32)
