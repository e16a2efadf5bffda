"""2-D convolution as implicit GEMM through a convolution descriptor (`npu.make_conv_descriptor`).

The output is the [M, K_out] matrix product of the input's im2col matrix [M, K] (read block by block
through the descriptor: a window DMA into L1 plus the cube's img2col into L0A) with the filter as a
[K, K_out] matrix, whose rows follow the descriptor's tap order (`weight_matrix` arranges an
OIHW filter so). Output rows are positions (n, oy, ox), so the output is NHWC.

    python examples/conv2d.py      # the ResNet-style 3x3 conv, checked against numpy, with its cycles

One program computes one [BM, BN] output tile, as in Triton; a grid larger than the machine runs as a
persistent loop per core, so the windows and filter blocks of a core's next tile load while this one
computes.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import npulang as npu  # noqa: E402
from kernel_lib.conv2d import weight_matrix  # noqa: E402  (the library's: one definition of the tap order)


@npu.jit
def conv2d_kernel(x_ptr, w_ptr, y_ptr,
                  N: npu.constexpr, C: npu.constexpr, H: npu.constexpr, W: npu.constexpr, KOUT: npu.constexpr,
                  R: npu.constexpr, S: npu.constexpr, STRIDE: npu.constexpr, PAD: npu.constexpr,
                  DIL: npu.constexpr, LAYOUT: npu.constexpr, CB: npu.constexpr,
                  BM: npu.constexpr, BN: npu.constexpr, BK: npu.constexpr):
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
    y.store([m0, n0], acc.to(npu.float16))


def out_size(size: int, kernel: int, stride: int, pad: int, dil: int) -> int:
    return (size + 2 * pad - dil * (kernel - 1) - 1) // stride + 1


def to_nc1hwc0(x: np.ndarray, channel_block: int) -> np.ndarray:
    """An NCHW array in the machine's own layout [N, C1, H, W, C0] (C0 = channel_block, zero-padded)."""
    n, c, h, w = x.shape
    groups = -(-c // channel_block)
    padded = np.zeros((n, groups * channel_block, h, w), x.dtype)
    padded[:, :c] = x
    return np.ascontiguousarray(padded.reshape(n, groups, channel_block, h, w).transpose(0, 1, 3, 4, 2))


def reference(x_nchw: np.ndarray, w: np.ndarray, stride: int, pad: int, dil: int) -> np.ndarray:
    """numpy conv2d (cross-correlation, as deep-learning frameworks define it) in fp32: NHWC output."""
    n, c, h, wd = x_nchw.shape
    kout, _, r, s = w.shape
    oh, ow = out_size(h, r, stride, pad, dil), out_size(wd, s, stride, pad, dil)
    xp = np.pad(x_nchw.astype(np.float32), ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    out = np.zeros((n, oh, ow, kout), np.float32)
    for i in range(r):
        for j in range(s):
            patch = xp[:, :, i * dil: i * dil + stride * (oh - 1) + 1: stride, j * dil: j * dil + stride * (ow - 1) + 1:
                       stride]
            out += np.einsum("nchw,kc->nhwk", patch, w[:, :, i, j].astype(np.float32))
    return out


def conv2d(x: np.ndarray, w: np.ndarray, *, stride: int = 1, pad: int = 0, dil: int = 1, layout: str = "NCHW",
           channel_block: int | None = None, bm: int = 112, bn: int = 64, bk: int | None = None,
           **launch: object) -> tuple[np.ndarray, npu.RunRecord]:
    """Launch `conv2d_kernel`: `x` in `layout`, `w` OIHW; returns (NHWC y, run).

    For NC1HWC0 the channel count is taken from `w` (the array holds C1 * channel_block channel slots).
    """
    if layout == "NC1HWC0":
        n, c, h, wd = x.shape[0], w.shape[1], x.shape[2], x.shape[3]
    else:
        n, c, h, wd = x.shape if layout == "NCHW" else (x.shape[0], x.shape[3], x.shape[1], x.shape[2])
    kout, _, r, s = w.shape
    cb = c if channel_block is None else channel_block
    bk = r * s * cb if bk is None else bk
    oh, ow = out_size(h, r, stride, pad, dil), out_size(wd, s, stride, pad, dil)
    y = np.zeros((n, oh, ow, kout), np.float16)
    run = conv2d_kernel[(npu.cdiv(n * oh * ow, bm), npu.cdiv(kout, bn))](
        x, weight_matrix(w, cb), y, N=n, C=c, H=h, W=wd, KOUT=kout, R=r, S=s, STRIDE=stride, PAD=pad, DIL=dil,
        LAYOUT=layout, CB=cb, BM=bm, BN=bn, BK=bk, **launch)
    return y, run


def main() -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 56, 56, 64)).astype(np.float16)
    w = (rng.standard_normal((64, 64, 3, 3)) / 24).astype(np.float16)
    y, run = conv2d(x, w, pad=1, layout="NHWC", channel_block=16, l2="cold")
    want = reference(x.transpose(0, 3, 1, 2), w, 1, 1, 1)
    assert np.allclose(y.astype(np.float32), want, atol=2e-2, rtol=2e-2)
    print(f"conv2d 3x3 fp16 N=4 C=64 56x56 K=64: {run.cycles:,} cycles, matches numpy")


if __name__ == "__main__":
    main()
