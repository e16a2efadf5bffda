"""Idioms Triton users reach for: a data-dependent scalar load, the early exit `if ...: return`, `while` on a
runtime condition, `npu.cumsum`, the `npu.math` namespace, rank-3 tiles with a leading batch dim (loads,
stores, elementwise work, reductions). Each kernel
runs interpreted and compiled against numpy. (What the backend rejects, with its exact error, is in
invalid_kernels.py's BACKEND_CASES.)
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import npulang as npu
from tests.npulang.both_ways import launch_both
from examples import idioms
from tests.npulang import invalid_kernels

SETTINGS = settings(max_examples=8, deadline=None, derandomize=True)


@SETTINGS
@given(rows=st.integers(1, 9), cols=st.integers(1, 300), extra=st.integers(0, 5),
       dtype=st.sampled_from([np.float32, np.float16]))
def test_cross_entropy_picks_the_label_by_a_data_dependent_load(rows, cols, extra, dtype) -> None:
    rng = np.random.default_rng(rows * cols + extra)
    logits = rng.standard_normal((rows, cols)).astype(dtype)
    labels = rng.integers(0, cols, rows).astype(np.int32)
    for interpret in (True, False):
        loss, _ = idioms.run_cross_entropy(logits, labels, programs=rows + extra, interpret=interpret)
        np.testing.assert_allclose(loss, idioms.ref_cross_entropy(logits, labels), rtol=1e-5, atol=1e-5)


def test_the_data_dependent_load_is_a_one_lane_gather_and_inspect_says_why() -> None:
    logits, labels = np.zeros((2, 10), np.float32), np.zeros(2, np.int32)
    ins = idioms.cross_entropy_kernel.inspect(logits, labels, np.zeros(2, np.float32), 2, 10, BLOCK=16,
                                              persistent=False)
    gathers = [i for i in ins.program.instructions() if i.op == "gather"]
    assert [g.get("n") for g in gathers] == [1]
    first = idioms.cross_entropy_kernel.fn.__code__.co_firstlineno
    assert ins.notes == [f"line {first + 11}: load lowered to gather: its address is not affine: line {first + 10}: "
                         "the values are loaded from memory (data-dependent)"]


@npu.jit
def masked_scalar_load(x_ptr, out_ptr, n, BLOCK: npu.constexpr):
    pid = npu.program_id(0)
    npu.store(out_ptr + pid, npu.load(x_ptr + pid, mask=pid < n, other=-5.0))


def test_a_masked_scalar_load_reads_nothing_when_masked() -> None:
    x = np.arange(3, dtype=np.float32) + 1
    for _, out, _ in launch_both(masked_scalar_load, (6,), lambda: [x.copy(), np.zeros(6, np.float32), 3], BLOCK=1):
        np.testing.assert_array_equal(out, [1, 2, 3, -5, -5, -5])


@npu.jit
def guarded_rows(x_ptr, out_ptr, n_rows, n_cols, BLOCK: npu.constexpr):
    """out[row] = sum of x[row] in BLOCK chunks, and out[row] *= 10 for odd rows (a second early exit)."""
    row = npu.program_id(0)
    if row >= n_rows:
        return
    acc = npu.zeros((BLOCK,), dtype=npu.float32)
    for start in range(0, n_cols, BLOCK):
        offs = start + npu.arange(0, BLOCK)
        acc += npu.load(x_ptr + row * n_cols + offs, mask=offs < n_cols, other=0.0)
    total = npu.sum(acc, axis=0)
    if row % 2 == 0:
        npu.store(out_ptr + row, total)
        return
    npu.store(out_ptr + row, total * 10.0)


@SETTINGS
@given(rows=st.integers(1, 7), cols=st.integers(1, 100), extra=st.integers(0, 4))
def test_early_exit_guards_around_a_loop(rows, cols, extra) -> None:
    x = np.random.default_rng(rows + cols).standard_normal((rows, cols)).astype(np.float32)
    expected = x.sum(axis=1) * np.where(np.arange(rows) % 2 == 0, 1, 10)
    def args():
        return [x.copy(), np.zeros(rows, np.float32), rows, cols]
    for _, out, *_ in launch_both(guarded_rows, (rows + extra,), args, BLOCK=32):
        np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5)


@npu.jit
def loaded_scalar_carries(x_ptr, out_ptr, n, BLOCK: npu.constexpr):
    """out[p] = sum(x[:p + 1]) + max(x[:p + 1]): scalars loaded from memory carried by a for and a while."""
    pid = npu.program_id(0)
    total = 0.0
    for i in range(0, pid + 1):
        total += npu.load(x_ptr + i)
    best = npu.load(x_ptr)
    m = pid
    while m > 0:
        best = npu.maximum(best, npu.load(x_ptr + m))
        m -= 1
    npu.store(out_ptr + pid, total + best)


@settings(max_examples=4, deadline=None, derandomize=True)
@given(programs=st.integers(1, 40))
def test_loops_carry_scalars_loaded_from_memory(programs) -> None:
    """Such a scalar lives in UB (the scalar unit cannot read it), so the loop carries a one-element tile."""
    x = np.random.default_rng(programs).standard_normal(40).astype(np.float32)
    expected = np.cumsum(x)[:programs] + np.maximum.accumulate(x)[:programs]
    for _, out, _ in launch_both(loaded_scalar_carries, (programs,),
                                 lambda: [x.copy(), np.zeros(programs, np.float32), 40], BLOCK=1):
        np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5)


@npu.jit
def while_matmul(a_ptr, b_ptr, c_ptr, M, N, K, BM: npu.constexpr, BN: npu.constexpr, BK: npu.constexpr):
    """C = A @ B with the K loop written as `while k < K` (pointer tiles, a scalar and the accumulator carried)."""
    rm, rn, rk = npu.arange(0, BM), npu.arange(0, BN), npu.arange(0, BK)
    a_ptrs = a_ptr + rm[:, None] * K + rk[None, :]
    b_ptrs = b_ptr + rk[:, None] * N + rn[None, :]
    acc = npu.zeros((BM, BN), dtype=npu.float32)
    k = 0
    while k < K:
        a = npu.load(a_ptrs, mask=(rm[:, None] < M) & (rk[None, :] < K - k), other=0.0)
        b = npu.load(b_ptrs, mask=(rk[:, None] < K - k) & (rn[None, :] < N), other=0.0)
        acc = npu.dot(a, b, acc)
        a_ptrs += BK
        b_ptrs += BK * N
        k += BK
    npu.store(c_ptr + rm[:, None] * N + rn[None, :], acc, mask=(rm[:, None] < M) & (rn[None, :] < N))


@npu.jit
def while_halving(x_ptr, out_ptr, n, BLOCK: npu.constexpr):
    """out[i] = x[i] halved once per halving of n down to 1 (a loop whose trip count is log2(n))."""
    offs = npu.arange(0, BLOCK)
    v = npu.load(x_ptr + offs, mask=offs < n, other=0.0)
    m = n
    while m > 1:
        v = v * 0.5
        m = m // 2
    npu.store(out_ptr + offs, v, mask=offs < n)


@SETTINGS
@given(M=st.integers(1, 40), N=st.integers(1, 40), K=st.integers(0, 80))
def test_while_loop_carrying_an_accumulator_and_pointers(M, N, K) -> None:
    rng = np.random.default_rng(M * N + K)
    a, b = rng.standard_normal((M, K)).astype(np.float16), rng.standard_normal((K, N)).astype(np.float16)
    for _, _, c, *_ in launch_both(while_matmul, (1,), lambda: [a, b, np.full((M, N), 7, np.float32), M, N, K],
                             BM=64, BN=64, BK=32):
        np.testing.assert_allclose(c, a.astype(np.float32) @ b.astype(np.float32), rtol=1e-4, atol=1e-3)


@SETTINGS
@given(n=st.integers(1, 64))
def test_while_loop_on_a_runtime_scalar(n) -> None:
    x = np.arange(64, dtype=np.float32) + 1
    halvings = max(0, int(n).bit_length() - 1)
    for _, out, _ in launch_both(while_halving, (1,), lambda: [x.copy(), np.zeros(n, np.float32), n], BLOCK=64):
        np.testing.assert_array_equal(out, x[:n] * 0.5 ** halvings)


@npu.jit
def cumsum_kernel(x_ptr, out_ptr, rows, cols, R: npu.constexpr, C: npu.constexpr, AXIS: npu.constexpr,
                  REVERSE: npu.constexpr):
    r, c = npu.arange(0, R)[:, None], npu.arange(0, C)[None, :]
    mask = (r < rows) & (c < cols)
    x = npu.load(x_ptr + r * cols + c, mask=mask, other=0)
    npu.store(out_ptr + r * cols + c, x.cumsum(axis=AXIS, reverse=REVERSE), mask=mask)


@settings(max_examples=16, deadline=None, derandomize=True)
@given(rows=st.integers(1, 16), cols=st.integers(1, 64), axis=st.sampled_from([0, 1, -1]), reverse=st.booleans(),
       dtype=st.sampled_from([np.float32, np.int32, np.int8]))
def test_cumsum_along_an_axis(rows, cols, axis, reverse, dtype) -> None:
    rng = np.random.default_rng(rows * cols)
    x = (rng.standard_normal((rows, cols)) * 20).astype(dtype)
    out_dt = np.int32 if dtype == np.int8 else dtype

    def args():
        return [x.copy(), np.zeros((rows, cols), out_dt), rows, cols]
    interpreted, compiled = launch_both(cumsum_kernel, (1,), args, R=16, C=64, AXIS=axis, REVERSE=reverse)
    np.testing.assert_array_equal(interpreted[1], compiled[1])  # the same order of additions
    wide = x.astype(np.float64)
    expected = np.flip(np.cumsum(np.flip(wide, axis), axis), axis) if reverse else np.cumsum(wide, axis)
    np.testing.assert_allclose(compiled[1].astype(np.float64), expected, rtol=1e-5, atol=1e-3)


@npu.jit
def math_namespace(x_ptr, out_ptr, n, BLOCK: npu.constexpr):
    offs = npu.arange(0, BLOCK)
    x = npu.load(x_ptr + offs, mask=offs < n, other=1.0)
    y = npu.math.exp2(x) + npu.math.log2(x) + npu.math.rsqrt(x) + npu.math.maximum(x, 2.0)
    npu.store(out_ptr + offs, y, mask=offs < n)


def test_the_math_namespace_is_tritons_tl_math() -> None:
    x = np.linspace(0.5, 4, 20).astype(np.float32)
    expected = np.exp2(x) + np.log2(x) + 1 / np.sqrt(x) + np.maximum(x, 2)
    for _, out, _ in launch_both(math_namespace, (1,), lambda: [x.copy(), np.zeros(20, np.float32), 20], BLOCK=32):
        np.testing.assert_allclose(out, expected, rtol=1e-5)


def test_a_missing_name_lists_what_exists() -> None:
    with pytest.raises(npu.CompilationError) as info:
        invalid_kernels.missing_npu_name.specialize(np.zeros(8, np.float32), 8, BLOCK=8)
    hint = info.value.hint
    assert hint.startswith("did you mean cumsum? npulang has: ") and ", load, " in hint and ", math, " in hint


@npu.jit
def rank3_reduce(x_ptr, out_ptr, B: npu.constexpr, M: npu.constexpr, N: npu.constexpr, AXIS: npu.constexpr,
                 OP: npu.constexpr):
    """A [B * M, N] tile seen as [B, M, N]: centred per batch over M (a broadcast along the middle dim),
    then reduced over AXIS."""
    x = npu.load(x_ptr + npu.arange(0, B * M)[:, None] * N + npu.arange(0, N)[None, :])
    t = x.reshape(B, M, N)
    t = t - npu.max(t, axis=1)[:, None, :] + 1.0
    if OP == "sum":
        y = npu.sum(t, axis=AXIS)
    elif OP == "min":
        y = npu.min(t, axis=AXIS)
    else:
        y = npu.argmax(t, axis=AXIS).to(npu.float32)
    rows, cols = y.shape
    npu.store(out_ptr + npu.arange(0, rows)[:, None] * cols + npu.arange(0, cols)[None, :], y)


@settings(max_examples=12, deadline=None, derandomize=True)
@given(B=st.sampled_from([1, 2, 3]), M=st.sampled_from([1, 4, 5]), N=st.sampled_from([8, 16]),
       axis=st.sampled_from([0, 1, 2]), op=st.sampled_from(["sum", "min", "argmax"]))
def test_rank3_tiles_with_a_leading_batch_dim(B, M, N, axis, op) -> None:
    x = np.random.default_rng(B * M * N).standard_normal((B * M, N)).astype(np.float32)
    t = x.reshape(B, M, N)
    t = t - t.max(axis=1, keepdims=True) + 1
    expected = getattr(np, op)(t, axis=axis).astype(np.float32)
    for _, out in launch_both(rank3_reduce, (1,), lambda: [x.copy(), np.zeros(expected.shape, np.float32)],
                              B=B, M=M, N=N, AXIS=axis, OP=op):
        np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5)


@npu.jit
def rank3_masked_copy(x_ptr, out_ptr, B, M, N, BB: npu.constexpr, BM: npu.constexpr, BN: npu.constexpr):
    """out = 2x + (x summed over M), for a [B, M, N] array read and written as masked rank-3 tiles."""
    b = npu.arange(0, BB)[:, None, None]
    m = npu.arange(0, BM)[None, :, None]
    n = npu.arange(0, BN)[None, None, :]
    mask = (b < B) & (m < M) & (n < N)
    x = npu.load(x_ptr + (b * M + m) * N + n, mask=mask, other=0.0)
    npu.store(out_ptr + (b * M + m) * N + n, x * 2.0 + npu.sum(x, axis=1)[:, None, :], mask=mask)


@SETTINGS
@given(B=st.integers(1, 4), M=st.integers(1, 6), N=st.integers(1, 20))
def test_rank3_loads_and_stores_one_dma_per_slab(B, M, N) -> None:
    x = np.random.default_rng(B * M * N).standard_normal((B, M, N)).astype(np.float32)
    expected = x * 2 + x.sum(axis=1, keepdims=True)
    for _, out, *_ in launch_both(rank3_masked_copy, (1,), lambda: [x.copy(), np.full((B, M, N), 9, np.float32),
                                                                    B, M, N], BB=4, BM=8, BN=32):
        np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5)
    ins = rank3_masked_copy.inspect(x, x, B, M, N, BB=4, BM=8, BN=32, persistent=False)
    ops = [i.op for i in ins.program.instructions()]
    assert (ops.count("load"), ops.count("store")) == (4, 4) and "gather" not in ops and "scatter" not in ops

