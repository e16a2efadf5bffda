"""Convolution through `npu.make_conv_descriptor`: interpreted and compiled against numpy's conv2d.

The compiled runs go through the machine's own path (window DMA into L1, img2col into L0A), with the
race detector on; the shapes include ragged tiles, blocks that span images, padding on every side,
strides, dilations, channel groups with a zero-padded last group, and the three input layouts.
"""

from __future__ import annotations

import json
import re

import ml_dtypes
import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import npulang as npu
from examples import conv2d as cv
from npulang import ir
from npulang.errors import IRVerifyError
from npulang.ir.conv import LAYOUTS, ConvGeometry
from npulang.ir.parser import parse_function
from npulang.ir.verifier import verify

SETTINGS = settings(max_examples=10, deadline=None, derandomize=True)


def _inputs(seed: int, n: int, c: int, h: int, w: int, kout: int, r: int, s: int, layout: str):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, c, h, w)).astype(np.float16)
    wt = rng.standard_normal((kout, c, r, s)).astype(np.float16)
    return x, wt, _in_layout(x, layout, 4)


def _in_layout(x: np.ndarray, layout: str, channel_block: int | None) -> np.ndarray:
    if layout == "NC1HWC0":  # channel slots past C hold 7s, which must read as zero
        cb = channel_block or x.shape[1]
        out = cv.to_nc1hwc0(x, cb)
        slot = np.arange(out.shape[1])[:, None] * cb + np.arange(cb)[None, :]
        out[np.broadcast_to((slot >= x.shape[1])[None, :, None, None, :], out.shape)] = 7
        return out
    return x if layout == "NCHW" else np.ascontiguousarray(x.transpose(0, 2, 3, 1))


def _check(x, wt, xin, layout, stride, pad, dil, **config) -> None:
    want = cv.reference(x, wt, stride, pad, dil)
    interpreted, _ = cv.conv2d(xin, wt, stride=stride, pad=pad, dil=dil, layout=layout, interpret=True, **config)
    compiled, run = cv.conv2d(xin, wt, stride=stride, pad=pad, dil=dil, layout=layout, **config)
    assert run.cycles > 0
    # fp16 inputs, fp32 accumulation, fp16 output: one rounding of the result
    np.testing.assert_allclose(interpreted.astype(np.float32), want, rtol=2e-3, atol=2e-2)
    np.testing.assert_allclose(compiled.astype(np.float32), interpreted.astype(np.float32), rtol=2e-3, atol=2e-3)


@SETTINGS
@given(n=st.integers(1, 3), c=st.integers(1, 9), h=st.integers(1, 11), w=st.integers(1, 11),
       kout=st.integers(1, 20), r=st.integers(1, 3), s=st.integers(1, 3), stride=st.integers(1, 3),
       pad=st.integers(0, 2), dil=st.integers(1, 2), layout=st.sampled_from(["NCHW", "NHWC", "NC1HWC0"]),
       cb=st.sampled_from([None, 2, 4]), bm=st.sampled_from([16, 32]), split_k=st.booleans())
def test_conv2d_matches_numpy_both_ways(n, c, h, w, kout, r, s, stride, pad, dil, layout, cb, bm, split_k):
    out_h, out_w = cv.out_size(h, r, stride, pad, dil), cv.out_size(w, s, stride, pad, dil)
    assume(out_h >= 1 and out_w >= 1)
    group_taps = r * s * (c if cb is None else cb)
    bk = group_taps // 3 if split_k and group_taps % 3 == 0 else group_taps
    x, wt, _ = _inputs(n * c * h * w + kout, n, c, h, w, kout, r, s, layout)
    xin = _in_layout(x, layout, cb)
    _check(x, wt, xin, layout, stride, pad, dil, channel_block=cb, bm=bm, bn=16, bk=bk)


@pytest.mark.parametrize("layout", ["NCHW", "NHWC", "NC1HWC0"])
def test_pointwise_1x1_conv(layout):
    x, wt, _ = _inputs(1, 2, 32, 9, 7, 24, 1, 1, layout)
    xin = _in_layout(x, layout, 16)
    _check(x, wt, xin, layout, 1, 0, 1, channel_block=16, bm=32, bn=16)


def test_stem_7x7_stride_2_conv():
    x, wt, xin = _inputs(2, 1, 3, 30, 26, 16, 7, 7, "NHWC")
    _check(x, wt, xin, "NHWC", 2, 3, 1, bm=32, bn=16)


