"""conv2d: implicit GEMM through a convolution descriptor, with a fused bias and activation.

The output [N·OH·OW, K_out] is the product of the input's im2col matrix, read block by block through
`npu.make_conv_descriptor` (a window DMA into L1, then the cube's own img2col move into L0A: no gather),
and the filter arranged as a [K, K_out] matrix in the descriptor's (c1, r, s, c0) tap order (channels in
groups of CB). One program computes one [BM, BN] output tile; bias and activation are applied to the fp32
accumulator before the one store. Output rows are positions (n, oy, ox), so the kernel writes NHWC; an
NCHW call gets its result transposed on the host (a copy outside the simulated cycles).
"""

from __future__ import annotations

from typing import Any

import numpy as np

import npulang as npu
from autotune import Config
from kernel_lib import arguments
from kernel_lib.activations import activate
from kernel_lib.errors import OperatorError
from kernel_lib.gemm import check_activation
from kernel_lib.tuning import Problem, TunedKernel

DTYPES = (np.dtype(np.float16), arguments.FLOAT_DTYPES[1])  # fp16, bf16: the cube's img2col path


@npu.jit
def _conv2d_kernel(x_ptr, w_ptr, bias_ptr, y_ptr, N: npu.constexpr, C: npu.constexpr, H: npu.constexpr,
                   W: npu.constexpr, KOUT: npu.constexpr, R: npu.constexpr, S: npu.constexpr, STRIDE: npu.constexpr,
                   PAD: npu.constexpr, DIL: npu.constexpr, LAYOUT: npu.constexpr, HAS_BIAS: npu.constexpr,
                   ACTIVATION: npu.constexpr, CB: npu.constexpr, BM: npu.constexpr, BN: npu.constexpr,
                   BK: npu.constexpr):
    OH = (H + 2 * PAD - DIL * (R - 1) - 1) // STRIDE + 1
    OW = (W + 2 * PAD - DIL * (S - 1) - 1) // STRIDE + 1
    M = N * OH * OW
    K = (C + CB - 1) // CB * R * S * CB
    x = npu.make_conv_descriptor(x_ptr, shape=(N, C, H, W), kernel=(R, S), block_shape=[BM, BK], stride=STRIDE,
                                 padding=PAD, dilation=DIL, layout=LAYOUT, channel_block=CB)
    w = npu.make_tensor_descriptor(w_ptr, shape=[K, KOUT], strides=[KOUT, 1], block_shape=[BK, BN])
    y = npu.make_tensor_descriptor(y_ptr, shape=[M, KOUT], strides=[KOUT, 1], block_shape=[BM, BN])
    m0 = npu.program_id(0) * BM
    n0 = npu.program_id(1) * BN
    acc = npu.zeros((BM, BN), dtype=npu.float32)
    for k in range(0, K, BK):
        acc = npu.dot(x.load([m0, k]), w.load([k, n0]), acc)
    if HAS_BIAS:
        cols = n0 + npu.arange(0, BN)
        acc = acc + npu.load(bias_ptr + cols, mask=cols < KOUT, other=0).to(npu.float32)[None, :]
    acc = activate(acc, ACTIVATION)
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


# The search space (npu-tune): output tiles BM × BN (112 and 224: whole output rows of ResNet's widths) and
# the K step BK (which must divide R·S·CB: the others
# are pruned before anything compiles; 21, 49 and 147 divide the 7×7 stem's 147 taps of 3 channels). The
# channel group CB is the rule's, min(16, C): 16 fp16 channels are 32 bytes, one GM burst (the filter
# matrix is arranged for it on the host).
CONV2D = TunedKernel("conv2d", _conv2d_kernel, {"BM": [64, 112, 128, 224, 256], "BN": [64, 128, 256],
                                                "BK": [16, 21, 32, 48, 49, 64, 96, 112, 128, 144, 147, 192, 256]},
                     key=["N", "C", "H", "W", "KOUT", "R", "S", "STRIDE", "PAD", "DIL", "LAYOUT", "HAS_BIAS",
                          "ACTIVATION"], prune=_prune)


def _int(op: str, name: str, value: Any, minimum: int) -> int:
    pair = (value, value) if isinstance(value, (int, np.integer)) else tuple(value)
    if len(pair) != 2 or any(isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < minimum for v in pair):
        raise OperatorError(f"kernel_lib.{op}: {name} must be an int >= {minimum} or a pair of them, got {value!r}")
    if pair[0] != pair[1]:
        raise OperatorError(f"kernel_lib.{op}: {name} must be the same along H and W, got {value!r}")
    return int(pair[0])


