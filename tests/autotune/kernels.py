"""Kernels and shapes the autotuner tests tune: small, so a whole space simulates in a second or two."""

from __future__ import annotations

import numpy as np

import npulang as npu
from examples.tutorials import matmul_desc_kernel as matmul  # noqa: F401  (the kernel the tests tune)

# 24 configs of the tutorials' descriptor matmul; the two with BM=256, BK=128 and num_stages=2 do not fit
# L0A and are pruned by compiling only
SPACE = {"BM": [32, 64, 256], "BN": [32, 64], "BK": [32, 128], "num_stages": [1, 2]}


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
