"""Triton's tutorials ported to npulang: rename `tl.` to `npu.` and `triton.jit` to `npu.jit`.

Vector add (tutorial 01), fused softmax (02), grouped matmul (03) and layer norm forward (05), plus
a Triton 3.x tensor-descriptor matmul. Each kernel has a `run_*` helper that launches it on numpy
arrays and returns `(output, run record)`, and a `ref_*` numpy reference. `**launch` goes to the
launch (e.g. `interpret=True`, `num_stages=3`, `trace=True`), so the tests, the benchmarks and the
demo run the very same kernels interpreted or compiled.
"""

from __future__ import annotations

from typing import Any

import numpy as np

import npulang as npu

# -- vector add (Triton tutorial 01) -------------------------------------------------------------


@npu.jit
def add_kernel(x_ptr, y_ptr, output_ptr, n_elements, BLOCK_SIZE: npu.constexpr):
    pid = npu.program_id(axis=0)
    block_start = pid * BLOCK_SIZE
    offsets = block_start + npu.arange(0, BLOCK_SIZE)
    mask = offsets < n_elements
    x = npu.load(x_ptr + offsets, mask=mask)
    y = npu.load(y_ptr + offsets, mask=mask)
    output = x + y
    npu.store(output_ptr + offsets, output, mask=mask)


def run_add(x: np.ndarray, y: np.ndarray, block: int = 64, **launch: Any) -> tuple[np.ndarray, Any]:
    out = np.zeros_like(x)
    n = x.size
    result = add_kernel[lambda meta: (npu.cdiv(n, meta["BLOCK_SIZE"]),)](x, y, out, n, BLOCK_SIZE=block,
                                                                         **launch)
    return out, result


# -- fused softmax (Triton tutorial 02) ----------------------------------------------------------


@npu.jit
def softmax_kernel(output_ptr, input_ptr, input_row_stride, output_row_stride, n_rows, n_cols,
                   BLOCK_SIZE: npu.constexpr, num_stages: npu.constexpr):
    row_start = npu.program_id(0)
    row_step = npu.num_programs(0)
    for row_idx in npu.range(row_start, n_rows, row_step, num_stages=num_stages):
        row_start_ptr = input_ptr + row_idx * input_row_stride
        col_offsets = npu.arange(0, BLOCK_SIZE)
        input_ptrs = row_start_ptr + col_offsets
        mask = col_offsets < n_cols
        row = npu.load(input_ptrs, mask=mask, other=-float("inf"))
        row_minus_max = row - npu.max(row, axis=0)
        numerator = npu.exp(row_minus_max)
        denominator = npu.sum(numerator, axis=0)
        softmax_output = numerator / denominator
        output_row_start_ptr = output_ptr + row_idx * output_row_stride
        output_ptrs = output_row_start_ptr + col_offsets
        npu.store(output_ptrs, softmax_output, mask=mask)


def run_softmax(x: np.ndarray, programs: int = 4, **launch: Any) -> tuple[np.ndarray, Any]:
    n_rows, n_cols = x.shape
    block = 1 << (n_cols - 1).bit_length()
    out = np.zeros_like(x)
    result = softmax_kernel[(min(programs, n_rows),)](out, x, x.shape[1], out.shape[1], n_rows, n_cols,
                                                      BLOCK_SIZE=block, num_stages=2, **launch)
    return out, result


