"""Property: any valid program prints to text that parses back to the same program, and printing is stable."""

import math
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from isa import DTYPES, OPCODES, ArgSpec, Bundle, Instr, Label, Mem, Program, Reg, SourceLoc, Symbol
from isa.asm import RESERVED, assemble, disassemble
from isa.instructions import SPACES, Field, Kind, check_instr

# nan parses to the one `math.nan` object, so generated nans are that object too: tuples compare equal
# by identity, as assemble's output does.
floats = (st.sampled_from([0.0, -0.0, 1.0, 2.0])  # look like ints: must still come back as floats
          | st.floats(allow_nan=True, allow_infinity=True).map(lambda x: math.nan if math.isnan(x) else x))
ints = st.integers(min_value=-(2**70), max_value=2**70)
numbers = st.one_of(ints, floats)
regs = st.builds(Reg, st.integers(0, 300))
identifiers = st.from_regex(r"[A-Za-z_][A-Za-z0-9_.]{0,8}", fullmatch=True).filter(lambda s: s not in RESERVED)
text = st.text(max_size=12)  # any characters: quotes, backslashes, newlines, emoji


def mems(spaces: tuple[str, ...]) -> st.SearchStrategy[Mem]:
    return st.builds(Mem, st.sampled_from(spaces or SPACES), st.none() | regs, ints)


def values(f: Field, labels: list[str]) -> st.SearchStrategy[Any]:
    """Any value the field accepts."""
    kind = f.kind
    if kind is Kind.REG:
        return regs
    if kind is Kind.VALUE:
        return regs | numbers
    if kind is Kind.INT:
        return ints
    if kind is Kind.MEM:
        return mems(f.spaces)
    if kind is Kind.TILE:
        return mems(f.spaces) | regs | numbers
    if kind is Kind.NAME:
        return st.sampled_from(f.choices)
    if kind is Kind.LABEL:
        return st.sampled_from(labels).map(Label)
    return text


@st.composite
def instrs(draw: st.DrawFn, labels: list[str]) -> Instr:
    ops = [name for name, opdef in OPCODES.items()
           if labels or all(f.kind is not Kind.LABEL for f in opdef.fields)]
    op = draw(st.sampled_from(ops))
    args = []
    for f in OPCODES[op].fields:
        value = values(f, labels)
        if not f.required:  # the default, or an explicit value: maybe equal to it, or a float equal to it
            if isinstance(f.default, int) and f.kind in (Kind.VALUE, Kind.TILE):
                value = st.just(float(f.default)) | value
            value = st.just(f.default) | value
        args.append(draw(value))
    loc = draw(st.none() | st.builds(SourceLoc, text, st.integers(0, 10**6)))
    instr = Instr(op, tuple(args), loc)
    check_instr(instr)
    return instr


@st.composite
def programs(draw: st.DrawFn) -> Program:
    label_names = draw(st.lists(identifiers, max_size=4, unique=True))
    bundles = draw(st.lists(st.lists(instrs(label_names), min_size=1, max_size=4, unique_by=lambda i: i.pipe)
                            .map(lambda ins: Bundle(tuple(ins))), max_size=6))
    labels = {name: draw(st.integers(0, len(bundles))) for name in label_names}
    args = draw(st.lists(st.builds(ArgSpec, text, st.sampled_from(("ptr", "scalar")), st.sampled_from(list(DTYPES))),
                         max_size=3))
    symbols = draw(st.lists(st.builds(Symbol, text, st.sampled_from(SPACES), ints, ints), max_size=3))
    meta = draw(st.dictionaries(text, text, max_size=3))
    return Program(draw(text), tuple(bundles), tuple(args), labels, tuple(symbols), meta)


def typed_args(program: Program) -> list[tuple[tuple[type, Any], ...]]:
    """Each instruction's arguments with their types: `==` alone takes 2.0 for 2 and -0.0 for 0.0."""
    return [tuple((type(v), math.copysign(1, v) if isinstance(v, float) else None) for v in ins.args)
            for ins in program.instructions()]


@settings(max_examples=200, deadline=None)
@given(programs())
def test_print_parse_is_identity(program: Program) -> None:
    text = disassemble(program)
    again = assemble(text)
    assert again == program
    assert typed_args(again) == typed_args(program)
    assert disassemble(again) == text


@settings(max_examples=50, deadline=None)
@given(programs())
def test_layout_is_directives_blank_then_one_line_per_bundle_or_label(program: Program) -> None:
    lines = disassemble(program).splitlines()
    blank = lines.index("")
    directives, body = lines[:blank], lines[blank + 1:]
    assert len(directives) == 1 + len(program.args) + len(program.symbols) + len(program.meta)
    assert sum(line.startswith("    ") for line in body) == len(program.bundles)
    assert sorted(line[:-1] for line in body if not line.startswith("    ")) == sorted(program.labels)
