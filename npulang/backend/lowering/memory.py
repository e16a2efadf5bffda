"""Lowering rules for pointers and memory: addptr, load and store (strided DMA, wrapped pieces, gather
and scatter) and tensor descriptors."""

from __future__ import annotations

from npulang import ir
from npulang.backend import access
from npulang.backend.lowering.core import Lowering, numel, ref_at, rule
from npulang.backend.mir import GmRef, If, Loop, Node, Region, VReg
from npulang.backend.values import (
    Affine, Desc, Mask, Operand, Ptr, PtrTile, RankError, Scalar, TileView, Uniform, Wrapped,
)

K = ir.OpKind


# -- memory ------------------------------------------------------------------------------------------
@rule(K.ADDPTR)
def _addptr(lowering: Lowering, op: ir.Op) -> None:
    p, off = lowering.get(op.operands[0]), lowering.get(op.operands[1])
    if isinstance(p, Ptr) and isinstance(off, Scalar):
        moved = lowering.sop("add", p.reg, lowering.sop("mul", off.value, _size(p.pointee)))
        lowering.vals[op.result.id] = Ptr(moved, p.arg, p.pointee)  # type: ignore[arg-type]
        return
    if isinstance(p, PtrTile) and isinstance(off, (Affine, Wrapped)):
        moved = access.offset_ptr(p, off, lowering.sop)
        if moved is not None:
            lowering.vals[op.result.id] = moved
            return
    if isinstance(p, PtrTile) and isinstance(off, Affine) and all(c == 0 for c in off.coeffs):
        moved = lowering.sop("add", p.ptr.reg, lowering.sop("mul", off.base, _size(p.ptr.pointee)))  # gather base moves
        lowering.vals[op.result.id] = PtrTile(Ptr(moved, p.ptr.arg, p.ptr.pointee),  # type: ignore[arg-type]
                                              p.offsets)
        return
    if isinstance(p, Ptr) and isinstance(off, TileView) and off.shape == ():  # offset loaded from memory
        lowering.vals[op.result.id] = PtrTile(p, off)
        return
    if isinstance(p, PtrTile):  # non-affine offsets: an index tile for gather/scatter
        idx = lowering.view(op.operands[1])
        at_base = isinstance(p.offsets, Affine) and p.offsets.base == 0 and \
            all(c == 0 for c in p.offsets.coeffs)
        if not at_base:
            base = lowering.to_ub(p.offsets, p.offsets.shape, "i32")
            summed = lowering.new_buffer(idx.shape, "i32", "ub", "idx")
            lowering.vector("vbin", summed, [("a", base), ("b", idx)], op="add", dtype="i32")
            idx = summed
        lowering.vals[op.result.id] = PtrTile(p.ptr, idx)  # type: ignore[arg-type]
        return
    raise lowering.error("addptr needs a pointer and an offset of matching shape")


def _size(dt: str) -> int:
    from isa import dtype
    return dtype(dt).itemsize


def _gm_address(lowering: Lowering, p: Ptr, offset: Operand) -> GmRef:
    reg = lowering.sop("add", p.reg, lowering.sop("mul", offset, _size(p.pointee)))
    if not isinstance(reg, VReg):
        raise lowering.error("pointer arithmetic folded to a constant address")
    return GmRef(reg, p.arg)


def _dma_shape(lowering: Lowering, offsets: Affine, shape: tuple[int, ...]) -> tuple[int, int, Operand, Operand]:
    if len(shape) == 1:
        return 1, shape[0], lowering.sop("mul", offsets.coeffs[0], shape[0]), offsets.coeffs[0]
    if len(shape) == 2:
        return shape[0], shape[1], offsets.coeffs[0], offsets.coeffs[1]
    raise RankError(f"a single DMA takes rank 1 or 2 tiles, not rank {len(shape)}")  # callers split rank 3


def _bounds(lowering: Lowering, mask: object, shape: tuple[int, ...]) -> tuple[tuple[Operand, Operand | None], ...]:
    """The valid [lo, hi) of the DMA's rows and of its columns (see `access.bounds`)."""
    b = access.bounds(mask if isinstance(mask, Mask) else None, shape, lowering.sop)
    return ((0, None), b[0]) if len(shape) == 1 else (b[0], b[1])


