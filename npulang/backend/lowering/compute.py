"""Lowering rules for the cube and reductions: dot (L1 -> L0A/L0B -> mmad into L0C, accumulating in
place when the accumulator allows) and reduce (one vred)."""

from __future__ import annotations

from isa.dtypes import DTYPES, accumulator
from npulang import ir
from npulang.backend.lowering.core import Lowering, is_zero, rule
from npulang.backend.values import Operand, TileView, dense_strides

K = ir.OpKind


# -- dot ---------------------------------------------------------------------------------------------
def _to_l1(lowering: Lowering, x: TileView) -> TileView:
    """A UB tile copied to L1 (the only way from the vector side into the cube's inputs)."""
    if x.rows_cols()[3] != 1:
        x = lowering.copy_dense(x)
    rows, cols, rs, _ = x.rows_cols()
    dst = lowering.new_buffer(x.shape, x.dtype, "l1", "to_l1")
    lowering.emit("store", (x.region(),), (dst.region(),), dst=dst.ref(), src=x.ref(), dtype=x.dtype, rows=rows,
                  cols=cols, src_rs=rs, dst_rs=cols)
    return dst


def _to_l0(lowering: Lowering, v: ir.Value, space: str) -> TileView:
    x = lowering.get(v)
    if not (isinstance(x, TileView) and x.space == "l1"):
        x = _to_l1(lowering, lowering.view(v))
    rows, cols = x.shape
    rs, cs = x.strides
    if cs == 1:
        transpose, src_rs = 0, rs
    elif rs == 1:
        transpose, src_rs = 1, cs
    else:
        x = _to_l1(lowering, lowering.copy_dense(lowering.view(v)))
        transpose, src_rs = 0, cols
    dst = lowering.new_buffer((rows, cols), x.dtype, space, f"{v.name or 'op'}_{space}")
    lowering.emit("move", (x.region(),), (dst.region(),), dst=dst.ref(), src=x.ref(), dtype=x.dtype, rows=rows,
                  cols=cols, src_rs=src_rs, dst_rs=cols, transpose=transpose)
    return dst


@rule(K.DOT)
def _dot(lowering: Lowering, op: ir.Op) -> None:
    a_v, b_v = op.operands[:2]
    m, k = a_v.type.shape
    n = b_v.type.shape[1]
    in_dt = ir.elem_type(a_v.type).dtype
    acc_dt = accumulator(DTYPES[in_dt]).name
    out_dt = op.attrs["out_dtype"]
    l0a, l0b = _to_l0(lowering, a_v, "l0a"), _to_l0(lowering, b_v, "l0b")
    init: Operand = 1
    dst: TileView | None = None
    extra = None
    if len(op.operands) > 2:
        acc_v = op.operands[2]
        acc = lowering.get(acc_v)
        in_place = lowering.uses.get(acc_v.id) == 1
        if isinstance(acc, TileView) and acc.space == "l0c" and in_place and acc.dtype == acc_dt:
            dst, init = acc, lowering.first_iter.get(id(acc.buffer), 0)
            lowering.acc_inputs[id(acc.buffer)] = (l0a, l0b, in_dt)
        elif not is_zero(acc):
            extra = acc_v
    if dst is None:
        dst = lowering.new_buffer((m, n), acc_dt, "l0c", op.result.name or "acc")
    reads = (l0a.region(), l0b.region()) + ((dst.region(),) if init != 1 else ())
    lowering.emit("mmad", reads, (dst.region(),), dst=dst.ref(), a=l0a.ref(), b=l0b.ref(), dtype=in_dt, m=m, n=n, k=k,
                  init=init)
    cast_to = out_dt if out_dt != acc_dt else None
    result = TileView(dst.buffer, 0, (m, n), dense_strides((m, n)), acc_dt, cast_to)
    if extra is not None:
        prod = lowering.fixpipe_to_ub(result)
        other = lowering.view(extra)
        out = lowering.new_buffer((m, n), out_dt, "ub", op.result.name)
        lowering.vector("vbin", out, [("a", prod), ("b", other)], op="add", dtype=out_dt)
        result = out
    lowering.vals[op.result.id] = result


