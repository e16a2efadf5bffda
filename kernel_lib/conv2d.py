"""conv2d: implicit GEMM through a convolution descriptor (per group), or per-tap vector MACs for depthwise.

The output [N·OH·OW, K_out] is the product of the input's im2col matrix, read block by block through
`npu.make_conv_descriptor` (a window DMA into L1, then the cube's own img2col move into L0A: no gather),
and the filter arranged as a [K, K_out] matrix in the descriptor's (c1, r, s, c0) tap order (channels in
groups of CB). One program computes one [BM, BN] output tile of one group; bias, activation and an int8
requantisation are applied to the accumulator (fp32, int32 for int8) before the one store. Output rows are
positions (n, oy, ox), so the kernel writes NHWC; an NCHW call gets its result transposed on the host (a
copy outside the simulated cycles). A grouped convolution is one GEMM per group: group g's channels are a
whole number of channel blocks, so its taps are a contiguous range of the descriptor's K (the third grid
axis picks the group). Groups of fewer than CUBE_MIN_CHANNELS channels (depthwise: one) run on the vector
unit instead (`kernel_lib.conv2d_vector`): on the cube their K would be mostly fractal padding.
"""

from __future__ import annotations

from typing import Any

import numpy as np

import npulang as npu
from autotune import Config
from kernel_lib import arguments
from kernel_lib.activations import activate
from kernel_lib.conv2d_vector import requant_mode, requantise, vector_problem
from kernel_lib.errors import OperatorError
from kernel_lib.gemm import _out_dtype, _requant_scale, check_activation
from kernel_lib.tuning import Problem, TunedKernel

DTYPES = (np.dtype(np.float16), arguments.FLOAT_DTYPES[1], np.dtype(np.int8))  # fp16, bf16, int8: the cube's
CUBE_MIN_CHANNELS = 4  # groups with fewer input channels run on the vector unit (see conv2d_vector)


