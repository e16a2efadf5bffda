"""Lowering rules for control flow: for and while (loop-carried scalars, index tiles and tiles in
buffers, dot accumulators kept in L0C), if (scalar results), yield/return, and device_print."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Callable, Iterator

from isa import SourceLoc
from isa.dtypes import DTYPES, accumulator
from npulang import ir
from npulang.backend.lowering.core import Lowering, is_zero, rule
from npulang.backend.mir import If, Loop, MInstr, Node, VReg
from npulang.backend.values import Affine, Operand, Ptr, PtrTile, Scalar, TileView, Uniform, Wrapped

K = ir.OpKind


# -- control flow ------------------------------------------------------------------------------------
def _carry_buffer(lowering: Lowering, arg: ir.Value, init: ir.Value, yielded: ir.Value | None) -> TileView:
    """A buffer that holds a tile iteration value across iterations (owned by the enclosing scope)."""
    shape, dt = ir.shape_of(arg.type), ir.elem_type(arg.type).dtype
    start = lowering.producers.get(init.id)  # an overflow is reported where the carried value starts
    loc = SourceLoc(start.loc.file, start.loc.line) if start is not None else None
    producer = yielded is not None and lowering.producers.get(yielded.id)
    if producer and producer.kind is K.DOT and len(producer.operands) > 2 and producer.operands[2] is arg:
        acc_dt = accumulator(DTYPES[ir.elem_type(producer.operands[0].type).dtype]).name
        if acc_dt == dt and is_zero(lowering.get(init)):
            view = lowering.new_buffer(shape, dt, "l0c", arg.name or "acc", loc)
            lowering.first_iter[id(view.buffer)] = -1  # set per loop entry below
            return view
    view = lowering.new_buffer(shape, dt, "ub", arg.name or "carry", loc)
    _copy_into(lowering, init, view)
    return view


def _copy_into(lowering: Lowering, v: ir.Value, dst: TileView) -> None:
    x = lowering.get(v)
    if isinstance(x, TileView) and x.buffer is dst.buffer:
        return
    if isinstance(x, (Uniform, Scalar)):
        lowering.vector("vdup", dst, [], value=x.value, dtype=dst.dtype)
    else:
        lowering.vector("vcopy", dst, [("a", lowering.view(v))], dtype=dst.dtype)


_ELEMENTWISE = (K.BINARY, K.UNARY, K.CAST, K.WHERE, K.FMA)


@rule(K.FOR)
def _for(lowering: Lowering, op: ir.Op) -> None:
    lb, ub, step = (lowering.scalar(v) for v in op.operands[:3])
    if isinstance(step, float) or isinstance(step, int) and step <= 0:
        raise lowering.error("loop step must be positive (a runtime step is assumed positive)")
    body = op.regions[0]
    iv_arg, iter_args = body.args[0], body.args[1:]
    yields = body.ops[-1].operands
    iv = VReg("iv")
    trips = max(0, -(-(ub - lb) // step)) if isinstance(lb, int) and isinstance(ub, int) else 0
    loop = Loop(iv, lb, ub, step, [], lowering.loc, min_trips=trips, num_stages=op.attrs.get("num_stages"))
    carried = _carry_in(lowering, op, loop, op.operands[3:], iter_args, yields, body)
    with _inside(lowering, loop):
        lowering.vals[iv_arg.id] = Scalar(iv, "i32")
        _first_iteration_flags(lowering, carried, iv, lb)
        lowering.block(ir.Block([], body.ops[:-1]))
        _carry_update(lowering, loop, carried, yields, iter_args)
    lowering.out.append(loop)
    for c in carried:
        if isinstance(c, TileView) and c.space == "l0c" and loop.min_trips == 0:
            _zero_when_no_trips(lowering, loop, c)
    _carry_results(lowering, op, carried, iter_args)


@rule(K.WHILE)
def _while(lowering: Lowering, op: ir.Op) -> None:
    """A while loop is a `Loop` from 0 whose bound is re-set each iteration: the condition, evaluated
    before the loop and at the end of every body, sets ub = iv + 1 + cond, so the back edge's
    `iv + 1 < ub` holds exactly while the condition does. Not software-pipelined (no trip count)."""
    cond_region, body = op.regions
    yields = body.ops[-1].operands
    iv, ub = VReg("iv"), VReg("while_ub")
    loop = Loop(iv, 0, ub, 1, [], lowering.loc, min_trips=0, num_stages=1)
    carried = _carry_in(lowering, op, loop, op.operands, body.args, yields, body)
    for c_arg, b_arg in zip(cond_region.args, body.args):
        lowering.vals[c_arg.id] = lowering.vals[b_arg.id]

    def condition() -> Operand:
        """The cond region lowered afresh (its own scope of scalar ops: the carried values change)."""
        code: list[Node] = []
        with lowering.nested(code):
            lowering.block(ir.Block([], cond_region.ops[:-1]))
            c = lowering.sop("ne", lowering.scalar(cond_region.ops[-1].operands[0]), 0)
        lowering.out += code
        return c
    lowering.emit("mov", d=ub, a=condition())
    with _inside(lowering, loop):
        _first_iteration_flags(lowering, carried, iv, 0)
        lowering.block(ir.Block([], body.ops[:-1]))
        _carry_update(lowering, loop, carried, yields, body.args)
        lowering.emit("mov", d=ub, a=lowering.sop("add", lowering.sop("add", iv, 1), condition()))
    lowering.out.append(loop)
    for c in carried:
        if isinstance(c, TileView) and c.space == "l0c":
            _zero_when_no_trips(lowering, loop, c)
    _carry_results(lowering, op, carried, body.args)


@contextmanager
def _inside(lowering: Lowering, loop: Loop) -> Iterator[None]:
    """Lower into `loop`'s body, with its own scope of buffers and scalar ops."""
    outer_out, outer_scope = lowering.out, lowering.scope
    lowering.out, lowering.scope = loop.body, loop
    lowering.cse.append({})
    try:
        yield
    finally:
        lowering.out, lowering.scope = outer_out, outer_scope
        lowering.cse.pop()


