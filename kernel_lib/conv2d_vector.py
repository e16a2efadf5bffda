"""Depthwise and narrow grouped conv2d on the vector unit: per-tap multiply-accumulate, no cube.

A depthwise convolution (groups = C: one input channel per group, K_out = C·multiplier) has a reduction of
R·S taps per output: on the cube its K of one channel would be padded to a 16-wide fractal (15/16 of the
work wasted, and as much of L0A), so it runs, as real NPUs and cuDNN run it, on the vector unit. One
program computes a [BW output columns, BG groups] tile of one output row and one multiplier index j:
for every tap (r, s) and every channel ci of the group it loads the [BW, BG] input tile the tap reads
(a strided 2-D DMA; the padding is the load's mask) and the tap's BG weights, and multiply-accumulates in
fp32 (int32 for int8). The input and the output are addressed through their layout's strides, so NCHW
and NHWC are read and written in place. Groups of a few channels (C/groups below
`conv2d.CUBE_MIN_CHANNELS`) take the same kernel with a loop over the group's channels.
"""

from __future__ import annotations

from typing import Any

import numpy as np

import npulang as npu
from kernel_lib.activations import activate
from kernel_lib.launching import pow2_at_least
from kernel_lib.tuning import Problem, TunedKernel


@npu.jit
def requantise(acc, scale_ptr, cols, valid, REQUANT: npu.constexpr):
    """int8 requantisation of an int32 accumulator, as kernel_lib.gemm: clamp(floor(acc·scale + 0.5), -128, 127)
    with one scale ("tensor") or one per output channel ("channel", at `cols`)."""
    if REQUANT == "tensor":
        scale = npu.load(scale_ptr)
    else:
        scale = npu.load(scale_ptr + cols, mask=valid, other=0.0)[None, :]
    return npu.minimum(npu.maximum(npu.floor(acc.to(npu.float32) * scale + 0.5), -128.0), 127.0)


@npu.jit
def _vector_kernel(x_ptr, w_ptr, bias_ptr, scale_ptr, y_ptr, C: npu.constexpr, H: npu.constexpr, W: npu.constexpr,
                   KOUT: npu.constexpr, R: npu.constexpr, S: npu.constexpr, STRIDE: npu.constexpr,
                   PAD: npu.constexpr, DIL: npu.constexpr, GROUPS: npu.constexpr, LAYOUT: npu.constexpr,
                   HAS_BIAS: npu.constexpr, ACTIVATION: npu.constexpr,
                   REQUANT: npu.constexpr, ACC: npu.constexpr, BW: npu.constexpr, BG: npu.constexpr):
    OH = (H + 2 * PAD - DIL * (R - 1) - 1) // STRIDE + 1
    OW = (W + 2 * PAD - DIL * (S - 1) - 1) // STRIDE + 1
    CG = C // GROUPS
    KG = KOUT // GROUPS
    if LAYOUT == "NCHW":  # element strides of x and y along (n, c, h, w)
        XN, XC, XH, XW = C * H * W, H * W, W, 1
        YN, YC, YH, YW = KOUT * OH * OW, OH * OW, OW, 1
    else:
        XN, XC, XH, XW = H * W * C, 1, W * C, C
        YN, YC, YH, YW = OH * OW * KOUT, 1, OW * KOUT, KOUT
    row_blocks = (OW + BW - 1) // BW
    pid = npu.program_id(0)
    n = pid // (OH * row_blocks)
    oy = pid // row_blocks % OH
    ox = pid % row_blocks * BW + npu.arange(0, BW)
    g = npu.program_id(1) * BG + npu.arange(0, BG)
    j = npu.program_id(2)
    acc = npu.zeros((BW, BG), dtype=ACC)
    for r in range(R):
        iy = oy * STRIDE + r * DIL - PAD
        for s in range(S):
            ix = ox * STRIDE + s * DIL - PAD
            inside = ((ix >= 0) & (ix < W) & (iy >= 0) & (iy < H))[:, None] & (g < GROUPS)[None, :]
            for ci in range(CG):
                xv = npu.load(x_ptr + n * XN + iy * XH + ix[:, None] * XW + (g[None, :] * CG + ci) * XC, mask=inside,
                              other=0)
                wv = npu.load(w_ptr + ((r * S + s) * CG + ci) * KOUT + j * GROUPS + g, mask=g < GROUPS, other=0)
                acc = acc + xv.to(ACC) * wv.to(ACC)[None, :]
    cols = g * KG + j
    if HAS_BIAS:
        acc = acc + npu.load(bias_ptr + cols, mask=g < GROUPS, other=0).to(ACC)[None, :]
    acc = activate(acc, ACTIVATION)
    if REQUANT != "":
        acc = requantise(acc, scale_ptr, cols, g < GROUPS, REQUANT)
    npu.store(y_ptr + n * YN + oy * YH + ox[:, None] * YW + cols[None, :] * YC, acc.to(y_ptr.dtype.element_ty),
              mask=(ox < OW)[:, None] & (g < GROUPS)[None, :])


