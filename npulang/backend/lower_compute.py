"""Lowering rules for dot, reductions and control flow (for / if / yield / print / return)."""

from __future__ import annotations

from isa import SourceLoc
from isa.dtypes import DTYPES, accumulator
from npulang import ir
from npulang.backend.lower import Lowering, rule
from npulang.backend.mir import If, Loop, MInstr, VReg
from npulang.backend.values import (
    Affine, Operand, Ptr, PtrTile, Scalar, TileView, Uniform, Wrapped, dense_strides,
)

K = ir.OpKind


# -- dot ---------------------------------------------------------------------------------------------
def _to_l1(lo: Lowering, x: TileView) -> TileView:
    """A UB tile copied to L1 (the only way from the vector side into the cube's inputs)."""
    if x.rows_cols()[3] != 1:
        x = lo.copy_dense(x)
    rows, cols, rs, _ = x.rows_cols()
    dst = lo.new_buffer(x.shape, x.dtype, "l1", "to_l1")
    lo.emit("store", (x.region(),), (dst.region(),), dst=dst.ref(), src=x.ref(), dtype=x.dtype, rows=rows,
            cols=cols, src_rs=rs, dst_rs=cols)
    return dst


def _to_l0(lo: Lowering, v: ir.Value, space: str) -> TileView:
    x = lo.get(v)
    if not (isinstance(x, TileView) and x.space == "l1"):
        x = _to_l1(lo, lo.view(v))
    rows, cols = x.shape
    rs, cs = x.strides
    if cs == 1:
        transpose, src_rs = 0, rs
    elif rs == 1:
        transpose, src_rs = 1, cs
    else:
        x = _to_l1(lo, lo.copy_dense(lo.view(v)))
        transpose, src_rs = 0, cols
    dst = lo.new_buffer((rows, cols), x.dtype, space, f"{v.name or 'op'}_{space}")
    lo.emit("move", (x.region(),), (dst.region(),), dst=dst.ref(), src=x.ref(), dtype=x.dtype, rows=rows,
            cols=cols,
            src_rs=src_rs, dst_rs=cols, transpose=transpose)
    return dst


def _is_zero(x: object) -> bool:
    return isinstance(x, (Uniform, Affine)) and (x.value if isinstance(x, Uniform) else x.base) == 0 and \
        (isinstance(x, Uniform) or all(c == 0 for c in x.coeffs))


@rule(K.DOT)
def _dot(lo: Lowering, op: ir.Op) -> None:
    a_v, b_v = op.operands[:2]
    m, k = a_v.type.shape
    n = b_v.type.shape[1]
    in_dt = ir.elem_type(a_v.type).dtype
    acc_dt = accumulator(DTYPES[in_dt]).name
    out_dt = op.attrs["out_dtype"]
    la, lb = _to_l0(lo, a_v, "l0a"), _to_l0(lo, b_v, "l0b")
    init: Operand = 1
    dst: TileView | None = None
    extra = None
    if len(op.operands) > 2:
        acc_v = op.operands[2]
        acc = lo.get(acc_v)
        in_place = lo.uses.get(acc_v.id) == 1
        if isinstance(acc, TileView) and acc.space == "l0c" and in_place and acc.dtype == acc_dt:
            dst, init = acc, lo.first_iter.get(id(acc.buffer), 0)
            lo.acc_inputs[id(acc.buffer)] = (la, lb, in_dt)
        elif not _is_zero(acc):
            extra = acc_v
    if dst is None:
        dst = lo.new_buffer((m, n), acc_dt, "l0c", op.result.name or "acc")
    reads = (la.region(), lb.region()) + ((dst.region(),) if init != 1 else ())
    lo.emit("mmad", reads, (dst.region(),), dst=dst.ref(), a=la.ref(), b=lb.ref(), dtype=in_dt, m=m, n=n, k=k,
            init=init)
    cast_to = out_dt if out_dt != acc_dt else None
    result = TileView(dst.buffer, 0, (m, n), dense_strides((m, n)), acc_dt, cast_to)
    if extra is not None:
        prod = lo.fixpipe_to_ub(result)
        other = lo.view(extra)
        out = lo.new_buffer((m, n), out_dt, "ub", op.result.name)
        lo.vector("vbin", out, [("a", prod), ("b", other)], op="add", dtype=out_dt)
        result = out
    lo.vals[op.result.id] = result