def _window(lowering: Lowering, mask: object, shape: tuple[int, ...], rs: Operand, cs: Operand,
            dst_rs: Operand, itemsize: int) -> tuple[Operand, Operand, Operand, Operand | None, Operand | None]:
    """Where the valid part of a tile starts (GM elements, on-chip bytes), and its rows, cols and valid extents.

    A lower bound moves the transfer's start past the invalid head; the rest of the mask is its valid extent.
    """
    (lr, hr), (lc, hc) = _bounds(lowering, mask, shape)
    sop = lowering.sop
    gm = sop("add", sop("mul", lr, rs), sop("mul", lc, cs))
    chip = sop("mul", sop("add", sop("mul", lr, dst_rs), lc), itemsize)
    rows, cols = (1, shape[0]) if len(shape) == 1 else shape
    return gm, chip, (sop("sub", rows, lr), sop("sub", cols, lc)), \
        None if hr is None else sop("sub", hr, lr), None if hc is None else sop("sub", hc, lc)


def _pad_head(lowering: Lowering, mask: object, dst: TileView, src: GmRef, pad: Operand) -> None:
    """Fill the rows and columns before a lower bound with `pad` (a load that reads nothing)."""
    (lr, _), (lc, _) = _bounds(lowering, mask, dst.shape)
    rows, cols = (1, dst.shape[0]) if len(dst.shape) == 1 else dst.shape
    sop = lowering.sop
    below = sop("mul", sop("mul", lr, cols), dst.itemsize)  # bytes of the head rows
    for n, at, size in ((lr, 0, {"rows": lr, "cols": cols}), (lc, below, {"rows": sop("sub", rows, lr), "cols": lc})):
        if n == 0:
            continue
        fill: list[Node] = []
        with lowering.nested(fill):
            lowering.emit("load", (), (dst.region(),), dst=ref_at(dst, at), src=src, dtype=dst.dtype, **size,
                          src_rs=0, src_cs=1, dst_rs=cols, valid_rows=0, valid_cols=0, pad=pad)
        lowering.out += fill if isinstance(n, int) else [If(lowering.sop("gt", n, 0), fill, [], lowering.loc)]


def _strided_load(lowering: Lowering, p: PtrTile, offsets: Affine, mask: object, dst: TileView, pad: Operand) -> None:
    """One strided DMA of the valid window of the tile, plus pad fills before any lower bound."""
    rows, cols, rs, cs = _dma_shape(lowering, offsets, dst.shape)
    at, chip, (wr, wc), vr, vc = _window(lowering, mask, dst.shape, rs, cs, cols, dst.itemsize)
    src = _gm_address(lowering, p.ptr, lowering.sop("add", offsets.base, at))
    lowering.emit("load", (Region(("gm", p.ptr.arg)),), (dst.region(),), dst=ref_at(dst, chip), src=src,
                  dtype=dst.dtype, rows=wr, cols=wc, src_rs=rs, src_cs=cs, dst_rs=cols, valid_rows=vr,
                  valid_cols=vc, pad=pad)
    _pad_head(lowering, mask, dst, src, pad)


@rule(K.LOAD)
def _load(lowering: Lowering, op: ir.Op) -> None:
    p = lowering.get(op.operands[0])
    mask = lowering.get(op.operands[1]) if len(op.operands) > 1 else None
    other = lowering.get(op.operands[2]) if len(op.operands) > 2 else None
    shape = ir.shape_of(op.result.type)
    dt = ir.elem_type(op.result.type).dtype
    pad: Operand = 0
    if isinstance(other, (Uniform, Scalar)):
        pad = other.value
    elif other is not None and not (isinstance(other, Affine) and all(c == 0 for c in other.coeffs)):
        raise lowering.error("load `other` must be a scalar or a constant", hint="use npu.where after the load")
    elif isinstance(other, Affine):
        pad = other.base
    if isinstance(p, Ptr):  # scalar load: a 1-element tile in UB
        dst = lowering.new_buffer((), dt, "ub", op.result.name)
        lowering.emit("load", (Region(("gm", p.arg)),), (dst.region(),), dst=dst.ref(), src=GmRef(p.reg, p.arg),
                      dtype=dt, rows=1, cols=1, src_rs=1, pad=pad,
                      valid_rows=mask.value if isinstance(mask, Scalar) else None)
        lowering.vals[op.result.id] = dst
        return
    strided = isinstance(p, PtrTile) and isinstance(p.offsets, (Affine, Wrapped)) and \
        (mask is None or isinstance(mask, Mask)) and not (isinstance(p.offsets, Wrapped) and _has_lows(mask)) \
        and not (len(shape) == 3 and isinstance(p.offsets, Wrapped) and p.offsets.dim == 0)
    space = "l1" if op.result.id in lowering.feeds_dot and strided else "ub"  # a gathered dot operand goes UB->L1
    if strided and space == "l1" and _column_major(p.offsets):  # type: ignore[union-attr]
        lowering.vals[op.result.id] = _load_transposed(lowering, op, p, mask, pad)  # type: ignore[arg-type]
        return
    dst = lowering.new_buffer(shape, dt, space, op.result.name)
    lowering.loaded.add(id(dst.buffer))
    if strided:
        _dma_load(lowering, p, mask, dst, pad)  # type: ignore[arg-type]
    elif isinstance(p, PtrTile):
        _gather(lowering, op, p, mask, dst, pad)
    else:
        raise lowering.error("load needs a pointer")
    lowering.vals[op.result.id] = dst