def _carry_in(lowering: Lowering, op: ir.Op, loop: Loop, inits: tuple[ir.Value, ...], iter_args: list[ir.Value],
              yields: tuple[ir.Value, ...], body: ir.Block) -> list[VReg | TileView]:
    """Where each loop-carried value lives across iterations (set up before the loop): a register for
    scalars and for the base offset of index/pointer tiles, a buffer for other tiles."""
    carried: list[VReg | TileView] = []
    has_dot = any(o.kind is K.DOT for o in ir.walk(body))  # its pipelining may run the vector work ahead
    for init, arg, y in zip(inits, iter_args, yields):
        x = lowering.get(init)
        by_dot = (lowering.producers.get(y.id) or op).kind is K.DOT
        if isinstance(x, PtrTile) and isinstance(x.offsets, TileView):  # gather pointers: carry the pointer
            r = VReg(arg.name or "base")
            lowering.emit("mov", d=r, a=x.ptr.reg)
            carried.append(r)
            lowering.vals[arg.id] = PtrTile(Ptr(r, x.ptr.arg, x.ptr.pointee), x.offsets)
        elif isinstance(x, (Affine, Wrapped, PtrTile)) and not by_dot and (isinstance(x, PtrTile)
                                                                          or not _updated_from_data(lowering, body, y)):
            # index/pointer tiles: the base offset
            off = x.offsets if isinstance(x, PtrTile) else x
            r = VReg(arg.name or "base")
            lowering.emit("mov", d=r, a=_affine_of(off).base)
            carried.append(r)
            moved = _rebased(off, r)
            lowering.vals[arg.id] = PtrTile(x.ptr, moved) if isinstance(x, PtrTile) else moved
        elif isinstance(arg.type, ir.TileType) or arg.id in lowering.ub_scalars:  # tiles; scalars in UB
            view = _carry_buffer(lowering, arg, init, y)
            carried.append(view)
            lowering.carried[(id(loop), id(view.buffer))] = _update_chain(lowering, body, y) if has_dot else None
            lowering.vals[arg.id] = view
            producer = lowering.producers.get(y.id)
            if (view.space == "ub" and producer is not None and producer in body.ops
                    and producer.kind in _ELEMENTWISE and arg in producer.operands
                    and lowering.uses.get(arg.id) == 1):
                lowering.write_into[y.id] = view  # `acc = acc + x`: accumulate in place, no copy per iteration
        else:
            r = VReg(arg.name or "carry")
            lowering.emit("mov", d=r, a=lowering.scalar(init))
            carried.append(r)
            dt = "i32" if isinstance(arg.type, ir.PtrType) else ir.elem_type(arg.type).dtype
            lowering.vals[arg.id] = Scalar(r, dt)
    return carried


# ops whose results are data, not affine in the loop's indices
_DATA_OPS = (K.LOAD, K.DESC_LOAD, K.CONV_LOAD, K.DOT, K.REDUCE, K.SCAN, K.FOR, K.IF, K.WHILE)


