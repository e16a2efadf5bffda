"""The lowering rule of every block-IR op kind (see `lower.py` for the machinery and placement)."""

from __future__ import annotations

from npulang import ir
from npulang.backend import access
from npulang.backend.lower import _SCALAR_BIN, _VECTOR_BIN, Lowering, rule
from npulang.backend.mir import BufRef, GmRef, If, Loop, MInstr, Node, Region, VReg
from npulang.backend.values import (
    Affine, Desc, Mask, Operand, Ptr, PtrTile, Scalar, TileView, Uniform, Wrapped, dense_strides,
)

K = ir.OpKind


# -- values from nowhere ---------------------------------------------------------------------------
@rule(K.CONSTANT)
def _constant(lo: Lowering, op: ir.Op) -> None:
    t, value = op.result.type, op.attrs["value"]
    dt = ir.elem_type(t).dtype
    value = float(value) if ir.elem_type(t).is_float else int(value)
    if isinstance(t, ir.TileType):
        lo.vals[op.result.id] = Affine(value, (0,) * len(t.shape), t.shape) if dt == "i32" else \
            Uniform(value, t.shape, dt)
    else:
        lo.vals[op.result.id] = Scalar(value, dt)


@rule(K.PROGRAM_ID)
@rule(K.NUM_PROGRAMS)
def _program_id(lo: Lowering, op: ir.Op) -> None:
    d = VReg("pid" if op.kind is K.PROGRAM_ID else "npid")
    lo.emit("pid" if op.kind is K.PROGRAM_ID else "npid", d=d, axis=op.attrs["axis"])
    lo.vals[op.result.id] = Scalar(d, "i32")


@rule(K.ARANGE)
def _arange(lo: Lowering, op: ir.Op) -> None:
    lo.vals[op.result.id] = Affine(op.attrs["start"], (1,), op.result.type.shape)


# -- shapes ------------------------------------------------------------------------------------------
@rule(K.SPLAT)
def _splat(lo: Lowering, op: ir.Op) -> None:
    x, shape = lo.get(op.operands[0]), tuple(op.attrs["shape"])
    zeros = (0,) * len(shape)
    if isinstance(x, Ptr):
        out = PtrTile(x, Affine(0, zeros, shape))
    elif isinstance(x, Scalar) and x.dtype == "i32":
        out = Affine(x.value, zeros, shape)
    elif isinstance(x, Scalar):
        out = Uniform(x.value, shape, x.dtype)
    elif isinstance(x, TileView):  # a reduction result (0-d tile in UB)
        out = TileView(x.buffer, x.offset, shape, zeros, x.dtype)
    else:
        raise lo.error("cannot splat this value")
    lo.vals[op.result.id] = out


def _reshaped(lo: Lowering, x: object, fa, fm, fv, shape: tuple[int, ...], fd) -> object:
    """A shape change: `fa` for affine tiles, `fm` for masks, `fv` for buffer views, `fd` for a dim index."""
    if isinstance(x, Affine):
        return fa(x)
    if isinstance(x, Wrapped):
        inner = fa(x.affine)
        return None if inner is None else Wrapped(inner, fd(x.dim), x.plan)
    if isinstance(x, PtrTile):
        if isinstance(x.offsets, TileView):
            return PtrTile(x.ptr, fv(x.offsets))
        offsets = _reshaped(lo, x.offsets, fa, fm, fv, shape, fd)
        return None if offsets is None else PtrTile(x.ptr, offsets)  # type: ignore[arg-type]
    if isinstance(x, Uniform):
        return Uniform(x.value, shape, x.dtype)
    if isinstance(x, Mask):
        return fm(x)
    if isinstance(x, TileView):
        return fv(x)
    raise lo.error(f"cannot reshape a {type(x).__name__}")


@rule(K.BROADCAST)
def _broadcast(lo: Lowering, op: ir.Op) -> None:
    shape = tuple(op.attrs["shape"])
    old = op.operands[0].type.shape

    def view(v: TileView) -> TileView:
        strides = tuple(0 if n == 1 and m != 1 else s for s, n, m in zip(v.strides, old, shape))
        return TileView(v.buffer, v.offset, shape, strides, v.dtype, v.cast_to)
    lo.vals[op.result.id] = _reshaped(lo, lo.get(op.operands[0]), lambda a: access.broadcast_affine(a, shape),
                                      lambda m: access.broadcast_mask(m, shape), view, shape, lambda d: d)


