"""Int arguments equal to 1 or divisible by 16 are specialised, as in Triton: in the cache key, in the IR,
and in the code. A transposed operand passed through strides (`x @ Wᵀ`) then lowers to a contiguous load
and the transposing L1 -> L0B move; left unspecialised it stays element-strided, and `inspect` says why.
"""

from __future__ import annotations

import inspect

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import npulang as npu
from examples import idioms
from npulang import ir
from npulang.frontend.source import specialisation
from npulang.ir.parser import parse_function

SETTINGS = settings(max_examples=8, deadline=None, derandomize=True)


def _linear_args(M: int, N: int, K: int):
    rng = np.random.default_rng(M * 1000 + N * 10 + K)
    x = rng.standard_normal((M, K)).astype(np.float16)
    w = rng.standard_normal((N, K)).astype(np.float16)
    return x, w


def _close(y: np.ndarray, x: np.ndarray, w: np.ndarray) -> None:
    np.testing.assert_allclose(y.astype(np.float32), idioms.ref_linear(x, w).astype(np.float32), rtol=1e-2,
                               atol=5e-2)


@SETTINGS
@given(M=st.integers(1, 70), N=st.integers(1, 70), K=st.integers(1, 90),
       kernel=st.sampled_from(["linear_kernel", "linear_kernel_unspecialised"]))
def test_linear_through_strides_matches_numpy_both_ways(M: int, N: int, K: int, kernel: str) -> None:
    x, w = _linear_args(M, N, K)
    for interpret in (True, False):
        y, _ = idioms.run_linear(x, w, kernel=getattr(idioms, kernel), interpret=interpret)
        _close(y, x, w)


def _inspect(kernel, M=40, N=48, K=64):  # strides multiples of 16: rows burst-aligned
    x, w = _linear_args(M, N, K)
    return kernel.inspect(x, w, np.zeros((M, N), np.float16), M, N, K, K, 1, K, 1, N, BLOCK_M=32, BLOCK_N=32,
                          BLOCK_K=32, persistent=False)


