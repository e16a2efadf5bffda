"""kernel_lib operators against numpy references, over shapes that break tiled kernels (Hypothesis)."""

from __future__ import annotations

import math

import ml_dtypes
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import kernel_lib as kl

FLOATS = [np.float32, np.float16, ml_dtypes.bfloat16]
TOL = {np.float32: 2e-5, np.float16: 2e-3, ml_dtypes.bfloat16: 1.6e-2}  # ~ a few ulps of the output dtype
SIDES = st.sampled_from([1, 2, 3, 7, 16, 17, 31, 64, 100, 129, 257])
SETTINGS = settings(max_examples=12, deadline=None)


def close(actual: np.ndarray, expected: np.ndarray, dtype) -> None:
    assert actual.dtype == np.dtype(dtype) and actual.shape == expected.shape
    np.testing.assert_allclose(actual.astype(np.float32), expected.astype(np.float32), rtol=TOL[dtype],
                               atol=TOL[dtype])


def data(shape, dtype, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def ref_softmax(x, axis):
    x = x.astype(np.float32)
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


@SETTINGS
@given(shape=st.lists(SIDES, min_size=1, max_size=3), dtype=st.sampled_from(FLOATS), data_=st.data())
def test_softmax_and_log_softmax(shape, dtype, data_):
    axis = data_.draw(st.integers(-len(shape), len(shape) - 1))
    x = data(shape, dtype)
    close(kl.softmax(x, axis=axis), ref_softmax(x, axis).astype(dtype), dtype)
    close(kl.log_softmax(x, axis=axis), np.log(ref_softmax(x, axis)).astype(dtype), dtype)


def test_softmax_rows_longer_than_on_chip_run_in_chunks():
    x = data((3, 40_000), np.float32)  # 160 KB per row: the chunked online softmax
    close(kl.softmax(x), ref_softmax(x, -1), np.float32)
    close(kl.log_softmax(x), np.log(ref_softmax(x, -1)), np.float32)


def ref_norm(x, k, weight, bias, eps, rms):
    x = x.astype(np.float32)
    axes = tuple(range(x.ndim - k, x.ndim))
    xc = x if rms else x - x.mean(axis=axes, keepdims=True)
    y = xc / np.sqrt((xc * xc).mean(axis=axes, keepdims=True) + eps)
    y = y if weight is None else y * weight.astype(np.float32)
    return y if bias is None else y + bias.astype(np.float32)


@SETTINGS
@given(shape=st.lists(SIDES, min_size=1, max_size=3), dtype=st.sampled_from(FLOATS), affine=st.booleans(),
       data_=st.data())
def test_layer_norm_and_rms_norm(shape, dtype, affine, data_):
    k = data_.draw(st.integers(1, len(shape)))
    x = data(shape, dtype)
    w = data(shape[-k:], dtype, 1) if affine else None
    b = data(shape[-k:], dtype, 2) if affine else None
    close(kl.layer_norm(x, shape[-k:], w, b, eps=1e-5), ref_norm(x, k, w, b, 1e-5, False).astype(dtype), dtype)
    close(kl.rms_norm(x, shape[-k:], w, eps=1e-6), ref_norm(x, k, w, None, 1e-6, True).astype(dtype), dtype)


def test_norm_rows_longer_than_on_chip_run_in_chunks():
    x, w, b = data((2, 40_000), np.float32), data(40_000, np.float32, 1), data(40_000, np.float32, 2)
    close(kl.layer_norm(x, 40_000, w, b), ref_norm(x, 1, w, b, 1e-5, False), np.float32)
    close(kl.rms_norm(x, 40_000, w, eps=1e-6), ref_norm(x, 1, w, None, 1e-6, True), np.float32)


@pytest.mark.parametrize("mean", [1e3, 1e4])
def test_layer_norm_of_rows_with_a_large_mean_stays_accurate(mean):
    """The variance is taken around the mean (two passes): E[x²] - mean² would lose it to cancellation
    (at mean 1000 an error of 0.16, at 10⁴ a negative variance)."""
    x = data((4, 4096), np.float32) + np.float32(mean)
    x64 = x.astype(np.float64)
    expected = (x64 - x64.mean(axis=1, keepdims=True)) / np.sqrt(x64.var(axis=1, keepdims=True) + 1e-5)
    np.testing.assert_allclose(kl.layer_norm(x, 4096), expected, rtol=0, atol=1e-3)


@SETTINGS
@given(n=SIDES, c=SIDES, h=st.sampled_from([1, 3, 7]), w=st.sampled_from([1, 5, 8]),
       layout=st.sampled_from(["NCHW", "NHWC"]), dtype=st.sampled_from(FLOATS))
def test_batch_norm(n, c, h, w, layout, dtype):
    shape = (n, c, h, w) if layout == "NCHW" else (n, h, w, c)
    x = data(shape, dtype)
    mean, weight, bias = (data(c, dtype, s) for s in (1, 2, 3))
    var = np.abs(data(c, dtype, 4)) + dtype(0.5)
    bshape = (1, c, 1, 1) if layout == "NCHW" else (c,)
    p = [a.astype(np.float32).reshape(bshape) for a in (mean, var, weight, bias)]
    expected = (x.astype(np.float32) - p[0]) / np.sqrt(p[1] + 1e-5) * p[2] + p[3]
    close(kl.batch_norm(x, mean, var, weight, bias, layout=layout), expected.astype(dtype), dtype)


ERF = np.vectorize(math.erf, otypes=[np.float64])
ACTIVATIONS = {
    "relu": lambda x: np.maximum(x, 0),
    "gelu": lambda x: 0.5 * x * (1 + ERF(x / math.sqrt(2))),
    "silu": lambda x: x / (1 + np.exp(-x)),
    "sigmoid": lambda x: 1 / (1 + np.exp(-x)),
    "tanh": np.tanh,
}


@SETTINGS
@given(shape=st.lists(SIDES, min_size=1, max_size=2), dtype=st.sampled_from(FLOATS),
       name=st.sampled_from(sorted(ACTIVATIONS)))
def test_activations(shape, dtype, name):
    x = data(shape, dtype) * dtype(3)
    expected = ACTIVATIONS[name](x.astype(np.float64)).astype(dtype)
    close(getattr(kl, name)(x), expected, dtype)


def test_gelu_tanh_approximation():
    x = data(1000, np.float32) * 3
    expected = 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3)))
    close(kl.gelu(x, approximate="tanh"), expected, np.float32)


