"""Every block-IR op kind has reference semantics (an interpreter rule) and a lowering rule."""

from __future__ import annotations

import dataclasses

import pytest

from npulang import ir
from npulang.backend.lowering import RULES as LOWERING_RULES
from npulang.ir import interpreter


@pytest.mark.parametrize("kind", list(ir.OpKind), ids=lambda k: k.value)
def test_every_op_kind_has_an_interpreter_rule_or_is_a_terminator(kind: ir.OpKind) -> None:
    """Terminators end a block in `Program.run_block`; every other op is run by its rule."""
    assert (kind in interpreter.RULES) != (kind in interpreter.TERMINATORS)


@pytest.mark.parametrize("kind", list(ir.OpKind), ids=lambda k: k.value)
def test_every_op_kind_has_a_lowering_rule(kind: ir.OpKind) -> None:
    assert callable(LOWERING_RULES[kind])


def test_ops_are_frozen() -> None:
    b = ir.Builder(ir.Block(), ir.Loc("k.py", 1))
    op = b.create(ir.OpKind.PROGRAM_ID, (), {"axis": 0})
    with pytest.raises(dataclasses.FrozenInstanceError):
        op.kind = ir.OpKind.NUM_PROGRAMS  # type: ignore[misc]
    moved = dataclasses.replace(op, loc=ir.Loc("k.py", 2))
    assert moved.loc.line == 2 and op.loc.line == 1