def test_the_specialised_transposed_operand_is_a_contiguous_load_and_a_transposing_move() -> None:
    ins = _inspect(idioms.linear_kernel)
    moves = [i for i in ins.program.instructions() if i.op == "move"]
    # x into L0A as is, wᵀ into L0B transposed (once per pipelined copy of the loop body)
    assert len(moves) >= 2 and [m.get("transpose") for m in moves] == [0, 1] * (len(moves) // 2)
    loads = [i for i in ins.program.instructions() if i.op == "load"]
    assert all(ld.get("src_cs") == 1 for ld in loads)  # every DMA reads contiguous rows
    assert not [n for n in ins.notes if "element-strided" in n]
    assert "// specialised: N=16, K=16, stride_xm=16, stride_xk=1, stride_wn=16, stride_wk=1, stride_ym=16\n" \
        in ins.stage("frontend")


def test_unspecialised_it_stays_element_strided_and_inspect_says_why() -> None:
    ins = _inspect(idioms.linear_kernel_unspecialised)
    assert {m.get("transpose") for m in ins.program.instructions() if m.op == "move"} == {0}
    lines, first = inspect.getsourcelines(idioms.linear_kernel.fn)
    line = first + next(i for i, text in enumerate(lines) if "w = npu.load(w_ptrs" in text)
    assert ins.notes == [
        f"line {line}: load is element-strided: its columns are `stride_wn` elements apart, so every element "
        "is its own 32-byte burst; a dot operand whose rows are 1 element apart is loaded transposed instead, "
        "but this row stride (`stride_wk`) is not known to be 1: an int argument equal to 1 is specialised "
        "unless do_not_specialize names it"]


def test_specialised_and_not_run_the_same_and_the_specialised_one_is_faster() -> None:
    x, w = _linear_args(128, 128, 128)
    y1, fast = idioms.run_linear(x, w, (64, 64, 32), l2="cold")
    y2, slow = idioms.run_linear(x, w, (64, 64, 32), kernel=idioms.linear_kernel_unspecialised, l2="cold")
    np.testing.assert_array_equal(y1, y2)
    _close(y1, x, w)
    assert fast.cycles * 2 < slow.cycles


@pytest.mark.parametrize("value, spec", [(1, 1), (0, 16), (16, 16), (-32, 16), (48, 16), (17, None), (2, None),
                                         (True, None), (1.0, None)])
def test_what_an_argument_is_specialised_on(value, spec) -> None:
    assert specialisation(value) == spec


def test_specialisations_are_in_the_cache_key() -> None:
    k = idioms.linear_kernel
    x, w = _linear_args(4, 4, 4)
    y = np.zeros((4, 4), np.float16)

    def key(K: int, swk: int) -> str:
        return k.specialization_key(k.bind((x, w, y, 4, 4, K, K, 1, K, swk, 4), {"BLOCK_M": 16, "BLOCK_N": 16,
                                                                                "BLOCK_K": 16}))
    assert key(33, 1) == key(35, 1) != key(32, 1) == key(64, 1)  # the one thing kept: divisible by 16 or not
    assert key(33, 1) != key(33, 3)  # stride 1 compiles as the constant
    assert key(33, 3) == key(33, 5)


def test_do_not_specialize_by_name_or_position_and_a_wrong_name() -> None:
    by_name = npu.jit(idioms.linear_kernel.fn, do_not_specialize=["K", "stride_wk"])
    by_position = npu.jit(idioms.linear_kernel.fn, do_not_specialize=[5, 9])
    x, w = _linear_args(4, 4, 32)
    args = (x, w, np.zeros((4, 4), np.float16), 4, 4, 32, 32, 1, 32, 1, 4)
    for k in (by_name, by_position):
        call = k.bind(args, {"BLOCK_M": 16, "BLOCK_N": 16, "BLOCK_K": 16})
        assert call.specialised == {"stride_xk": 1, "stride_xm": 16, "stride_wn": 16}
    with pytest.raises(npu.NpuError, match=r"do_not_specialize=...\): 'KK' is not a parameter of linear_kernel"):
        npu.jit(idioms.linear_kernel.fn, do_not_specialize=["KK"])


def test_the_specialised_ir_prints_and_parses_back() -> None:
    fn, _ = idioms.linear_kernel.specialize(*_linear_args(4, 4, 32), np.zeros((4, 4), np.float16), 4, 4, 32, 32, 1,
                                            32, 1, 4, BLOCK_M=16, BLOCK_N=16, BLOCK_K=16)
    text = ir.print_function(fn)
    assert fn.specialised == {"stride_xk": 1, "K": 16, "stride_xm": 16, "stride_wn": 16, "stride_wk": 1}
    assert ir.print_function(parse_function(text)) == text


@npu.jit
def desc_linear(x_ptr, w_ptr, y_ptr, M, N, K, BM: npu.constexpr, BN: npu.constexpr, BK: npu.constexpr):
    """y = x @ wᵀ through tensor descriptors, wᵀ described with strides [1, K]."""
    x_desc = npu.make_tensor_descriptor(x_ptr, shape=[M, K], strides=[K, 1], block_shape=[BM, BK])
    wt_desc = npu.make_tensor_descriptor(w_ptr, shape=[K, N], strides=[1, K], block_shape=[BK, BN])
    y_desc = npu.make_tensor_descriptor(y_ptr, shape=[M, N], strides=[N, 1], block_shape=[BM, BN])
    acc = npu.zeros((BM, BN), dtype=npu.float32)
    for k in range(0, K, BK):
        acc = npu.dot(x_desc.load([npu.program_id(0) * BM, k]), wt_desc.load([k, npu.program_id(1) * BN]), acc=acc)
    y_desc.store([npu.program_id(0) * BM, npu.program_id(1) * BN], acc.to(npu.float16))


@SETTINGS
@given(M=st.integers(1, 70), N=st.integers(1, 70), K=st.integers(1, 70))
def test_a_column_major_descriptor_operand_also_takes_the_transposing_move(M: int, N: int, K: int) -> None:
    x, w = _linear_args(M, N, K)
    for interpret in (True, False):
        y = np.zeros((M, N), np.float16)
        desc_linear[(npu.cdiv(M, 32), npu.cdiv(N, 32))](x, w, y, M, N, K, BM=32, BN=32, BK=32, interpret=interpret)
        _close(y, x, w)
    ins = desc_linear.inspect(x, w, y, M, N, K, BM=32, BN=32, BK=32, persistent=False)
    transposed = {0, 1} if K > 1 else {0}  # K = 1: wᵀ's one row is contiguous either way
    assert {m.get("transpose") for m in ins.program.instructions() if m.op == "move"} == transposed
    assert not [n for n in ins.notes if "element-strided" in n]

