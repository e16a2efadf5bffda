"""max_pool2d and avg_pool2d over NCHW or NHWC feature maps, as `torch.nn.functional`'s.

Each program takes a tile of outputs and, for every window tap (a loop over the R rows, unrolled over S), loads the
input positions that tap reads as one strided 2-D block, with the border masked (zero or -inf
padding): NHWC tiles are [BW output columns, BC channels] of one output row (contiguous channels);
NCHW tiles are [BH, BW] outputs of one channel plane. Neighbouring taps re-read the same lines, which
then hit in L2.
"""

from __future__ import annotations

from typing import Any

import numpy as np

import npulang as npu
from autotune import Config
from kernel_lib import arguments
from kernel_lib.errors import OperatorError
from kernel_lib.launching import cores, pow2_at_least
from kernel_lib.tuning import Problem, TunedKernel


@npu.jit
def _tap(acc, ptrs, mask, MAX: npu.constexpr):
    """One window tap folded into the fp32 accumulator: a max, or a sum (the average divides at the end)."""
    if MAX:
        acc = npu.maximum(acc, npu.load(ptrs, mask=mask, other=-float("inf")).to(npu.float32))
    else:
        acc = acc + npu.load(ptrs, mask=mask, other=0.0).to(npu.float32)
    return acc


