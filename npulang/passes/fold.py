"""Fold: evaluate ops whose operands are all constants, with the interpreter's own rules.

Folding through `npulang.ir.interpreter` means a folded value is, by construction, what the
reference semantics would compute at run time. Elementwise and shape ops of constants fold to
a constant (constants are uniform: scalars or splat tiles). An `if` on a constant condition is
replaced by the ops of the branch taken.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from npulang import ir
from npulang.ir import interpreter
from npulang.ir import Op, OpKind, Value
from npulang.passes.base import OpRewriter

_FOLDABLE = (OpKind.BINARY, OpKind.CMP, OpKind.UNARY, OpKind.CAST, OpKind.WHERE, OpKind.FMA, OpKind.SPLAT,
             OpKind.BROADCAST,
             OpKind.EXPAND_DIMS, OpKind.RESHAPE, OpKind.TRANS)


def _python_scalar(x: np.ndarray, t: ir.Type) -> Any:
    first = np.asarray(x).reshape(-1)[0]
    e = ir.elem_type(t)
    if e.dtype == "i1":
        return bool(first)
    if e.is_int:
        return int(first)
    return float(first)


class Fold(OpRewriter):
    """Constant folding through the interpreter's own rules, and `if`s on constant conditions resolved."""
    name = "fold"

    def rewrite(self, op: Op, b: ir.Builder) -> Sequence[Value] | None:
        if op.kind is OpKind.IF:
            cond = self.constant(op.operands[0])
            if cond is None:
                return None
            region = op.regions[0] if cond else op.regions[1]
            b.block.ops.extend(region.ops[:-1])
            return [self.lookup(v) for v in region.ops[-1].operands]
        if op.kind not in _FOLDABLE:
            return None
        values = [self.constant(v) for v in op.operands]
        if any(v is None for v in values):
            return None
        args = [np.full(ir.shape_of(v.type), c, dtype=interpreter.np_dtype(v.type))
                for v, c in zip(op.operands, values)]
        (result,) = interpreter.RULES[op.kind](None, op, args)  # type: ignore[arg-type]
        flat = np.asarray(result).reshape(-1)
        if flat.size and not (np.all(flat == flat[0]) or np.all(np.isnan(flat.astype(np.float32)))):
            return None
        return [b.constant(_python_scalar(result, op.result.type), op.result.type)]