@rule(K.EXPAND_DIMS)
def _expand_dims(lo: Lowering, op: ir.Op) -> None:
    axis, shape = op.attrs["axis"], op.result.type.shape

    def view(v: TileView) -> TileView:
        strides = v.strides[:axis] + (0,) + v.strides[axis:]
        return TileView(v.buffer, v.offset, shape, strides, v.dtype, v.cast_to)
    lo.vals[op.result.id] = _reshaped(lo, lo.get(op.operands[0]), lambda a: access.expand_affine(a, axis),
                                      lambda m: access.expand_mask(m, axis), view, shape,
                                      lambda d: d + 1 if axis <= d else d)


@rule(K.RESHAPE)
def _reshape(lo: Lowering, op: ir.Op) -> None:
    shape = op.result.type.shape
    x = lo.get(op.operands[0])

    def view(v: TileView) -> TileView:
        if not v.dense:
            v = lo.copy_dense(v)
        return TileView(v.buffer, v.offset, shape, dense_strides(shape), v.dtype, v.cast_to)

    def affine(a: Affine) -> Affine:
        r = access.reshape_affine(a, shape)
        return r if r is not None else None  # type: ignore[return-value]
    old = op.operands[0].type.shape

    def dim(d: int) -> int:  # the wrapped dim is not size 1: the k-th such dim stays the k-th
        k = sum(1 for n in old[:d] if n != 1)
        return [e for e, n in enumerate(shape) if n != 1][k]
    out = _reshaped(lo, x, affine, lambda m: None, view, shape, dim)
    if out is None:
        out = view(lo.view(op.operands[0]))
    lo.vals[op.result.id] = out


@rule(K.TRANS)
def _trans(lo: Lowering, op: ir.Op) -> None:
    perm = tuple(op.attrs["perm"])
    shape = op.result.type.shape

    def view(v: TileView) -> TileView:
        return TileView(v.buffer, v.offset, shape, tuple(v.strides[p] for p in perm), v.dtype, v.cast_to)
    x = lo.get(op.operands[0])
    if isinstance(x, Mask):
        x = lo.mask_tile(x)
    lo.vals[op.result.id] = _reshaped(lo, x, lambda a: access.trans_affine(a, perm), lambda m: None, view,
                                      shape, perm.index)


# -- elementwise -------------------------------------------------------------------------------------
@rule(K.BINARY)
def _binary(lo: Lowering, op: ir.Op) -> None:
    a, b = (lo.get(v) for v in op.operands)
    name = op.attrs["op"]
    dt = ir.elem_type(op.result.type).dtype
    if isinstance(a, Scalar) and isinstance(b, Scalar):
        if name == "div" or (name == "floordiv" and dt in ir.FLOAT_DTYPES):
            sop = "fdiv" if name == "div" else None
            if sop is None:
                raise lo.error("floor division of float scalars is not supported")
        elif name in _SCALAR_BIN:
            sop = _SCALAR_BIN[name]
        else:
            raise lo.error(f"scalar {name} is not supported on the scalar unit")
        lo.vals[op.result.id] = Scalar(lo.sop(sop, a.value, b.value), dt)
        return
    if isinstance(a, Affine) and isinstance(b, Affine) and name in ("add", "sub", "mul"):
        out = access.combine_affine(name, a, b, lo.sop)
        if out is not None:
            lo.vals[op.result.id] = out
            return
    if isinstance(a, Affine) and isinstance(b, Affine) and name == "mod" and all(c == 0 for c in b.coeffs):
        wrapped = access.wrap_affine(a, b.base, lo.sop)
        if wrapped is not None:
            lo.vals[op.result.id] = wrapped
            return
    index_tiles = isinstance(a, (Affine, Wrapped)) and isinstance(b, (Affine, Wrapped))
    if index_tiles and name in ("add", "sub", "mul"):
        combined = access.combine_wrapped(name, a, b, lo.sop)
        if combined is not None:
            lo.vals[op.result.id] = combined
            return
    if isinstance(a, Mask) and isinstance(b, Mask) and name == "and":
        out = access.and_masks(a, b, lo.sop)
        if out is not None:
            lo.vals[op.result.id] = out
            return
    _vbin(lo, op, _VECTOR_BIN[name], dt, ir.elem_type(op.operands[0].type).dtype)
    if name == "floordiv" and dt in ir.FLOAT_DTYPES:  # the vector unit's div is true division
        out = lo.vals[op.result.id]
        lo.vector("vun", out, [("a", out)], op="floor", dtype=dt)