def _dma_load(lowering: Lowering, p: PtrTile, mask: Mask | None, dst: TileView, pad: Operand) -> None:
    """A load through affine or wrapped offsets as strided DMA (a rank-3 tile: one per slab of its leading dim)."""
    if len(dst.shape) == 3:
        for b in range(dst.shape[0]):
            offsets = access.slab_offsets(p.offsets, b, lowering.sop)  # type: ignore[arg-type]
            _dma_load(lowering, PtrTile(p.ptr, offsets), access.slab_mask(mask, b, lowering.sop),  # type: ignore
                      dst.slab(b), pad)
        return
    _note_slow(lowering, "load", p.offsets, dst)  # type: ignore[arg-type]
    if isinstance(p.offsets, Wrapped):
        _load_wrapped(lowering, p, p.offsets, mask, dst, pad)
    else:
        _strided_load(lowering, p, p.offsets, mask, dst, pad)  # type: ignore[arg-type]


def _column_major(offsets: Affine | Wrapped) -> bool:
    """A 2-D tile whose rows are 1 element apart and whose columns are not: its transpose is row-major."""
    a = offsets.affine if isinstance(offsets, Wrapped) else offsets
    return len(a.shape) == 2 and a.coeffs[0] == 1 and a.coeffs[1] != 1 and a.shape[0] > 1


def _load_transposed(lowering: Lowering, op: ir.Op, p: PtrTile, mask: Mask | None, pad: Operand) -> TileView:
    """A dot operand stored column-major in GM (Bᵀ passed through strides, as `x @ Wᵀ` does): load its
    transpose with contiguous rows into L1 and view it transposed, so the L1 -> L0 move transposes."""
    rows, cols = ir.shape_of(op.result.type)
    t = p.offsets
    flipped = Wrapped(access.trans_affine(t.affine, (1, 0)), 1 - t.dim, t.plan) if isinstance(t, Wrapped) else \
        access.trans_affine(t, (1, 0))
    t_mask = None if mask is None else Mask(mask.limits[::-1], mask.shape[::-1],
                                            None if mask.lows is None else mask.lows[::-1], mask.gate)
    dst = lowering.new_buffer((cols, rows), ir.elem_type(op.result.type).dtype, "l1", op.result.name)
    lowering.loaded.add(id(dst.buffer))
    _note_slow(lowering, "load", flipped, dst)
    if isinstance(flipped, Wrapped):
        _load_wrapped(lowering, PtrTile(p.ptr, flipped), flipped, t_mask, dst, pad)
    else:
        _strided_load(lowering, PtrTile(p.ptr, flipped), flipped, t_mask, dst, pad)
    return TileView(dst.buffer, 0, (rows, cols), (1, rows), dst.dtype)


