"""Lowering: block IR -> machine IR, one rule per op kind (registered with `@rule`).

This module holds the `Lowering` object (all per-compile state) and its helpers; the rules live in
the sibling modules, which `npulang.backend.lowering` imports so that every rule is registered.

Scalars live in virtual registers; index/pointer/mask tiles stay symbolic (`access.py`) until a
load or store turns them into strided DMA descriptors with valid extents; other tiles live in
buffers chosen by placement: loads feeding `dot` go to L1 and move to L0A/L0B, dot results stay
in L0C (a loop-carried accumulator accumulates in place; its first iteration overwrites, and a
loop that may run zero times is followed by a guarded k=0 mmad that zeroes it), and elementwise
work happens in UB (a loop-carried tile updated as `acc = acc op x` is updated in place, and an
elementwise result takes the tile of an operand that dies there). A dot result that is stored leaves by
fixpipe straight to GM.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Callable, Iterator

from isa import MachineSpec, SourceLoc
from isa import dtype as isa_dtype
from npulang import ir
from npulang.backend import access
from npulang.backend.errors import UnsupportedKernelError
from npulang.backend.mir import Buffer, BufRef, Loop, MInstr, Node, Region, VReg
from npulang.backend.values import (
    Affine, Lowered, Mask, Operand, Ptr, PtrTile, RankError, Scalar, TileView, Uniform, Wrapped, dense_strides,
)

RULES: dict[ir.OpKind, Callable[[Lowering, ir.Op], None]] = {}


def rule(kind: ir.OpKind) -> Callable[[Callable[[Lowering, ir.Op], None]], Callable[[Lowering, ir.Op], None]]:
    """Register the decorated function as the lowering rule of ops of `kind` (one rule per kind)."""
    def register(fn: Callable[[Lowering, ir.Op], None]) -> Callable[[Lowering, ir.Op], None]:
        RULES[kind] = fn
        return fn
    return register


class Lowering:
    """Lower one `ir.Function` to machine IR (`apply` returns the top-level node list)."""

    def __init__(self, fn: ir.Function, spec: MachineSpec) -> None:
        self.fn, self.spec = fn, spec
        self.vals: dict[int, Lowered] = {}
        self.uses: dict[int, int] = {}
        self.remaining: dict[int, int] = {}  # value id -> uses not lowered yet (an input dies at its last use)
        # (id(loop), id(buffer)) of a loop's carried UB tile -> ids of the values that may be computed in it
        # (those that update it; None: any, in a loop without dots, whose iterations never run ahead)
        self.carried: dict[tuple[int, int], set[int] | None] = {}
        self.in_ub: dict[tuple[int, int], TileView] = {}  # (value id, id(scope)) -> its L0C tile copied to UB
        self.feeds_dot: set[int] = set()
        self.ub_scalars: set[int] = set()  # scalar values held in UB, not registers (see `_ub_scalars`)
        self.out: list[Node] = []
        self.scope: Loop | None = None
        self.first_iter: dict[int, Operand] = {}  # L0C buffer id -> "first iteration" flag
        # L0C buffer id -> its accumulating mmad's L0A and L0B tiles and input dtype
        self.acc_inputs: dict[int, tuple[TileView, TileView, str]] = {}
        self.write_into: dict[int, TileView] = {}  # value id -> the loop-carried UB tile it is computed into
        self.notes: list[str] = []
        self.multiples_of_16: set[VReg] = set()  # registers known to hold multiples of 16 (specialised args)
        # value id -> why an index, pointer or mask tile could not stay symbolic (for gather/scatter notes)
        self.why: dict[int, str] = {}
        self.loc: SourceLoc | None = None
        self.op: ir.Op | None = None
        self.count = 0
        self.cse: list[dict[tuple[str, Any, Any], VReg]] = [{}]  # scalar ops per enclosing block
        # value id -> the op defining it (carried-buffer placement looks at a yield's producer)
        self.producers: dict[int, ir.Op] = {r.id: op for op in ir.walk(fn.body) for r in op.results}
        self.consumers: dict[int, list[ir.Op]] = {}  # value id -> the ops using it
        self.loaded: set[int] = set()  # ids of the buffers DMA loads write
        self.cast_early: dict[int, TileView] = {}  # cast result id -> its tile, already converted by fixpipe

    def apply(self) -> list[Node]:
        self._analyse(self.fn.body)
        for i, a in enumerate(self.fn.args):
            reg = VReg(a.name or f"arg{i}")
            self.emit("arg", d=reg, index=i)
            if self.fn.specialised.get(a.name or "") == 16:
                self.multiples_of_16.add(reg)
            t = a.type
            self.vals[a.id] = Ptr(reg, i, t.pointee) if isinstance(t, ir.PtrType) else Scalar(reg, t.dtype)
        self.block(self.fn.body)
        return self.out

    def _analyse(self, block: ir.Block) -> None:
        for op in ir.walk(block):
            for v in op.operands:
                self.uses[v.id] = self.uses.get(v.id, 0) + 1
                self.consumers.setdefault(v.id, []).append(op)
            if op.kind is ir.OpKind.DOT:
                for v in op.operands[:2]:
                    self.feeds_dot.add(v.id)
        self.remaining = dict(self.uses)
        for op in ir.walk(block):  # a while's condition is lowered twice: before the loop and after each body
            if op.kind is ir.OpKind.WHILE:
                for inner in ir.walk(op.regions[0]):
                    for v in inner.operands:
                        self.remaining[v.id] = self.remaining.get(v.id, 0) + 1
        for op in reversed(list(ir.walk(block))):  # a trans/cast feeding a dot: its input feeds it too
            if op.kind in (ir.OpKind.TRANS,) and op.result.id in self.feeds_dot:
                self.feeds_dot.add(op.operands[0].id)
        self.ub_scalars = _ub_scalars(block)

    # -- helpers ---------------------------------------------------------------------------------
    def error(self, message: str, hint: str | None = None) -> UnsupportedKernelError:
        loc = self.op.loc if self.op else ir.Loc("<kernel>", 0)
        return UnsupportedKernelError(self.fn.name, loc.file, loc.line, loc.col, message, hint=hint)

    def emit(self, opcode: str, reads: tuple[Region, ...] = (), writes: tuple[Region, ...] = (),
             **args: Any) -> MInstr:
        ins = MInstr(opcode, args, self.loc, reads, writes)
        self.out.append(ins)
        return ins

    def sop(self, op: str, a: Operand, b: Operand) -> Operand:
        """A scalar op, folded when both sides are constants."""
        if isinstance(a, int) and isinstance(b, int):
            folded = _fold(op, a, b)
            if folded is not None:
                return folded
        if op == "add" and b == 0 or op == "mul" and b == 1 or op == "sub" and b == 0:
            return a
        if op in ("add", "mul") and (a == 0 and op == "add" or a == 1 and op == "mul"):
            return b
        if op == "mul" and (a == 0 or b == 0) and not (isinstance(a, float) or isinstance(b, float)):
            return 0
        key = (op, a, b)
        for scope in self.cse:
            if key in scope:
                return scope[key]
        d = VReg("t")
        self.emit(op, d=d, a=a, b=b)
        self.cse[-1][key] = d
        if op == "mul" and (self._multiple_of_16(a) or self._multiple_of_16(b)) or \
                op in ("add", "sub") and self._multiple_of_16(a) and self._multiple_of_16(b):
            self.multiples_of_16.add(d)
        return d

    def _multiple_of_16(self, x: Operand) -> bool:
        return x in self.multiples_of_16 if isinstance(x, VReg) else isinstance(x, int) and x % 16 == 0

    def aligned(self, stride: Operand, itemsize: int, burst: int) -> bool:
        """Whether rows `stride` elements of `itemsize` bytes apart are known to be whole bursts apart."""
        if isinstance(stride, int):
            return stride * itemsize % burst == 0
        return isinstance(stride, VReg) and stride in self.multiples_of_16 and 16 * itemsize % burst == 0

    @contextmanager
    def nested(self, block: list[Node]) -> Iterator[None]:
        """Emit into `block` (an if branch or a loop body) with its own scope of reusable scalar ops."""
        outer = self.out
        self.out = block
        self.cse.append({})
        try:
            yield
        finally:
            self.out = outer
            self.cse.pop()

    def new_buffer(self, shape: tuple[int, ...], dtype: str, space: str, hint: str | None = None,
                   loc: SourceLoc | None = None) -> TileView:
        """A fresh tile; `loc` (default: the op being lowered) is where an overflow of it is reported."""
        self.count += 1
        nbytes = max(1, numel(shape)) * isa_dtype(dtype).itemsize
        buf = Buffer(f"{hint or 't'}{self.count}", space, nbytes, loc or self.loc, self.scope)
        return TileView(buf, 0, shape, dense_strides(shape), dtype)

    def get(self, v: ir.Value) -> Lowered:
        return self.vals[v.id]

    def scalar(self, v: ir.Value) -> Operand:
        x = self.get(v)
        if isinstance(x, Scalar):
            return x.value
        if isinstance(x, Ptr):
            return x.reg
        if isinstance(x, TileView) and x.shape == ():
            raise self.error("this scalar lives in UB (loaded from memory, or computed on the vector unit) and "
                             "the scalar unit cannot read UB, so it cannot steer control flow or a loop bound",
                             hint="decide with scalars computed from arguments and program ids, or apply "
                                  "the value per element with npu.where or a mask")
        raise self.error("this value must be a scalar held in a register here "
                         "(not a tile or a reduction result)")

    def block(self, block: ir.Block) -> None:
        for op in block.ops:
            self.op = op
            self.loc = SourceLoc(op.loc.file, op.loc.line)
            rank = max((len(ir.shape_of(r.type)) for r in op.results), default=0)
            if rank > 3:
                raise self.error(f"tiles of rank {rank} are not supported by the backend (rank 1 to 3)",
                                 hint=_RANK_HINT)
            try:
                RULES[op.kind](self, op)
            except KeyError:
                raise self.error(f"no lowering rule for {op.kind.value}") from None
            except RankError as exc:
                raise self.error(str(exc), hint=_RANK_HINT) from None
            for v in op.operands:
                self.remaining[v.id] -= 1
            self._explain(op)

    def _explain(self, op: ir.Op) -> None:
        """Record why `op`'s index/pointer/mask result is a tile in a buffer: an operand's reason, else its own."""
        for r in op.results:
            x = self.vals.get(r.id)
            if r.id in self.why or not isinstance(x, (TileView, PtrTile)) or isinstance(x, PtrTile) and \
                    not isinstance(x.offsets, TileView):
                continue
            e = ir.elem_type(r.type)
            if isinstance(e, ir.ScalarType) and e.dtype not in ("i32", "i1"):
                continue
            inherited = next((self.why[v.id] for v in op.operands if v.id in self.why), None)
            if inherited is None:
                what = {ir.OpKind.LOAD: "the values are loaded from memory (data-dependent)",
                        ir.OpKind.REDUCE: "the values come from a reduction"}.get(
                    op.kind, f"`{op.attrs.get('op', op.attrs.get('pred', op.kind.value))}` is not affine here")
                inherited = f"line {op.loc.line}: {what}"
            self.why[r.id] = inherited

    # -- materialising tiles in UB -------------------------------------------------------------
    def view(self, v: ir.Value) -> TileView:
        """`v` as a tile in UB (materialised on the vector pipe if needed)."""
        x = self.get(v)
        t = v.type
        dt = ir.elem_type(t).dtype if not isinstance(ir.elem_type(t), ir.PtrType) else "i32"
        shape = ir.shape_of(t)
        if isinstance(x, TileView) and x.space == "l0c":  # one fixpipe per value and scope, however often used
            key = (v.id, id(self.scope))
            if key not in self.in_ub:
                self.in_ub[key] = self.fixpipe_to_ub(x)
            return self.in_ub[key]
        return self.to_ub(x, shape, dt)

    def to_ub(self, x: Lowered, shape: tuple[int, ...], dt: str) -> TileView:
        if isinstance(x, TileView):
            if x.space == "ub":
                return x
            if x.space == "l0c":
                return self.fixpipe_to_ub(x)
            raise self.error(f"a tile in {x.space.upper()} cannot be used by vector operations")
        if isinstance(x, (Uniform, Scalar)):
            dst = self.new_buffer(shape, dt, "ub", "dup")
            self.vector("vdup", dst, [], value=x.value, dtype=dt)
            return dst
        if isinstance(x, Affine):
            dst = self.new_buffer(shape, "i32", "ub", "iota")
            slabs = [(dst, x.base)] if len(shape) < 3 else \
                [(dst.slab(b), self.sop("add", x.base, self.sop("mul", b, x.coeffs[0]))) for b in range(shape[0])]
            r_step, c_step = (0, x.coeffs[0]) if len(shape) == 1 else x.coeffs[-2:]
            for view, start in slabs:
                self.vector("viota", view, [], start=start, dtype="i32", row_step=r_step, col_step=c_step)
            return dst
        if isinstance(x, Mask):
            return self.mask_tile(x)
        if isinstance(x, Wrapped):
            return self.wrapped_tile(x)
        raise self.error(f"cannot use a {type(x).__name__} value as a tile here")

    def wrapped_tile(self, w: Wrapped) -> TileView:
        """A `Wrapped` index tile in UB: iota along the wrapped dim, remainder, scale, plus the rest."""
        a = w.affine
        unit = tuple(1 if d == w.dim else 0 for d in range(len(a.shape)))
        out = self.to_ub(Affine(w.plan.start, unit, a.shape), a.shape, "i32")
        self.vector("vbin", out, [("a", out), ("b", w.plan.modulus)], op="rem", dtype="i32")
        if a.coeffs[w.dim] != 1:
            self.vector("vbin", out, [("a", out), ("b", a.coeffs[w.dim])], op="mul", dtype="i32")
        rest = Affine(a.base, tuple(0 if d == w.dim else c for d, c in enumerate(a.coeffs)), a.shape)
        if rest.base != 0 or any(c != 0 for c in rest.coeffs):
            other = self.to_ub(rest, a.shape, "i32") if any(c != 0 for c in rest.coeffs) else rest.base
            self.vector("vbin", out, [("a", out), ("b", other)], op="add", dtype="i32")
        return out

    def mask_tile(self, m: Mask) -> TileView:
        """A Mask as an i1 tile: iota per bounded dim compared with its bounds, and-ed together."""
        out: TileView | None = None
        bounds = access.bounds(m, m.shape, self.sop)
        for d, (lo, hi) in enumerate(bounds):
            for pred, edge in (("ge", lo), ("lt", hi)):
                if edge is None or pred == "ge" and edge == 0:
                    continue
                coeffs = tuple(1 if e == d else 0 for e in range(len(m.shape)))
                idx = self.to_ub(Affine(0, coeffs, m.shape), m.shape, "i32")
                cmp = self.new_buffer(m.shape, "i1", "ub", "mask")
                self.vector("vbin", cmp, [("a", idx), ("b", edge)], op=pred, dtype="i32")
                if out is not None:
                    self.vector("vbin", cmp, [("a", out), ("b", cmp)], op="and", dtype="i1")
                out = cmp
        return out if out is not None else self.to_ub(Uniform(1, m.shape, "i1"), m.shape, "i1")

    def copy_dense(self, x: TileView) -> TileView:
        """A dense UB copy of a strided or broadcast view."""
        dst = self.new_buffer(x.shape, x.dtype, "ub", "copy")
        self.vector("vcopy", dst, [("a", self.to_ub(x, x.shape, x.dtype))], dtype=x.dtype)
        return dst

    def fixpipe_to_ub(self, x: TileView) -> TileView:
        dst = self.new_buffer(x.shape, x.out_dtype, "ub", "acc_ub")
        rows, cols, rs, _ = x.rows_cols()
        self.emit("fixpipe", (x.region(),), (dst.region(),), dst=dst.ref(), src=x.ref(), src_dtype=x.dtype,
                  dtype=x.out_dtype, rows=rows, cols=cols, src_rs=rs, dst_rs=cols)
        return dst

    def vector(self, opcode: str, dst: TileView, srcs: list[tuple[str, TileView | Operand]],
               **fields: Any) -> None:
        """Emit one vector instruction over dst's shape with per-operand strides (a rank-3 tile: one per slab)."""
        if len(dst.shape) == 3:
            for b in range(dst.shape[0]):
                self.vector(opcode, dst.slab(b), [(n, s.slab(b) if isinstance(s, TileView) else s) for n, s in srcs],
                            **fields)
            return
        rows, cols, rs, cs = dst.rows_cols()
        args: dict[str, Any] = dict(fields)
        args.update(dst=dst.ref(), rows=rows, cols=cols, dst_rs=rs, dst_cs=cs)
        reads = []
        for name, s in srcs:
            if isinstance(s, TileView):
                _, _, srs, scs = s.rows_cols()
                args.update({name: s.ref(), f"{name}_rs": srs, f"{name}_cs": scs})
                reads.append(s.region())
            else:
                args[name] = s
        ordered = {k: args[k] for k in ("op", "dst", "a", "b", "c", "value", "start") if k in args}
        ordered.update({k: v for k, v in args.items() if k not in ordered})
        ins = MInstr(opcode, ordered, self.loc, tuple(reads), (dst.region(),))
        self.out.append(ins)

    def operand(self, v: ir.Value) -> TileView | Operand:
        """A vector operand: a UB tile, or a scalar broadcast (register or immediate)."""
        x = self.get(v)
        if isinstance(x, (Uniform, Scalar)):
            return x.value
        return self.view(v)

    def result_buffer(self, op: ir.Op, dt: str, srcs: list[TileView | Operand | None]) -> TileView:
        """A dense UB tile for op's result: the loop-carried buffer it is yielded into (see `_for`), else the
        buffer of a dense operand that dies here (elementwise chains run in place), else a new one."""
        shape = ir.shape_of(op.result.type)
        into = self.write_into.get(op.result.id)
        if into is not None and into.shape == shape and into.dtype == dt:
            return into
        for s in srcs:
            if (isinstance(s, TileView) and s.space == "ub" and s.dense and s.shape == shape and s.offset == 0
                    and self.owned_here(s.buffer, op) and self.dies_here(s.buffer, op)
                    and all(t == s for t in srcs if isinstance(t, TileView) and t.buffer is s.buffer)
                    and s.buffer.nbytes >= max(1, numel(shape)) * isa_dtype(dt).itemsize
                    and isa_dtype(s.dtype).itemsize == isa_dtype(dt).itemsize):
                return TileView(s.buffer, 0, shape, s.strides, dt)
        return self.new_buffer(shape, dt, "ub", op.result.name)

    def owned_here(self, buf: Buffer, op: ir.Op) -> bool:
        """`buf` belongs to the code being lowered: made in this scope, or carried by the loop being lowered
        and `op` may use it (a carried tile, once its iteration value is dead, may take the next value in
        place; in a loop with dots not other values, whose writes would tie the iterations together and
        keep the pipelining from running vector work an iteration ahead)."""
        key = (id(self.scope), id(buf))
        if key not in self.carried:
            return buf.scope is self.scope
        values = self.carried[key]
        return values is None or op.result.id in values

    def dies_here(self, buf: Buffer, op: ir.Op) -> bool:
        """No value held in `buf` (directly, as a view, or as an L0C value's UB copy) is used after `op`."""
        here: dict[int, int] = {}
        for v in op.operands:
            here[v.id] = here.get(v.id, 0) + 1
        holders = [vid for vid, x in self.vals.items() if _holds(x, buf)]
        holders += [vid for (vid, _), x in self.in_ub.items() if x.buffer is buf]
        if buf.scope is None and id(buf) in self.loaded and sum(self.uses.get(vid, 0) for vid in holders) > 1:
            # a tile loaded outside any loop has one copy (also across programs on a core): writing a result
            # into it would make the next program's load wait for that result's store
            return False
        return all(self.remaining.get(vid, 0) <= here.get(vid, 0) for vid in holders)