def _vbin(lo: Lowering, op: ir.Op, vop: str, out_dt: str, in_dt: str) -> None:
    srcs = [lo.operand(v) for v in op.operands]
    if not any(isinstance(s, TileView) for s in srcs):
        srcs[0] = lo.view(op.operands[0])
    dst = lo.result_buffer(op, out_dt, srcs)
    lo.vector("vbin", dst, [("a", srcs[0]), ("b", srcs[1])], op=vop, dtype=in_dt)
    lo.vals[op.result.id] = dst


@rule(K.CMP)
def _cmp(lo: Lowering, op: ir.Op) -> None:
    a, b = (lo.get(v) for v in op.operands)
    pred = op.attrs["pred"]
    if isinstance(a, Scalar) and isinstance(b, Scalar):
        lo.vals[op.result.id] = Scalar(lo.sop(pred, a.value, b.value), "i1")
        return
    if isinstance(a, Affine) and isinstance(b, Affine):
        m = access.compare_to_mask(pred, a, b, lo.sop)
        if m is not None:
            lo.vals[op.result.id] = m
            return
    _vbin(lo, op, pred, "i1", ir.elem_type(op.operands[0].type).dtype)


@rule(K.UNARY)
def _unary(lo: Lowering, op: ir.Op) -> None:
    x = lo.get(op.operands[0])
    name = op.attrs["op"]
    dt = ir.elem_type(op.result.type).dtype
    if isinstance(x, Scalar) and name in ("neg", "abs", "not"):
        v = x.value
        if name == "neg":
            out = lo.sop("sub", 0.0 if dt in ir.FLOAT_DTYPES else 0, v)
        elif name == "abs":
            out = lo.sop("max", v, lo.sop("sub", 0, v))
        else:
            out = lo.sop("eq", v, 0) if dt == "i1" else lo.sop("xor", v, -1)
        lo.vals[op.result.id] = Scalar(out, dt)
        return
    src = lo.view(op.operands[0])
    dst = lo.result_buffer(op, dt, [src])
    lo.vector("vun", dst, [("a", src)], op=name, dtype=dt)
    lo.vals[op.result.id] = dst


@rule(K.CAST)
def _cast(lo: Lowering, op: ir.Op) -> None:
    x = lo.get(op.operands[0])
    src_dt, dt = ir.elem_type(op.operands[0].type).dtype, op.attrs["dtype"]
    if src_dt == dt:
        lo.vals[op.result.id] = x
    elif isinstance(x, Scalar):
        to_float = dt in ir.FLOAT_DTYPES
        constant = isinstance(x.value, (int, float)) and not isinstance(x.value, VReg)
        if to_float == (src_dt in ir.FLOAT_DTYPES) or constant:
            value = x.value
            if isinstance(value, (int, float)):
                value = float(value) if to_float else int(value)
            lo.vals[op.result.id] = Scalar(value, dt)
        else:
            d = VReg("cvt")
            lo.emit("cvt", d=d, a=x.value, to="f32" if to_float else "i32")
            lo.vals[op.result.id] = Scalar(d, dt)
    elif isinstance(x, Uniform):
        lo.vals[op.result.id] = Uniform(float(x.value) if dt in ir.FLOAT_DTYPES else x.value, x.shape, dt)
    elif isinstance(x, TileView) and x.space == "l0c":
        lo.vals[op.result.id] = TileView(x.buffer, x.offset, x.shape, x.strides, x.dtype, dt)
    else:
        src = lo.view(op.operands[0])
        dst = lo.result_buffer(op, dt, [src])
        lo.vector("vcast", dst, [("a", src)], from_dtype=src_dt, dtype=dt)
        lo.vals[op.result.id] = dst


@rule(K.WHERE)
def _where(lo: Lowering, op: ir.Op) -> None:
    cond, other = lo.get(op.operands[0]), lo.get(op.operands[2])
    dt = ir.elem_type(op.result.type).dtype
    if isinstance(cond, Mask) and isinstance(other, (Uniform, Scalar)) and len(cond.shape) <= 2:
        _where_bounds(lo, op, cond, other.value, dt)
        return
    c = lo.view(op.operands[0])
    a, b = lo.operand(op.operands[1]), lo.operand(op.operands[2])
    dst = lo.result_buffer(op, dt, [c, a, b])
    lo.vector("vsel", dst, [("c", c), ("a", a), ("b", b)], dtype=dt)
    lo.vals[op.result.id] = dst