# -- reductions --------------------------------------------------------------------------------------
@rule(K.REDUCE)
def _reduce(lo: Lowering, op: ir.Op) -> None:
    x = lo.view(op.operands[0])
    rows, cols, rs, cs = x.rows_cols()
    axis = 1 if len(x.shape) == 1 else op.attrs["axis"]
    dt = ir.elem_type(op.result.type).dtype
    dst = lo.new_buffer(ir.shape_of(op.result.type), dt, "ub", op.result.name)
    lo.emit("vred", (x.region(),), (dst.region(),), op=op.attrs["op"], dst=dst.ref(), a=x.ref(),
            dtype=x.dtype,
            rows=rows, cols=cols, axis=axis, a_rs=rs, a_cs=cs)
    lo.vals[op.result.id] = dst


# -- control flow ------------------------------------------------------------------------------------
def _carry_buffer(lo: Lowering, arg: ir.Value, init: ir.Value, yielded: ir.Value | None) -> TileView:
    """A buffer that holds a tile iteration value across iterations (owned by the enclosing scope)."""
    shape, dt = ir.shape_of(arg.type), ir.elem_type(arg.type).dtype
    start = lo.producers.get(init.id)  # an overflow is reported where the carried value starts
    loc = SourceLoc(start.loc.file, start.loc.line) if start is not None else None
    producer = yielded is not None and lo.producers.get(yielded.id)
    if producer and producer.kind is K.DOT and len(producer.operands) > 2 and producer.operands[2] is arg:
        acc_dt = accumulator(DTYPES[ir.elem_type(producer.operands[0].type).dtype]).name
        if acc_dt == dt and _is_zero(lo.get(init)):
            view = lo.new_buffer(shape, dt, "l0c", arg.name or "acc", loc)
            lo.first_iter[id(view.buffer)] = -1  # set per loop entry below
            return view
    view = lo.new_buffer(shape, dt, "ub", arg.name or "carry", loc)
    _copy_into(lo, init, view)
    return view


def _copy_into(lo: Lowering, v: ir.Value, dst: TileView) -> None:
    x = lo.get(v)
    if isinstance(x, TileView) and x.buffer is dst.buffer:
        return
    if isinstance(x, (Uniform, Scalar)):
        lo.vector("vdup", dst, [], value=x.value, dtype=dst.dtype)
    else:
        lo.vector("vcopy", dst, [("a", lo.view(v))], dtype=dst.dtype)


_ELEMENTWISE = (K.BINARY, K.UNARY, K.CAST, K.WHERE)