def _holds(x: Lowered, buf: Buffer) -> bool:
    if isinstance(x, PtrTile):
        x = x.offsets
    return isinstance(x, TileView) and x.buffer is buf


def _ub_scalars(block: ir.Block) -> set[int]:
    """Ids of the scalar values that live in UB, not in a register: loaded from memory, reduced, or computed
    from such a value (through loops and ifs too). A loop carries them in a one-element UB tile."""
    ub: set[int] = set()

    def mark(values: Iterator[ir.Value]) -> bool:
        new = {v.id for v in values if not isinstance(v.type, (ir.TileType, ir.PtrType, ir.DescType))} - ub
        ub.update(new)
        return bool(new)
    changed = True
    while changed:  # loop-carried values: until nothing new is marked
        changed = False
        for op in ir.walk(block):
            if op.kind in (ir.OpKind.FOR, ir.OpKind.WHILE):
                body = op.regions[-1]
                args = [body.args[1:] if op.kind is ir.OpKind.FOR else body.args]
                if op.kind is ir.OpKind.WHILE:
                    args.append(op.regions[0].args)
                inits = op.operands[3:] if op.kind is ir.OpKind.FOR else op.operands
                for i, (init, y) in enumerate(zip(inits, body.ops[-1].operands)):
                    if init.id in ub or y.id in ub:
                        changed |= mark(iter([op.results[i]] + [a[i] for a in args]))
            elif op.kind is ir.OpKind.IF:
                for i, r in enumerate(op.results):
                    if any(region.ops[-1].operands[i].id in ub for region in op.regions):
                        changed |= mark(iter([r]))
            elif op.kind in (ir.OpKind.LOAD, ir.OpKind.REDUCE) or any(v.id in ub for v in op.operands):
                changed |= mark(iter(op.results))
    return ub


