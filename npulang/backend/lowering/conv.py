"""Lowering rules for convolution descriptors: `conv_load` as the machine's own im2col path.

A [BM, BK] block of the im2col matrix (see `npulang.ir.conv`) lies in one channel group (BK divides
R*S*CB). Its BM output positions cover at most `segments` images; for each, one DMA brings the
feature-map window those positions read (the input rows inside the tensor that they touch, all W
columns, the group's CB channels, HWC order, channels past C zero-filled) from GM into L1, and one
`img2col` (load3d) expands it into the block's rows in L0A: the rows above the window are its
`pad_top`, the rows below its height `h`, so every padding tap reads 0 and no padding is moved. The
block is only ever the A operand of `dot`, which uses it in place.

NC1HWC0 input (the machine's own layout, with C0 = CB) makes each window one contiguous run of GM; NHWC
a strided copy of CB-channel rows (one row of W*C elements when CB = C); NCHW needs an element-strided
DMA (each element its own GM burst), correct but slow.
"""

from __future__ import annotations

from dataclasses import dataclass

from isa import dtype as isa_dtype
from npulang import ir
from npulang.backend.lowering.core import Lowering, ref_at, rule
from npulang.backend.lowering.memory import _gm_address as gm_address  # the one pointer-to-GmRef rule
from npulang.backend.mir import If, Loop, Node, Region, VReg
from npulang.backend.values import Operand, Ptr, TileView
from npulang.ir.conv import ConvGeometry

K = ir.OpKind
# A block larger than an image and spanning at most this many images gets one window per image, unrolled
# (each window's flags take event ids, 8 per pipe pair, twice with num_stages=2); more images, or blocks that
# only sometimes cross into a second image, go through one window in an inner loop (which keeps the K loop
# around the block from being pipelined, but costs nothing while it runs no iteration)
UNROLLED_SEGMENTS = 3


@dataclass(frozen=True)
class ConvDesc:
    """A lowered convolution descriptor: the feature map's base pointer and the static geometry."""

    ptr: Ptr
    geometry: ConvGeometry