BROADCASTS = [((5, 7), (7,)), ((5, 7), (5, 1)), ((1000,), (1000,)), ((3, 4, 5), (4, 1)), ((6,), ()),
              ((4, 1, 3), (1, 5, 1)), ((2, 1, 9), (2, 3, 9)), ((1,), (17, 3))]


@pytest.mark.parametrize("sa,sb", BROADCASTS)
@pytest.mark.parametrize("dtype", [np.float32, np.float16, np.int32])
def test_add_and_mul_broadcast_like_numpy(sa, sb, dtype):
    a, b = (np.random.default_rng(s).integers(-50, 50, shape).astype(dtype) for s, shape in ((0, sa), (1, sb)))
    np.testing.assert_array_equal(kl.add(a, b), a + b)
    np.testing.assert_array_equal(kl.mul(a, b), a * b)


def test_python_scalars_take_the_arrays_dtype():
    a = np.arange(10, dtype=np.float16)
    np.testing.assert_array_equal(kl.add(a, 2.5), a + np.float16(2.5))
    np.testing.assert_array_equal(kl.mul(3, a), a * np.float16(3))


def test_non_contiguous_inputs_are_accepted():
    x = data((64, 48), np.float32)[:, ::2]
    close(kl.softmax(x), ref_softmax(x, -1), np.float32)


@pytest.mark.parametrize("call,message", [
    (lambda: kl.softmax(np.zeros((2, 3), np.int8)),
     "kernel_lib.softmax: x has dtype int8; softmax takes float16, bfloat16 or float32 (convert with x.astype(...))"),
    (lambda: kl.softmax([1.0, 2.0]), "kernel_lib.softmax: x must be a numpy array, got list"),
    (lambda: kl.softmax(np.zeros((2, 3), np.float32), axis=2),
     "kernel_lib.softmax: axis 2 is out of range for an array of 2 dimension(s)"),
    (lambda: kl.layer_norm(np.zeros((2, 3), np.float32), 4),
     "kernel_lib.layer_norm: normalized_shape 4 must be x's trailing dimension(s); x has shape (2, 3)"),
    (lambda: kl.layer_norm(np.zeros((2, 3), np.float32), 3, np.ones(3, np.float16)),
     "kernel_lib.layer_norm: arguments must share one dtype, got x float32, weight float16"),
    (lambda: kl.rms_norm(np.zeros((2, 3), np.float32), 3, np.ones(4, np.float32)),
     "kernel_lib.rms_norm: weight must have shape (3,), got (4,)"),
    (lambda: kl.layer_norm(np.zeros((2, 3), np.float32), 3, eps=0),
     "kernel_lib.layer_norm: eps must be a positive number, got 0"),
    (lambda: kl.add(np.zeros(3, np.float32), np.zeros(4, np.float32)),
     "kernel_lib.add: shapes (3,) and (4,) do not broadcast"),
    (lambda: kl.batch_norm(np.zeros((2, 3, 4, 4), np.float32), np.zeros(4, np.float32), np.ones(4, np.float32)),
     "kernel_lib.batch_norm: running_mean must have shape (3,), got (4,)"),
    (lambda: kl.batch_norm(np.zeros((2, 3), np.float32), np.zeros(3, np.float32), np.ones(3, np.float32),
                           layout="CHWN"), "kernel_lib.batch_norm: layout must be 'NCHW' or 'NHWC', got 'CHWN'"),
    (lambda: kl.gelu(np.zeros(3, np.float32), approximate="erf"),
     "kernel_lib.gelu: approximate must be 'none' or 'tanh', got 'erf'"),
    (lambda: kl.relu(np.zeros((0, 3), np.float32)), "kernel_lib.relu: x is empty (shape (0, 3))"),
    (lambda: kl.batch_norm(np.zeros((2, 3), np.float32), None, np.ones(3, np.float32)),
     "kernel_lib.batch_norm: running_mean must be a numpy array, got NoneType"),
    (lambda: kl.add(np.zeros(3, np.int32), 2**40),
     "kernel_lib.add: the scalar 1099511627776 does not fit a's dtype int32"),
])
def test_bad_calls_name_the_operator_and_argument(call, message):
    with pytest.raises(kl.OperatorError) as info:
        call()
    assert str(info.value) == message


def test_both_import_styles_give_the_operator():
    import kernel_lib.softmax
    from kernel_lib import softmax

    assert kernel_lib.softmax is softmax
    x = data((2, 5), np.float32)
    close(kernel_lib.softmax(x), ref_softmax(x, -1), np.float32)
