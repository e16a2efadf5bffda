"""Masks beyond `offs < n`: lower bounds, two-sided ranges and scalar terms ANDed in stay bounds, so the
access is one strided DMA with zero padding (a masked strided store), never a gather; and when something
does become a gather, `inspect` says which part was not affine.

Every kernel runs interpreted and compiled (race detection on) against numpy, on ragged shapes.
"""

from __future__ import annotations

import numpy as np
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import npulang as npu
from examples import idioms
from tests.npulang.both_ways import launch_both

SETTINGS = settings(max_examples=12, deadline=None, derandomize=True)


@npu.jit
def shift_kernel(x_ptr, out_ptr, n, shift, lo, hi, BLOCK: npu.constexpr):
    """out[i] = x[i - shift] where 0 <= i - shift < n, else -1; then zero outside lo <= i < hi."""
    offs = npu.program_id(0) * BLOCK + npu.arange(0, BLOCK)
    src = offs - shift
    v = npu.load(x_ptr + src, mask=(src >= 0) & (src < n), other=-1.0)
    v = npu.where((offs >= lo) & (offs <= hi - 1), v, 0.0)
    npu.store(out_ptr + offs, v, mask=offs < n)


@npu.jit
def window_kernel(x_ptr, out_ptr, copy_ptr, H, W, oh0, ow0, h, BH: npu.constexpr, BW: npu.constexpr):
    """A conv-style window: rows oh0.., cols ow0.. of an H x W map, zero outside it (and all zero when
    h >= H); the valid part also stored back, at the same place, into `copy`."""
    ih = oh0 + npu.arange(0, BH)
    iw = ow0 + npu.arange(0, BW)
    inside = (ih[:, None] >= 0) & (ih[:, None] < H) & (iw[None, :] >= 0) & (iw[None, :] < W)
    mask = inside & (h < H)
    ptrs = ih[:, None] * W + iw[None, :]
    v = npu.load(x_ptr + ptrs, mask=mask, other=0.0)
    npu.store(out_ptr + npu.arange(0, BH)[:, None] * BW + npu.arange(0, BW)[None, :], v)
    npu.store(copy_ptr + ptrs, v + 1.0, mask=mask)


@npu.jit
def strided_window_kernel(x_ptr, out_ptr, start, lo, hi, n, STRIDE: npu.constexpr, BLOCK: npu.constexpr):
    """out[i] = x[start + STRIDE * i] where lo < start + STRIDE * i <= hi (and in x), else -1."""
    idx = start + STRIDE * npu.arange(0, BLOCK)
    mask = (lo < idx <= hi) & (0 <= idx < n)  # chained comparisons are `&` of two bounds
    npu.store(out_ptr + npu.arange(0, BLOCK), npu.load(x_ptr + idx, mask=mask, other=-1.0))


@npu.jit
def parity_kernel(x_ptr, out_ptr, n, BLOCK: npu.constexpr):
    """A mask that is not a bound (every other element): a gather, with the reason in the notes."""
    offs = npu.arange(0, BLOCK)
    v = npu.load(x_ptr + offs, mask=(offs % 2 == 0) & (offs < n), other=0.0)
    npu.store(out_ptr + offs, v, mask=offs < n)


def _ops(kernel, args, **meta) -> tuple[list[str], list[str]]:
    ins = kernel.inspect(*args, persistent=False, **meta)  # one program: the grids here are small
    return [i.op for i in ins.program.instructions()], ins.notes


@SETTINGS
@given(n=st.integers(1, 300), shift=st.integers(-80, 80), lo=st.integers(-20, 300), width=st.integers(-5, 300))
def test_lower_bound_and_two_sided_range(n: int, shift: int, lo: int, width: int) -> None:
    x = np.arange(n, dtype=np.float32) + 1
    i = np.arange(n)
    src = i - shift
    expected = np.where((src >= 0) & (src < n), x[np.clip(src, 0, n - 1)], -1.0)
    expected = np.where((i >= lo) & (i < lo + width), expected, 0.0).astype(np.float32)
    for _, out, *_ in launch_both(shift_kernel, (npu.cdiv(n, 64),),
                         lambda: [x.copy(), np.full(n, 9, np.float32), n, shift, lo, lo + width], BLOCK=64):
        np.testing.assert_array_equal(out, expected)
    ops, notes = _ops(shift_kernel, [x, np.zeros(n, np.float32), n, shift, lo, lo + width], BLOCK=64)
    assert "gather" not in ops and "scatter" not in ops and notes == []


@SETTINGS
@given(H=st.integers(1, 20), W=st.integers(1, 40), oh0=st.integers(-12, 20), ow0=st.integers(-20, 40),
       h=st.integers(0, 20))
