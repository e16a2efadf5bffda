"""The compiler entry point `compile_ir`: reentrant (threads get the single-threaded assembly)."""

from __future__ import annotations

import sys
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import npulang as npu
from examples import tutorials
from isa.asm import disassemble
from npulang import ir
from npulang.compiler import compile_ir
from tests.npulang.backend_kernels import SPEC, matmul, vadd


def _kernels() -> list[ir.Function]:
    """Kernels whose lowering looks at loop-carried values' producers (dot accumulators, in-place
    elementwise accumulators) and straight-line ones, so a shared table would mix them up."""
    a = np.zeros((64, 64), np.float16)
    b = np.zeros((64, 64), np.float16)
    c = np.zeros((64, 64), np.float32)
    mm, _ = tutorials.matmul_kernel.specialize(a, b, c, 64, 64, 64, 64, 1, 64, 1, 64, 1, BLOCK_SIZE_M=32,
                                              BLOCK_SIZE_N=32, BLOCK_SIZE_K=16, GROUP_SIZE_M=2, ACTIVATION="",
                                              ACC_DTYPE=npu.float32)
    x = np.zeros((8, 100), np.float32)
    sm, _ = tutorials.softmax_kernel.specialize(x, x, 100, 100, 8, 100, BLOCK_SIZE=128, num_stages=2)
    w = np.zeros(100, np.float32)
    ln, _ = tutorials.layer_norm_fwd_fused.specialize(x, x, w, w, w, w, 100, 100, 1e-5, BLOCK_SIZE=32)
    return [mm, sm, ln, matmul(BK=16), vadd()]


@pytest.fixture
def fast_switching():
    """Switch threads every few microseconds so compiles interleave inside the lowering."""
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(old)


@pytest.mark.usefixtures("fast_switching")
def test_concurrent_compiles_of_the_same_and_different_kernels_get_the_single_threaded_assembly() -> None:
    kernels = _kernels()
    expected = [disassemble(compile_ir(fn, SPEC).program) for fn in kernels]
    jobs = [i % len(kernels) for i in range(4 * 12)]
    with ThreadPoolExecutor(4) as pool:
        got = list(pool.map(lambda i: disassemble(compile_ir(kernels[i], SPEC).program), jobs))
    wrong = [kernels[i].name for i, text in zip(jobs, got) if text != expected[i]]
    assert wrong == []