def requant_mode(scale: np.ndarray | None) -> str:
    """The REQUANT flag of a checked scale: "" (none), "tensor" or "channel"."""
    return "" if scale is None else "tensor" if scale.size == 1 else "channel"


def vector_weights(w: np.ndarray, groups: int) -> np.ndarray:
    """An OIHW filter [K_out, C/groups, R, S] as [R, S, C/groups, K_out/groups, groups]: a tap's weights for a
    block of groups are contiguous (output channel o = g·(K_out/groups) + j)."""
    kout, cg, r, s = w.shape
    return np.ascontiguousarray(w.reshape(groups, kout // groups, cg, r, s).transpose(3, 4, 2, 1, 0))


def _heuristic(groups: int, ow: int) -> list[dict[str, Any]]:
    """The rule: BG = the groups rounded up to a power of two, at most 64 (NHWC reads them as one row of
    channels), BW = the output row likewise, at most 32; then halves of each, should UB not hold them."""
    bg, bw = min(64, pow2_at_least(groups)), min(32, pow2_at_least(ow))
    return [{"BW": max(1, bw // d), "BG": max(1, bg // e)} for d, e in ((1, 1), (1, 2), (2, 2), (4, 4))]


# The search space (npu-tune): output columns BW and groups BG per tile.
VECTOR_CONV2D = TunedKernel("conv2d_vector", _vector_kernel, {"BW": [8, 16, 32, 64], "BG": [8, 16, 32, 64, 128]},
                            key=["C", "H", "W", "KOUT", "R", "S", "STRIDE", "PAD", "DIL", "GROUPS", "LAYOUT",
                                 "HAS_BIAS", "ACTIVATION", "REQUANT"])


def vector_problem(x: np.ndarray, w: np.ndarray, bias: np.ndarray | None, scale: np.ndarray | None, y: np.ndarray,
                   geometry: tuple[int, int, int], groups: int, activation: str | None, layout: str) -> Problem:
    """The launch computing `y` (in `layout`) on the vector unit; geometry is (stride, padding, dilation)."""
    stride, padding, dilation = geometry
    n, c, h, wd = x.shape if layout == "NCHW" else (x.shape[0], x.shape[3], x.shape[1], x.shape[2])
    kout, _, r, s = w.shape
    oh, ow = y.shape[2:] if layout == "NCHW" else y.shape[1:3]
    flags = {"C": c, "H": h, "W": wd, "KOUT": kout, "R": r, "S": s, "STRIDE": stride, "PAD": padding,
             "DIL": dilation, "GROUPS": groups, "LAYOUT": layout, "HAS_BIAS": bias is not None,
             "ACTIVATION": activation or "", "REQUANT": requant_mode(scale),
             "ACC": npu.int32 if x.dtype == np.int8 else npu.float32}
    spec = npu.get_machine()
    macs = n * oh * ow * kout * (c // groups) * r * s
    args = (x, vector_weights(w, groups), y if bias is None else bias, y if scale is None else scale, y)
    # the bound no launch beats: x, w read once and y written once at HBM bandwidth, or one vector
    # lane-operation per MAC at the accumulator's width (fp32/int32) over all cores, whichever is longer
    hbm = (x.nbytes + w.nbytes + y.nbytes) / spec.hbm_bytes_per_cycle
    lanes = macs / (spec.vector.bytes_per_cycle // 4 * spec.cores)
    return Problem(VECTOR_CONV2D, lambda meta: (n * oh * npu.cdiv(ow, meta["BW"]), npu.cdiv(groups, meta["BG"]),
                                                kout // groups),
                   args, flags, _heuristic(groups, ow), max(hbm, lanes), "HBM" if hbm >= lanes else "vector", 2 * macs,
                   f"{n},{c},{h},{wd},{kout},{r},{s},{stride},{padding}", op="conv2d")
