"""Lowering rules for elementwise ops (binary, cmp, unary, cast, where, fma): index-tile arithmetic stays
symbolic; everything else is one vector instruction over a UB tile."""

from __future__ import annotations

from npulang import ir
from npulang.backend import access
from npulang.backend.lowering.core import Lowering, ref_at, rule
from npulang.backend.mir import MInstr, VReg
from npulang.backend.values import Affine, Mask, Operand, Scalar, TileView, Uniform, Wrapped

K = ir.OpKind

_SCALAR_BINARY = {"add": "add", "sub": "sub", "mul": "mul", "floordiv": "div", "mod": "rem", "min": "min",
               "max": "max", "and": "and", "or": "or", "xor": "xor", "shl": "shl", "shr": "shr"}
_VECTOR_BINARY = {"add": "add", "sub": "sub", "mul": "mul", "div": "div", "floordiv": "div", "mod": "rem",
               "min": "min", "max": "max", "and": "and", "or": "or", "xor": "xor", "shl": "shl",
               "shr": "shr", "pow": "pow"}


# -- elementwise -------------------------------------------------------------------------------------
@rule(K.BINARY)
def _binary(lowering: Lowering, op: ir.Op) -> None:
    a, b = (lowering.get(v) for v in op.operands)
    name = op.attrs["op"]
    dt = ir.elem_type(op.result.type).dtype
    if isinstance(a, Scalar) and isinstance(b, Scalar):
        if name == "div" or (name == "floordiv" and dt in ir.FLOAT_DTYPES):
            sop = "fdiv" if name == "div" else None
            if sop is None:
                raise lowering.error("floor division of float scalars is not supported")
        elif name in _SCALAR_BINARY:
            sop = _SCALAR_BINARY[name]
        else:
            raise lowering.error(f"scalar {name} is not supported on the scalar unit")
        lowering.vals[op.result.id] = Scalar(lowering.sop(sop, a.value, b.value), dt)
        return
    if isinstance(a, Affine) and isinstance(b, Affine) and name in ("add", "sub", "mul"):
        out = access.combine_affine(name, a, b, lowering.sop)
        if out is not None:
            lowering.vals[op.result.id] = out
            return
    if isinstance(a, Affine) and isinstance(b, Affine) and name == "mod" and all(c == 0 for c in b.coeffs):
        wrapped = access.wrap_affine(a, b.base, lowering.sop)
        if wrapped is not None:
            lowering.vals[op.result.id] = wrapped
            return
    index_tiles = isinstance(a, (Affine, Wrapped)) and isinstance(b, (Affine, Wrapped))
    if index_tiles and name in ("add", "sub", "mul"):
        combined = access.combine_wrapped(name, a, b, lowering.sop)
        if combined is not None:
            lowering.vals[op.result.id] = combined
            return
    if name == "and" and isinstance(a, Mask) and isinstance(b, Mask):
        lowering.vals[op.result.id] = access.and_masks(a, b, lowering.sop)
        return
    if name == "and" and {type(a), type(b)} == {Mask, Uniform}:  # `mask & (h < H)`: a scalar term
        m, u = (a, b) if isinstance(a, Mask) else (b, a)
        lowering.vals[op.result.id] = access.gate_mask(m, u.value, lowering.sop)  # type: ignore[union-attr]
        return
    if name == "or" and isinstance(a, Mask) and isinstance(b, Mask):
        lowering.why[op.result.id] = f"line {op.loc.line}: `|` of masks (only `&` of bounds is a bound)"
    _vbin(lowering, op, _VECTOR_BINARY[name], dt, ir.elem_type(op.operands[0].type).dtype)
    if name == "floordiv" and dt in ir.FLOAT_DTYPES:  # the vector unit's div is true division
        out = lowering.vals[op.result.id]
        lowering.vector("vun", out, [("a", out)], op="floor", dtype=dt)


def _vbin(lowering: Lowering, op: ir.Op, vop: str, out_dt: str, in_dt: str) -> None:
    srcs = [lowering.operand(v) for v in op.operands]
    if not any(isinstance(s, TileView) for s in srcs):
        srcs[0] = lowering.view(op.operands[0])
    dst = lowering.result_buffer(op, out_dt, srcs)
    lowering.vector("vbin", dst, [("a", srcs[0]), ("b", srcs[1])], op=vop, dtype=in_dt)
    lowering.vals[op.result.id] = dst