def _updated_from_data(lowering: Lowering, body: ir.Block, y: ir.Value) -> bool:
    """Whether the body computes the yielded `y` from loaded or reduced data (an int32 accumulator that
    starts as zeros, `acc += x * w`): its carried tile is then data in a buffer, not an index tile."""
    ops = {id(o) for o in ir.walk(body)}
    return any(p.kind in _DATA_OPS for _, p in _producers_back(lowering, ops, y, lambda p, v: list(p.operands)))


def _producers_back(lowering: Lowering, ops: set[int], y: ir.Value,
                    follow: Callable[[ir.Op, ir.Value], list[ir.Value]]) -> Iterator[tuple[ir.Value, ir.Op]]:
    """(value, producer) from `y` back through the producers among `ops`, into the operands `follow` picks."""
    seen: set[int] = set()
    todo = [y]
    while todo:
        v = todo.pop()
        p = lowering.producers.get(v.id)
        if v.id in seen or p is None or id(p) not in ops:
            continue
        seen.add(v.id)
        yield v, p
        todo += follow(p, v)


def _first_iteration_flags(lowering: Lowering, carried: list[VReg | TileView], iv: VReg, lb: Operand) -> None:
    """An L0C accumulator's mmad overwrites on the first iteration (iv == lb) and accumulates after."""
    for c in carried:
        if isinstance(c, TileView) and lowering.first_iter.get(id(c.buffer)) == -1:
            first = VReg("first")
            lowering.emit("eq", d=first, a=iv, b=lb)
            lowering.first_iter[id(c.buffer)] = first


def _carry_update(lowering: Lowering, loop: Loop, carried: list[VReg | TileView], yields: tuple[ir.Value, ...],
                  iter_args: list[ir.Value]) -> None:
    """At the end of the body: the next iteration's values into the carried registers and buffers."""
    for c, y in zip(carried, yields):  # a value computed in place in another carried tile: copy it out first,
        x = lowering.get(y)             # or the yield copies below could overwrite it before it is read
        if (isinstance(c, TileView) and isinstance(x, TileView) and x.buffer is not c.buffer
                and (id(loop), id(x.buffer)) in lowering.carried):
            lowering.vals[y.id] = lowering.copy_dense(x)
    for c, y, arg in zip(carried, yields, iter_args):
        if isinstance(c, VReg) and isinstance(lowering.get(arg), (Affine, Wrapped, PtrTile)):
            lowering.emit("mov", d=c, a=_carried_base(lowering, lowering.get(arg), lowering.get(y)))
        elif isinstance(c, VReg):
            lowering.emit("mov", d=c, a=lowering.scalar(y))
        else:
            x = lowering.get(y)
            if c.space == "l0c" and not (isinstance(x, TileView) and x.buffer is c.buffer):
                raise lowering.error("a loop-carried dot accumulator must be updated as acc = dot(a, b, acc)")
            if c.space == "ub":
                _copy_into(lowering, y, c)


def _carry_results(lowering: Lowering, op: ir.Op, carried: list[VReg | TileView],
                   iter_args: list[ir.Value]) -> None:
    for r, c, arg in zip(op.results, carried, iter_args):
        if isinstance(c, VReg) and isinstance(lowering.get(arg), (Affine, Wrapped, PtrTile)):
            lowering.vals[r.id] = lowering.get(arg)
        else:
            lowering.vals[r.id] = Scalar(c, ir.elem_type(r.type).dtype) if isinstance(c, VReg) else c


def _update_chain(lowering: Lowering, body: ir.Block, y: ir.Value) -> set[int]:
    """Ids of the body's values that flow into the yielded `y` through elementwise ops (and a dot's
    accumulator): the values that may be computed in place in y's carried tile."""
    def follow(p: ir.Op, v: ir.Value) -> list[ir.Value]:
        if p.kind in _ELEMENTWISE:
            return [u for u in p.operands if ir.shape_of(u.type) == ir.shape_of(v.type)]
        return [p.operands[2]] if p.kind is K.DOT and len(p.operands) > 2 else []

    return {v.id for v, _ in _producers_back(lowering, {id(o) for o in body.ops}, y, follow)}