@npu.jit
def _conv2d_kernel(x_ptr, w_ptr, bias_ptr, scale_ptr, y_ptr, N: npu.constexpr, C: npu.constexpr, H: npu.constexpr,
                   W: npu.constexpr, KOUT: npu.constexpr, R: npu.constexpr, S: npu.constexpr, STRIDE: npu.constexpr,
                   PAD: npu.constexpr, DIL: npu.constexpr, LAYOUT: npu.constexpr, GROUPS: npu.constexpr,
                   HAS_BIAS: npu.constexpr, ACTIVATION: npu.constexpr, REQUANT: npu.constexpr, ACC: npu.constexpr,
                   CB: npu.constexpr, BM: npu.constexpr, BN: npu.constexpr, BK: npu.constexpr):
    OH = (H + 2 * PAD - DIL * (R - 1) - 1) // STRIDE + 1
    OW = (W + 2 * PAD - DIL * (S - 1) - 1) // STRIDE + 1
    M = N * OH * OW
    KG = KOUT // GROUPS
    TAPS = (C // GROUPS + CB - 1) // CB * R * S * CB  # one group's im2col columns (CB divides C // GROUPS)
    g = npu.program_id(2)
    x = npu.make_conv_descriptor(x_ptr, shape=(N, C, H, W), kernel=(R, S), block_shape=[BM, BK], stride=STRIDE,
                                 padding=PAD, dilation=DIL, layout=LAYOUT, channel_block=CB)
    w = npu.make_tensor_descriptor(w_ptr + g * TAPS * KG, shape=[TAPS, KG], strides=[KG, 1], block_shape=[BK, BN])
    y = npu.make_tensor_descriptor(y_ptr + g * KG, shape=[M, KG], strides=[KOUT, 1], block_shape=[BM, BN])
    m0 = npu.program_id(0) * BM
    n0 = npu.program_id(1) * BN
    acc = npu.zeros((BM, BN), dtype=ACC)
    for k in range(0, TAPS, BK):
        acc = npu.dot(x.load([m0, g * TAPS + k]), w.load([k, n0]), acc)
    cols = n0 + npu.arange(0, BN)
    if HAS_BIAS:
        acc = acc + npu.load(bias_ptr + g * KG + cols, mask=cols < KG, other=0).to(ACC)[None, :]
    acc = activate(acc, ACTIVATION)
    if REQUANT != "":
        acc = requantise(acc, scale_ptr, g * KG + cols, cols < KG, REQUANT)
    y.store([m0, n0], acc.to(y_ptr.dtype.element_ty))


def weight_matrix(w: np.ndarray, cb: int) -> np.ndarray:
    """An OIHW filter [K_out, C, R, S] as the descriptor's [K, K_out] matrix: rows in (c1, r, s, c0) order
    (a host-side rearrangement of the weights, as a framework does once per layer)."""
    kout, c, r, s = w.shape
    groups = -(-c // cb)
    padded = np.zeros((kout, groups * cb, r, s), w.dtype)
    padded[:, :c] = w
    return np.ascontiguousarray(padded.reshape(kout, groups, cb, r, s).transpose(1, 3, 4, 2, 0)
                                .reshape(groups * r * s * cb, kout))


def _heuristic(cb: int, r: int, s: int, m: int, ow: int, kout: int) -> list[dict[str, Any]]:
    """The rule: output tiles of BM × 64, then BM × 128, with BM = 112 when it is a whole number of output rows
    (112 = 2·56 = 4·28 = 8·14 = 16·7: ResNet's widths; a tile of whole rows reads whole window rows), else
    128; smaller tiles for small problems; for each, the two longest K steps dividing R·S·CB that keep an A
    block within 16 K elements."""
    steps = [cb * d for d in range(r * s, 0, -1) if (r * s) % d == 0]
    bm0 = 112 if 112 % ow == 0 else 128
    out = []
    for bm, bn in ((bm0, 64), (bm0, 128), (64, 64), (32, 32)):
        if (bm > 2 * max(16, m) or bn > 2 * max(16, kout)) and (bm, bn) != (32, 32):
            continue
        bks = [bk for bk in steps if bm * bk <= 16384] or [min(steps)]
        out += [{"BM": bm, "BN": bn, "BK": bk} for bk in bks[:2]]
    return out


def _prune(configs: list[Config], named: dict[str, Any]) -> list[Config]:
    """Only configs whose K step divides R·S·CB (a block never spans two channel groups)."""
    taps = named["R"] * named["S"] * named["CB"]
    return [c for c in configs if taps % c.kwargs["BK"] == 0] or configs


# The search space (npu-tune): output tiles BM × BN (56 to 224: whole output rows of ResNet's widths 7, 14, 28 and
# 56, in sizes that cut the 14×14 and 7×7 layers into enough tiles for 24 cores) and the K step
# BK (which must divide R·S·CB: the others are pruned before anything compiles; 21, 49 and 147 divide the 7×7
# stem's 147 taps of 3 channels). The channel block CB is the rule's (`channel_block`): the filter matrix is
# arranged for it on the host, so it is not searched.
CONV2D = TunedKernel("conv2d", _conv2d_kernel, {"BM": [32, 56, 64, 70, 84, 98, 112, 128, 140, 168, 196, 224, 256],
                                                "BN": [32, 64, 128, 256],
                                                "BK": [16, 21, 32, 48, 49, 64, 96, 112, 128, 144, 147, 192, 256]},
                     key=["N", "C", "H", "W", "KOUT", "R", "S", "STRIDE", "PAD", "DIL", "LAYOUT", "GROUPS", "HAS_BIAS",
                          "ACTIVATION", "REQUANT"], prune=_prune)


def _int(op: str, name: str, value: Any, minimum: int) -> int:
    pair = arguments.int_pair(op, name, value, minimum)
    if pair[0] != pair[1]:
        raise OperatorError(f"kernel_lib.{op}: {name} must be the same along H and W, got {value!r}")
    return int(pair[0])


def channel_block(cg: int, groups: int, taps: int, dtype: np.dtype) -> int:
    """Channels per block CB: 32 bytes (16 fp16, 32 int8: one GM burst and the cube's K fractal) when the
    filter has several taps (R·S·CB columns of a window must fit a K step within L0A), 256 bytes for a 1×1
    filter (its window is a plain [positions, CB] matrix: longer K steps, fewer DMA commands); fewer for
    fewer channels; with groups, the largest divisor of a group's channels within that, so that a group is
    a whole number of blocks."""
    unit = 32 // dtype.itemsize * (8 if taps == 1 else 1)
    if groups == 1:
        return min(unit, cg)
    return max(d for d in range(1, min(unit, cg) + 1) if cg % d == 0)


def on_vector(cg: int, groups: int) -> bool:
    """The rule choosing the kernel: groups of fewer than CUBE_MIN_CHANNELS channels run on the vector unit."""
    return groups > 1 and cg < CUBE_MIN_CHANNELS


def problem(x: np.ndarray, w: np.ndarray, bias: np.ndarray | None, y: np.ndarray, stride: int, padding: int,
            dilation: int, activation: str | None, layout: str, *, groups: int = 1,
            scale: np.ndarray | None = None) -> Problem:
    """The launch computing `y` from checked arguments (also what npu-tune tunes): NHWC `y` on the cube, or
    `y` in `layout` on the vector unit when a group has fewer than CUBE_MIN_CHANNELS channels."""
    n, c, h, wd = x.shape if layout == "NCHW" else (x.shape[0], x.shape[3], x.shape[1], x.shape[2])
    kout, cg, r, s = w.shape
    if on_vector(cg, groups):
        return vector_problem(x, w, bias, scale, y, (stride, padding, dilation), groups, activation, layout)
    _, oh, ow, _ = y.shape
    m = n * oh * ow
    cb = channel_block(cg, groups, r * s, x.dtype)
    int8 = x.dtype == np.int8
    flags = {"CB": cb, "N": n, "C": c, "H": h, "W": wd, "KOUT": kout, "R": r, "S": s, "STRIDE": stride, "PAD": padding,
             "DIL": dilation, "LAYOUT": layout, "GROUPS": groups, "HAS_BIAS": bias is not None,
             "ACTIVATION": activation or "", "REQUANT": requant_mode(scale),
             "ACC": npu.int32 if int8 else npu.float32}
    spec = npu.get_machine()
    macs = m * kout * cg * r * s
    kg = kout // groups
    filt = np.concatenate([weight_matrix(w[i * kg:(i + 1) * kg], cb) for i in range(groups)])
    args = (x, filt, y if bias is None else bias, y if scale is None else scale, y)
    return Problem(CONV2D, lambda meta: (npu.cdiv(m, meta["BM"]), npu.cdiv(kg, meta["BN"]), groups), args, flags,
                   _heuristic(cb, r, s, m, ow, kg),
                   macs / (spec.cube_macs_per_cycle(dtype="i8" if int8 else "f16") * spec.cores), "cube", 2 * macs,
                   f"{n},{c},{h},{wd},{kout},{r},{s},{stride},{padding}" + (f",groups={groups}" if groups > 1 else ""),
                   op="conv2d")


def conv2d(x: np.ndarray, w: np.ndarray, bias: np.ndarray | None = None, *, stride: int | tuple[int, int] = 1,
           padding: int | tuple[int, int] = 0, dilation: int | tuple[int, int] = 1, groups: int = 1,
           activation: str | None = None, layout: str = "NCHW", out_dtype: Any = None,
           scale: float | np.ndarray | None = None) -> np.ndarray:
    """activation(conv2d(x, w) + bias), as `torch.nn.functional.conv2d` (cross-correlation), grouped too.

    x is [N, C, H, W] ("NCHW") or [N, H, W, C] ("NHWC"), w is OIHW [K_out, C/groups, R, S], bias [K_out].
    fp16/bf16 accumulate in fp32 and return `out_dtype` (default x's dtype); int8 accumulate in int32 and
    return `out_dtype` (default int32; `np.int8` requantises as `kernel_lib.gemm` does: y =
    clamp(floor(acc · scale + 0.5), -128, 127) with `scale` a float or a float32 [K_out] array). The bias
    has the output's dtype, as gemm's. The result is in x's layout. stride, padding (zeros) and dilation are
    ints or equal (h, w) pairs. `groups` divides C and K_out (groups = C is depthwise, K_out = C · multiplier).
    """
    op = "conv2d"
    x = arguments.array(op, "x", x, DTYPES, ndim=4)
    w = arguments.array(op, "w", w, DTYPES, ndim=4)
    arguments.same_dtype(op, x=x, w=w)
    check_activation(op, activation)
    if layout not in ("NCHW", "NHWC"):
        raise OperatorError(f"kernel_lib.{op}: layout must be 'NCHW' or 'NHWC', got {layout!r}")
    stride, padding, dilation = (_int(op, "stride", stride, 1), _int(op, "padding", padding, 0),
                                 _int(op, "dilation", dilation, 1))
    n, c, h, wd = x.shape if layout == "NCHW" else (x.shape[0], x.shape[3], x.shape[1], x.shape[2])
    kout, cw, r, s = w.shape
    if isinstance(groups, bool) or not isinstance(groups, (int, np.integer)) or groups < 1:
        raise OperatorError(f"kernel_lib.{op}: groups must be a positive int, got {groups!r}")
    groups = int(groups)  # a numpy integer would reach the launch's arithmetic
    if c % groups or kout % groups:
        raise OperatorError(f"kernel_lib.{op}: groups={groups} must divide the input channels ({c}) and the "
                            f"output channels ({kout})")
    if cw * groups != c:
        raise OperatorError(f"kernel_lib.{op}: w has {cw} input channels per group, x has {c} channels in {groups} "
                            f"group(s), so {c // groups} (w is OIHW [K_out, C/groups, R, S], x is {layout})")
    y_dtype = _out_dtype(op, x, out_dtype)
    if bias is not None:
        bias = arguments.array(op, "bias", bias, (y_dtype,), ndim=1)
        arguments.shape(op, "bias", bias, (kout,))
    requant = _requant_scale(op, np.empty(0, y_dtype), kout, scale)
    oh = (h + 2 * padding - dilation * (r - 1) - 1) // stride + 1
    ow = (wd + 2 * padding - dilation * (s - 1) - 1) // stride + 1
    if oh < 1 or ow < 1:
        raise OperatorError(f"kernel_lib.{op}: a {r}x{s} filter (dilation {dilation}) does not fit the {h}x{wd} "
                            f"input with padding {padding}")
    vector = on_vector(cw, groups)
    y = np.empty((n, kout, oh, ow) if vector and layout == "NCHW" else (n, oh, ow, kout), y_dtype)
    problem(x, w, bias, y, stride, padding, dilation, activation, layout, groups=groups, scale=requant).launch()
    return np.ascontiguousarray(y.transpose(0, 3, 1, 2)) if layout == "NCHW" and not vector else y