def _where_bounds(lo: Lowering, op: ir.Op, mask: Mask, other: Operand, dt: str) -> None:
    """`where(index < limit, a, scalar)`: `a` in place (or copied), then the out-of-bounds tail of each
    bounded dim filled with the scalar. No mask tile is built, and usually the tails are empty."""
    a = lo.operand(op.operands[1])
    dst = lo.result_buffer(op, dt, [None, a, None])
    if isinstance(a, TileView):
        if a.buffer is not dst.buffer or a.strides != dst.strides or a.offset != dst.offset:
            lo.vector("vcopy", dst, [("a", a)], dtype=dt)
    else:
        lo.vector("vdup", dst, [], value=a, dtype=dt)
    rows, cols, rs, cs = dst.rows_cols()
    for d, valid in enumerate(access.extents(mask, dst.shape, lo.sop)):
        along = d if len(dst.shape) == 2 else 1  # 0: a tail of rows, 1: a tail of columns
        size = (rows, cols)[along]
        if valid is None or valid == size:
            continue
        off = lo.sop("mul", valid, ((rs, cs)[along]) * dst.itemsize)
        tail = lo.sop("sub", size, valid)
        shape = {"rows": tail, "cols": cols} if along == 0 else {"rows": rows, "cols": tail}
        lo.out.append(MInstr("vdup", {"dst": _ref_at(dst, off), "value": other, "dtype": dt, **shape,
                                      "dst_rs": rs, "dst_cs": cs}, lo.loc, (), (dst.region(),)))
    lo.vals[op.result.id] = dst


# -- memory ------------------------------------------------------------------------------------------
@rule(K.ADDPTR)
def _addptr(lo: Lowering, op: ir.Op) -> None:
    p, off = lo.get(op.operands[0]), lo.get(op.operands[1])
    if isinstance(p, Ptr) and isinstance(off, Scalar):
        moved = lo.sop("add", p.reg, lo.sop("mul", off.value, _size(p.pointee)))
        lo.vals[op.result.id] = Ptr(moved, p.arg, p.pointee)  # type: ignore[arg-type]
        return
    if isinstance(p, PtrTile) and isinstance(off, (Affine, Wrapped)):
        moved = access.offset_ptr(p, off, lo.sop)
        if moved is not None:
            lo.vals[op.result.id] = moved
            return
    if isinstance(p, PtrTile) and isinstance(off, Affine) and all(c == 0 for c in off.coeffs):
        moved = lo.sop("add", p.ptr.reg, lo.sop("mul", off.base, _size(p.ptr.pointee)))  # gather base moves
        lo.vals[op.result.id] = PtrTile(Ptr(moved, p.ptr.arg, p.ptr.pointee),  # type: ignore[arg-type]
                                        p.offsets)
        return
    if isinstance(p, PtrTile):  # non-affine offsets: an index tile for gather/scatter
        idx = lo.view(op.operands[1])
        at_base = isinstance(p.offsets, Affine) and p.offsets.base == 0 and \
            all(c == 0 for c in p.offsets.coeffs)
        if not at_base:
            base = lo.to_ub(p.offsets, p.offsets.shape, "i32")
            summed = lo.new_buffer(idx.shape, "i32", "ub", "idx")
            lo.vector("vbin", summed, [("a", base), ("b", idx)], op="add", dtype="i32")
            idx = summed
        lo.vals[op.result.id] = PtrTile(p.ptr, idx)  # type: ignore[arg-type]
        return
    raise lo.error("addptr needs a pointer and an offset of matching shape")


def _size(dt: str) -> int:
    from isa import dtype
    return dtype(dt).itemsize


def _gm_address(lo: Lowering, p: Ptr, offset: Operand) -> GmRef:
    reg = lo.sop("add", p.reg, lo.sop("mul", offset, _size(p.pointee)))
    if not isinstance(reg, VReg):
        raise lo.error("pointer arithmetic folded to a constant address")
    return GmRef(reg, p.arg)


