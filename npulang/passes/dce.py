"""DCE: drop ops whose results nobody uses and that have no effect (stores, prints, and loops or
ifs containing them are kept). A loop or if whose results are unused and whose regions do
nothing observable goes away entirely.
"""

from __future__ import annotations

from npulang.ir import Block, Function, Op, OpKind
from npulang.passes.base import Pass

_EFFECTS = frozenset({OpKind.STORE, OpKind.DESC_STORE, OpKind.PRINT})
_TERMINATORS = frozenset({OpKind.YIELD, OpKind.RETURN})


def _has_effects(op: Op) -> bool:
    """Whether `op` (or anything in its regions) writes memory or prints."""
    if op.kind in _EFFECTS:
        return True
    return any(_has_effects(inner) for region in op.regions for inner in region.ops)


class DCE(Pass):
    """Dead code elimination: drop ops without side effects whose results nothing uses."""
    name = "dce"

    def run(self, fn: Function) -> Function:
        used: set[int] = set()
        body = self._block(fn.body, used)
        return Function(fn.name, list(fn.args), body, dict(fn.constexprs), fn.loc, dict(fn.specialised))

    def _block(self, block: Block, used: set[int]) -> Block:
        kept: list[Op] = []
        for op in reversed(block.ops):
            live = op.kind in _TERMINATORS or _has_effects(op) or any(r.id in used for r in op.results)
            if not live:
                continue
            regions = tuple(self._block(r, used) for r in op.regions)
            used.update(v.id for v in op.operands)
            kept.append(Op(op.kind, op.operands, op.results, op.attrs, regions, op.loc))
        return Block(list(block.args), kept[::-1])
