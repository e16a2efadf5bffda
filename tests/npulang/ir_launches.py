"""The tutorial kernels as IR-level launches, shared by the pass-pipeline and parser tests, and the
check that two IR functions compute the same outputs under the reference interpreter."""

from __future__ import annotations

import numpy as np

import npulang as npu
from examples import conv2d as C
from examples import tutorials as T
from npulang import ir
from npulang.ir.interpreter import interpret

RNG = np.random.default_rng(7)


def _launches():
    """(kernel, grid, args, meta) for each tutorial kernel, with fresh arrays."""
    x = RNG.standard_normal(100).astype(np.float32)
    yield T.add_kernel, (4, 1, 1), [x, x.copy(), np.zeros_like(x), 100], {"BLOCK_SIZE": 32}
    s = RNG.standard_normal((5, 20)).astype(np.float16)
    yield T.softmax_kernel, (3, 1, 1), [np.zeros_like(s), s, 20, 20, 5, 20], {"BLOCK_SIZE": 32,
                                                                              "num_stages": 2}
    w = RNG.standard_normal(20).astype(np.float32)
    yield (T.layer_norm_fwd_fused, (5, 1, 1),
           [s.astype(np.float32), np.zeros((5, 20), np.float32), w, w.copy(), np.zeros(5, np.float32),
            np.zeros(5, np.float32), 20, 20, 1e-5], {"BLOCK_SIZE": 8})
    a = RNG.standard_normal((20, 24)).astype(np.float16)
    b = RNG.standard_normal((24, 12)).astype(np.float16)
    yield (T.matmul_kernel, (4, 1, 1), [a, b, np.zeros((20, 12), np.float16), 20, 12, 24, 24, 1, 12, 1, 12,
                                        1],
           {"BLOCK_SIZE_M": 16, "BLOCK_SIZE_N": 8, "BLOCK_SIZE_K": 16, "GROUP_SIZE_M": 2,
            "ACTIVATION": "leaky_relu", "ACC_DTYPE": npu.float32})
    yield T.matmul_desc_kernel, (2, 2, 1), [a, b, np.zeros((20, 12), np.float16), 20, 12, 24], \
        {"BM": 16, "BN": 8, "BK": 8}
    xc = RNG.standard_normal((2, 7, 6, 5)).astype(np.float16)  # NHWC, 3x3 stride 2 pad 1: 4x3 outputs
    wc = C.weight_matrix(RNG.standard_normal((6, 5, 3, 3)).astype(np.float16), 2)
    yield C.conv2d_kernel, (2, 1, 1), [xc, wc, np.zeros((2, 4, 3, 6), np.float16)], \
        {"N": 2, "C": 5, "H": 7, "W": 6, "KOUT": 6, "R": 3, "S": 3, "STRIDE": 2, "PAD": 1, "DIL": 1,
         "LAYOUT": "NHWC", "CB": 2, "BM": 16, "BN": 8, "BK": 18}


LAUNCHES = list(_launches())


def assert_same_results(fn: ir.Function, other: ir.Function, grid: tuple[int, int, int], args: list) -> None:
    """Run both functions on copies of `args` under the interpreter; every output array must match exactly."""
    results = []
    for f in (fn, other):
        arrays = [a.copy() if isinstance(a, np.ndarray) else a for a in args]
        interpret(f, grid, arrays)
        results.append(arrays)
    for x, y in zip(*results):
        if isinstance(x, np.ndarray):
            np.testing.assert_array_equal(x, y)
