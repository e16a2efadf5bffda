"""conv2d with groups (per-group implicit GEMM on the cube; depthwise and narrow groups on the vector unit), int8
with requantisation and bf16, against numpy; interpreted and compiled; and the errors of bad groups."""

from __future__ import annotations

import ml_dtypes
import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import kernel_lib as kl
import npulang as npu
from examples.conv2d import reference
from kernel_lib.conv2d import CUBE_MIN_CHANNELS, on_vector


def grouped_reference(x: np.ndarray, w: np.ndarray, stride: int, pad: int, dil: int, groups: int) -> np.ndarray:
    """numpy grouped conv2d in float64 (exact for the int8 cases): NCHW x, OIHW w, NHWC result."""
    cg, kg = x.shape[1] // groups, w.shape[0] // groups
    return np.concatenate([reference(x[:, g * cg:(g + 1) * cg].astype(np.float64),
                                     w[g * kg:(g + 1) * kg].astype(np.float64), stride, pad, dil).astype(np.float64)
                           for g in range(groups)], axis=-1)


@pytest.fixture(params=["compiled", "interpreted"])
def mode(request, monkeypatch) -> str:
    """Run the test compiled and simulated, and again through the IR interpreter (an env var: the same for
    every Hypothesis example)."""
    if request.param == "interpreted":
        monkeypatch.setenv("NPU_INTERPRET", "1")
    return request.param


def run(x_nchw: np.ndarray, w: np.ndarray, layout: str, **kwargs) -> np.ndarray:
    """kl.conv2d in `layout`, the result as NHWC."""
    xi = x_nchw if layout == "NCHW" else np.ascontiguousarray(x_nchw.transpose(0, 2, 3, 1))
    y = kl.conv2d(xi, w, layout=layout, **kwargs)
    return y.transpose(0, 2, 3, 1) if layout == "NCHW" else y


# awkward shapes: odd channel counts per group (5, 6, 7), multipliers, strides and dilations past the input edge
@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(n=st.integers(1, 2), groups=st.sampled_from([2, 3, 5]), cg=st.sampled_from([1, 2, 5, 6, 16]),
       mult=st.sampled_from([1, 2, 3]), hw=st.integers(3, 9), rs=st.sampled_from([1, 3]), stride=st.integers(1, 2),
       dil=st.integers(1, 2), layout=st.sampled_from(["NCHW", "NHWC"]), activation=st.sampled_from([None, "relu"]),
       data=st.data())