def _dma_shape(lo: Lowering, offsets: Affine, shape: tuple[int, ...]) -> tuple[int, int, Operand, Operand]:
    if len(shape) == 1:
        return 1, shape[0], lo.sop("mul", offsets.coeffs[0], shape[0]), offsets.coeffs[0]
    if len(shape) == 2:
        return shape[0], shape[1], offsets.coeffs[0], offsets.coeffs[1]
    raise lo.error(f"loads and stores of rank-{len(shape)} tiles are not supported (rank 1 or 2)")


def _valid(lo: Lowering, mask: object, shape: tuple[int, ...]) -> tuple[Operand | None, Operand | None]:
    ext = access.extents(mask if isinstance(mask, Mask) else None, shape, lo.sop)
    if len(shape) == 1:
        return (None, ext[0])
    return (ext[0], ext[1])


@rule(K.LOAD)
def _load(lo: Lowering, op: ir.Op) -> None:
    p = lo.get(op.operands[0])
    mask = lo.get(op.operands[1]) if len(op.operands) > 1 else None
    other = lo.get(op.operands[2]) if len(op.operands) > 2 else None
    shape = ir.shape_of(op.result.type)
    dt = ir.elem_type(op.result.type).dtype
    pad: Operand = 0
    if isinstance(other, (Uniform, Scalar)):
        pad = other.value
    elif other is not None and not (isinstance(other, Affine) and all(c == 0 for c in other.coeffs)):
        raise lo.error("load `other` must be a scalar or a constant", hint="use npu.where after the load")
    elif isinstance(other, Affine):
        pad = other.base
    if isinstance(p, Ptr):  # scalar load: a 1-element tile in UB
        dst = lo.new_buffer((), dt, "ub", op.result.name)
        lo.emit("load", (Region(("gm", p.arg)),), (dst.region(),), dst=dst.ref(), src=GmRef(p.reg, p.arg),
                dtype=dt, rows=1, cols=1, src_rs=1, pad=pad)
        lo.vals[op.result.id] = dst
        return
    strided = isinstance(p, PtrTile) and isinstance(p.offsets, (Affine, Wrapped)) and \
        (mask is None or isinstance(mask, Mask))
    space = "l1" if op.result.id in lo.feeds_dot and strided else "ub"  # a gathered dot operand goes UB->L1
    dst = lo.new_buffer(shape, dt, space, op.result.name)
    if strided and isinstance(p.offsets, Wrapped):
        _load_wrapped(lo, p, p.offsets, mask, dst, pad)
    elif strided:
        rows, cols, rs, cs = _dma_shape(lo, p.offsets, shape)
        vr, vc = _valid(lo, mask, shape)
        lo.emit("load", (Region(("gm", p.ptr.arg)),), (dst.region(),), dst=dst.ref(),
                src=_gm_address(lo, p.ptr, p.offsets.base), dtype=dt, rows=rows, cols=cols, src_rs=rs,
                src_cs=cs, dst_rs=cols, valid_rows=vr, valid_cols=vc, pad=pad)
    elif isinstance(p, PtrTile):
        _gather(lo, op, p, mask, dst, pad)
    else:
        raise lo.error("load needs a pointer")
    lo.vals[op.result.id] = dst


