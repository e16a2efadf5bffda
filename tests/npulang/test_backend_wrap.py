"""Loads through `(s + arange(B)) % m` offsets: strided DMA pieces, never a gather, exact for every s and m.

Triton's grouped-matmul tutorial wraps its row and column offsets with `% M` / `% N` instead of masking
them; these tests run it and small wrap kernels on the simulator (race detection on) against numpy.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import npulang as npu
from examples import tutorials
from npulang.testing import arrays, assert_close, shapes
from tests.npulang.backend_kernels import run_compiled


@npu.jit
def wrap_copy_kernel(x_ptr, out_ptr, s, m, shift, n, BLOCK: npu.constexpr):
    """out[i] = x[shift + (s + i) % m] for i < n (C remainder), else -1."""
    i = npu.arange(0, BLOCK)
    offs = (s + npu.arange(0, BLOCK)) % m
    v = npu.load(x_ptr + shift + offs, mask=i < n, other=-1.0)
    npu.store(out_ptr + i, v)


@npu.jit
def wrap_tile_kernel(x_ptr, out_ptr, s, m, shift, ncols, stride, R: npu.constexpr, C: npu.constexpr,
                     WRAP_ROWS: npu.constexpr):
    """A [R, C] tile whose rows (WRAP_ROWS) or columns index x through (s + i) % m; the other dim masked."""
    r = npu.arange(0, R)
    c = npu.arange(0, C)
    if WRAP_ROWS:
        w = (s + npu.arange(0, R)) % m
        ptrs = x_ptr + shift * stride + w[:, None] * stride + c[None, :]
        mask = c[None, :] < ncols
    else:
        w = (s + npu.arange(0, C)) % m
        ptrs = x_ptr + shift + r[:, None] * stride + w[None, :]
        mask = r[:, None] < ncols
    v = npu.load(ptrs, mask=mask, other=7.0)
    npu.store(out_ptr + r[:, None] * C + c[None, :], v)


@npu.jit
def wrap_store_kernel(out_ptr, s, m, BLOCK: npu.constexpr):
    """A wrapped store (a scatter) and a comparison on wrapped indices (materialised on the vector pipe)."""
    offs = (s + npu.arange(0, BLOCK)) % m
    npu.store(out_ptr + offs, (offs < 3).to(npu.int32) + offs * 10)


@npu.jit
def static_wrap_kernel(x_ptr, out_ptr, S: npu.constexpr, M: npu.constexpr, B: npu.constexpr):
    """out[i] = x[(S + i) % M] with every number known at compile time."""
    v = npu.load(x_ptr + (S + npu.arange(0, B)) % M)
    npu.store(out_ptr + npu.arange(0, B), v)


def _c_rem(a: np.ndarray, m: int) -> np.ndarray:
    return np.fmod(a, m)  # the sign of the dividend, as the kernel language's `%` on integers


def _program_ops(ck) -> list[str]:
    return [i.op for i in ck.program.instructions()]


@settings(max_examples=60)
@given(s=st.integers(-40, 40), m=st.integers(-20, 20).filter(lambda v: v != 0), n=st.integers(0, 16))
def test_wrapped_1d_load_is_exact_for_every_start_and_modulus(s: int, m: int, n: int) -> None:
    shift = abs(m)
    x = np.arange(2 * shift, dtype=np.float32) + 100
    out = np.zeros(16, np.float32)
    ck, _ = run_compiled(wrap_copy_kernel, (1,), [x, out, s, m, shift, n], BLOCK=16)
    i = np.arange(16)
    expected = np.where(i < n, x[shift + _c_rem(s + i, m)], -1.0)
    np.testing.assert_array_equal(out, expected)
    assert "gather" not in _program_ops(ck) and not ck.notes


@pytest.mark.parametrize("S,M,B,pieces", [(3, 40, 8, 1), (7, 8, 8, 2), (0, 8, 8, 1), (3, 5, 8, 1), (5, 1, 4, 1)])
def test_static_wrap_emits_only_the_pieces_it_needs(S: int, M: int, B: int, pieces: int) -> None:
    """Known start and modulus: no runtime test; one piece, two, or (more than one wrap) a per-index loop."""
    x = np.arange(M, dtype=np.float32) + 1
    out = np.zeros(B, np.float32)
    ck, _ = run_compiled(static_wrap_kernel, (1,), [x, out], S=S, M=M, B=B)
    np.testing.assert_array_equal(out, x[(S + np.arange(B)) % M])
    ops = _program_ops(ck)
    assert ops.count("load") == pieces and "bz" not in ops[:ops.index("load")]


@pytest.mark.parametrize("wrap_rows", [True, False])
@settings(max_examples=30)
@given(s=st.integers(0, 50), m=st.integers(1, 24), ncols=st.integers(0, 8))
def test_wrapped_2d_tile_pieces_carry_the_mask(wrap_rows: bool, s: int, m: int, ncols: int) -> None:
    R, C = (16, 8) if wrap_rows else (8, 16)
    # x is [2m, 24] read from row m on (rows wrap), or [8, 48] read from column m on (columns wrap)
    stride = 24 if wrap_rows else 48
    x = np.arange((2 * m if wrap_rows else R) * stride, dtype=np.float32).reshape(-1, stride)
    out = np.zeros((R, C), np.float32)
    ck, _ = run_compiled(wrap_tile_kernel, (1,), [x, out, s, m, m, ncols, stride], R=R, C=C,
                         WRAP_ROWS=wrap_rows)
    r, c = np.arange(R)[:, None], np.arange(C)[None, :]
    flat = x.reshape(-1)
    if wrap_rows:
        expected = np.where(c < ncols, flat[(m + (s + r) % m) * stride + c], 7.0)
    else:
        expected = np.where(r < ncols, flat[m + r * stride + (s + c) % m], 7.0)
    np.testing.assert_array_equal(out, expected)
    assert "gather" not in _program_ops(ck)


def test_wrapped_store_and_compare_fall_back_to_vector_work() -> None:
    out = np.zeros(10, np.int32)
    ck, _ = run_compiled(wrap_store_kernel, (1,), [out, 7, 10], BLOCK=8)
    offs = (7 + np.arange(8)) % 10
    expected = np.zeros(10, np.int32)
    expected[offs] = (offs < 3) + offs * 10
    np.testing.assert_array_equal(out, expected)
    assert "scatter" in _program_ops(ck)


def _tutorial(a: np.ndarray, b: np.ndarray, block: tuple[int, int, int], *, transpose_b: bool = False,
              num_stages: int = 2):
    M, K = a.shape
    N = b.shape[1]
    barg, sbk, sbn = (np.ascontiguousarray(b.T), 1, K) if transpose_b else (b, N, 1)
    c = np.zeros((M, N), np.int32 if a.dtype == np.int8 else np.float32)
    bm, bn, bk = block
    grid = (-(-M // bm) * -(-N // bn),)
    ck, run = run_compiled(tutorials.matmul_kernel, grid, [a, barg, c, M, N, K, K, 1, sbk, sbn, N, 1],
                           num_stages=num_stages, BLOCK_SIZE_M=bm, BLOCK_SIZE_N=bn, BLOCK_SIZE_K=bk,
                           GROUP_SIZE_M=2, ACTIVATION="",
                           ACC_DTYPE=npu.int32 if a.dtype == np.int8 else npu.float32)
    return c, ck


@pytest.mark.parametrize("dtype", [np.float16, np.int8])
@pytest.mark.parametrize("transpose_b", [False, True])
@pytest.mark.parametrize("shape", [(40, 50, 70), (20, 10, 33), (64, 64, 64)])
def test_tutorial_matmul_compiles_without_gather_and_matches_numpy(dtype, transpose_b: bool,
                                                                    shape: tuple[int, int, int]) -> None:
    M, N, K = shape  # ragged; (20, 10, 33): more than one wrap per tile (the per-row path)
    rng = np.random.default_rng(M + N + K)
    if dtype == np.int8:
        a, b = rng.integers(-8, 8, (M, K)).astype(np.int8), rng.integers(-8, 8, (K, N)).astype(np.int8)
    else:
        a, b = rng.random((M, K)).astype(dtype), rng.random((K, N)).astype(dtype)
    c, ck = _tutorial(a, b, (32, 32, 32), transpose_b=transpose_b)
    assert "gather" not in _program_ops(ck)  # notes may say rows of an odd K are not burst-aligned, no more
    assert not [n for n in ck.notes if "gather" in n or "element-strided" in n]
    if dtype == np.int8:
        np.testing.assert_array_equal(c, tutorials.ref_matmul(a, b, np.int32))
    else:
        np.testing.assert_allclose(c, tutorials.ref_matmul(a, b), rtol=1e-3, atol=1e-2)


@settings(max_examples=15)
@given(mn=shapes(2, max_side=70, multiple_of=32), k=shapes(1, max_side=50, multiple_of=16),
       num_stages=st.integers(1, 3), data=st.data())
def test_tutorial_matmul_any_shape(mn: tuple[int, int], k: tuple[int], num_stages: int, data: st.DataObject) -> None:
    (M, N), (K,) = mn, k
    a = data.draw(arrays(np.float16, (M, K), elements=(0, 1)))
    b = data.draw(arrays(np.float16, (K, N), elements=(0, 1)))
    c, _ = _tutorial(a, b, (32, 32, 16), num_stages=num_stages)
    assert_close(c, a.astype(np.float64) @ b, accumulation=K)  # float32 accumulation of K products