def test_grouped_conv2d_matches_numpy(mode, n, groups, cg, mult, hw, rs, stride, dil, layout, activation, data):
    pad = data.draw(st.integers(0, rs // 2))
    assume(hw + 2 * pad >= dil * (rs - 1) + 1)
    rng = np.random.default_rng(groups * 100 + cg)
    c, k = groups * cg, groups * mult
    x = rng.standard_normal((n, c, hw, hw)).astype(np.float16)
    w = (rng.standard_normal((k, cg, rs, rs)) / np.sqrt(cg * rs * rs)).astype(np.float16)
    b = rng.standard_normal(k).astype(np.float16)
    got = run(x, w, layout, bias=b, stride=stride, padding=pad, dilation=dil, groups=groups, activation=activation)
    want = grouped_reference(x, w, stride, pad, dil, groups) + b.astype(np.float64)
    if activation == "relu":
        want = np.maximum(want, 0)
    assert got.dtype == np.float16 and got.shape == want.shape
    np.testing.assert_allclose(got.astype(np.float64), want, rtol=1e-2, atol=1e-2)


@settings(max_examples=5, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(c=st.sampled_from([4, 8, 12]), mult=st.sampled_from([1, 2]), hw=st.integers(4, 9),
       rs=st.sampled_from([3, 5]), stride=st.integers(1, 2), layout=st.sampled_from(["NCHW", "NHWC"]))
def test_depthwise_conv2d_matches_numpy(mode, c, mult, hw, rs, stride, layout):
    """groups = C (one input channel per group, K_out = C · multiplier): the vector kernel."""
    assert on_vector(1, c)
    pad = rs // 2
    rng = np.random.default_rng(c + hw)
    x = rng.standard_normal((1, c, hw, hw)).astype(np.float16)
    w = rng.standard_normal((c * mult, 1, rs, rs)).astype(np.float16)
    got = run(x, w, layout, stride=stride, padding=pad, groups=c)
    np.testing.assert_allclose(got.astype(np.float64), grouped_reference(x, w, stride, pad, 1, c), rtol=1e-2, atol=2e-2)


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(groups=st.sampled_from([1, 2, 8]), cg=st.sampled_from([1, 8, 32, 40]), mult=st.sampled_from([1, 3, 16]),
       hw=st.integers(3, 8), rs=st.sampled_from([1, 3]), layout=st.sampled_from(["NCHW", "NHWC"]),
       requant=st.sampled_from([None, "tensor", "channel"]), bias=st.booleans())
def test_int8_conv2d_matches_numpy(mode, groups, cg, mult, hw, rs, layout, requant, bias):
    """int8 in, int32 accumulate: exact int32 output, or int8 requantised as kernel_lib.gemm does."""
    rng = np.random.default_rng(cg * 7 + mult)
    c, k = groups * cg, groups * mult
    x = rng.integers(-128, 128, (2, c, hw, hw)).astype(np.int8)
    w = rng.integers(-128, 128, (k, cg, rs, rs)).astype(np.int8)
    acc = grouped_reference(x, w, 1, rs // 2, 1, groups)
    out = np.int32 if requant is None else np.int8
    b = rng.integers(-100, 100, k).astype(out) if bias else None
    acc = acc + (0 if b is None else b.astype(np.float64))
    scale = {None: None, "tensor": 1 / 2000, "channel": rng.uniform(1e-4, 1e-3, k).astype(np.float32)}[requant]
    got = run(x, w, layout, bias=b, padding=rs // 2, groups=groups, out_dtype=out, scale=scale)
    assert got.dtype == out
    if requant is None:
        np.testing.assert_array_equal(got, acc.astype(np.int32))
    else:
        want = np.clip(np.floor(acc * np.float32(scale).astype(np.float64) + 0.5), -128, 127)
        assert np.abs(got.astype(np.float64) - want).max() <= 1  # float32 scaling may round a .5 the other way


@pytest.mark.parametrize("groups,cg", [(1, 16), (2, 8), (4, 1)])
def test_bf16_conv2d_matches_numpy(mode, groups, cg):
    rng = np.random.default_rng(groups)
    x = rng.standard_normal((1, groups * cg, 6, 6)).astype(ml_dtypes.bfloat16)
    w = (rng.standard_normal((groups * 4, cg, 3, 3)) / np.sqrt(9 * cg)).astype(ml_dtypes.bfloat16)
    got = run(x, w, "NHWC", padding=1, groups=groups)
    want = grouped_reference(x, w, 1, 1, 1, groups)
    assert got.dtype == ml_dtypes.bfloat16
    np.testing.assert_allclose(got.astype(np.float64), want, rtol=2e-2, atol=3e-2)
    wide = run(x, w, "NCHW", padding=1, groups=groups, out_dtype=np.float32)  # the fp32 accumulator, not rounded
    assert wide.dtype == np.float32
    np.testing.assert_allclose(wide, want, rtol=1e-4, atol=1e-4)


def test_numpy_integer_groups_are_accepted():
    """groups=np.int64(C) (as a shape lookup gives it) runs the depthwise kernel like groups=C."""
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal((1, 4, 5, 5)).astype(np.float16), rng.standard_normal((4, 1, 3, 3)).astype(np.float16)
    np.testing.assert_array_equal(kl.conv2d(x, w, groups=np.int64(4)), kl.conv2d(x, w, groups=4))


def test_the_rule_picks_the_cube_for_wide_groups_and_the_vector_unit_for_narrow_ones():
    assert not on_vector(CUBE_MIN_CHANNELS, 8) and on_vector(CUBE_MIN_CHANNELS - 1, 8) and not on_vector(1, 1)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, 4, 6, 6)).astype(np.float16)
    with npu.profile() as prof:
        kl.conv2d(x, rng.standard_normal((8, 1, 3, 3)).astype(np.float16), groups=4)
        kl.conv2d(np.repeat(x, 4, axis=1), rng.standard_normal((8, 8, 3, 3)).astype(np.float16), groups=2)
    names = [launch.kernel for launch in prof.launches]
    assert names == ["_vector_kernel", "_conv2d_kernel"], names


X = np.zeros((1, 6, 8, 8), np.float16)


@pytest.mark.parametrize("call,message", [
    (lambda: kl.conv2d(X, np.zeros((8, 2, 3, 3), np.float16), groups=4),
     "kernel_lib.conv2d: groups=4 must divide the input channels (6) and the output channels (8)"),
    (lambda: kl.conv2d(X, np.zeros((8, 2, 3, 3), np.float16), groups=3),
     "kernel_lib.conv2d: groups=3 must divide the input channels (6) and the output channels (8)"),
    (lambda: kl.conv2d(X, np.zeros((6, 3, 3, 3), np.float16), groups=3),
     "kernel_lib.conv2d: w has 3 input channels per group, x has 6 channels in 3 group(s), so 2"),
    (lambda: kl.conv2d(X, np.zeros((6, 1, 3, 3), np.float16), groups=0),
     "kernel_lib.conv2d: groups must be a positive"),
    (lambda: kl.conv2d(X, np.zeros((6, 1, 3, 3), np.float16), groups=True), "kernel_lib.conv2d: groups must be a "),
    (lambda: kl.conv2d(X.astype(np.int8), np.zeros((6, 6, 1, 1), np.int8), out_dtype=np.int8),
     "kernel_lib.conv2d: an int8 output needs scale="),
    (lambda: kl.conv2d(X, np.zeros((6, 6, 1, 1), np.float16), scale=0.5),
     "kernel_lib.conv2d: scale requantises int8 outputs; out_dtype is float16"),
    (lambda: kl.conv2d(X.astype(np.int8), np.zeros((6, 6, 1, 1), np.int8), out_dtype=np.float16),
     "kernel_lib.conv2d: out_dtype float16 is not available for int8 inputs"),
    (lambda: kl.conv2d(X.astype(np.int8), np.zeros((6, 6, 1, 1), np.int8), np.zeros(6, np.int8)),
     "kernel_lib.conv2d: bias has dtype int8; conv2d takes int32"),
    (lambda: kl.conv2d(X.astype(np.int8), np.zeros((6, 6, 1, 1), np.int8), out_dtype=np.int8,
                       scale=np.ones(5, np.float32)), "kernel_lib.conv2d: scale must have shape (6,)"),
    (lambda: kl.conv2d(X.astype(np.int8), np.zeros((6, 6, 1, 1), np.float16)),
     "kernel_lib.conv2d: arguments must share one dtype"),
    (lambda: kl.conv2d(X.astype(np.int8), np.zeros((6, 6, 1, 1), np.int8), out_dtype=np.int8, scale=float("inf")),
     "kernel_lib.conv2d: scale must be a positive number"),
    (lambda: kl.conv2d(X.astype(np.int8), np.zeros((6, 6, 1, 1), np.int8), out_dtype=np.int8, scale=1e40),
     "kernel_lib.conv2d: scale must be a positive number"),  # inf as float32
    (lambda: kl.conv2d(X.astype(np.int8), np.zeros((6, 6, 1, 1), np.int8), out_dtype=np.int8,
                       scale=np.array([1, 1, np.nan, 1, -1, np.inf], np.float32)),
     "kernel_lib.conv2d: scale must hold positive finite numbers"),
])
def test_conv2d_group_and_int8_errors(call, message):
    with pytest.raises(kl.OperatorError) as info:
        call()
    assert str(info.value).startswith(message), str(info.value)