def problem(x: np.ndarray, w: np.ndarray, bias: np.ndarray | None, y: np.ndarray, stride: int, padding: int,
            dilation: int, activation: str | None, layout: str) -> Problem:
    """The launch computing NHWC `y` from checked arguments (also what npu-tune tunes)."""
    n, c, h, wd = x.shape if layout == "NCHW" else (x.shape[0], x.shape[3], x.shape[1], x.shape[2])
    kout, _, r, s = w.shape
    _, oh, ow, _ = y.shape
    m = n * oh * ow
    cb = min(16, c)
    flags = {"CB": cb, "N": n, "C": c, "H": h, "W": wd, "KOUT": kout, "R": r, "S": s, "STRIDE": stride, "PAD": padding,
             "DIL": dilation, "LAYOUT": layout, "HAS_BIAS": bias is not None, "ACTIVATION": activation or ""}
    spec = npu.get_machine()
    macs = m * kout * c * r * s
    args = (x, weight_matrix(w, cb), y if bias is None else bias, y)
    return Problem(CONV2D, lambda meta: (npu.cdiv(m, meta["BM"]), npu.cdiv(kout, meta["BN"])), args, flags,
                   _heuristic(cb, r, s, m, ow, kout),
                   macs / (spec.cube_macs_per_cycle() * spec.cores), "cube", 2 * macs,
                   f"{n},{c},{h},{wd},{kout},{r},{s},{stride},{padding}")


def conv2d(x: np.ndarray, w: np.ndarray, bias: np.ndarray | None = None, *, stride: int | tuple[int, int] = 1,
           padding: int | tuple[int, int] = 0, dilation: int | tuple[int, int] = 1, groups: int = 1,
           activation: str | None = None, layout: str = "NCHW") -> np.ndarray:
    """activation(conv2d(x, w) + bias), as `torch.nn.functional.conv2d` (cross-correlation).

    x is [N, C, H, W] ("NCHW") or [N, H, W, C] ("NHWC"), w is OIHW [K_out, C, R, S], bias [K_out], all fp16
    or bf16 (fp32 accumulation); the result is in x's layout and dtype. stride, padding (zeros) and
    dilation are ints or equal (h, w) pairs. `groups` > 1 (grouped and depthwise) is not supported yet.
    """
    op = "conv2d"
    x = arguments.array(op, "x", x, DTYPES, ndim=4)
    w = arguments.array(op, "w", w, DTYPES, ndim=4)
    arguments.same_dtype(op, x=x, w=w)
    check_activation(op, activation)
    if layout not in ("NCHW", "NHWC"):
        raise OperatorError(f"kernel_lib.{op}: layout must be 'NCHW' or 'NHWC', got {layout!r}")
    if groups != 1:
        raise OperatorError(f"kernel_lib.{op}: groups={groups!r} is not supported yet (only groups=1)")
    stride, padding, dilation = (_int(op, "stride", stride, 1), _int(op, "padding", padding, 0),
                                 _int(op, "dilation", dilation, 1))
    n, c, h, wd = x.shape if layout == "NCHW" else (x.shape[0], x.shape[3], x.shape[1], x.shape[2])
    kout, cw, r, s = w.shape
    if cw != c:
        raise OperatorError(f"kernel_lib.{op}: w has {cw} input channels, x has {c} (w is OIHW [K_out, C, R, S], "
                            f"x is {layout})")
    if bias is not None:
        bias = arguments.array(op, "bias", bias, (x.dtype,), ndim=1)
        arguments.shape(op, "bias", bias, (kout,))
    oh = (h + 2 * padding - dilation * (r - 1) - 1) // stride + 1
    ow = (wd + 2 * padding - dilation * (s - 1) - 1) // stride + 1
    if oh < 1 or ow < 1:
        raise OperatorError(f"kernel_lib.{op}: a {r}x{s} filter (dilation {dilation}) does not fit the {h}x{wd} "
                            f"input with padding {padding}")
    y = np.empty((n, oh, ow, kout), x.dtype)
    problem(x, w, bias, y, stride, padding, dilation, activation, layout).launch()
    return np.ascontiguousarray(y.transpose(0, 3, 1, 2)) if layout == "NCHW" else y