# -- scans -------------------------------------------------------------------------------------------
@rule(K.SCAN)
def _scan(lowering: Lowering, op: ir.Op) -> None:
    """Prefix sums in log2(n) vector steps between two UB tiles: the first s elements along the axis are
    copied, the rest add the element s back (ahead, reversed); s = 1, 2, 4, ... (the interpreter's order)."""
    src = lowering.view(op.operands[0])
    axis, reverse = op.attrs["axis"], op.attrs["reverse"]
    n = src.shape[axis]
    bufs = [lowering.new_buffer(src.shape, src.dtype, "ub", op.result.name) for _ in range(min(2, n - 1))]
    s = 1
    while s < n:
        dst = bufs[0]
        bufs.reverse()
        near, far, head = (0, s, n - s) if reverse else (s, 0, 0)
        lowering.vector("vcopy", _along(dst, axis, head, s), [("a", _along(src, axis, head, s))], dtype=src.dtype)
        lowering.vector("vbin", _along(dst, axis, near, n - s), [("a", _along(src, axis, near, n - s)),
                                                                  ("b", _along(src, axis, far, n - s))],
                        op="add", dtype=src.dtype)
        src, s = dst, 2 * s
    lowering.vals[op.result.id] = src


def _along(x: TileView, axis: int, start: int, size: int) -> TileView:
    """Elements [start, start + size) of `x` along `axis`, as a view."""
    shape = x.shape[:axis] + (size,) + x.shape[axis + 1:]
    return TileView(x.buffer, x.offset + start * x.strides[axis] * x.itemsize, shape, x.strides, x.dtype)


# -- reductions --------------------------------------------------------------------------------------
@rule(K.REDUCE)
def _reduce(lowering: Lowering, op: ir.Op) -> None:
    x = lowering.view(op.operands[0])
    axis = 1 if len(x.shape) == 1 else op.attrs["axis"]
    dt = ir.elem_type(op.result.type).dtype
    dst = lowering.new_buffer(ir.shape_of(op.result.type), dt, "ub", op.result.name)
    if len(x.shape) == 3:
        _reduce_3d(lowering, op, x, axis, dst)
    else:
        _vred(lowering, op, x, axis, dst)
    lowering.vals[op.result.id] = dst


def _vred(lowering: Lowering, op: ir.Op, x: TileView, axis: int, dst: TileView) -> None:
    rows, cols, rs, cs = x.rows_cols()
    lowering.emit("vred", (x.region(),), (dst.region(),), op=op.attrs["op"], dst=dst.ref(), a=x.ref(),
                  dtype=x.dtype, rows=rows, cols=cols, axis=axis, a_rs=rs, a_cs=cs)


def _reduce_3d(lowering: Lowering, op: ir.Op, x: TileView, axis: int, dst: TileView) -> None:
    """A [B, M, N] tile: over B or N, one vred of the tile seen as [B, M*N] or [B*M, N] (a dense copy first
    if its strides do not allow that view); over M, one vred per slab, each writing its row of [B, N]."""
    b, m, n = x.shape
    if axis == 1:
        for i in range(b):
            _vred(lowering, op, x.slab(i), 0, dst.slab(i))
        return
    merged = (b, m * n) if axis == 0 else (b * m, n)
    if (x.strides[1] != n * x.strides[2]) if axis == 0 else (x.strides[0] != m * x.strides[1]):
        x = lowering.copy_dense(x)
    strides = (x.strides[0], x.strides[2]) if axis == 0 else (x.strides[1], x.strides[2])
    _vred(lowering, op, TileView(x.buffer, x.offset, merged, strides, x.dtype), axis // 2, dst)
