"""gemm and matmul against numpy: transposes, alpha/beta, bias and activation epilogues, int8, batches."""

from __future__ import annotations

import ml_dtypes
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import kernel_lib as kl
from kernel_lib.gemm import GemmCall, _heuristic

SIDES = st.sampled_from([1, 5, 16, 17, 33, 64, 100])


def rand(shape, dtype, seed):
    rng = np.random.default_rng(seed)
    if dtype == np.int8:
        return rng.integers(-128, 128, shape).astype(np.int8)
    return rng.standard_normal(shape).astype(dtype)


def f32(x):
    return x.astype(np.float32)


@settings(max_examples=10, deadline=None)
@given(m=SIDES, n=SIDES, k=SIDES, trans_a=st.booleans(), trans_b=st.booleans(),
       dtype=st.sampled_from([np.float16, ml_dtypes.bfloat16, np.float32]))
def test_gemm_transposes(m, n, k, trans_a, trans_b, dtype):
    a, b = rand((m, k), dtype, 0), rand((k, n), dtype, 1)
    y = kl.gemm(np.ascontiguousarray(a.T) if trans_a else a, np.ascontiguousarray(b.T) if trans_b else b,
                trans_a=trans_a, trans_b=trans_b, out_dtype=np.float32)
    np.testing.assert_allclose(y, f32(a) @ f32(b), rtol=1e-4, atol=1e-4 * k)


@pytest.mark.parametrize("activation", [None, "relu", "gelu", "silu"])
def test_gemm_fused_epilogue(activation):
    a, b, c, bias = rand((70, 40), np.float16, 0), rand((40, 50), np.float16, 1), rand((70, 50), np.float32, 2), \
        rand(50, np.float32, 3)
    y = kl.gemm(a, b, c=c, alpha=0.5, beta=2.0, bias=bias, activation=activation, out_dtype=np.float32)
    z = 0.5 * (f32(a) @ f32(b)) + 2.0 * c + bias
    expected = {None: z, "relu": np.maximum(z, 0), "gelu": kl_ref_gelu(z), "silu": z / (1 + np.exp(-z))}[activation]
    np.testing.assert_allclose(y, expected, rtol=1e-4, atol=1e-3)


def kl_ref_gelu(z):
    from math import erf, sqrt
    return 0.5 * z * (1 + np.vectorize(erf)(z / sqrt(2)))


def test_gemm_int8_accumulates_exactly_in_int32():
    a, b = rand((64, 200), np.int8, 0), rand((200, 33), np.int8, 1)
    y = kl.gemm(a, b)
    assert y.dtype == np.int32
    np.testing.assert_array_equal(y, a.astype(np.int32) @ b.astype(np.int32))


@pytest.mark.parametrize("per_channel", [False, True])
def test_gemm_int8_requantises_per_tensor_and_per_channel(per_channel):
    a, b = rand((64, 200), np.int8, 0), rand((200, 33), np.int8, 1)
    scale = np.random.default_rng(2).uniform(1e-4, 2e-3, 33).astype(np.float32) if per_channel else 1e-3
    acc = (a.astype(np.int32) @ b.astype(np.int32)).astype(np.float32)
    expected = np.clip(np.floor(acc * np.float32(scale) + 0.5), -128, 127).astype(np.int8)
    np.testing.assert_array_equal(kl.gemm(a, b, out_dtype=np.int8, scale=scale), expected)


@pytest.mark.parametrize("sa,sb", [((3, 20, 30), (30, 10)), ((2, 1, 20, 30), (3, 30, 10)), ((30,), (4, 30, 10)),
                                   ((4, 20, 30), (30,)), ((30,), (30,)), ((2, 5, 20, 30), (2, 5, 30, 16))])
def test_matmul_broadcasts_like_numpy(sa, sb):
    a, b = rand(sa, np.float16, 0), rand(sb, np.float16, 1)
    y = kl.matmul(a, b)
    expected = np.matmul(f32(a), f32(b))
    assert y.shape == expected.shape and y.dtype == np.float16
    np.testing.assert_allclose(f32(y), expected, rtol=2e-3, atol=2e-2)