_RANK_HINT = "fold the leading dims into rows, e.g. x.reshape(B * M, N), or loop over them with npu.static_range"


def numel(shape: tuple[int, ...]) -> int:
    """Number of elements of a tile of this shape."""
    n = 1
    for d in shape:
        n *= d
    return n


def _fold(op: str, a: int, b: int) -> int | None:
    if op == "add":
        return a + b
    if op == "sub":
        return a - b
    if op == "mul":
        return a * b
    if op == "min":
        return min(a, b)
    if op == "max":
        return max(a, b)
    if op in ("div", "rem") and b != 0:
        q = abs(a) // abs(b) * (1 if (a < 0) == (b < 0) else -1)  # C: truncate toward zero
        return q if op == "div" else a - q * b
    if op in ("lt", "le", "gt", "ge", "eq", "ne"):
        return int({"lt": a < b, "le": a <= b, "gt": a > b, "ge": a >= b, "eq": a == b, "ne": a != b}[op])
    if op in ("and", "or", "xor"):
        return {"and": a & b, "or": a | b, "xor": a ^ b}[op]
    return None


def is_zero(x: object) -> bool:
    """A uniform or affine tile that is zero everywhere (e.g. `npu.zeros`)."""
    return isinstance(x, (Uniform, Affine)) and (x.value if isinstance(x, Uniform) else x.base) == 0 and \
        (isinstance(x, Uniform) or all(c == 0 for c in x.coeffs))


def ref_at(dst: TileView, off: Operand) -> BufRef:
    """`dst` moved by `off` bytes, a constant or a register."""
    if isinstance(off, int):
        return BufRef(dst.buffer, dst.offset + off)
    return BufRef(dst.buffer, dst.offset, off)  # type: ignore[arg-type]