@rule(K.FOR)
def _for(lo: Lowering, op: ir.Op) -> None:
    lb, ub, step = (lo.scalar(v) for v in op.operands[:3])
    if isinstance(step, float) or isinstance(step, int) and step <= 0:
        raise lo.error("loop step must be positive (a runtime step is assumed positive)")
    body = op.regions[0]
    iv_arg, iter_args = body.args[0], body.args[1:]
    yields = body.ops[-1].operands
    iv = VReg("iv")
    trips = max(0, -(-(ub - lb) // step)) if isinstance(lb, int) and isinstance(ub, int) else 0
    loop = Loop(iv, lb, ub, step, [], lo.loc, min_trips=trips, num_stages=op.attrs.get("num_stages"))
    carried: list[VReg | TileView] = []
    for init, arg, y in zip(op.operands[3:], iter_args, yields):
        x = lo.get(init)
        by_dot = (lo.producers.get(y.id) or op).kind is K.DOT
        if isinstance(x, PtrTile) and isinstance(x.offsets, TileView):  # gather pointers: carry the pointer
            r = VReg(arg.name or "base")
            lo.emit("mov", d=r, a=x.ptr.reg)
            carried.append(r)
            lo.vals[arg.id] = PtrTile(Ptr(r, x.ptr.arg, x.ptr.pointee), x.offsets)
        elif isinstance(x, (Affine, Wrapped, PtrTile)) and not by_dot:  # index/pointer tiles: the base offset
            off = x.offsets if isinstance(x, PtrTile) else x
            r = VReg(arg.name or "base")
            lo.emit("mov", d=r, a=_affine_of(off).base)
            carried.append(r)
            moved = _rebased(off, r)
            lo.vals[arg.id] = PtrTile(x.ptr, moved) if isinstance(x, PtrTile) else moved
        elif isinstance(arg.type, ir.TileType):
            view = _carry_buffer(lo, arg, init, y)
            carried.append(view)
            lo.vals[arg.id] = view
            producer = lo.producers.get(y.id)
            if (view.space == "ub" and producer is not None and producer in body.ops
                    and producer.kind in _ELEMENTWISE and arg in producer.operands
                    and lo.uses.get(arg.id) == 1):
                lo.write_into[y.id] = view  # `acc = acc + x`: accumulate in place, no copy per iteration
        else:
            r = VReg(arg.name or "carry")
            lo.emit("mov", d=r, a=lo.scalar(init))
            carried.append(r)
            dt = "i32" if isinstance(arg.type, ir.PtrType) else ir.elem_type(arg.type).dtype
            lo.vals[arg.id] = Scalar(r, dt)
    outer_out, outer_scope = lo.out, lo.scope
    lo.out, lo.scope = loop.body, loop
    lo.cse.append({})
    lo.vals[iv_arg.id] = Scalar(iv, "i32")
    for c in carried:
        if isinstance(c, TileView) and lo.first_iter.get(id(c.buffer)) == -1:
            first = VReg("first")
            lo.emit("eq", d=first, a=iv, b=lb)
            lo.first_iter[id(c.buffer)] = first
    lo.block(ir.Block([], body.ops[:-1]))
    for c, y, arg in zip(carried, yields, iter_args):
        if isinstance(c, VReg) and isinstance(lo.get(arg), (Affine, Wrapped, PtrTile)):
            lo.emit("mov", d=c, a=_carried_base(lo, lo.get(arg), lo.get(y)))
        elif isinstance(c, VReg):
            lo.emit("mov", d=c, a=lo.scalar(y))
        else:
            x = lo.get(y)
            if c.space == "l0c" and not (isinstance(x, TileView) and x.buffer is c.buffer):
                raise lo.error("a loop-carried dot accumulator must be updated as acc = dot(a, b, acc)")
            if c.space == "ub":
                _copy_into(lo, y, c)
    lo.out, lo.scope = outer_out, outer_scope
    lo.cse.pop()
    lo.out.append(loop)
    for c in carried:
        if isinstance(c, TileView) and c.space == "l0c" and loop.min_trips == 0:
            _zero_when_no_trips(lo, loop, c)
    for r, c, arg in zip(op.results, carried, iter_args):
        if isinstance(c, VReg) and isinstance(lo.get(arg), (Affine, Wrapped, PtrTile)):
            lo.vals[r.id] = lo.get(arg)
        else:
            lo.vals[r.id] = Scalar(c, ir.elem_type(r.type).dtype) if isinstance(c, VReg) else c


def _zero_when_no_trips(lo: Lowering, loop: Loop, acc: TileView) -> None:
    """An L0C accumulator's loop may run zero times; then `mmad` with k=0 and init=1 sets it to zeros.

    Inside the loop the first iteration's mmad overwrites (init=1), so nothing else ever defines it.
    """
    la, lb, in_dt = lo.acc_inputs[id(acc.buffer)]
    m, n = acc.shape
    mmad = MInstr("mmad", {"dst": acc.ref(), "a": la.ref(), "b": lb.ref(), "dtype": in_dt, "m": m, "n": n,
                           "k": 0, "init": 1}, loop.loc, (), (acc.region(),))
    no_trips = lo.sop("ge", loop.lb, loop.ub)
    if isinstance(no_trips, int):
        if no_trips:
            lo.out.append(mmad)
        return
    lo.out.append(If(no_trips, [mmad], [], loop.loc))


def _carried_base(lo: Lowering, arg: Affine | PtrTile, y: object) -> Operand:
    """The new base offset of a carried index/pointer tile; its strides must not change."""
    if isinstance(arg, PtrTile) and isinstance(arg.offsets, TileView):
        if not (isinstance(y, PtrTile) and y.offsets is arg.offsets and y.ptr.arg == arg.ptr.arg):
            raise lo.error("a loop-carried gather pointer tile must advance by a scalar")
        return y.ptr.reg
    a = arg.offsets if isinstance(arg, PtrTile) else arg
    if isinstance(y, PtrTile) and isinstance(arg, PtrTile) and y.ptr == arg.ptr:
        b = y.offsets
    elif not isinstance(y, PtrTile) and not isinstance(arg, PtrTile):
        b = y
    else:
        raise lo.error("a loop-carried pointer/index tile must keep its base pointer and change by a scalar")
    same_wrap = isinstance(a, Wrapped) == isinstance(b, Wrapped) and (
        not isinstance(a, Wrapped) or isinstance(b, Wrapped) and a.dim == b.dim and a.plan is b.plan)
    if not isinstance(b, (Affine, Wrapped)) or not same_wrap or _affine_of(b).coeffs != _affine_of(a).coeffs:
        raise lo.error("a loop-carried pointer/index tile must advance by the same amount in every element")
    return _affine_of(b).base


def _affine_of(x: Affine | Wrapped) -> Affine:
    return x.affine if isinstance(x, Wrapped) else x


def _rebased(x: Affine | Wrapped, base: Operand) -> Affine | Wrapped:
    """The same index tile with a new scalar base offset."""
    a = _affine_of(x)
    moved = Affine(base, a.coeffs, a.shape)
    return Wrapped(moved, x.dim, x.plan) if isinstance(x, Wrapped) else moved


@rule(K.IF)
def _if(lo: Lowering, op: ir.Op) -> None:
    cond = lo.scalar(op.operands[0])
    regs = []
    for r in op.results:
        if isinstance(r.type, ir.TileType):
            raise lo.error("an if producing tiles is not supported", hint="compute both and use npu.where")
        regs.append(VReg(r.name or "phi"))
    node = If(cond, [], [], lo.loc)
    outer = lo.out
    orelse = op.regions[1] if len(op.regions) > 1 else None
    for block, region in ((node.then, op.regions[0]), (node.orelse, orelse)):
        lo.out = block
        lo.cse.append({})
        if region is not None:
            lo.block(ir.Block([], region.ops[:-1]))
            for reg, y in zip(regs, region.ops[-1].operands):
                lo.emit("mov", d=reg, a=lo.scalar(y))
        lo.cse.pop()
    lo.out = outer
    lo.out.append(node)
    for r, reg in zip(op.results, regs):
        lo.vals[r.id] = Scalar(reg, ir.elem_type(r.type).dtype)


@rule(K.YIELD)
@rule(K.RETURN)
def _terminator(lo: Lowering, op: ir.Op) -> None:
    """Yields are consumed by their for/if; return ends the kernel."""


@rule(K.PRINT)
def _print(lo: Lowering, op: ir.Op) -> None:
    prefix = op.attrs.get("prefix", "")
    for v in op.operands:
        x = lo.get(v)
        if isinstance(x, Scalar):
            lo.emit("print", fmt=prefix, a=x.value)
        else:
            t = lo.view(v)
            rows, cols, rs, cs = t.rows_cols()
            lo.out.append(MInstr("vprint", {"fmt": prefix, "a": t.ref(), "dtype": t.dtype, "rows": rows,
                                            "cols": cols, "a_rs": rs, "a_cs": cs}, lo.loc, (t.region(),)))

