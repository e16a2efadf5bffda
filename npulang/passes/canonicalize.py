"""Canonicalize: local identities that make the IR smaller without changing a single result bit.

- `x + 0`, `x - 0` (ints; for floats only with -0.0), `x * 1`, `x / 1`, `x // 1` (ints), `x & true`,
  `x | false`, `addptr(p, 0)`, `where(c, x, x)`, `where(true|false, a, b)` -> the operand;
- a `cast`, `broadcast`, `reshape` or `trans` that changes nothing -> its operand; trans of trans
  composes;
- `splat`/`broadcast`/`expand_dims`/`reshape` of a constant -> a constant of the new shape;
  shape ops of a `splat` -> one `splat` of the new shape.
"""

from __future__ import annotations

import math
from typing import Sequence

from npulang import ir
from npulang.ir import Op, OpKind, Value
from npulang.passes.base import OpRewriter

_SHAPE_OPS = (OpKind.SPLAT, OpKind.BROADCAST, OpKind.EXPAND_DIMS, OpKind.RESHAPE)


def _is_neg_zero(c: object) -> bool:
    return isinstance(c, float) and c == 0.0 and math.copysign(1.0, c) < 0


class Canonicalize(OpRewriter):
    """Replace local identities (`x + 0`, `x * 1`, a cast or reshape that changes nothing...) by their operand:
    a smaller IR, the same result bits (the module docstring lists them)."""
    name = "canonicalize"

    def rewrite(self, op: Op, b: ir.Builder) -> Sequence[Value] | None:
        k = op.kind
        if k is OpKind.BINARY:
            return self._binary(op)
        if k is OpKind.ADDPTR and self.constant(op.operands[1]) == 0:
            return [op.operands[0]]
        if k is OpKind.WHERE:
            c, x, y = op.operands
            if x is y:
                return [x]
            cv = self.constant(c)
            if cv is not None:
                return [x if cv else y]
            return None
        if k is OpKind.CAST and op.operands[0].type == op.result.type:
            return [op.operands[0]]
        if k in (OpKind.BROADCAST, OpKind.RESHAPE) and op.operands[0].type == op.result.type:
            return [op.operands[0]]
        if k is OpKind.TRANS:
            return self._trans(op, b)
        if k in _SHAPE_OPS:
            src = op.operands[0]
            value = self.constant(src)
            if value is not None:
                return [b.constant(value, op.result.type)]
            inner = self.defs.get(src.id)
            if inner is not None and inner.kind is OpKind.SPLAT:
                return [b.value(OpKind.SPLAT, inner.operands, shape=op.result.type.shape)]
        return None

    def _binary(self, op: Op) -> Sequence[Value] | None:
        x, y = op.operands
        cx, cy = self.constant(x), self.constant(y)
        e = ir.elem_type(op.result.type)
        name = op.attrs["op"]
        is_int = e.is_int

        def zero(c: object) -> bool:
            return c is not None and c == 0 and (is_int or _is_neg_zero(c))

        def one(c: object) -> bool:
            return c is not None and not isinstance(c, bool) and c == 1

        if name == "add":
            if zero(cy):
                return [x]
            if zero(cx):
                return [y]
        elif name == "sub" and zero(cy):
            return [x]
        elif name == "mul":
            if one(cy):
                return [x]
            if one(cx):
                return [y]
        elif name == "div" and one(cy):
            return [x]
        elif name == "floordiv" and is_int and one(cy) and e.dtype != "i1":
            return [x]
        elif name == "and" and e.dtype == "i1":
            if cy is True:
                return [x]
            if cx is True:
                return [y]
        elif name == "or" and e.dtype == "i1":
            if cy is False:
                return [x]
            if cx is False:
                return [y]
        return None

    def _trans(self, op: Op, b: ir.Builder) -> Sequence[Value] | None:
        perm = tuple(op.attrs["perm"])
        if perm == tuple(range(len(perm))):
            return [op.operands[0]]
        inner = self.defs.get(op.operands[0].id)
        if inner is not None and inner.kind is OpKind.TRANS:
            first = tuple(inner.attrs["perm"])
            composed = tuple(first[p] for p in perm)
            if composed == tuple(range(len(composed))):
                return [inner.operands[0]]
            return [b.value(OpKind.TRANS, inner.operands, perm=composed)]
        value = self.constant(op.operands[0])
        if value is not None:
            return [b.constant(value, op.result.type)]
        return None