def _note_slow(lowering: Lowering, what: str, offsets: Affine | Wrapped, tile: TileView) -> None:
    """Tell `inspect` about a strided access that stays slow: columns apart (a burst per element), or
    rows not known to start on the burst grid."""
    a = offsets.affine if isinstance(offsets, Wrapped) else offsets
    line = lowering.loc.line if lowering.loc else 0
    cs, rs = a.coeffs[-1], a.coeffs[0] if len(a.shape) == 2 else 0
    if cs != 1 and a.shape[-1] > 1:
        why = "pass a layout with unit column stride, or load the transpose and use npu.trans"
        if len(a.shape) == 2 and not isinstance(rs, int):
            why = (f"a dot operand whose rows are 1 element apart is loaded transposed instead, but this row "
                   f"stride ({_name(rs)}) is not known to be 1: an int argument equal to 1 is specialised "
                   "unless do_not_specialize names it")
        lowering.notes.append(f"line {line}: {what} is element-strided: its columns are {_name(cs)} elements "
                              f"apart, so every element is its own 32-byte burst; {why}")
    burst = lowering.spec.gm.burst_bytes
    if len(a.shape) == 2 and a.shape[0] > 1 and cs == 1 and not lowering.aligned(rs, tile.itemsize, burst):
        lowering.notes.append(f"line {line}: {what} rows are {_name(rs)} elements apart, not known to be a "
                              f"multiple of {burst} bytes: a row may start mid-burst and cost one more burst")


def _name(x: Operand) -> str:
    return f"`{x.name}`" if isinstance(x, VReg) and x.name not in ("t", "") else str(x) if isinstance(x, int) \
        else "a runtime number of"


def _load_wrapped(lowering: Lowering, p: PtrTile, w: Wrapped, mask: Mask | None, dst: TileView,
                  pad: Operand) -> None:
    """A load through `(s + arange) % m` offsets as strided DMA pieces (see `WrapPlan`).

    Fast case: indices [0, first) from s % m onwards, then [first, B) from 0. Otherwise (s < 0, m < 1,
    or more than one wrap) one DMA per index along the wrapped dim, each from its own (s + i) % m.
    Every piece carries its share of the mask's valid extent, so the tile is exact either way.
    """
    plan, shape = w.plan, dst.shape
    rows, cols, rs, cs = _dma_shape(lowering, w.affine, shape)
    along = w.dim if len(shape) == 2 else 1  # the DMA dim (0 rows, 1 cols) that wraps
    stride = (rs, cs)[along]
    step_bytes = (cols if along == 0 else 1) * dst.itemsize  # destination bytes per index along it
    valid = tuple(hi for _, hi in _bounds(lowering, mask, shape))  # no lower bounds here (see `_load`)

    def piece(j0: Operand, n: Operand, w0: Operand) -> None:
        src = _gm_address(lowering, p.ptr, lowering.sop("add", w.affine.base, lowering.sop("mul", stride, w0)))
        ref = ref_at(dst, lowering.sop("mul", j0, step_bytes))
        ext = valid[along]
        part = None if ext is None else lowering.sop("min", lowering.sop("max", lowering.sop("sub", ext, j0), 0), n)
        size = {"rows": n, "cols": cols, "valid_rows": part, "valid_cols": valid[1]} if along == 0 else \
            {"rows": rows, "cols": n, "valid_rows": valid[0], "valid_cols": part}
        lowering.emit("load", (Region(("gm", p.ptr.arg)),), (dst.region(),), dst=ref, src=src, dtype=dst.dtype,
                      **size, src_rs=rs, src_cs=cs, dst_rs=cols, pad=pad)

    fast: list[Node] = []
    with lowering.nested(fast):
        piece(0, plan.first, plan.origin)
        if plan.has_rest != 0:
            rest: list[Node] = []
            with lowering.nested(rest):
                piece(plan.first, plan.rest, 0)
            lowering.out += rest if isinstance(plan.has_rest, int) else [If(plan.has_rest, rest, [], lowering.loc)]
    if isinstance(plan.fast, int) and plan.fast:
        lowering.out += fast
        return
    i = VReg("wrap_i")
    slow = Loop(i, 0, shape[w.dim], 1, [], lowering.loc, min_trips=shape[w.dim], num_stages=1)
    with lowering.nested(slow.body):
        piece(i, 1, lowering.sop("rem", lowering.sop("add", plan.start, i), plan.modulus))
    lowering.out.append(If(plan.fast, fast, [slow], lowering.loc) if not isinstance(plan.fast, int) else slow)


def _has_lows(mask: object) -> bool:
    return isinstance(mask, Mask) and mask.lows is not None and any(lo is not None for lo in mask.lows)


