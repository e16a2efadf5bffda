"""Loops in the backend: accumulator loops that run zero times, and per-loop `num_stages`.

Everything runs on the simulator with race detection on and is compared with numpy.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import npulang as npu
from npulang.compiler import compile_ir
from simulator import Device
from examples import tutorials
from npulang.testing import arrays, assert_close
from tests.npulang.backend_kernels import CHECKED, SPEC, matmul, run_compiled


@npu.jit
def two_accumulators_kernel(a_ptr, b_ptr, c1_ptr, c2_ptr, K1, K2, BM: npu.constexpr, BN: npu.constexpr,
                            BK: npu.constexpr):
    """c1 = A[:, :K1] @ B[:K1]; then c2 = A[:, :K2] @ B[:K2] in a second loop with a runtime bound."""
    rm = npu.arange(0, BM)
    rn = npu.arange(0, BN)
    rk = npu.arange(0, BK)
    out = rm[:, None] * BN + rn[None, :]
    acc = npu.zeros((BM, BN), dtype=npu.float32)
    for k in range(0, K1, BK):
        a = npu.load(a_ptr + rm[:, None] * BK + rk[None, :] + k * BM)
        b = npu.load(b_ptr + rk[:, None] * BN + rn[None, :] + k * BN)
        acc = npu.dot(a, b, acc)
    npu.store(c1_ptr + out, acc)
    acc2 = npu.zeros((BM, BN), dtype=npu.float32)
    for k in range(0, K2, BK):
        a = npu.load(a_ptr + rm[:, None] * BK + rk[None, :] + k * BM)
        b = npu.load(b_ptr + rk[:, None] * BN + rn[None, :] + k * BN)
        acc2 = npu.dot(a, b, acc2)
    npu.store(c2_ptr + out, acc2)


@npu.jit
def row_sums_kernel(x_ptr, out_ptr, n, BLOCK: npu.constexpr, FIRST_STAGES: npu.constexpr):
    """Two loops over x: the first pipelined FIRST_STAGES deep by npu.range, the second by the default."""
    cols = npu.arange(0, BLOCK)
    acc = npu.zeros([BLOCK], dtype=npu.float32)
    for off in npu.range(0, n, BLOCK, num_stages=FIRST_STAGES):
        acc += npu.load(x_ptr + off + cols, mask=off + cols < n, other=0.0)
    acc2 = npu.zeros([BLOCK], dtype=npu.float32)
    for off in range(0, n, BLOCK):
        acc2 += npu.load(x_ptr + off + cols, mask=off + cols < n, other=0.0) * 2.0
    npu.store(out_ptr + cols, acc + acc2)


# -- zero-trip accumulator loops -------------------------------------------------------------------
@pytest.mark.parametrize("num_stages", [1, 2, 3])
@pytest.mark.parametrize("dt", ["f16", "i8"])
def test_hand_built_matmul_with_k_zero_gives_zeros(dt: str, num_stages: int) -> None:
    M, N = 40, 50
    out_dt, np_out = ("i32", np.int32) if dt == "i8" else ("f32", np.float32)
    c = np.full((M, N), 9, np_out)
    ck = compile_ir(matmul(32, 32, 32, dt=dt, out=out_dt), SPEC, num_stages=num_stages)
    np_dt = np.int8 if dt == "i8" else np.float16
    a, b = np.zeros((M, 1), np_dt), np.zeros((1, N), np_dt)  # K = 0: nothing is read
    Device(SPEC).run(ck.program, grid=(2, 2), args=[a, b, c, M, N, 0, 1, 1, N, 1, N, 1], options=CHECKED)
    np.testing.assert_array_equal(c, 0)
    zero_k = [i for i in ck.program.instructions() if i.op == "mmad" and i.get("k") == 0]
    assert len(zero_k) == 1 and zero_k[0].get("init") == 1


def test_tutorial_matmuls_with_k_zero_give_zeros() -> None:
    a, b = np.zeros((40, 1), np.float16), np.zeros((1, 50), np.float16)
    c = np.full((40, 50), 9, np.float32)
    run_compiled(tutorials.matmul_kernel, (4,), [a, b, c, 40, 50, 0, 1, 1, 50, 1, 50, 1], BLOCK_SIZE_M=32,
                 BLOCK_SIZE_N=32, BLOCK_SIZE_K=32, GROUP_SIZE_M=2, ACTIVATION="", ACC_DTYPE=npu.float32)
    np.testing.assert_array_equal(c, 0)
    c16 = np.full((40, 50), 9, np.float16)
    run_compiled(tutorials.matmul_desc_kernel, (3, 2), [a, b, c16, 40, 50, 0], BM=16, BN=32, BK=32)
    np.testing.assert_array_equal(c16, 0)


@settings(max_examples=6)
@given(k1=st.sampled_from([16, 32, 48]), k2=st.sampled_from([0, 0, 16, 32]), num_stages=st.integers(1, 2),
       a=arrays(np.float16, (3, 128, 16), elements=(0, 1)), b=arrays(np.float16, (3, 16, 256), elements=(0, 1)))
def test_runtime_loop_bound_of_zero_after_a_real_accumulation(k1: int, k2: int, num_stages: int, a: np.ndarray,
                                                              b: np.ndarray) -> None:
    """The second accumulator reuses the first one's L0C bytes (each fills L0C), so a missing definition
    would show the first one's values. Block k of A is a[k]; of B is b[k]."""
    BM, BN, BK = 128, 256, 16
    c1, c2 = np.zeros((BM, BN), np.float32), np.full((BM, BN), 9, np.float32)
    ck, _ = run_compiled(two_accumulators_kernel, (1,), [a, b, c1, c2, k1, k2], num_stages=num_stages,
                         BM=BM, BN=BN, BK=BK)
    l0c = {s.offset for s in ck.buffers if s.space == "l0c"}
    assert len(l0c) == 1  # both accumulators live at the same address
    def ref(kk: int) -> np.ndarray:
        blocks = [a[j].astype(np.float32) @ b[j].astype(np.float32) for j in range(kk // BK)]
        return sum(blocks, np.zeros((BM, BN), np.float32))
    assert_close(c1, ref(k1), rtol=1e-5, atol=1e-4)
    assert_close(c2, ref(k2), rtol=1e-5, atol=1e-4)


def test_each_runtime_bounded_accumulator_loop_gets_one_guarded_zero_fill() -> None:
    a, b = np.zeros((16, 16), np.float16), np.zeros((16, 16), np.float16)
    c = np.zeros((16, 16), np.float32)
    fn, _ = two_accumulators_kernel.specialize(a, b, c, c, 16, 16, BM=16, BN=16, BK=16)
    ops = [(i.op, i.get("k")) for i in compile_ir(fn, SPEC).program.instructions() if i.op == "mmad"]
    assert ops.count(("mmad", 0)) == 2


# -- per-loop num_stages -----------------------------------------------------------------------------
def _load_copies(ck, line: int) -> int:
    """Distinct destination buffers of the loads on one kernel line (one per pipelining stage)."""
    return len({i.args[0] for i in ck.program.instructions()
                if i.op == "load" and i.loc and i.loc.line == line})


@pytest.mark.parametrize("default,first", [(1, 3), (2, 1), (3, 2), (2, None)])
def test_npu_range_num_stages_overrides_the_default_for_its_loop(default: int, first: int | None) -> None:
    n = 300
    x = np.random.default_rng(n).random(n).astype(np.float32)
    out = np.zeros(64, np.float32)
    ck, _ = run_compiled(row_sums_kernel, (1,), [x, out, n], num_stages=default, BLOCK=64, FIRST_STAGES=first)
    first_line = row_sums_kernel.fn.__code__.co_firstlineno + 6
    assert _load_copies(ck, first_line) == (default if first is None else first)
    assert _load_copies(ck, first_line + 3) == default
    padded = np.concatenate([x, np.zeros(-n % 64, np.float32)]).reshape(-1, 64)
    np.testing.assert_allclose(out, padded.sum(axis=0) * 3, rtol=1e-5)