def _load_wrapped(lo: Lowering, p: PtrTile, w: Wrapped, mask: Mask | None, dst: TileView,
                  pad: Operand) -> None:
    """A load through `(s + arange) % m` offsets as strided DMA pieces (see `WrapPlan`).

    Fast case: indices [0, first) from s % m onwards, then [first, B) from 0. Otherwise (s < 0, m < 1,
    or more than one wrap) one DMA per index along the wrapped dim, each from its own (s + i) % m.
    Every piece carries its share of the mask's valid extent, so the tile is exact either way.
    """
    plan, shape = w.plan, dst.shape
    rows, cols, rs, cs = _dma_shape(lo, w.affine, shape)
    along = w.dim if len(shape) == 2 else 1  # the DMA dim (0 rows, 1 cols) that wraps
    stride = (rs, cs)[along]
    step_bytes = (cols if along == 0 else 1) * dst.itemsize  # destination bytes per index along it
    valid = _valid(lo, mask, shape)

    def piece(j0: Operand, n: Operand, w0: Operand) -> None:
        src = _gm_address(lo, p.ptr, lo.sop("add", w.affine.base, lo.sop("mul", stride, w0)))
        ref = _ref_at(dst, lo.sop("mul", j0, step_bytes))
        ext = valid[along]
        part = None if ext is None else lo.sop("min", lo.sop("max", lo.sop("sub", ext, j0), 0), n)
        size = {"rows": n, "cols": cols, "valid_rows": part, "valid_cols": valid[1]} if along == 0 else \
            {"rows": rows, "cols": n, "valid_rows": valid[0], "valid_cols": part}
        lo.emit("load", (Region(("gm", p.ptr.arg)),), (dst.region(),), dst=ref, src=src, dtype=dst.dtype,
                **size, src_rs=rs, src_cs=cs, dst_rs=cols, pad=pad)

    fast: list[Node] = []
    with lo.nested(fast):
        piece(0, plan.first, plan.origin)
        if plan.has_rest != 0:
            rest: list[Node] = []
            with lo.nested(rest):
                piece(plan.first, plan.rest, 0)
            lo.out += rest if isinstance(plan.has_rest, int) else [If(plan.has_rest, rest, [], lo.loc)]
    if isinstance(plan.fast, int) and plan.fast:
        lo.out += fast
        return
    i = VReg("wrap_i")
    slow = Loop(i, 0, shape[w.dim], 1, [], lo.loc, min_trips=shape[w.dim], num_stages=1)
    with lo.nested(slow.body):
        piece(i, 1, lo.sop("rem", lo.sop("add", plan.start, i), plan.modulus))
    lo.out.append(If(plan.fast, fast, [slow], lo.loc) if not isinstance(plan.fast, int) else slow)


def _ref_at(dst: TileView, off: Operand) -> BufRef:
    """`dst` moved by `off` bytes, a constant or a register."""
    if isinstance(off, int):
        return BufRef(dst.buffer, dst.offset + off)
    return BufRef(dst.buffer, dst.offset, off)  # type: ignore[arg-type]


def _gather(lo: Lowering, op: ir.Op, p: PtrTile, mask: object, dst: TileView, pad: Operand) -> None:
    idx = p.offsets if isinstance(p.offsets, TileView) else lo.to_ub(p.offsets, p.offsets.shape, "i32")
    if not idx.dense:
        idx = lo.copy_dense(idx)
    m = None if mask is None else lo.to_ub(mask, dst.shape, "i1")  # type: ignore[arg-type]
    if m is not None and not m.dense:
        m = lo.copy_dense(m)
    reads = (Region(("gm", p.ptr.arg)), idx.region()) + ((m.region(),) if m else ())
    lo.notes.append(f"line {op.loc.line}: load is not affine: lowered to gather")
    lo.emit("gather", reads, (dst.region(),), dst=dst.ref(), src=GmRef(p.ptr.reg, p.ptr.arg), idx=idx.ref(),
            dtype=dst.dtype, n=max(1, _numel(dst.shape)), mask=m.ref() if m else None, pad=pad)


def _numel(shape: tuple[int, ...]) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


@rule(K.STORE)
def _store(lo: Lowering, op: ir.Op) -> None:
    p = lo.get(op.operands[0])
    value = op.operands[1]
    mask = lo.get(op.operands[2]) if len(op.operands) > 2 else None
    shape = ir.shape_of(value.type)
    dt = ir.elem_type(value.type).dtype
    if isinstance(p, Ptr):
        src = lo.view(value)
        lo.emit("store", (src.region(),), (Region(("gm", p.arg)),), dst=GmRef(p.reg, p.arg), src=src.ref(),
                dtype=dt, rows=1, cols=1, dst_rs=1)
        return
    if not isinstance(p, PtrTile):
        raise lo.error("store needs a pointer")
    x = lo.get(value)
    if isinstance(p.offsets, Affine) and (mask is None or isinstance(mask, Mask)):
        rows, cols, rs, cs = _dma_shape(lo, p.offsets, shape)
        vr, vc = _valid(lo, mask, shape)
        gm = _gm_address(lo, p.ptr, p.offsets.base)
        if isinstance(x, TileView) and x.space == "l0c":
            _, _, srs, _ = x.rows_cols()
            lo.emit("fixpipe", (x.region(),), (Region(("gm", p.ptr.arg)),), dst=gm, src=x.ref(),
                    src_dtype=x.dtype, dtype=dt, rows=rows, cols=cols, src_rs=srs, dst_rs=rs, dst_cs=cs,
                    valid_rows=vr, valid_cols=vc)
            return
        src = lo.view(value)
        if src.rows_cols()[3] != 1:
            src = lo.copy_dense(src)
        lo.emit("store", (src.region(),), (Region(("gm", p.ptr.arg)),), dst=gm, src=src.ref(), dtype=dt,
                rows=rows, cols=cols, src_rs=src.rows_cols()[2], dst_rs=rs, dst_cs=cs, valid_rows=vr,
                valid_cols=vc)
        return
    src = lo.view(value)
    if not src.dense:
        src = lo.copy_dense(src)
    idx = p.offsets if isinstance(p.offsets, TileView) else lo.to_ub(p.offsets, shape, "i32")
    if not idx.dense:  # scatter reads its index and mask tiles as contiguous lanes
        idx = lo.copy_dense(idx)
    m = None if mask is None else lo.to_ub(mask, shape, "i1")
    if m is not None and not m.dense:
        m = lo.copy_dense(m)
    lo.notes.append(f"line {op.loc.line}: store is not affine: lowered to scatter")
    reads = (src.region(), idx.region()) + ((m.region(),) if m else ())
    lo.emit("scatter", reads, (Region(("gm", p.ptr.arg)),), dst=GmRef(p.ptr.reg, p.ptr.arg), src=src.ref(),
            idx=idx.ref(), dtype=dt, n=max(1, _numel(shape)), mask=m.ref() if m else None)