def _why(lowering: Lowering, op: ir.Op, p: PtrTile, mask: object) -> str:
    """Why an access could not be strided DMA: the part of its address or the mask term that was not affine."""
    mask_v = op.operands[2 if op.kind is K.STORE else 1] if len(op.operands) > (2 if op.kind is K.STORE else 1) \
        else None
    if isinstance(p.offsets, TileView):
        return "its address is not affine: " + lowering.why.get(op.operands[0].id, "its offsets are a computed tile")
    if isinstance(p.offsets, Wrapped) and _has_lows(mask):
        return "its address is affine but wraps (`%`), and a lower bound on a wrapped index is not supported"
    if isinstance(p.offsets, Wrapped):
        return "its address wraps (`%`) and a store through wrapped offsets is not supported"
    reason = lowering.why.get(mask_v.id, "it is not a conjunction of bounds") if mask_v is not None else "?"
    return f"its address is affine, but its mask is not: {reason}"


def _gather(lowering: Lowering, op: ir.Op, p: PtrTile, mask: object, dst: TileView, pad: Operand) -> None:
    idx = p.offsets if isinstance(p.offsets, TileView) else lowering.to_ub(p.offsets, p.offsets.shape, "i32")
    if not idx.dense:
        idx = lowering.copy_dense(idx)
    m = None if mask is None else lowering.to_ub(mask, dst.shape, "i1")  # type: ignore[arg-type]
    if m is not None and not m.dense:
        m = lowering.copy_dense(m)
    reads = (Region(("gm", p.ptr.arg)), idx.region()) + ((m.region(),) if m else ())
    lowering.notes.append(f"line {op.loc.line}: load lowered to gather: {_why(lowering, op, p, mask)}")
    lowering.emit("gather", reads, (dst.region(),), dst=dst.ref(), src=GmRef(p.ptr.reg, p.ptr.arg), idx=idx.ref(),
                  dtype=dst.dtype, n=max(1, numel(dst.shape)), mask=m.ref() if m else None, pad=pad)


@rule(K.STORE)
def _store(lowering: Lowering, op: ir.Op) -> None:
    p = lowering.get(op.operands[0])
    value = op.operands[1]
    mask = lowering.get(op.operands[2]) if len(op.operands) > 2 else None
    shape = ir.shape_of(value.type)
    dt = ir.elem_type(value.type).dtype
    if isinstance(p, Ptr):
        src = lowering.view(value)
        lowering.emit("store", (src.region(),), (Region(("gm", p.arg)),), dst=GmRef(p.reg, p.arg), src=src.ref(),
                      dtype=dt, rows=1, cols=1, dst_rs=1)
        return
    if not isinstance(p, PtrTile):
        raise lowering.error("store needs a pointer")
    x = lowering.get(value)
    if isinstance(p.offsets, Affine) and (mask is None or isinstance(mask, Mask)):
        src = x if isinstance(x, TileView) and x.space == "l0c" else lowering.view(value)
        if src.space == "ub" and (src.strides[-1] != 1 if src.shape else False):
            src = lowering.copy_dense(src)
        _dma_store(lowering, p.ptr, p.offsets, mask, src, dt)
        return
    src = lowering.view(value)
    if not src.dense:
        src = lowering.copy_dense(src)
    idx = p.offsets if isinstance(p.offsets, TileView) else lowering.to_ub(p.offsets, shape, "i32")
    if not idx.dense:  # scatter reads its index and mask tiles as contiguous lanes
        idx = lowering.copy_dense(idx)
    m = None if mask is None else lowering.to_ub(mask, shape, "i1")
    if m is not None and not m.dense:
        m = lowering.copy_dense(m)
    lowering.notes.append(f"line {op.loc.line}: store lowered to scatter: {_why(lowering, op, p, mask)}")
    reads = (src.region(), idx.region()) + ((m.region(),) if m else ())
    lowering.emit("scatter", reads, (Region(("gm", p.ptr.arg)),), dst=GmRef(p.ptr.reg, p.ptr.arg), src=src.ref(),
                  idx=idx.ref(), dtype=dt, n=max(1, numel(shape)), mask=m.ref() if m else None)