@npu.jit
def _pool_nhwc(x_ptr, y_ptr, N, H, W, C, OH, OW, R: npu.constexpr, S: npu.constexpr, STRIDE: npu.constexpr,
               PAD: npu.constexpr, DIL: npu.constexpr, MAX: npu.constexpr, DIVISOR: npu.constexpr,
               BW: npu.constexpr, BC: npu.constexpr, num_stages: npu.constexpr):
    pid = npu.program_id(0)
    step = npu.num_programs(0)
    w_tiles = npu.cdiv(OW, BW)
    c_tiles = npu.cdiv(C, BC)
    for t in npu.range(pid, N * OH * w_tiles * c_tiles, step, num_stages=num_stages):
        row = t // (w_tiles * c_tiles)
        n = row // OH
        oh = row % OH
        ow = (t // c_tiles) % w_tiles * BW + npu.arange(0, BW)
        c = t % c_tiles * BC + npu.arange(0, BC)
        out_mask = (ow[:, None] < OW) & (c[None, :] < C)
        acc = npu.full([BW, BC], -float("inf") if MAX else 0.0, dtype=npu.float32)
        for r in range(R):  # a loop, not unrolled: R·S taps in flight at once would need R·S event ids
            ih = oh * STRIDE - PAD + r * DIL
            for s in npu.static_range(S):
                iw = ow * STRIDE - PAD + s * DIL
                mask = out_mask & (iw[:, None] >= 0) & (iw[:, None] < W) & (ih >= 0) & (ih < H)
                ptrs = x_ptr + ((n * H + ih) * W + iw[:, None]) * C + c[None, :]
                acc = _tap(acc, ptrs, mask, MAX)
        if not MAX:
            acc = acc / DIVISOR
        npu.store(y_ptr + ((n * OH + oh) * OW + ow[:, None]) * C + c[None, :], acc.to(y_ptr.dtype.element_ty),
                  mask=out_mask)


@npu.jit
def _pool_nchw(x_ptr, y_ptr, P, H, W, OH, OW, R: npu.constexpr, S: npu.constexpr, STRIDE: npu.constexpr,
               PAD: npu.constexpr, DIL: npu.constexpr, MAX: npu.constexpr, DIVISOR: npu.constexpr,
               BH: npu.constexpr, BW: npu.constexpr, num_stages: npu.constexpr):
    pid = npu.program_id(0)
    step = npu.num_programs(0)
    h_tiles = npu.cdiv(OH, BH)
    w_tiles = npu.cdiv(OW, BW)
    for t in npu.range(pid, P * h_tiles * w_tiles, step, num_stages=num_stages):
        plane = t // (h_tiles * w_tiles)
        oh = (t // w_tiles) % h_tiles * BH + npu.arange(0, BH)
        ow = t % w_tiles * BW + npu.arange(0, BW)
        out_mask = (oh[:, None] < OH) & (ow[None, :] < OW)
        acc = npu.full([BH, BW], -float("inf") if MAX else 0.0, dtype=npu.float32)
        for r in range(R):  # a loop, not unrolled: R·S taps in flight at once would need R·S event ids
            ih = oh * STRIDE - PAD + r * DIL
            for s in npu.static_range(S):
                iw = ow * STRIDE - PAD + s * DIL
                mask = out_mask & (ih[:, None] >= 0) & (ih[:, None] < H) & (iw[None, :] >= 0) & (iw[None, :] < W)
                ptrs = x_ptr + (plane * H + ih[:, None]) * W + iw[None, :]
                acc = _tap(acc, ptrs, mask, MAX)
        if not MAX:
            acc = acc / DIVISOR
        npu.store(y_ptr + (plane * OH + oh[:, None]) * OW + ow[None, :], acc.to(y_ptr.dtype.element_ty),
                  mask=out_mask)


def _prune_nhwc(configs: list[Config], named: dict[str, Any]) -> list[Config]:
    """Tiles wider than the output row or the channels (rounded up to a power of two) only move padding."""
    ow, c = named["OW"], named["C"]
    return [k for k in configs if k.kwargs["BW"] <= pow2_at_least(ow) and k.kwargs["BC"] <= max(
        16, pow2_at_least(c))] or configs


def _prune_nchw(configs: list[Config], named: dict[str, Any]) -> list[Config]:
    """Tiles taller or wider than the output plane (rounded up to a power of two) only move padding."""
    oh, ow = named["OH"], named["OW"]
    return [k for k in configs if k.kwargs["BH"] <= pow2_at_least(oh) and k.kwargs["BW"] <= max(
        8, pow2_at_least(ow))] or configs


# The search spaces (npu-tune): output tiles ([BW, BC] of one output row for NHWC, [BH, BW] of one channel
# plane for NCHW) and the tile loop's pipelining depth. The key: the problem's sizes and the window
# (size, stride, padding, dilation, max or average).
WINDOW = ["R", "S", "STRIDE", "PAD", "DIL", "MAX"]
NHWC = TunedKernel("pool2d", _pool_nhwc, {"BW": [1, 2, 4, 8, 16, 32, 64], "BC": [16, 32, 64, 128, 256],
                                          "num_stages": [1, 2, 3]},
                   key=["N", "H", "W", "C", "OH", "OW", *WINDOW], prune=_prune_nhwc)
NCHW = TunedKernel("pool2d", _pool_nchw, {"BH": [1, 2, 4, 8, 16, 32, 64], "BW": [8, 16, 32, 64, 128, 256],
                                          "num_stages": [1, 2, 3]},
                   key=["P", "H", "W", "OH", "OW", *WINDOW], prune=_prune_nchw)


def _pool(op: str, x: np.ndarray, kernel_size: Any, stride: Any, padding: Any, dilation: Any, layout: str,
          is_max: bool) -> np.ndarray:
    x = arguments.array(op, "x", x, ndim=4)
    if layout not in ("NCHW", "NHWC"):
        raise OperatorError(f"kernel_lib.{op}: layout must be 'NCHW' or 'NHWC', got {layout!r}")
    r, s = arguments.int_pair(op, "kernel_size", kernel_size, 1)
    stride_h, stride_w = arguments.int_pair(op, "stride", kernel_size if stride is None else stride, 1)
    pad_h, pad_w = arguments.int_pair(op, "padding", padding, 0)
    dil_h, dil_w = arguments.int_pair(op, "dilation", dilation, 1)
    if (stride_h, pad_h, dil_h) != (stride_w, pad_w, dil_w):
        raise OperatorError(f"kernel_lib.{op}: different stride, padding or dilation per axis is not supported; "
                            f"got stride {stride_h, stride_w}, padding {pad_h, pad_w}, dilation {dil_h, dil_w}")
    if 2 * pad_h > r or 2 * pad_w > s:
        raise OperatorError(f"kernel_lib.{op}: padding {pad_h, pad_w} must be at most half the kernel size {r, s}")
    n, c, h, w = x.shape if layout == "NCHW" else (x.shape[0], x.shape[3], x.shape[1], x.shape[2])
    oh = (h + 2 * pad_h - dil_h * (r - 1) - 1) // stride_h + 1
    ow = (w + 2 * pad_w - dil_w * (s - 1) - 1) // stride_w + 1
    if oh < 1 or ow < 1:
        raise OperatorError(f"kernel_lib.{op}: a {r}x{s} window does not fit the {h}x{w} input")
    y = np.empty((n, c, oh, ow) if layout == "NCHW" else (n, oh, ow, c), x.dtype)
    problem(op, x, y, (r, s), stride_h, pad_h, dil_h, layout, is_max).launch()
    return y


def problem(op: str, x: np.ndarray, y: np.ndarray, window: tuple[int, int], stride: int, pad: int, dil: int,
            layout: str, is_max: bool) -> Problem:
    """The launch of one pooling over checked arguments (y has the output's shape). The rule: NHWC tiles of
    up to 256 channels and the output row's width within 4096 elements, else 8 or 1 columns; NCHW tiles of
    up to 256 columns and as many output rows as keep 4096 elements, else 8 or 1 rows; double-buffered.
    Roofline: x read once, y written once."""
    flags = {"R": window[0], "S": window[1], "STRIDE": stride, "PAD": pad, "DIL": dil, "MAX": is_max,
             "DIVISOR": window[0] * window[1]}
    roof = (x.nbytes + y.nbytes) / npu.get_machine().hbm_bytes_per_cycle
    shape = ",".join(map(str, (*x.shape, *window, stride, pad))) + (f",dilation={dil}" if dil > 1 else "")
    grid = lambda meta: (cores(),)  # noqa: E731  (persistent: one program per core)
    if layout == "NHWC":
        n, h, w, c = x.shape
        oh, ow = y.shape[1:3]
        bc = min(pow2_at_least(c), 256)
        rule = [{"BW": bw, "BC": bc, "num_stages": 2} for bw in (min(pow2_at_least(ow), 4096 // bc), 8, 1)]
        return Problem(NHWC, grid, (x, y, n, h, w, c, oh, ow), flags, rule, roof, "HBM", shape=shape + ":nhwc",
                       op=op)
    n, c, h, w = x.shape
    oh, ow = y.shape[2:]
    bw = min(pow2_at_least(ow), 256)
    rule = [{"BH": bh, "BW": bw, "num_stages": 2} for bh in (min(pow2_at_least(oh), 4096 // bw), 8, 1)]
    return Problem(NCHW, grid, (x, y, n * c, h, w, oh, ow), flags, rule, roof, "HBM", shape=shape, op=op)


def max_pool2d(x: np.ndarray, kernel_size: int | tuple[int, int], stride: int | tuple[int, int] | None = None,
               padding: int | tuple[int, int] = 0, dilation: int | tuple[int, int] = 1, *,
               layout: str = "NCHW") -> np.ndarray:
    """The maximum over each window (padding never wins), as `torch.nn.functional.max_pool2d`.

    x is [N, C, H, W] ("NCHW") or [N, H, W, C] ("NHWC"); `stride` defaults to `kernel_size`; the
    output size rounds down (ceil_mode=False).
    """
    return _pool("max_pool2d", x, kernel_size, stride, padding, dilation, layout, True)


def avg_pool2d(x: np.ndarray, kernel_size: int | tuple[int, int], stride: int | tuple[int, int] | None = None,
               padding: int | tuple[int, int] = 0, *, layout: str = "NCHW") -> np.ndarray:
    """The mean over each window, padding counted as zeros (count_include_pad=True), as PyTorch's default."""
    return _pool("avg_pool2d", x, kernel_size, stride, padding, 1, layout, False)