@rule(K.CMP)
def _cmp(lowering: Lowering, op: ir.Op) -> None:
    a, b = (lowering.get(v) for v in op.operands)
    pred = op.attrs["pred"]
    if isinstance(a, Scalar) and isinstance(b, Scalar):
        lowering.vals[op.result.id] = Scalar(lowering.sop(pred, a.value, b.value), "i1")
        return
    if isinstance(a, Affine) and isinstance(b, Affine):
        m = access.compare_to_mask(pred, a, b, lowering.sop)
        if isinstance(m, Mask):
            lowering.vals[op.result.id] = m
            return
        lowering.why[op.result.id] = f"line {op.loc.line}: mask term `{pred}` not recognised: {m}"
    elif isinstance(a, Wrapped) or isinstance(b, Wrapped):
        lowering.why[op.result.id] = f"line {op.loc.line}: mask term `{pred}` not recognised: it compares a " \
            "wrapped (`%`) index"
    _vbin(lowering, op, pred, "i1", ir.elem_type(op.operands[0].type).dtype)


@rule(K.UNARY)
def _unary(lowering: Lowering, op: ir.Op) -> None:
    x = lowering.get(op.operands[0])
    name = op.attrs["op"]
    dt = ir.elem_type(op.result.type).dtype
    if isinstance(x, Scalar) and name in ("neg", "abs", "not"):
        v = x.value
        if name == "neg":
            out = lowering.sop("sub", 0.0 if dt in ir.FLOAT_DTYPES else 0, v)
        elif name == "abs":
            out = lowering.sop("max", v, lowering.sop("sub", 0, v))
        else:
            out = lowering.sop("eq", v, 0) if dt == "i1" else lowering.sop("xor", v, -1)
        lowering.vals[op.result.id] = Scalar(out, dt)
        return
    src = lowering.view(op.operands[0])
    dst = lowering.result_buffer(op, dt, [src])
    lowering.vector("vun", dst, [("a", src)], op=name, dtype=dt)
    lowering.vals[op.result.id] = dst


def _cast_scalar(lowering: Lowering, value: Operand, src_dt: str, dt: str) -> Operand:
    """One scalar cast: a constant folds; a register converts with `cvt` when int and float differ."""
    to_float = dt in ir.FLOAT_DTYPES
    if isinstance(value, (int, float)) and not isinstance(value, VReg):
        return float(value) if to_float else int(bool(value)) if dt == "i1" else _int_constant(value, src_dt, dt)
    if to_float == (src_dt in ir.FLOAT_DTYPES):
        if dt == "i8" and src_dt == "i32":
            return lowering.sop("sub", lowering.sop("and", lowering.sop("add", value, 128), 255), 128)
        return value
    d = VReg("cvt")
    lowering.emit("cvt", d=d, a=value, to="f32" if to_float else "i32")
    return d


def _int_constant(value: float, src_dt: str, dt: str) -> int:
    """A constant cast to an int dtype as the interpreter casts: a float truncates and saturates (NaN 0),
    i32 -> i8 keeps the low byte (as Triton and C do)."""
    lo, hi = (-128, 127) if dt == "i8" else (-2**31, 2**31 - 1)
    if src_dt in ir.FLOAT_DTYPES:
        return 0 if value != value else int(min(max(value, lo), hi))
    return (int(value) - lo) % (hi - lo + 1) + lo


