"""The geometry of a convolution descriptor: one definition of the im2col matrix, used everywhere.

A descriptor over an input feature map of logical shape (N, C, H, W) describes the im2col matrix
of an implicit-GEMM convolution: row m is output position (n, oy, ox) in row-major order
(M = N * OH * OW rows), column k is one tap. Taps are ordered (c1, r, s, c0): the channels are cut
into groups of `channel_block` (CB) channels, c = c1 * CB + c0, and within a group the kernel row r,
kernel column s and channel c0 run slowest to fastest. So K = C1 * R * S * CB, with C1 =
ceil(C / CB) and zero columns for channels past C. With CB = C (the default) the order is (r, s, c),
the rows of an HWIO filter reshaped to [R*S*C, K_out].

Layouts name the order in memory: "NCHW", "NHWC", or "NC1HWC0", the machine's own (Ascend's 5-D
format): an array [N, C1, H, W, CB] whose channel slots past C hold anything (they read as zero).

The IR op's attributes hold this; the frontend checks it, the interpreter computes from it and the
backend lowers from it, so the three agree by construction.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

LAYOUTS = ("NCHW", "NHWC", "NC1HWC0")


@dataclass(frozen=True)
class ConvGeometry:
    """Static sizes of a convolution descriptor (all in elements)."""

    shape: tuple[int, int, int, int]  # N, C, H, W (logical, whatever the layout)
    kernel: tuple[int, int]  # R, S
    stride: tuple[int, int]
    padding: tuple[int, int]
    dilation: tuple[int, int]
    layout: str
    channel_block: int
    block_shape: tuple[int, int]  # BM, BK

    @classmethod
    def from_attrs(cls, attrs: dict[str, Any]) -> ConvGeometry:
        return cls(tuple(attrs["shape"]), tuple(attrs["kernel"]), tuple(attrs["stride"]),  # type: ignore[arg-type]
                   tuple(attrs["padding"]), tuple(attrs["dilation"]), attrs["layout"],  # type: ignore[arg-type]
                   attrs["channel_block"], tuple(attrs["block_shape"]))  # type: ignore[arg-type]

    def attrs(self) -> dict[str, Any]:
        return {"shape": self.shape, "kernel": self.kernel, "stride": self.stride, "padding": self.padding,
                "dilation": self.dilation, "layout": self.layout, "channel_block": self.channel_block,
                "block_shape": self.block_shape}

    @property
    def out_hw(self) -> tuple[int, int]:
        """Output height and width (OH, OW)."""
        _, _, h, w = self.shape
        return tuple((size + 2 * p - d * (k - 1) - 1) // s + 1  # type: ignore[return-value]
                     for size, p, d, k, s in zip((h, w), self.padding, self.dilation, self.kernel, self.stride))

    @property
    def m(self) -> int:
        """Rows of the im2col matrix: N * OH * OW output positions."""
        oh, ow = self.out_hw
        return self.shape[0] * oh * ow

    @property
    def groups(self) -> int:
        """C1: channel groups of `channel_block` channels (the last one zero-padded)."""
        return -(-self.shape[1] // self.channel_block)

    @property
    def group_taps(self) -> int:
        """Columns per channel group: R * S * CB."""
        return self.kernel[0] * self.kernel[1] * self.channel_block

    @property
    def k(self) -> int:
        """Columns of the im2col matrix: C1 * R * S * CB."""
        return self.groups * self.group_taps

    def problem(self) -> str | None:
        """What is wrong with these sizes (None if nothing): the message names what to change."""
        named = {"shape": self.shape, "kernel": self.kernel, "stride": self.stride, "dilation": self.dilation,
                 "block_shape": self.block_shape}
        for name, values in named.items():
            if any(v < 1 for v in values):
                return f"conv descriptor {name} must be positive, got {list(values)}"
        if any(p < 0 for p in self.padding):
            return f"conv descriptor padding must be >= 0, got {list(self.padding)}"
        if self.layout not in LAYOUTS:
            return f"conv descriptor layout must be one of {', '.join(LAYOUTS)}, got {self.layout!r}"
        if self.channel_block < 1:
            return f"conv descriptor channel_block must be positive, got {self.channel_block}"
        if min(self.out_hw) < 1:
            return f"conv descriptor has no output positions: the kernel does not fit the padded input {self.shape}"
        if self.group_taps % self.block_shape[1]:
            return (f"conv descriptor block K ({self.block_shape[1]}) must divide R*S*channel_block "
                    f"({self.group_taps}), so that a tile never spans two channel groups")
        return None
