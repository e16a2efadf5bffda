"""max_pool2d and avg_pool2d against a numpy reference, both layouts, borders, strides and dilation."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import kernel_lib as kl


def ref_pool(x, k, stride, pad, dil, is_max):
    """NCHW reference: every window tap as a strided slice of the padded input."""
    n, c, h, w = x.shape
    xp = np.pad(x.astype(np.float32), ((0, 0), (0, 0), (pad, pad), (pad, pad)),
                constant_values=-np.inf if is_max else 0)
    oh = (h + 2 * pad - dil * (k - 1) - 1) // stride + 1
    ow = (w + 2 * pad - dil * (k - 1) - 1) // stride + 1
    taps = [xp[:, :, r * dil: r * dil + stride * (oh - 1) + 1: stride, s * dil: s * dil + stride * (ow - 1) + 1: stride]
            for r in range(k) for s in range(k)]
    return np.max(taps, 0) if is_max else np.sum(taps, 0) / (k * k)


@settings(max_examples=12, deadline=None)
@given(n=st.integers(1, 2), c=st.sampled_from([1, 3, 16, 17]), h=st.integers(4, 12), w=st.integers(4, 12),
       k=st.integers(1, 3), stride=st.integers(1, 2), dil=st.integers(1, 2), layout=st.sampled_from(["NCHW", "NHWC"]),
       data=st.data())
def test_pooling_matches_numpy(n, c, h, w, k, stride, dil, layout, data):
    pad = data.draw(st.integers(0, k // 2))
    assume(min(h, w) + 2 * pad >= dil * (k - 1) + 1)  # the window fits (a smaller input is an error, tested below)
    x = np.random.default_rng(0).standard_normal((n, c, h, w)).astype(np.float16)
    xi = x if layout == "NCHW" else np.ascontiguousarray(x.transpose(0, 2, 3, 1))
    back = (lambda y: y) if layout == "NCHW" else (lambda y: y.transpose(0, 3, 1, 2))
    ym = back(kl.max_pool2d(xi, k, stride, pad, dil, layout=layout))
    np.testing.assert_array_equal(ym, ref_pool(x, k, stride, pad, dil, True).astype(np.float16))
    ya = back(kl.avg_pool2d(xi, k, stride, pad, layout=layout))
    np.testing.assert_allclose(ya.astype(np.float32), ref_pool(x, k, stride, pad, 1, False), rtol=2e-3, atol=2e-3)


@pytest.mark.parametrize("call,message", [
    (lambda: kl.max_pool2d(np.zeros((1, 2, 5, 5), np.float32), 3, padding=2),
     "kernel_lib.max_pool2d: padding (2, 2) must be at most half the kernel size (3, 3)"),
    (lambda: kl.max_pool2d(np.zeros((1, 2, 2, 2), np.float32), 3),
     "kernel_lib.max_pool2d: a 3x3 window does not fit the 2x2 input"),
    (lambda: kl.avg_pool2d(np.zeros((2, 5, 5), np.float32), 2),
     "kernel_lib.avg_pool2d: x must have 4 dimensions, got shape (2, 5, 5)"),
    (lambda: kl.max_pool2d(np.zeros((1, 2, 5, 5), np.float32), 0),
     "kernel_lib.max_pool2d: kernel_size must be an int >= 1 or a pair of them, got 0"),
    (lambda: kl.max_pool2d(np.zeros((1, 2, 5, 5), np.float32), 2, stride=(1, 2)),
     "kernel_lib.max_pool2d: different stride, padding or dilation per axis is not supported; got stride (1, 2), "
     "padding (0, 0), dilation (1, 1)"),
    (lambda: kl.max_pool2d(np.zeros((1, 2, 5, 5), np.float32), None),
     "kernel_lib.max_pool2d: kernel_size must be an int >= 1 or a pair of them, got None"),
    (lambda: kl.avg_pool2d(np.zeros((1, 2, 5, 5), np.float32), 2, padding=0.5),
     "kernel_lib.avg_pool2d: padding must be an int >= 0 or a pair of them, got 0.5"),
])
def test_bad_pooling_calls(call, message):
    with pytest.raises(kl.OperatorError) as info:
        call()
    assert str(info.value) == message