@rule(K.CAST)
def _cast(lowering: Lowering, op: ir.Op) -> None:
    x = lowering.get(op.operands[0])
    src_dt, dt = ir.elem_type(op.operands[0].type).dtype, op.attrs["dtype"]
    if src_dt == dt:
        lowering.vals[op.result.id] = x
    elif op.result.id in lowering.cast_early:  # a split dot's pieces were converted on their way out of L0C
        lowering.vals[op.result.id] = lowering.cast_early[op.result.id]
    elif isinstance(x, Scalar):
        lowering.vals[op.result.id] = Scalar(_cast_scalar(lowering, x.value, src_dt, dt), dt)
    elif isinstance(x, Uniform):  # a splat of a scalar, constant or runtime (a register)
        lowering.vals[op.result.id] = Uniform(_cast_scalar(lowering, x.value, src_dt, dt), x.shape, dt)
    elif isinstance(x, TileView) and x.space == "l0c":
        lowering.vals[op.result.id] = TileView(x.buffer, x.offset, x.shape, x.strides, x.dtype, dt)
    else:
        src = lowering.view(op.operands[0])
        if (src_dt, dt) == ("i32", "i8"):  # keep the low byte: the vector unit's cast would saturate
            low = lowering.new_buffer(src.shape, "i32", "ub", "low")
            lowering.vector("vbin", low, [("a", src), ("b", 24)], op="shl", dtype="i32")
            lowering.vector("vbin", low, [("a", low), ("b", 24)], op="shr", dtype="i32")
            src = low
        dst = lowering.result_buffer(op, dt, [src])
        lowering.vector("vcast", dst, [("a", src)], from_dtype=src_dt, dtype=dt)
        lowering.vals[op.result.id] = dst


@rule(K.WHERE)
def _where(lowering: Lowering, op: ir.Op) -> None:
    cond, other = lowering.get(op.operands[0]), lowering.get(op.operands[2])
    dt = ir.elem_type(op.result.type).dtype
    if isinstance(cond, Mask) and isinstance(other, (Uniform, Scalar)) and len(cond.shape) <= 2:
        _where_bounds(lowering, op, cond, other.value, dt)
        return
    c = lowering.view(op.operands[0])
    a, b = lowering.operand(op.operands[1]), lowering.operand(op.operands[2])
    dst = lowering.result_buffer(op, dt, [c, a, b])
    lowering.vector("vsel", dst, [("c", c), ("a", a), ("b", b)], dtype=dt)
    lowering.vals[op.result.id] = dst


@rule(K.FMA)
def _fma(lowering: Lowering, op: ir.Op) -> None:
    """`a * b + c` as one `vfma`: `b` and `c` may be scalars or broadcast rows, `a` is a tile."""
    dt = ir.elem_type(op.result.type).dtype
    a, b, c = (lowering.operand(v) for v in op.operands)
    if not isinstance(a, TileView):
        a, b = (b, a) if isinstance(b, TileView) else (lowering.view(op.operands[0]), b)
    dst = lowering.result_buffer(op, dt, [a, b, c])
    lowering.vector("vfma", dst, [("a", a), ("b", b), ("c", c)], dtype=dt)
    lowering.vals[op.result.id] = dst


def _where_bounds(lowering: Lowering, op: ir.Op, mask: Mask, other: Operand, dt: str) -> None:
    """`where(lo <= index < hi, a, scalar)`: `a` in place (or copied), then the out-of-bounds head and tail
    of each bounded dim filled with the scalar. No mask tile is built, and usually those are empty."""
    a = lowering.operand(op.operands[1])
    dst = lowering.result_buffer(op, dt, [None, a, None])
    if isinstance(a, TileView):
        if a.buffer is not dst.buffer or a.strides != dst.strides or a.offset != dst.offset:
            lowering.vector("vcopy", dst, [("a", a)], dtype=dt)
    else:
        lowering.vector("vdup", dst, [], value=a, dtype=dt)
    rows, cols, rs, cs = dst.rows_cols()
    sop = lowering.sop
    for d, (lo, hi) in enumerate(access.bounds(mask, dst.shape, sop)):
        along = d if len(dst.shape) == 2 else 1  # 0: a run of rows, 1: a run of columns
        size = (rows, cols)[along]
        step = ((rs, cs)[along]) * dst.itemsize
        hi = size if hi is None else hi if lo == 0 else sop("max", hi, lo)  # an empty range fills it all
        for start, count in ((0, lo), (hi, sop("sub", size, hi))):
            if count == 0:
                continue
            shape = {"rows": count, "cols": cols} if along == 0 else {"rows": rows, "cols": count}
            lowering.out.append(MInstr("vdup", {"dst": ref_at(dst, sop("mul", start, step)), "value": other,
                                                "dtype": dt, **shape, "dst_rs": rs, "dst_cs": cs},
                                       lowering.loc, (), (dst.region(),)))
    lowering.vals[op.result.id] = dst