def _zero_when_no_trips(lowering: Lowering, loop: Loop, acc: TileView) -> None:
    """An L0C accumulator's loop may run zero times; then `mmad` with k=0 and init=1 sets it to zeros.

    Inside the loop the first iteration's mmad overwrites (init=1), so nothing else ever defines it.
    """
    l0a, l0b, in_dt = lowering.acc_inputs[id(acc.buffer)]
    m, n = acc.shape
    mmad = MInstr("mmad", {"dst": acc.ref(), "a": l0a.ref(), "b": l0b.ref(), "dtype": in_dt, "m": m, "n": n,
                           "k": 0, "init": 1}, loop.loc, (), (acc.region(),))
    no_trips = lowering.sop("ge", loop.lb, loop.ub)
    if isinstance(no_trips, int):
        if no_trips:
            lowering.out.append(mmad)
        return
    lowering.out.append(If(no_trips, [mmad], [], loop.loc))


def _carried_base(lowering: Lowering, arg: Affine | PtrTile, y: object) -> Operand:
    """The new base offset of a carried index/pointer tile; its strides must not change."""
    if isinstance(arg, PtrTile) and isinstance(arg.offsets, TileView):
        if not (isinstance(y, PtrTile) and y.offsets is arg.offsets and y.ptr.arg == arg.ptr.arg):
            raise lowering.error("a loop-carried gather pointer tile must advance by a scalar")
        return y.ptr.reg
    a = arg.offsets if isinstance(arg, PtrTile) else arg
    if isinstance(y, PtrTile) and isinstance(arg, PtrTile) and y.ptr == arg.ptr:
        b = y.offsets
    elif not isinstance(y, PtrTile) and not isinstance(arg, PtrTile):
        b = y
    else:
        raise lowering.error("a loop-carried pointer/index tile must keep its base pointer and change by a scalar")
    same_wrap = isinstance(a, Wrapped) == isinstance(b, Wrapped) and (
        not isinstance(a, Wrapped) or isinstance(b, Wrapped) and a.dim == b.dim and a.plan is b.plan)
    if not isinstance(b, (Affine, Wrapped)) or not same_wrap or _affine_of(b).coeffs != _affine_of(a).coeffs:
        raise lowering.error("a loop-carried pointer/index tile must advance by the same amount in every element")
    return _affine_of(b).base


def _affine_of(x: Affine | Wrapped) -> Affine:
    return x.affine if isinstance(x, Wrapped) else x


def _rebased(x: Affine | Wrapped, base: Operand) -> Affine | Wrapped:
    """The same index tile with a new scalar base offset."""
    a = _affine_of(x)
    moved = Affine(base, a.coeffs, a.shape)
    return Wrapped(moved, x.dim, x.plan) if isinstance(x, Wrapped) else moved


@rule(K.IF)
def _if(lowering: Lowering, op: ir.Op) -> None:
    cond = lowering.scalar(op.operands[0])
    regs = []
    for r in op.results:
        if isinstance(r.type, ir.TileType):
            raise lowering.error("an if producing tiles is not supported", hint="compute both and use npu.where")
        regs.append(VReg(r.name or "phi"))
    node = If(cond, [], [], lowering.loc)
    outer = lowering.out
    orelse = op.regions[1] if len(op.regions) > 1 else None
    for block, region in ((node.then, op.regions[0]), (node.orelse, orelse)):
        lowering.out = block
        lowering.cse.append({})
        if region is not None:
            lowering.block(ir.Block([], region.ops[:-1]))
            for reg, y in zip(regs, region.ops[-1].operands):
                lowering.emit("mov", d=reg, a=lowering.scalar(y))
        lowering.cse.pop()
    lowering.out = outer
    lowering.out.append(node)
    for r, reg in zip(op.results, regs):
        lowering.vals[r.id] = Scalar(reg, ir.elem_type(r.type).dtype)


@rule(K.YIELD)
@rule(K.RETURN)
def _terminator(lowering: Lowering, op: ir.Op) -> None:
    """Yields are consumed by their for/if; return ends the kernel."""


@rule(K.PRINT)
def _print(lowering: Lowering, op: ir.Op) -> None:
    prefix = op.attrs.get("prefix", "")
    for v in op.operands:
        x = lowering.get(v)
        if isinstance(x, Scalar):
            lowering.emit("print", fmt=prefix, a=x.value)
        else:
            t = lowering.view(v)
            rows, cols, rs, cs = t.rows_cols()
            lowering.out.append(MInstr("vprint", {"fmt": prefix, "a": t.ref(), "dtype": t.dtype, "rows": rows,
                                                  "cols": cols, "a_rs": rs, "a_cs": cs}, lowering.loc, (t.region(),)))