def _dma_store(lowering: Lowering, ptr: Ptr, offsets: Affine, mask: Mask | None, src: TileView, dt: str) -> None:
    """The valid window of a UB (or L0C) tile to GM as strided DMA (a rank-3 tile: one per slab)."""
    if len(src.shape) == 3:
        for b in range(src.shape[0]):
            _dma_store(lowering, ptr, access.slab_offsets(offsets, b, lowering.sop),  # type: ignore[arg-type]
                       access.slab_mask(mask, b, lowering.sop), src.slab(b), dt)
        return
    _, _, rs, cs = _dma_shape(lowering, offsets, src.shape)
    srs = src.rows_cols()[2]
    _note_slow(lowering, "store", offsets, src)
    at, chip, (rows, cols), vr, vc = _window(lowering, mask, src.shape, rs, cs, srs,
                                             src.itemsize)  # only the valid window is written
    gm = _gm_address(lowering, ptr, lowering.sop("add", offsets.base, at))
    if src.space == "l0c":
        lowering.emit("fixpipe", (src.region(),), (Region(("gm", ptr.arg)),), dst=gm, src=ref_at(src, chip),
                      src_dtype=src.dtype, dtype=dt, rows=rows, cols=cols, src_rs=srs, dst_rs=rs, dst_cs=cs,
                      valid_rows=vr, valid_cols=vc)
        return
    lowering.emit("store", (src.region(),), (Region(("gm", ptr.arg)),), dst=gm, src=ref_at(src, chip), dtype=dt,
                  rows=rows, cols=cols, src_rs=srs, dst_rs=rs, dst_cs=cs, valid_rows=vr, valid_cols=vc)


@rule(K.MAKE_DESC)
def _make_desc(lowering: Lowering, op: ir.Op) -> None:
    nd = len(op.attrs["block_shape"])
    base = lowering.get(op.operands[0])
    assert isinstance(base, Ptr)
    ops = [lowering.scalar(v) for v in op.operands[1:]]
    lowering.vals[op.result.id] = Desc(base, tuple(ops[:nd]), tuple(ops[nd:]), tuple(op.attrs["block_shape"]))


def _desc_access(lowering: Lowering, d: Desc, offs: list[Operand]) -> tuple[Affine, Mask]:
    base: Operand = 0
    for o, s in zip(offs, d.strides):
        base = lowering.sop("add", base, lowering.sop("mul", o, s))
    limits = tuple(lowering.sop("sub", n, o) for n, o in zip(d.sizes, offs))
    return Affine(base, d.strides, d.block), Mask(limits, d.block)


@rule(K.DESC_LOAD)
def _desc_load(lowering: Lowering, op: ir.Op) -> None:
    d = lowering.get(op.operands[0])
    assert isinstance(d, Desc)
    offsets, mask = _desc_access(lowering, d, [lowering.scalar(v) for v in op.operands[1:]])
    lowering.vals[op.operands[0].id + 0] = d
    _load_with(lowering, op, PtrTile(d.ptr, offsets), mask)


def _load_with(lowering: Lowering, op: ir.Op, p: PtrTile, mask: Mask) -> None:
    shape, dt = ir.shape_of(op.result.type), ir.elem_type(op.result.type).dtype
    space = "l1" if op.result.id in lowering.feeds_dot else "ub"
    if space == "l1" and _column_major(p.offsets):  # type: ignore[arg-type]
        lowering.vals[op.result.id] = _load_transposed(lowering, op, p, mask, 0)
        return
    dst = lowering.new_buffer(shape, dt, space, op.result.name)
    lowering.loaded.add(id(dst.buffer))
    _note_slow(lowering, "load", p.offsets, dst)  # type: ignore[arg-type]
    _strided_load(lowering, p, p.offsets, mask, dst, 0)  # type: ignore[arg-type]
    lowering.vals[op.result.id] = dst


@rule(K.DESC_STORE)
def _desc_store(lowering: Lowering, op: ir.Op) -> None:
    d = lowering.get(op.operands[0])
    assert isinstance(d, Desc)
    offsets, mask = _desc_access(lowering, d, [lowering.scalar(v) for v in op.operands[1:-1]])
    fake_ptr = ir.Value(ir.TileType(d.block, ir.PtrType(d.ptr.pointee)))
    fake_mask = ir.Value(ir.TileType(d.block, ir.I1))
    lowering.vals[fake_ptr.id], lowering.vals[fake_mask.id] = PtrTile(d.ptr, offsets), mask
    _store(lowering, ir.Op(K.STORE, (fake_ptr, op.operands[-1], fake_mask), (), {}, (), op.loc))