@dataclass(frozen=True)
class WindowPlan:
    """Static sizes of the windows one block needs: how many images it spans and each window's rows."""

    segments: int
    rows: int

    @classmethod
    def of(cls, g: ConvGeometry) -> WindowPlan:
        bm = g.block_shape[0]
        oh, ow = g.out_hw
        per_image = oh * ow
        run = min(bm, per_image)  # the most positions of one block inside one image
        out_rows = min(oh, 1 + -(-(run - 1) // ow))
        rows = min(g.shape[2], (out_rows - 1) * g.stride[0] + (g.kernel[0] - 1) * g.dilation[0] + 1)
        return cls(1 + -(-(bm - 1) // per_image), rows)


@rule(K.MAKE_CONV_DESC)
def _make_conv_desc(lowering: Lowering, op: ir.Op) -> None:
    base = lowering.get(op.operands[0])
    assert isinstance(base, Ptr)
    lowering.vals[op.result.id] = ConvDesc(base, ConvGeometry.from_attrs(op.attrs))


@rule(K.CONV_LOAD)
def _conv_load(lowering: Lowering, op: ir.Op) -> None:
    users = [u for u in ir.walk(lowering.fn.body) if op.result in u.operands]
    if not users or any(u.kind is not K.DOT or u.operands[0] is not op.result or op.result in u.operands[1:]
                        for u in users):
        raise lowering.error("a convolution descriptor block can only be the first operand of npu.dot",
                             hint="use it as npu.dot(desc.load([m, k]), w, acc)")
    d = lowering.get(op.operands[0])
    assert isinstance(d, ConvDesc)
    g, sop = d.geometry, lowering.sop
    m, k = (lowering.scalar(v) for v in op.operands[1:])
    bm, bk = g.block_shape
    oh, ow = g.out_hw
    per_image = oh * ow
    dst = lowering.new_buffer((bm, bk), d.ptr.pointee, "l0a", op.result.name)
    group = sop("div", k, g.group_taps)
    c_lo = sop("mul", group, g.channel_block)
    channels = sop("max", sop("min", g.channel_block, sop("sub", g.shape[1], c_lo)), 0)
    first = sop("div", m, per_image)
    block = _Block(lowering, d, dst, m, sop("rem", k, g.group_taps), group, c_lo, channels)
    block.segment(first, lowering.new_buffer(*block.window_shape()))
    segments = WindowPlan.of(g).segments
    # the block's last image, if it exists: a ragged block's rows past M load no window
    last = sop("min", sop("div", sop("add", m, bm - 1), per_image), g.shape[0] - 1) if segments > 1 else first
    if 1 < segments <= UNROLLED_SEGMENTS and per_image < bm:  # every block spans images (small maps): later
        # images each through a window of its own under a guard, no inner loop, so the K loop around the block
        # stays the innermost loop with DMA and is software-pipelined
        for i in range(1, segments):
            image = sop("add", first, i)
            window = lowering.new_buffer(*block.window_shape())
            body: list[Node] = []
            with lowering.nested(body):
                block.segment(image, window)
            live = sop("le", image, last)
            if not isinstance(live, int):
                lowering.out.append(If(live, body, [], lowering.loc))
            elif live:
                lowering.out += body
    elif segments > 1:  # many small images: one at a time through one more window (an inner loop)
        image = VReg("image")
        rest = Loop(image, sop("add", first, 1), sop("add", last, 1), 1, [], lowering.loc, num_stages=1)
        window = lowering.new_buffer(*block.window_shape())
        with lowering.nested(rest.body):
            block.segment(image, window)
        more = sop("gt", last, first)
        if not isinstance(more, int):
            lowering.out.append(If(more, [rest], [], lowering.loc))
        elif more:
            lowering.out.append(rest)
    lowering.vals[op.result.id] = dst


@dataclass
class _Block:
    """One conv_load being lowered: the scalars every image segment of the block shares."""

    lowering: Lowering
    desc: ConvDesc
    dst: TileView
    m: Operand
    tap0: Operand  # the block's first tap inside its channel group
    group: Operand  # the block's channel group
    c_lo: Operand  # the group's first channel
    channels: Operand  # how many of the group's CB channels exist (the rest read as zero)

    def window_shape(self) -> tuple[tuple[int, int], str, str, str]:
        """`new_buffer` arguments of a window: the input rows one image segment reads, in HWC order."""
        g = self.desc.geometry
        return (WindowPlan.of(g).rows * g.shape[3], g.channel_block), self.desc.ptr.pointee, "l1", "window"

    def segment(self, image: Operand, window: TileView) -> None:
        """Window DMA and img2col for the block's positions inside `image` (zeros past the last image)."""
        lw, g, sop = self.lowering, self.desc.geometry, self.lowering.sop
        n, c, h, w = g.shape
        (sh, sw), (ph, pw), (dh, dw), (r, s) = g.stride, g.padding, g.dilation, g.kernel
        bm, bk = g.block_shape
        oh, ow = g.out_hw
        cb, dt = g.channel_block, self.desc.ptr.pointee
        start = sop("mul", image, oh * ow)
        lo = sop("max", self.m, start)
        hi = sop("min", sop("add", self.m, bm), sop("add", start, oh * ow))
        oy_lo = sop("div", sop("sub", lo, start), ow)
        oy_hi = sop("div", sop("sub", sop("sub", hi, 1), start), ow)
        top = sop("sub", sop("mul", oy_lo, sh), ph)  # the first input row the positions read (may be < 0)
        y0 = sop("max", top, 0)
        y1 = sop("min", sop("add", sop("mul", oy_hi, sh), (r - 1) * dh + 1 - ph), h)
        live = sop("mul", sop("lt", image, n), sop("gt", self.channels, 0))
        rows = sop("mul", sop("max", sop("sub", y1, y0), 0), live)  # input rows the window holds
        # the DMA reads from a clamped address: with nothing valid it reads nothing, but stays in range
        ia, ya, ca = sop("min", image, n - 1), sop("min", y0, h - 1), sop("min", self.c_lo, c - 1)
        if g.layout == "NC1HWC0":  # the group's rows are contiguous: [rows*W positions, CB channels]
            ga = sop("min", self.group, g.groups - 1)
            src = sop("mul", sop("add", sop("mul", sop("add", sop("mul", ia, g.groups), ga), h), ya), w * cb)
            shape = dict(rows=sop("mul", rows, w), cols=cb, src_rs=cb, src_cs=1, dst_rs=cb, valid_cols=self.channels)
        elif g.layout == "NHWC" and cb == c:  # whole rows of W*C elements
            src = sop("mul", sop("add", sop("mul", ia, h), ya), w * c)
            shape = dict(rows=rows, cols=w * c, src_rs=w * c, src_cs=1, dst_rs=w * c)
        elif g.layout == "NHWC":  # one row of CB channels per position
            src = sop("add", sop("mul", sop("add", sop("mul", ia, h), ya), w * c), ca)
            shape = dict(rows=sop("mul", rows, w), cols=cb, src_rs=c, src_cs=1, dst_rs=cb, valid_cols=self.channels)
        else:  # NCHW: positions are contiguous, channels H*W apart: transposed element by element
            src = sop("mul", sop("add", sop("mul", sop("add", sop("mul", ia, c), ca), h), ya), w)
            shape = dict(rows=sop("mul", rows, w), cols=cb, src_rs=1, src_cs=h * w, dst_rs=cb,
                         valid_cols=self.channels)
        lw.emit("load", (Region(("gm", self.desc.ptr.arg)),), (window.region(),), dst=window.ref(),
                src=gm_address(lw, self.desc.ptr, src), dtype=dt, **shape, pad=0)
        row0 = sop("sub", lo, self.m)
        lw.emit("img2col", (window.region(),), (self.dst.region(),),
                dst=ref_at(self.dst, sop("mul", row0, bk * isa_dtype(dt).itemsize)), src=window.ref(), dtype=dt,
                c=cb, h=rows, w=w, kh=r, kw=s, stride_h=sh, stride_w=sw, pad_top=sop("sub", y0, top),
                pad_left=pw, dil_h=dh, dil_w=dw, ow=ow, pos=sop("sub", sop("sub", lo, start), sop("mul", oy_lo, ow)),
                rows=sop("sub", hi, lo), k0=self.tap0, cols=bk)