@rule(K.MAKE_DESC)
def _make_desc(lo: Lowering, op: ir.Op) -> None:
    nd = len(op.attrs["block_shape"])
    base = lo.get(op.operands[0])
    assert isinstance(base, Ptr)
    ops = [lo.scalar(v) for v in op.operands[1:]]
    lo.vals[op.result.id] = Desc(base, tuple(ops[:nd]), tuple(ops[nd:]), tuple(op.attrs["block_shape"]))


def _desc_access(lo: Lowering, d: Desc, offs: list[Operand]) -> tuple[Affine, Mask]:
    base: Operand = 0
    for o, s in zip(offs, d.strides):
        base = lo.sop("add", base, lo.sop("mul", o, s))
    limits = tuple(lo.sop("sub", n, o) for n, o in zip(d.sizes, offs))
    return Affine(base, d.strides, d.block), Mask(limits, (False,) * len(d.block), d.block)


@rule(K.DESC_LOAD)
def _desc_load(lo: Lowering, op: ir.Op) -> None:
    d = lo.get(op.operands[0])
    assert isinstance(d, Desc)
    offsets, mask = _desc_access(lo, d, [lo.scalar(v) for v in op.operands[1:]])
    lo.vals[op.operands[0].id + 0] = d
    _load_with(lo, op, PtrTile(d.ptr, offsets), mask)


def _load_with(lo: Lowering, op: ir.Op, p: PtrTile, mask: Mask) -> None:
    shape, dt = ir.shape_of(op.result.type), ir.elem_type(op.result.type).dtype
    space = "l1" if op.result.id in lo.feeds_dot else "ub"
    dst = lo.new_buffer(shape, dt, space, op.result.name)
    rows, cols, rs, cs = _dma_shape(lo, p.offsets, shape)
    vr, vc = _valid(lo, mask, shape)
    lo.emit("load", (Region(("gm", p.ptr.arg)),), (dst.region(),), dst=dst.ref(),
            src=_gm_address(lo, p.ptr, p.offsets.base), dtype=dt, rows=rows, cols=cols, src_rs=rs, src_cs=cs,
            dst_rs=cols, valid_rows=vr, valid_cols=vc, pad=0)
    lo.vals[op.result.id] = dst


@rule(K.DESC_STORE)
def _desc_store(lo: Lowering, op: ir.Op) -> None:
    d = lo.get(op.operands[0])
    assert isinstance(d, Desc)
    offsets, mask = _desc_access(lo, d, [lo.scalar(v) for v in op.operands[1:-1]])
    fake_ptr = ir.Value(ir.TileType(d.block, ir.PtrType(d.ptr.pointee)))
    fake_mask = ir.Value(ir.TileType(d.block, ir.I1))
    lo.vals[fake_ptr.id], lo.vals[fake_mask.id] = PtrTile(d.ptr, offsets), mask
    _store(lo, ir.Op(K.STORE, (fake_ptr, op.operands[-1], fake_mask), (), {}, (), op.loc))