@pytest.mark.parametrize("call,message", [
    (lambda: kl.gemm(np.zeros((4, 5), np.float16), np.zeros((4, 5), np.float16)),
     "kernel_lib.gemm: inner dimensions differ: op(a) is 4x5, op(b) is 4x5 (a (4, 5), trans_a=False; "
     "b (4, 5), trans_b=False)"),
    (lambda: kl.gemm(np.zeros((4, 5), np.float16), np.zeros((5, 3), np.float32)),
     "kernel_lib.gemm: arguments must share one dtype, got a float16, b float32"),
    (lambda: kl.gemm(np.zeros((4, 5), np.float16), np.zeros((5, 3), np.float16), activation="gelu2"),
     "kernel_lib.gemm: activation must be None or one of relu, gelu, gelu_tanh, silu, sigmoid, tanh, got 'gelu2'"),
    (lambda: kl.gemm(np.zeros((4, 5), np.int8), np.zeros((5, 3), np.int8), out_dtype=np.float16),
     "kernel_lib.gemm: out_dtype float16 is not available for int8 inputs; use int32 or int8"),
    (lambda: kl.gemm(np.zeros((4, 5), np.int8), np.zeros((5, 3), np.int8), out_dtype=np.int8),
     "kernel_lib.gemm: an int8 output needs scale= (a float, or a float32 array of [N] per-channel scales)"),
    (lambda: kl.gemm(np.zeros((4, 5), np.int8), np.zeros((5, 3), np.int8), scale=0.5),
     "kernel_lib.gemm: scale requantises int8 outputs; out_dtype is int32"),
    (lambda: kl.gemm(np.zeros((4, 5), np.float16), np.zeros((5, 3), np.float16), bias=np.zeros(4, np.float16)),
     "kernel_lib.gemm: bias must have shape (3,), got (4,)"),
    (lambda: kl.matmul(np.zeros((2, 4, 5), np.float16), np.zeros((3, 5, 2), np.float16)),
     "kernel_lib.matmul: batch dimensions of (2, 4, 5) and (3, 5, 2) do not broadcast"),
])
def test_bad_gemm_calls(call, message):
    with pytest.raises(kl.OperatorError) as info:
        call()
    assert str(info.value) == message


@pytest.mark.parametrize("bm,bn", [(128, 176), (176, 128)])
@pytest.mark.parametrize("interpret", [False, True])
def test_gemm_wave_filling_tiles(bm, bn, interpret):
    """The space's 176-wide tiles (11 fractals: 48 of them fill two waves of 24 cores at 1024³) on a shape
    that leaves ragged tiles in M, N and K, compiled and interpreted."""
    a, b = rand((200, 150), np.float16, 0), rand((150, 300), np.float16, 1)
    y = np.empty((200, 300), np.float16)
    problem = GemmCall(a, b, y, 200, 300, 150).problem()
    meta = {**problem.flags, "BM": bm, "BN": bn, "BK": 64, "GROUP_M": 8, "num_stages": 2}
    problem.tuned.kernel[problem.grid(meta)](*problem.args, **meta, interpret=interpret)
    np.testing.assert_allclose(f32(y), f32(a) @ f32(b), rtol=2e-3, atol=2e-2)


def test_rule_ranks_tiles_by_waves():
    """Untuned, 1024³ takes the tile whose 48 programs fill two waves of 24 cores, and it simulates faster
    than the largest tile (32 programs: a third of the second wave empty); tiny problems take tiny tiles."""
    rule = _heuristic(1024, 1024, 1024, 1, "f16")
    assert (rule[0]["BM"], rule[0]["BN"]) == (128, 176)
    assert all(c["BM"] <= 32 and c["BN"] <= 32 for c in _heuristic(5, 7, 9, 1, "f16"))
    a, b = np.zeros((1024, 1024), np.float16), np.zeros((1024, 1024), np.float16)
    y = np.empty((1024, 1024), np.float16)
    problem = GemmCall(a, b, y, 1024, 1024, 1024).problem()
    cycles = []
    for meta in (rule[0], {"BM": 128, "BN": 256, "BK": 32, "GROUP_M": 8, "num_stages": 2}):
        full = {**problem.flags, **meta}
        cycles.append(problem.tuned.kernel[problem.grid(full)](*problem.args, **full, timing_only=True).cycles)
    assert cycles[0] < cycles[1]
