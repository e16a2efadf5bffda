"""conv2d against numpy: both layouts, strides, padding, dilation, bias and activation; its errors."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import kernel_lib as kl
from examples.conv2d import reference


def case(rng, n, c, h, w, k, r, s):
    x = rng.standard_normal((n, c, h, w)).astype(np.float16)
    wt = (rng.standard_normal((k, c, r, s)) / np.sqrt(c * r * s)).astype(np.float16)
    return x, wt, rng.standard_normal(k).astype(np.float16)


@settings(max_examples=8, deadline=None)
@given(n=st.integers(1, 2), c=st.sampled_from([1, 3, 16, 20]), hw=st.integers(3, 10), k=st.sampled_from([8, 16, 33]),
       rs=st.sampled_from([1, 3, 5]), stride=st.integers(1, 2), dil=st.integers(1, 2),
       layout=st.sampled_from(["NCHW", "NHWC"]), activation=st.sampled_from([None, "relu"]), data=st.data())
def test_conv2d_matches_numpy(n, c, hw, k, rs, stride, dil, layout, activation, data):
    pad = data.draw(st.integers(0, rs // 2))
    assume(hw + 2 * pad >= dil * (rs - 1) + 1)
    x, w, b = case(np.random.default_rng(0), n, c, hw, hw, k, rs, rs)
    xi = x if layout == "NCHW" else np.ascontiguousarray(x.transpose(0, 2, 3, 1))
    y = kl.conv2d(xi, w, b, stride=stride, padding=pad, dilation=dil, activation=activation, layout=layout)
    want = reference(x, w, stride, pad, dil) + b.astype(np.float32)
    if activation == "relu":
        want = np.maximum(want, 0)
    got = y.transpose(0, 2, 3, 1) if layout == "NCHW" else y
    assert y.dtype == np.float16 and got.shape == want.shape
    np.testing.assert_allclose(got.astype(np.float32), want, rtol=1e-2, atol=1e-2)


def test_conv2d_interpreted_matches_compiled(monkeypatch):
    x, w, b = case(np.random.default_rng(1), 1, 16, 8, 8, 16, 3, 3)
    compiled = kl.conv2d(x, w, b, padding=1)
    monkeypatch.setenv("NPU_INTERPRET", "1")
    np.testing.assert_allclose(kl.conv2d(x, w, b, padding=1).astype(np.float32), compiled.astype(np.float32),
                               rtol=1e-2, atol=1e-2)


X = np.zeros((1, 4, 8, 8), np.float16)
W = np.zeros((8, 4, 3, 3), np.float16)


@pytest.mark.parametrize("call,message", [
    (lambda: kl.conv2d(X.astype(np.float32), W), "kernel_lib.conv2d: x has dtype float32; conv2d takes float16, "
                                                 "bfloat16 or int8"),
    (lambda: kl.conv2d(X, W[:, :3]), "kernel_lib.conv2d: w has 3 input channels per group, x has 4 "
                                         "channels in 1 group(s)"),
    (lambda: kl.conv2d(X, W, groups=4), "kernel_lib.conv2d: w has 4 input channels per group, x has 4 channels in 4"),
    (lambda: kl.conv2d(X, W, stride=(1, 2)), "kernel_lib.conv2d: stride must be the same along H and W"),
    (lambda: kl.conv2d(X, W, layout="CHWN"), "kernel_lib.conv2d: layout must be 'NCHW' or 'NHWC'"),
    (lambda: kl.conv2d(X, W, np.zeros(7, np.float16)), "kernel_lib.conv2d: bias must have shape (8,)"),
    (lambda: kl.conv2d(X[:, :, :2, :2], W), "kernel_lib.conv2d: a 3x3 filter (dilation 1) does not fit the 2x2"),
    (lambda: kl.conv2d(X, W, activation="swish"), "kernel_lib.conv2d: activation must be None or one of"),
    (lambda: kl.conv2d(X, W, stride=None), "kernel_lib.conv2d: stride must be an int >= 1 or a pair of them"),
    (lambda: kl.conv2d(X, W, padding=1.0), "kernel_lib.conv2d: padding must be an int >= 0 or a pair of them"),
])
def test_conv2d_errors(call, message):
    with pytest.raises(kl.OperatorError) as info:
        call()
    assert str(info.value).startswith(message), str(info.value)
