"""Lowering rules for pointers and memory: addptr, load and store (strided DMA, wrapped pieces, gather
and scatter) and tensor descriptors."""

from __future__ import annotations

from npulang import ir
from npulang.backend import access
from npulang.backend.lowering.core import Lowering, numel, ref_at, rule
from npulang.backend.mir import GmRef, If, Loop, Node, Region, VReg
from npulang.backend.values import Affine, Desc, Mask, Operand, Ptr, PtrTile, Scalar, TileView, Uniform, Wrapped

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
    raise lowering.error(f"loads and stores of rank-{len(shape)} tiles are not supported (rank 1 or 2)")


def _valid(lowering: Lowering, mask: object, shape: tuple[int, ...]) -> tuple[Operand | None, Operand | None]:
    ext = access.extents(mask if isinstance(mask, Mask) else None, shape, lowering.sop)
    if len(shape) == 1:
        return (None, ext[0])
    return (ext[0], ext[1])


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
                      dtype=dt, rows=1, cols=1, src_rs=1, pad=pad)
        lowering.vals[op.result.id] = dst
        return
    strided = isinstance(p, PtrTile) and isinstance(p.offsets, (Affine, Wrapped)) and \
        (mask is None or isinstance(mask, Mask))
    space = "l1" if op.result.id in lowering.feeds_dot and strided else "ub"  # a gathered dot operand goes UB->L1
    dst = lowering.new_buffer(shape, dt, space, op.result.name)
    lowering.loaded.add(id(dst.buffer))
    if strided and isinstance(p.offsets, Wrapped):
        _load_wrapped(lowering, p, p.offsets, mask, dst, pad)
    elif strided:
        rows, cols, rs, cs = _dma_shape(lowering, p.offsets, shape)
        vr, vc = _valid(lowering, mask, shape)
        lowering.emit("load", (Region(("gm", p.ptr.arg)),), (dst.region(),), dst=dst.ref(),
                      src=_gm_address(lowering, p.ptr, p.offsets.base), dtype=dt, rows=rows, cols=cols, src_rs=rs,
                      src_cs=cs, dst_rs=cols, valid_rows=vr, valid_cols=vc, pad=pad)
    elif isinstance(p, PtrTile):
        _gather(lowering, op, p, mask, dst, pad)
    else:
        raise lowering.error("load needs a pointer")
    lowering.vals[op.result.id] = dst


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
    valid = _valid(lowering, mask, shape)

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


def _gather(lowering: Lowering, op: ir.Op, p: PtrTile, mask: object, dst: TileView, pad: Operand) -> None:
    idx = p.offsets if isinstance(p.offsets, TileView) else lowering.to_ub(p.offsets, p.offsets.shape, "i32")
    if not idx.dense:
        idx = lowering.copy_dense(idx)
    m = None if mask is None else lowering.to_ub(mask, dst.shape, "i1")  # type: ignore[arg-type]
    if m is not None and not m.dense:
        m = lowering.copy_dense(m)
    reads = (Region(("gm", p.ptr.arg)), idx.region()) + ((m.region(),) if m else ())
    lowering.notes.append(f"line {op.loc.line}: load is not affine: lowered to gather")
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
        rows, cols, rs, cs = _dma_shape(lowering, p.offsets, shape)
        vr, vc = _valid(lowering, mask, shape)
        gm = _gm_address(lowering, p.ptr, p.offsets.base)
        if isinstance(x, TileView) and x.space == "l0c":
            _, _, srs, _ = x.rows_cols()
            lowering.emit("fixpipe", (x.region(),), (Region(("gm", p.ptr.arg)),), dst=gm, src=x.ref(),
                          src_dtype=x.dtype, dtype=dt, rows=rows, cols=cols, src_rs=srs, dst_rs=rs, dst_cs=cs,
                          valid_rows=vr, valid_cols=vc)
            return
        src = lowering.view(value)
        if src.rows_cols()[3] != 1:
            src = lowering.copy_dense(src)
        lowering.emit("store", (src.region(),), (Region(("gm", p.ptr.arg)),), dst=gm, src=src.ref(), dtype=dt,
                      rows=rows, cols=cols, src_rs=src.rows_cols()[2], dst_rs=rs, dst_cs=cs, valid_rows=vr,
                      valid_cols=vc)
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
    lowering.notes.append(f"line {op.loc.line}: store is not affine: lowered to scatter")
    reads = (src.region(), idx.region()) + ((m.region(),) if m else ())
    lowering.emit("scatter", reads, (Region(("gm", p.ptr.arg)),), dst=GmRef(p.ptr.reg, p.ptr.arg), src=src.ref(),
                  idx=idx.ref(), dtype=dt, n=max(1, numel(shape)), mask=m.ref() if m else None)


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
    return Affine(base, d.strides, d.block), Mask(limits, (False,) * len(d.block), d.block)


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
    dst = lowering.new_buffer(shape, dt, space, op.result.name)
    lowering.loaded.add(id(dst.buffer))
    rows, cols, rs, cs = _dma_shape(lowering, p.offsets, shape)
    vr, vc = _valid(lowering, mask, shape)
    lowering.emit("load", (Region(("gm", p.ptr.arg)),), (dst.region(),), dst=dst.ref(),
                  src=_gm_address(lowering, p.ptr, p.offsets.base), dtype=dt, rows=rows, cols=cols, src_rs=rs,
                  src_cs=cs, dst_rs=cols, valid_rows=vr, valid_cols=vc, pad=0)
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