def ref_softmax(x: np.ndarray) -> np.ndarray:
    x = x.astype(np.float32)
    e = np.exp(x - x.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


# -- layer norm forward (Triton tutorial 05) -----------------------------------------------------


@npu.jit
def layer_norm_fwd_fused(X, Y, W, B, Mean, Rstd, stride, N, eps, BLOCK_SIZE: npu.constexpr):
    row = npu.program_id(0)
    Y += row * stride
    X += row * stride
    mean = 0
    _mean = npu.zeros([BLOCK_SIZE], dtype=npu.float32)
    for off in range(0, N, BLOCK_SIZE):
        cols = off + npu.arange(0, BLOCK_SIZE)
        a = npu.load(X + cols, mask=cols < N, other=0.).to(npu.float32)
        _mean += a
    mean = npu.sum(_mean, axis=0) / N
    _var = npu.zeros([BLOCK_SIZE], dtype=npu.float32)
    for off in range(0, N, BLOCK_SIZE):
        cols = off + npu.arange(0, BLOCK_SIZE)
        x = npu.load(X + cols, mask=cols < N, other=0.).to(npu.float32)
        x = npu.where(cols < N, x - mean, 0.)
        _var += x * x
    var = npu.sum(_var, axis=0) / N
    rstd = 1 / npu.sqrt(var + eps)
    npu.store(Mean + row, mean)
    npu.store(Rstd + row, rstd)
    for off in range(0, N, BLOCK_SIZE):
        cols = off + npu.arange(0, BLOCK_SIZE)
        mask = cols < N
        w = npu.load(W + cols, mask=mask)
        b = npu.load(B + cols, mask=mask)
        x = npu.load(X + cols, mask=mask, other=0.).to(npu.float32)
        x_hat = (x - mean) * rstd
        y = x_hat * w + b
        npu.store(Y + cols, y, mask=mask)


def run_layer_norm(x: np.ndarray, w: np.ndarray, b: np.ndarray, eps: float = 1e-5, block: int = 32,
                   **launch: Any) -> tuple[tuple[np.ndarray, np.ndarray, np.ndarray], Any]:
    m, n = x.shape
    y = np.zeros_like(x)
    mean = np.zeros(m, np.float32)
    rstd = np.zeros(m, np.float32)
    result = layer_norm_fwd_fused[(m,)](x, y, w, b, mean, rstd, x.shape[1], n, eps, BLOCK_SIZE=block,
                                        **launch)
    return (y, mean, rstd), result


def ref_layer_norm(x: np.ndarray, w: np.ndarray, b: np.ndarray, eps: float = 1e-5):
    x32 = x.astype(np.float32)
    mean = x32.mean(axis=1)
    var = ((x32 - mean[:, None]) ** 2).mean(axis=1)
    rstd = 1 / np.sqrt(var + eps)
    y = (x32 - mean[:, None]) * rstd[:, None] * w.astype(np.float32) + b.astype(np.float32)
    return y, mean, rstd


# -- grouped matmul (Triton tutorial 03) ---------------------------------------------------------


@npu.jit
def leaky_relu(x):
    return npu.where(x >= 0, x, 0.01 * x)


@npu.jit
def matmul_kernel(a_ptr, b_ptr, c_ptr, M, N, K, stride_am, stride_ak, stride_bk, stride_bn, stride_cm,
                  stride_cn,
                  BLOCK_SIZE_M: npu.constexpr, BLOCK_SIZE_N: npu.constexpr, BLOCK_SIZE_K: npu.constexpr,
                  GROUP_SIZE_M: npu.constexpr, ACTIVATION: npu.constexpr, ACC_DTYPE: npu.constexpr):
    pid = npu.program_id(axis=0)
    num_pid_m = npu.cdiv(M, BLOCK_SIZE_M)
    num_pid_n = npu.cdiv(N, BLOCK_SIZE_N)
    num_pid_in_group = GROUP_SIZE_M * num_pid_n
    group_id = pid // num_pid_in_group
    first_pid_m = group_id * GROUP_SIZE_M
    group_size_m = min(num_pid_m - first_pid_m, GROUP_SIZE_M)
    pid_m = first_pid_m + ((pid % num_pid_in_group) % group_size_m)
    pid_n = (pid % num_pid_in_group) // group_size_m
    offs_am = (pid_m * BLOCK_SIZE_M + npu.arange(0, BLOCK_SIZE_M)) % M
    offs_bn = (pid_n * BLOCK_SIZE_N + npu.arange(0, BLOCK_SIZE_N)) % N
    offs_k = npu.arange(0, BLOCK_SIZE_K)
    a_ptrs = a_ptr + (offs_am[:, None] * stride_am + offs_k[None, :] * stride_ak)
    b_ptrs = b_ptr + (offs_k[:, None] * stride_bk + offs_bn[None, :] * stride_bn)
    accumulator = npu.zeros((BLOCK_SIZE_M, BLOCK_SIZE_N), dtype=ACC_DTYPE)
    for k in range(0, npu.cdiv(K, BLOCK_SIZE_K)):
        a = npu.load(a_ptrs, mask=offs_k[None, :] < K - k * BLOCK_SIZE_K, other=0.0)
        b = npu.load(b_ptrs, mask=offs_k[:, None] < K - k * BLOCK_SIZE_K, other=0.0)
        accumulator = npu.dot(a, b, accumulator)
        a_ptrs += BLOCK_SIZE_K * stride_ak
        b_ptrs += BLOCK_SIZE_K * stride_bk
    if ACTIVATION == "leaky_relu":
        accumulator = leaky_relu(accumulator)
    c = accumulator.to(c_ptr.dtype.element_ty)
    offs_cm = pid_m * BLOCK_SIZE_M + npu.arange(0, BLOCK_SIZE_M)
    offs_cn = pid_n * BLOCK_SIZE_N + npu.arange(0, BLOCK_SIZE_N)
    c_ptrs = c_ptr + stride_cm * offs_cm[:, None] + stride_cn * offs_cn[None, :]
    c_mask = (offs_cm[:, None] < M) & (offs_cn[None, :] < N)
    npu.store(c_ptrs, c, mask=c_mask)


def run_matmul(a: np.ndarray, b: np.ndarray, out_dtype: Any = np.float32, *, transpose_b: bool = False,
               block: tuple[int, int, int] = (16, 16, 16), group: int = 2, activation: str = "",
               **launch: Any) -> tuple[np.ndarray, Any]:
    """C = A @ B; with `transpose_b`, B is passed as its transpose (an [N, K] array read by strides)."""
    M, K = a.shape
    if transpose_b:
        bt = np.ascontiguousarray(b.T)  # [N, K]: B[k, n] lives at k*1 + n*K
        b_arg, stride_bk, stride_bn = bt, 1, bt.shape[1]
    else:
        b_arg, stride_bk, stride_bn = b, b.shape[1], 1
    N = b.shape[1]
    c = np.zeros((M, N), out_dtype)
    bm, bn, bk = block
    acc = npu.int32 if a.dtype == np.int8 else npu.float32
    grid = lambda meta: (npu.cdiv(M, meta["BLOCK_SIZE_M"]) * npu.cdiv(N, meta["BLOCK_SIZE_N"]),)  # noqa: E731
    result = matmul_kernel[grid](a, b_arg, c, M, N, K, a.shape[1], 1, stride_bk, stride_bn, c.shape[1], 1,
                                 BLOCK_SIZE_M=bm, BLOCK_SIZE_N=bn, BLOCK_SIZE_K=bk, GROUP_SIZE_M=group,
                                 ACTIVATION=activation, ACC_DTYPE=acc, **launch)
    return c, result


def ref_matmul(a: np.ndarray, b: np.ndarray, out_dtype: Any = np.float32, activation: str = "") -> np.ndarray:
    if a.dtype == np.int8:
        c = (a.astype(np.int64) @ b.astype(np.int64)).astype(np.int32)
    else:
        c = a.astype(np.float32) @ b.astype(np.float32)
    if activation == "leaky_relu":
        c = np.where(c >= 0, c, np.float32(0.01) * c)
    return c.astype(out_dtype)


# -- tensor-descriptor matmul (Triton 3.x make_tensor_descriptor) --------------------------------


@npu.jit
def desc_matmul_tile(a_ptr, b_ptr, M, N, K, pid_m, pid_n, BM: npu.constexpr, BN: npu.constexpr,
                     BK: npu.constexpr):
    """The f32 [BM, BN] tile (pid_m, pid_n) of A @ B, K stepped through tensor descriptors."""
    a_desc = npu.make_tensor_descriptor(a_ptr, shape=[M, K], strides=[K, 1], block_shape=[BM, BK])
    b_desc = npu.make_tensor_descriptor(b_ptr, shape=[K, N], strides=[N, 1], block_shape=[BK, BN])
    acc = npu.zeros((BM, BN), dtype=npu.float32)
    for k in range(0, K, BK):
        a = a_desc.load([pid_m * BM, k])
        b = b_desc.load([k, pid_n * BN])
        acc = npu.dot(a, b, acc=acc)
    return acc


@npu.jit
def matmul_desc_kernel(a_ptr, b_ptr, c_ptr, M, N, K, BM: npu.constexpr, BN: npu.constexpr, BK: npu.constexpr):
    pid_m = npu.program_id(0)
    pid_n = npu.program_id(1)
    c_desc = npu.make_tensor_descriptor(c_ptr, shape=[M, N], strides=[N, 1], block_shape=[BM, BN])
    acc = desc_matmul_tile(a_ptr, b_ptr, M, N, K, pid_m, pid_n, BM, BN, BK)
    c_desc.store([pid_m * BM, pid_n * BN], acc.to(npu.float16))


def run_matmul_desc(a: np.ndarray, b: np.ndarray, block: tuple[int, int, int] = (16, 16, 16),
                    **launch: Any) -> tuple[np.ndarray, Any]:
    M, K = a.shape
    N = b.shape[1]
    c = np.zeros((M, N), np.float16)
    bm, bn, bk = block
    result = matmul_desc_kernel[(npu.cdiv(M, bm), npu.cdiv(N, bn))](a, b, c, M, N, K, BM=bm, BN=bn, BK=bk,
                                                                    **launch)
    return c, result