def test_conv_window_two_sided_bounds_and_scalar_term(H: int, W: int, oh0: int, ow0: int, h: int) -> None:
    BH, BW = 8, 16
    x = np.arange(H * W, dtype=np.float32).reshape(H, W) + 1
    ih, iw = oh0 + np.arange(BH)[:, None], ow0 + np.arange(BW)[None, :]
    valid = (ih >= 0) & (ih < H) & (iw >= 0) & (iw < W) & (h < H)
    expected = np.where(valid, x[np.clip(ih, 0, H - 1), np.clip(iw, 0, W - 1)], 0.0)
    copy_expected = np.full((H, W), -3, np.float32)
    copy_expected[np.broadcast_to(ih, valid.shape)[valid], np.broadcast_to(iw, valid.shape)[valid]] = \
        expected[valid] + 1

    def args():
        return [x.copy(), np.full((BH, BW), 5, np.float32), np.full((H, W), -3, np.float32), H, W, oh0, ow0, h]
    for outs in launch_both(window_kernel, (1,), args, BH=BH, BW=BW):
        np.testing.assert_array_equal(outs[1], expected)
        np.testing.assert_array_equal(outs[2], copy_expected)
    ops, notes = _ops(window_kernel, args(), BH=BH, BW=BW)
    assert "gather" not in ops and "scatter" not in ops
    line = window_kernel.fn.__code__.co_firstlineno
    stride = "1" if W == 1 else "`W`"  # W = 1 compiles as the constant; a multiple of 16 is known aligned
    misaligned = [] if W % 16 == 0 else [
        f"line {line + at}: {what} rows are {stride} elements apart, not known to be a multiple of 32 bytes: "
        "a row may start mid-burst and cost one more burst" for what, at in (("load", 9), ("store", 11))]
    assert notes == misaligned
    assert ops.count("store") == 2


@SETTINGS
@given(start=st.integers(-40, 40), lo=st.integers(-45, 60), width=st.integers(-3, 60), n=st.integers(1, 60),
       stride=st.sampled_from([2, 3]))
def test_bounds_on_an_index_with_a_constant_step(start: int, lo: int, width: int, n: int, stride: int) -> None:
    """A strided window (a convolution with stride 2 or 3): bounds on start + stride * i are bounds on i."""
    x = np.arange(n, dtype=np.float32) + 1
    idx = start + stride * np.arange(16)
    valid = (idx > lo) & (idx <= lo + width) & (idx >= 0) & (idx < n)
    expected = np.where(valid, x[np.clip(idx, 0, n - 1)], -1.0)
    for _, out, *_ in launch_both(strided_window_kernel, (1,), lambda: [x.copy(), np.zeros(16, np.float32), start, lo,
                                                                        lo + width, n], STRIDE=stride, BLOCK=16):
        np.testing.assert_array_equal(out, expected)
    ops, notes = _ops(strided_window_kernel, [x, np.zeros(16, np.float32), start, lo, lo + width, n], STRIDE=stride,
                      BLOCK=16)
    assert "gather" not in ops and not [n for n in notes if "gather" in n]


def test_a_gather_says_which_mask_term_was_not_a_bound() -> None:
    n = 50
    x = np.arange(64, dtype=np.float32) + 1
    for _, out, _ in launch_both(parity_kernel, (1,), lambda: [x.copy(), np.zeros(n, np.float32), n], BLOCK=64):
        np.testing.assert_array_equal(out, np.where(np.arange(n) % 2 == 0, x[:n], 0.0))
    ops, notes = _ops(parity_kernel, [x, np.zeros(n, np.float32), n], BLOCK=64)
    assert "gather" in ops
    line = parity_kernel.fn.__code__.co_firstlineno + 4  # the load
    assert notes == [f"line {line}: load lowered to gather: its address is affine, but its mask is not: "
                     f"line {line}: mask term `eq` not recognised: it compares a wrapped (`%`) index"]


@settings(max_examples=10, deadline=None, derandomize=True)
@given(N=st.integers(1, 2), H=st.integers(1, 9), W=st.integers(1, 9), C=st.integers(1, 20), K=st.integers(1, 20),
       R=st.integers(1, 3), S=st.integers(1, 3), stride=st.integers(1, 2), pad=st.integers(0, 2))
def test_a_triton_style_convolution_pads_with_masks_not_gathers(N, H, W, C, K, R, S, stride, pad) -> None:
    """examples/idioms.py's direct NHWC convolution: its padding is a two-sided bound on iw and a scalar
    term for ih, so every tile is a strided DMA; ragged shapes, strides 1 and 2, against numpy."""
    assume(H + 2 * pad >= R and W + 2 * pad >= S)  # at least one output position
    rng = np.random.default_rng(N * H * W + C * K)
    x = rng.standard_normal((N, H, W, C)).astype(np.float16)
    w = rng.standard_normal((R, S, C, K)).astype(np.float16)
    expected = idioms.ref_conv2d_nhwc(x, w, stride, pad).astype(np.float32)
    for interpret in (True, False):
        y, _ = idioms.run_conv2d_nhwc(x, w, stride, pad, (16, 16, 16), interpret=interpret)
        np.testing.assert_allclose(y.astype(np.float32), expected, rtol=1e-2, atol=2e-2)
    OH, OW = expected.shape[1:3]
    ops, notes = _ops(idioms.conv2d_nhwc_kernel, [x, w, np.zeros_like(expected, np.float16), H, W, C, K, OH, OW],
                      STRIDE=stride, PAD=pad, R=R, S=S, BLOCK_W=16, BLOCK_K=16, BLOCK_C=16)
    assert "gather" not in ops and "scatter" not in ops and not [n for n in notes if "gather" in n]
