"""Kernels written the way Triton users write them, ported by renaming `tl.` to `npu.`.

Flash attention (Triton's fused-attention tutorial, forward pass, causal or not), a matmul with a
GELU epilogue, and a one-pass online softmax over wide rows. Like `tutorials.py`, each kernel has a
`run_*` helper that launches it on numpy arrays and returns `(output, run record)` and a `ref_*`
numpy reference; `**launch` goes to the launch (`interpret=True`, `num_stages=`, `timing_only=`...).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

import npulang as npu
from examples.tutorials import desc_matmul_tile

# -- flash attention (Triton tutorial 06, forward) -----------------------------------------------


@npu.jit
def _attn_fwd_inner(acc, l_i, m_i, q, desc_k, desc_v, offset_y, start_m, qk_scale, N_CTX,
                    BLOCK_M: npu.constexpr, BLOCK_N: npu.constexpr, STAGE: npu.constexpr):
    # STAGE 1: the blocks left of the diagonal; 2: the diagonal block (masked); 3: every block (non-causal)
    # (the diagonal starts at a multiple of BLOCK_N, so BLOCK_N may exceed BLOCK_M)
    if STAGE == 1:
        lo, hi = 0, start_m * BLOCK_M // BLOCK_N * BLOCK_N
    elif STAGE == 2:
        lo, hi = start_m * BLOCK_M // BLOCK_N * BLOCK_N, (start_m + 1) * BLOCK_M
    else:
        lo, hi = 0, N_CTX
    offs_m = start_m * BLOCK_M + npu.arange(0, BLOCK_M)
    offs_n = npu.arange(0, BLOCK_N)
    for start_n in range(lo, hi, BLOCK_N):
        k = desc_k.load([offset_y + start_n, 0]).T
        qk = npu.dot(q, k)
        if STAGE == 2:
            mask = offs_m[:, None] >= (start_n + offs_n[None, :])
            qk = qk * qk_scale + npu.where(mask, 0, -1.0e6)
            m_ij = npu.maximum(m_i, npu.max(qk, 1))
            qk -= m_ij[:, None]
        else:
            m_ij = npu.maximum(m_i, npu.max(qk, 1) * qk_scale)
            qk = qk * qk_scale - m_ij[:, None]
        p = npu.exp2(qk)
        l_ij = npu.sum(p, 1)
        alpha = npu.exp2(m_i - m_ij)
        l_i = l_i * alpha + l_ij
        acc = acc * alpha[:, None]
        v = desc_v.load([offset_y + start_n, 0])
        p = p.to(npu.float16)
        acc = npu.dot(p, v, acc)
        m_i = m_ij
    return acc, l_i, m_i


@npu.jit
def attn_fwd(Q, K, V, Out, sm_scale, Z, H, N_CTX, HEAD_DIM: npu.constexpr, BLOCK_M: npu.constexpr,
             BLOCK_N: npu.constexpr, STAGE: npu.constexpr):
    """Q, K, V, Out: [Z*H*N_CTX, HEAD_DIM] fp16; one program per (BLOCK_M rows of queries, head)."""
    start_m = npu.program_id(0)
    off_hz = npu.program_id(1)
    y_dim = Z * H * N_CTX
    desc_q = npu.make_tensor_descriptor(Q, shape=[y_dim, HEAD_DIM], strides=[HEAD_DIM, 1],
                                        block_shape=[BLOCK_M, HEAD_DIM])
    desc_k = npu.make_tensor_descriptor(K, shape=[y_dim, HEAD_DIM], strides=[HEAD_DIM, 1],
                                        block_shape=[BLOCK_N, HEAD_DIM])
    desc_v = npu.make_tensor_descriptor(V, shape=[y_dim, HEAD_DIM], strides=[HEAD_DIM, 1],
                                        block_shape=[BLOCK_N, HEAD_DIM])
    desc_o = npu.make_tensor_descriptor(Out, shape=[y_dim, HEAD_DIM], strides=[HEAD_DIM, 1],
                                        block_shape=[BLOCK_M, HEAD_DIM])
    offset_y = off_hz * N_CTX
    qo_offset_y = offset_y + start_m * BLOCK_M
    m_i = npu.zeros([BLOCK_M], dtype=npu.float32) - float("inf")
    l_i = npu.zeros([BLOCK_M], dtype=npu.float32) + 1.0
    acc = npu.zeros([BLOCK_M, HEAD_DIM], dtype=npu.float32)
    qk_scale = sm_scale * 1.44269504  # 1/log(2): exp2 instead of exp
    q = desc_q.load([qo_offset_y, 0])
    if STAGE & 1:
        acc, l_i, m_i = _attn_fwd_inner(acc, l_i, m_i, q, desc_k, desc_v, offset_y, start_m, qk_scale, N_CTX,
                                        BLOCK_M, BLOCK_N, 4 - STAGE)
    if STAGE & 2:
        acc, l_i, m_i = _attn_fwd_inner(acc, l_i, m_i, q, desc_k, desc_v, offset_y, start_m, qk_scale, N_CTX,
                                        BLOCK_M, BLOCK_N, 2)
    acc = acc / l_i[:, None]
    desc_o.store([qo_offset_y, 0], acc.to(npu.float16))


def run_attention(q: np.ndarray, k: np.ndarray, v: np.ndarray, causal: bool = False,
                  block: tuple[int, int] = (128, 64), sm_scale: float | None = None,
                  **launch: Any) -> tuple[np.ndarray, Any]:
    """softmax(Q Kᵀ · sm_scale) V per head; q, k, v: [Z, H, N_CTX, HEAD_DIM] fp16 (N_CTX a multiple of BLOCK_M)."""
    z, h, n_ctx, d = q.shape
    bm, bn = block
    scale = 1 / math.sqrt(d) if sm_scale is None else sm_scale
    out = np.zeros_like(q)
    flat = [np.ascontiguousarray(x.reshape(z * h * n_ctx, d)) for x in (q, k, v)]
    out2 = out.reshape(z * h * n_ctx, d)
    record = attn_fwd[(npu.cdiv(n_ctx, bm), z * h)](*flat, out2, scale, z, h, n_ctx, HEAD_DIM=d, BLOCK_M=bm,
                                                     BLOCK_N=bn, STAGE=3 if causal else 1, **launch)
    return out, record


def ref_attention(q: np.ndarray, k: np.ndarray, v: np.ndarray, causal: bool = False,
                  sm_scale: float | None = None) -> np.ndarray:
    d = q.shape[-1]
    scale = 1 / math.sqrt(d) if sm_scale is None else sm_scale
    s = (q.astype(np.float32) @ np.swapaxes(k.astype(np.float32), -1, -2)) * np.float32(scale)
    if causal:
        n = q.shape[-2]
        s = np.where(np.tril(np.ones((n, n), bool)), s, -np.inf)
    p = np.exp(s - s.max(axis=-1, keepdims=True))
    return ((p / p.sum(axis=-1, keepdims=True)) @ v.astype(np.float32)).astype(np.float16)


# -- matmul with a GELU epilogue -----------------------------------------------------------------


@npu.jit
def matmul_gelu_kernel(a_ptr, b_ptr, bias_ptr, c_ptr, M, N, K, BM: npu.constexpr, BN: npu.constexpr,
                       BK: npu.constexpr):
    """C = gelu(A @ B + bias) in fp16, the erf form of GELU, fp32 epilogue."""
    pid_m = npu.program_id(0)
    pid_n = npu.program_id(1)
    c_desc = npu.make_tensor_descriptor(c_ptr, shape=[M, N], strides=[N, 1], block_shape=[BM, BN])
    acc = desc_matmul_tile(a_ptr, b_ptr, M, N, K, pid_m, pid_n, BM, BN, BK)
    offs_n = pid_n * BN + npu.arange(0, BN)
    bias = npu.load(bias_ptr + offs_n, mask=offs_n < N, other=0.0)
    x = acc + bias[None, :]
    y = 0.5 * x * (1.0 + npu.erf(x * 0.7071067811865476))
    c_desc.store([pid_m * BM, pid_n * BN], y.to(npu.float16))


def run_matmul_gelu(a: np.ndarray, b: np.ndarray, bias: np.ndarray, block: tuple[int, int, int] = (128, 128, 32),
                    **launch: Any) -> tuple[np.ndarray, Any]:
    M, K = a.shape
    N = b.shape[1]
    c = np.zeros((M, N), np.float16)
    bm, bn, bk = block
    record = matmul_gelu_kernel[(npu.cdiv(M, bm), npu.cdiv(N, bn))](a, b, bias, c, M, N, K, BM=bm, BN=bn, BK=bk,
                                                                    **launch)
    return c, record


def ref_matmul_gelu(a: np.ndarray, b: np.ndarray, bias: np.ndarray) -> np.ndarray:
    x = a.astype(np.float32) @ b.astype(np.float32) + bias.astype(np.float32)
    erf = np.vectorize(math.erf, otypes=[np.float64])
    return (0.5 * x * (1 + erf(x / np.sqrt(2)))).astype(np.float16)


# -- online softmax (one pass for max and sum, a second to write) --------------------------------


@npu.jit
def online_softmax_kernel(out_ptr, in_ptr, n_rows, n_cols, BLOCK: npu.constexpr):
    """Rows of any length: running max and rescaled running sum per lane, then one pass writing exp(x - m) / s."""
    row = npu.program_id(0)
    x_row = in_ptr + row * n_cols
    o_row = out_ptr + row * n_cols
    m = npu.full([BLOCK], -float("inf"), dtype=npu.float32)
    s = npu.zeros([BLOCK], dtype=npu.float32)
    for off in range(0, n_cols, BLOCK):
        cols = off + npu.arange(0, BLOCK)
        x = npu.load(x_row + cols, mask=cols < n_cols, other=-float("inf"))
        m_new = npu.maximum(m, x)
        s = s * npu.exp(npu.where(m_new == -float("inf"), 0.0, m - m_new)) + \
            npu.where(x == -float("inf"), 0.0, npu.exp(x - m_new))
        m = m_new
    m_row = npu.max(m, axis=0)
    s_row = npu.sum(s * npu.exp(npu.where(m == -float("inf"), -float("inf"), m - m_row)), axis=0)
    for off in range(0, n_cols, BLOCK):
        cols = off + npu.arange(0, BLOCK)
        x = npu.load(x_row + cols, mask=cols < n_cols, other=-float("inf"))
        npu.store(o_row + cols, npu.exp(x - m_row) / s_row, mask=cols < n_cols)


def run_online_softmax(x: np.ndarray, block: int = 8192, **launch: Any) -> tuple[np.ndarray, Any]:
    n_rows, n_cols = x.shape
    out = np.zeros_like(x)
    record = online_softmax_kernel[(n_rows,)](out, np.ascontiguousarray(x), n_rows, n_cols, BLOCK=block, **launch)
    return out, record


def ref_softmax(x: np.ndarray) -> np.ndarray:
    x = x.astype(np.float32)
    e = np.exp(x - x.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)
