"""What every pass shares: the `Pass` interface, the `PassManager`, and an op-by-op rewriter.

A pass takes a `Function` and returns a new one; it never mutates its input, so the IR kept
after each stage (for `kernel.inspect()`) stays as it was printed, and the memoised frontend
result stays valid for the next specialisation of the same key.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Sequence

from npulang import ir
from npulang.errors import IRVerifyError
from npulang.ir import Block, Function, Op, Value
from npulang.ir.verifier import verify


class Pass:
    """A named transformation of a function. Subclasses set `name` and implement `run`."""

    name: str = "pass"

    def run(self, fn: Function) -> Function:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<pass {self.name}>"


@dataclass
class Stage:
    """The IR text after one pass (or `frontend` for the input)."""

    name: str
    text: str


@dataclass
class PassManager:
    """Runs passes in order, verifying the IR after each (`verify_each`) and recording its text."""

    passes: Sequence[Pass]
    verify_each: bool = True
    record: bool = True
    stages: list[Stage] = field(default_factory=list)

    def run(self, fn: Function) -> Function:
        """The function after every pass; `stages` holds the text after each."""
        self.stages = []
        if self.verify_each:
            self._verify(fn, "frontend")
        if self.record:
            self.stages.append(Stage("frontend", ir.print_function(fn)))
        for p in self.passes:
            fn = p.run(fn)
            if self.verify_each:
                self._verify(fn, p.name)
            if self.record:
                self.stages.append(Stage(p.name, ir.print_function(fn)))
        return fn

    @staticmethod
    def _verify(fn: Function, after: str) -> None:
        try:
            verify(fn)
        except IRVerifyError as exc:
            raise IRVerifyError(f"IR invalid after {after}: {exc}") from exc


class OpRewriter(Pass):
    """A pass that rebuilds the function op by op, in program order.

    `rewrite(op, builder)` sees each op with its operands already substituted and its regions
    already rewritten. It returns None to keep the op, or one value per result to replace it
    (ops it creates through `builder` land before the replaced op's position). Values dropped
    this way are substituted in every later use.
    """

    def run(self, fn: Function) -> Function:
        self.subst: dict[int, Value] = {}
        self.defs: dict[int, Op] = {}
        self.begin(fn)
        body = self._block(fn.body)
        return Function(fn.name, list(fn.args), body, dict(fn.constexprs), fn.loc, dict(fn.specialised))

    def begin(self, fn: Function) -> None:
        """Called before the rewrite starts (reset per-run state here)."""

    def enter_region(self) -> None:
        """Called before the ops of a nested region are rewritten."""

    def exit_region(self) -> None:
        """Called after the ops of a nested region are rewritten."""

    def rewrite(self, op: Op, builder: ir.Builder) -> Sequence[Value] | None:
        raise NotImplementedError

    def lookup(self, v: Value) -> Value:
        while v.id in self.subst:
            v = self.subst[v.id]
        return v

    def _block(self, block: Block) -> Block:
        new = Block(list(block.args), [])
        builder = ir.Builder(new, block.ops[0].loc if block.ops else ir.Loc("?", 0))
        for op in block.ops:
            regions = []
            for region in op.regions:
                self.enter_region()
                regions.append(self._block(region))
                self.exit_region()
            op = replace(op, operands=tuple(self.lookup(v) for v in op.operands), regions=tuple(regions))
            builder.loc = op.loc
            start = len(new.ops)
            out = self.rewrite(op, builder)
            if out is None:
                new.ops.append(op)
            else:
                for old, value in zip(op.results, out, strict=True):
                    if old is not value:
                        self.subst[old.id] = value
            for kept in new.ops[start:]:
                for r in kept.results:
                    self.defs[r.id] = kept
        return new

    def constant(self, v: Value) -> int | float | bool | None:
        """The value of `v` if a `constant` op defines it (scalar or splat tile), else None."""
        op = self.defs.get(v.id)
        if op is not None and op.kind is ir.OpKind.CONSTANT:
            return op.attrs["value"]
        return None

