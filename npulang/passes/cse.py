"""CSE: an op identical to an earlier one that dominates it (same kind, operands, attributes and
types) is replaced by that op's results. Only pure ops are merged: loads, stores, descriptor
ops, prints and control flow are left alone.
"""

from __future__ import annotations

from typing import Any, Sequence

from npulang import ir
from npulang.ir import Op, OpKind, Value
from npulang.passes.base import OpRewriter

PURE = frozenset({
    OpKind.CONSTANT, OpKind.PROGRAM_ID, OpKind.NUM_PROGRAMS, OpKind.ARANGE, OpKind.SPLAT, OpKind.BROADCAST,
    OpKind.EXPAND_DIMS, OpKind.RESHAPE, OpKind.TRANS, OpKind.BINARY, OpKind.CMP, OpKind.UNARY, OpKind.CAST,
    OpKind.WHERE, OpKind.FMA, OpKind.ADDPTR, OpKind.DOT, OpKind.REDUCE, OpKind.SCAN,
})


def _freeze(x: Any) -> Any:
    if isinstance(x, (list, tuple)):
        return tuple(_freeze(v) for v in x)
    return (type(x).__name__, x)  # 0, 0.0 and False are different constants


class CSE(OpRewriter):
    """Common subexpression elimination: an op equal to one that dominates it reuses that op's results."""
    name = "cse"

    def begin(self, fn: ir.Function) -> None:
        self.scopes: list[dict[Any, Op]] = [{}]

    def enter_region(self) -> None:
        self.scopes.append({})

    def exit_region(self) -> None:
        self.scopes.pop()

    def rewrite(self, op: Op, b: ir.Builder) -> Sequence[Value] | None:
        if op.kind not in PURE:
            return None
        key = (op.kind, tuple(v.id for v in op.operands),
               tuple(sorted((k, _freeze(v)) for k, v in op.attrs.items())),
               tuple(str(r.type) for r in op.results))
        for scope in reversed(self.scopes):
            if key in scope:
                return list(scope[key].results)
        self.scopes[-1][key] = op
        return None