def test_compiled_conv_uses_img2col_and_no_gather():
    x, wt, xin = _inputs(3, 1, 16, 8, 8, 16, 3, 3, "NHWC")
    ins = cv.conv2d_kernel.inspect(xin, cv.weight_matrix(wt, 16), np.zeros((1, 8, 8, 16), np.float16), N=1,
                                   C=16, H=8, W=8, KOUT=16, R=3, S=3, STRIDE=1, PAD=1, DIL=1, LAYOUT="NHWC", CB=16,
                                   BM=32, BN=16, BK=144)
    assert "img2col" in ins.asm and "gather" not in ins.asm


def test_window_rows_cover_every_block():
    """A block's positions inside one image never read more input rows than its window holds."""
    from npulang.backend.lowering.conv import WindowPlan
    for h, r, stride, dil, bm in [(56, 3, 1, 1, 112), (224, 7, 2, 1, 64), (9, 3, 2, 2, 16), (5, 1, 1, 1, 64)]:
        g = ConvGeometry((2, 4, h, h), (r, r), (stride, stride), (r // 2, r // 2), (dil, dil), "NHWC", 4, (bm, 4))
        oh, ow = g.out_hw
        plan = WindowPlan.of(g)
        for start in range(oh * ow):
            end = min(start + bm, oh * ow) - 1
            top = max(0, start // ow * stride - r // 2)
            bottom = min(h, end // ow * stride - r // 2 + (r - 1) * dil + 1)
            assert bottom - top <= plan.rows


def test_a_conv_block_outside_dot_is_a_clear_error():
    @npu.jit
    def summed(x_ptr, y_ptr):
        d = npu.make_conv_descriptor(x_ptr, (1, 4, 8, 8), (1, 1), [16, 4], layout="NHWC")
        npu.store(y_ptr + npu.arange(0, 16), npu.sum(d.load([0, 0]), axis=1))

    x, y = np.ones((1, 8, 8, 4), np.float16), np.zeros(16, np.float16)
    summed[(1,)](x, y, interpret=True)
    assert (y == 4).all()
    with pytest.raises(npu.UnsupportedKernelError) as info:
        summed[(1,)](x, y)
    assert info.value.message == "a convolution descriptor block can only be the first operand of npu.dot"
    assert info.value.hint == "use it as npu.dot(desc.load([m, k]), w, acc)"


def test_a_conv_block_larger_than_l0a_is_a_buffer_overflow_at_the_dot():
    x, w = np.zeros((1, 64, 16, 16), np.float16), np.zeros((64, 64, 3, 3), np.float16)
    with pytest.raises(npu.BufferOverflowError) as info:  # 128 x 576 fp16 = 144 KiB > 64 KiB of L0A
        cv.conv2d(x, w, pad=1, layout="NCHW", channel_block=64, bm=128, bn=64, bk=576)
    assert "needs 147456 bytes of L0A" in info.value.message
    assert "npu.dot(x.load([m0, k])" in info.value.source_line


def test_a_k_offset_off_the_block_grid_is_a_runtime_error_in_the_interpreter():
    @npu.jit
    def shifted(x_ptr, y_ptr, k):  # a runtime k (a constant one is a compile error: invalid_kernels.py)
        d = npu.make_conv_descriptor(x_ptr, (1, 4, 8, 8), (1, 1), [16, 2], layout="NHWC")
        npu.store(y_ptr + npu.arange(0, 16), npu.sum(d.load([0, k]), axis=1))

    with pytest.raises(npu.NpuRuntimeError, match=r"conv descriptor load at \[0, 3\]: offsets must be >= 0 and k "
                                                  r"a multiple of the block's K \(2\)"):
        shifted[(1,)](np.ones((1, 8, 8, 4), np.float16), np.zeros(16, np.float16), 3, interpret=True)


@npu.jit
def im2col_block(x_ptr, eye_ptr, out_ptr, m, k, N: npu.constexpr, C: npu.constexpr, H: npu.constexpr,
                 W: npu.constexpr, R: npu.constexpr, S: npu.constexpr, STRIDE: npu.constexpr, PAD: npu.constexpr,
                 DIL: npu.constexpr, LAYOUT: npu.constexpr, CB: npu.constexpr, BM: npu.constexpr,
                 BK: npu.constexpr):
    x = npu.make_conv_descriptor(x_ptr, (N, C, H, W), (R, S), [BM, BK], stride=STRIDE, padding=PAD, dilation=DIL,
                                 layout=LAYOUT, channel_block=CB)
    eye = npu.make_tensor_descriptor(eye_ptr, [BK, BK], [BK, 1], [BK, BK])
    out = npu.make_tensor_descriptor(out_ptr, [BM, BK], [BK, 1], [BM, BK])
    out.store([0, 0], npu.dot(x.load([m, k]), eye.load([0, 0])))


def _im2col(x: np.ndarray, g: ConvGeometry) -> np.ndarray:
    """The whole im2col matrix of an NCHW array, straight from the definition in npulang.ir.conv."""
    n, c, h, w = x.shape
    (r, s), (oh, ow), cb = g.kernel, g.out_hw, g.channel_block
    out = np.zeros((g.m, g.k), np.float32)
    for row in range(g.m):
        b, oy, ox = row // (oh * ow), row // ow % oh, row % ow
        for col in range(g.k):
            group, i, j, c0 = col // g.group_taps, col // (s * cb) % r, col // cb % s, col % cb
            ch, y, xx = group * cb + c0, oy * g.stride[0] - g.padding[0] + i * g.dilation[0], \
                ox * g.stride[1] - g.padding[1] + j * g.dilation[1]
            if ch < c and 0 <= y < h and 0 <= xx < w:
                out[row, col] = x[b, ch, y, xx]
    return out


@settings(max_examples=12, deadline=None, derandomize=True)
@given(n=st.integers(1, 3), c=st.integers(1, 6), h=st.integers(1, 9), w=st.integers(1, 9), r=st.integers(1, 3),
       stride=st.integers(1, 2), pad=st.integers(0, 2), dil=st.integers(1, 2), layout=st.sampled_from(LAYOUTS),
       cb=st.integers(1, 4), bm=st.sampled_from([16, 48]), dtype=st.sampled_from(["float16", "bfloat16", "int8"]),
       data=st.data())
def test_a_block_is_the_im2col_matrix_with_zeros_outside(n, c, h, w, r, stride, pad, dil, layout, cb, bm, dtype,
                                                         data):
    """Rows past M and taps past the channels or in the padding are zero, also where a block spans images; the
    identity filter makes the dot's output the block itself, for each input dtype of the cube."""
    g = ConvGeometry((n, c, h, w), (r, r), (stride, stride), (pad, pad), (dil, dil), layout, cb, (bm, r * r * cb))
    assume(g.problem() is None)
    m = data.draw(st.integers(0, g.m + 8), label="m")
    k = data.draw(st.integers(0, g.groups), label="group") * g.group_taps
    dt = ml_dtypes.bfloat16 if dtype == "bfloat16" else np.dtype(dtype)
    x = (np.random.default_rng(g.m + k).standard_normal((n, c, h, w)) * 8).astype(dt)
    xin = _in_layout(x, layout, cb)
    full = np.zeros((g.m + bm + 8, g.k + g.group_taps), np.float32)
    full[:g.m, :g.k] = _im2col(x.astype(np.float32), g)
    want = full[m:m + bm, k:k + g.group_taps]
    eye = np.eye(g.group_taps, dtype=dt)
    for interpret in (True, False):
        out = np.full((bm, g.group_taps), -1, np.int32 if dtype == "int8" else np.float32)
        im2col_block[(1,)](xin, eye, out, m, k, N=n, C=c, H=h, W=w, R=r, S=r, STRIDE=stride, PAD=pad, DIL=dil,
                           LAYOUT=layout, CB=cb, BM=bm, BK=g.group_taps, interpret=interpret)
        np.testing.assert_array_equal(out.astype(np.float32), want)


CONV_IR = """func @k(%x: ptr<f16>, %k: i32) {
  %d = make_conv_desc %x {shape=[1, 4, 8, 8], kernel=[3, 3], stride=[1, 1], padding=[1, 1], dilation=[1, 1], \
layout='NHWC', channel_block=4, block_shape=[16, 36]} : convdesc<16x36xf16>
  %t = conv_load %d, %k, %k : tile<16x36xf16>
  return
}
"""


def test_conv_ops_print_parse_print_and_verify():
    fn = parse_function(CONV_IR)
    verify(fn)
    assert ir.print_function(fn) == CONV_IR


@pytest.mark.parametrize("old, new, message", [
    ("block_shape=[16, 36]", "block_shape=[16, 8]", "conv descriptor block K (8) must divide R*S*channel_block (36)"),
    ("shape=[1, 4, 8, 8]", "shape=[1, 4, 8]", "make_conv_desc attributes are malformed: ValueError("),
    ("layout='NHWC'", "layout='HWCN'", "conv descriptor layout must be one of NCHW, NHWC, NC1HWC0, got 'HWCN'"),
])
def test_the_verifier_rejects_bad_conv_descriptors(old, new, message):
    with pytest.raises(IRVerifyError, match=re.escape(message)):
        verify(parse_function(CONV_IR.replace(old, new)))


@npu.jit
def constant_offset_block(x_ptr, eye_ptr, out_ptr, M0: npu.constexpr):
    x = npu.make_conv_descriptor(x_ptr, (3, 2, 3, 3), (3, 3), [32, 18], padding=1, layout="NHWC")
    eye = npu.make_tensor_descriptor(eye_ptr, [18, 18], [18, 1], [18, 18])
    out = npu.make_tensor_descriptor(out_ptr, [32, 18], [18, 1], [32, 18])
    out.store([0, 0], npu.dot(x.load([M0, 0]), eye.load([0, 0])))


@pytest.mark.parametrize("m0", [0, 5, 20])
def test_constant_offsets_and_blocks_spanning_many_images(m0):
    """3x3 images of 9 positions: a 32-row block at a compile-time offset spans 4 or 5 of them (and M = 27)."""
    x = np.random.default_rng(m0).standard_normal((3, 3, 3, 2)).astype(np.float16)
    g = ConvGeometry((3, 2, 3, 3), (3, 3), (1, 1), (1, 1), (1, 1), "NHWC", 2, (32, 18))
    want = np.zeros((m0 + 32, 18), np.float32)
    want[:min(27, m0 + 32)] = _im2col(x.transpose(0, 3, 1, 2), g)[:m0 + 32]
    for interpret in (True, False):
        out = np.zeros((32, 18), np.float32)
        constant_offset_block[(1,)](x, np.eye(18, dtype=np.float16), out, M0=m0, interpret=interpret)
        np.testing.assert_array_equal(out, want[m0:])


def test_a_ragged_block_loads_no_window_for_images_past_the_last(tmp_path):
    """A block of 112 positions over 1x1 images (N=3, M=3) expands three windows, not one per row of
    the block: images past N are not loaded (each cost a window DMA and an img2col, ~240 cycles)."""
    x, wt, xin = _inputs(0, 3, 4, 1, 1, 8, 1, 1, "NHWC")
    _check(x, wt, xin, "NHWC", 1, 0, 1, bm=112, bn=16)
    _, run = cv.conv2d(xin, wt, layout="NHWC", bm=112, bn=16, trace=True)
    events = json.loads(run.write_trace(tmp_path / "t.json").read_text())
    events = events["traceEvents"] if isinstance(events, dict) else events
    assert sum(e.get("name") == "img2col" for e in events) == 3


def test_blocks_larger_than_an_image_unroll_their_windows_up_to_three():
    """4x4 output maps (16 positions): a 32-row block spans 3 images, each loaded through its own guarded
    window with no loop inside the K loop; a 64-row block spans 5 and keeps an inner loop over images."""
    x, w, xin = _inputs(7, 5, 16, 4, 4, 16, 3, 3, "NHWC")
    loops = {}
    for bm in (32, 64):
        y, _ = cv.conv2d(xin, w, pad=1, layout="NHWC", bm=bm, bn=16)
        np.testing.assert_allclose(y.astype(np.float32), cv.reference(x, w, 1, 1, 1), rtol=1e-2, atol=5e-2)
        asm = cv.conv2d_kernel.inspect(xin, cv.weight_matrix(w, 16), np.zeros_like(y), N=5, C=16, H=4, W=4, KOUT=16,
                                       R=3, S=3, STRIDE=1, PAD=1, DIL=1, LAYOUT="NHWC", CB=16, BM=bm, BN=16,
                                       BK=144).asm
        loops[bm] = len(re.findall(r"^L\d+:", asm, re.M))  # loop labels
    assert loops[64] > loops[32], loops
