"""Kernels and shapes the autotuner tests tune: small, so a whole space simulates in a second or two."""

from __future__ import annotations

import numpy as np

import npulang as npu

# 24 configs; those with BM=256 and BK=128 do not fit L0A (or L1) and are pruned by compiling
SPACE = {"BM": [32, 64, 256], "BN": [32, 64], "BK": [32, 128], "num_stages": [1, 2]}


@npu.jit
def matmul(a_ptr, b_ptr, c_ptr, M, N, K, BM: npu.constexpr, BN: npu.constexpr, BK: npu.constexpr):
    pid_m = npu.program_id(0)
    pid_n = npu.program_id(1)
    a_desc = npu.make_tensor_descriptor(a_ptr, shape=[M, K], strides=[K, 1], block_shape=[BM, BK])
    b_desc = npu.make_tensor_descriptor(b_ptr, shape=[K, N], strides=[N, 1], block_shape=[BK, BN])
    c_desc = npu.make_tensor_descriptor(c_ptr, shape=[M, N], strides=[N, 1], block_shape=[BM, BN])
    acc = npu.zeros((BM, BN), dtype=npu.float32)
    for k in range(0, K, BK):
        a = a_desc.load([pid_m * BM, k])
        b = b_desc.load([k, pid_n * BN])
        acc = npu.dot(a, b, acc=acc)
    c_desc.store([pid_m * BM, pid_n * BN], acc.to(npu.float16))


def gemm(m: int, n: int, k: int, seed: int = 0) -> tuple:
    """(a, b, c, M, N, K) for `matmul`, random fp16 inputs, c zeroed."""
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((m, k)).astype(np.float16)
    b = rng.standard_normal((k, n)).astype(np.float16)
    return a, b, np.zeros((m, n), np.float16), m, n, k


def grid(m: int, n: int):
    return lambda meta: (npu.cdiv(m, meta["BM"]), npu.cdiv(n, meta["BN"]))


def reference(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a.astype(np.float32) @ b.astype(np.float32)).astype(np.float16)
