"""The VLIW instruction set: operand types, pipes, and the table of every opcode's fields.

An instruction is an opcode plus a tuple of arguments in the order of its `OpDef.fields`.
Operands are scalar registers (`Reg`), immediates (int/float), memory references (`Mem`:
buffer + optional base register + byte offset), names (dtypes, pipes, sub-operations), labels
(branch targets) and strings. Registers are read by the scalar unit when it issues the
instruction, so every non-scalar pipe sees resolved numbers.

Pipes (DESIGN.md §2): S scalar, V vector, M cube, MTE1 L1->L0A/L0B, MTE2 GM->on-chip,
MTE3 UB->GM, FIX L0C->UB/GM. `set_flag` runs on its source pipe, `wait_flag` on its
destination pipe, everything else on the pipe its opcode names.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

from isa.dtypes import DTYPES


class Pipe(enum.Enum):
    """Issue slots of a bundle; the order is the slot order in assembly text."""

    S = "s"
    MTE2 = "mte2"
    MTE1 = "mte1"
    M = "m"
    V = "v"
    FIX = "fix"
    MTE3 = "mte3"

    def __str__(self) -> str:
        return self.value


PIPES: dict[str, Pipe] = {p.value: p for p in Pipe}
SPACES = ("gm", "l1", "l0a", "l0b", "l0c", "ub")
ON_CHIP = SPACES[1:]


@dataclass(frozen=True, slots=True)
class Reg:
    """A scalar register `s<index>`."""

    index: int

    def __str__(self) -> str:
        return f"s{self.index}"


@dataclass(frozen=True, slots=True)
class Mem:
    """A byte address in a buffer: `space[base + offset]` with an optional base register."""

    space: str
    base: Reg | None = None
    offset: int = 0

    def __str__(self) -> str:
        if self.base is None:
            return f"{self.space}[{self.offset}]"
        if self.offset == 0:
            return f"{self.space}[{self.base}]"
        sign = "+" if self.offset > 0 else "-"
        return f"{self.space}[{self.base}{sign}{abs(self.offset)}]"


@dataclass(frozen=True, slots=True)
class Label:
    """A branch target, resolved to a bundle index through `Program.labels`."""

    name: str

    def __str__(self) -> str:
        return self.name


@dataclass(frozen=True, slots=True)
class SourceLoc:
    """Where an instruction came from in the user's kernel, for errors and profiles."""

    file: str
    line: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}"


class Kind(enum.Enum):
    """What a field accepts."""

    REG = "register"  # a destination register
    VALUE = "register or immediate"  # a scalar input
    INT = "integer immediate"
    MEM = "memory reference"
    TILE = "memory reference, register or immediate"  # a vector operand or a broadcast scalar
    NAME = "name"
    LABEL = "label"
    STR = "string"


REQUIRED = object()


@dataclass(frozen=True)
class Field:
    """One argument of an opcode. Positional fields come first in `OpDef.fields`."""

    name: str
    kind: Kind
    default: Any = REQUIRED
    spaces: tuple[str, ...] = ()  # MEM / TILE: buffers allowed
    choices: tuple[str, ...] = ()  # NAME: names allowed
    positional: bool = False

    @property
    def required(self) -> bool:
        return self.default is REQUIRED


@dataclass(frozen=True)
class OpDef:
    """An opcode's pipe (None: decided by its operands, see `Instr.pipe`) and fields."""

    name: str
    pipe: Pipe | None
    fields: tuple[Field, ...]
    doc: str
    index: dict[str, int] = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "index", {f.name: i for i, f in enumerate(self.fields)})


# -- field helpers -------------------------------------------------------------------------------
def _pos(name: str, kind: Kind, **kw: Any) -> Field:
    return Field(name, kind, positional=True, **kw)


def _kw(name: str, kind: Kind = Kind.VALUE, default: Any = REQUIRED, **kw: Any) -> Field:
    return Field(name, kind, default=default, **kw)


DTYPE_NAMES = tuple(DTYPES)
_DT = _kw("dtype", Kind.NAME, choices=DTYPE_NAMES)
_SHAPE = (_kw("rows"), _kw("cols"))


def _strides(*operands: str) -> tuple[Field, ...]:
    """Row/column element strides per tile operand; None means contiguous (rs=cols, cs=1)."""
    out: list[Field] = []
    for op in operands:
        out += [_kw(f"{op}_rs", default=None), _kw(f"{op}_cs", default=None)]
    return tuple(out)


def _valid() -> tuple[Field, ...]:
    """The in-bounds part of a tile; None means all of it."""
    return (_kw("valid_rows", default=None), _kw("valid_cols", default=None))


SCALAR_BINARY = ("add", "sub", "mul", "div", "rem", "fdiv", "min", "max", "and", "or", "xor", "shl", "shr",
                 "lt", "le", "gt", "ge", "eq", "ne")
VECTOR_BINARY = ("add", "sub", "mul", "div", "rem", "fdiv", "min", "max", "and", "or", "xor", "shl", "shr", "pow",
                 "lt", "le", "gt", "ge", "eq", "ne")
VECTOR_UNARY = ("neg", "abs", "exp", "exp2", "log", "log2", "sqrt", "rsqrt", "recip", "erf", "tanh",
                "sigmoid", "relu", "not", "floor", "ceil", "sin", "cos")
COMPARISONS = ("lt", "le", "gt", "ge", "eq", "ne")
REDUCTIONS = ("sum", "max", "min", "argmax", "argmin")
_PIPE_NAMES = tuple(PIPES)
_R, _V, _I, _M, _T, _N, _L, _S = (Kind.REG, Kind.VALUE, Kind.INT, Kind.MEM, Kind.TILE, Kind.NAME,
                                  Kind.LABEL, Kind.STR)


def _defs() -> list[OpDef]:
    d: list[OpDef] = []
    S = Pipe.S
    # -- scalar ----------------------------------------------------------------------------------
    d.append(OpDef("nop", S, (), "do nothing for one issue cycle"))
    d.append(OpDef("mov", S, (_pos("d", _R), _pos("a", _V)), "d = a"))
    for op in SCALAR_BINARY:
        d.append(OpDef(op, S, (_pos("d", _R), _pos("a", _V), _pos("b", _V)),
                       f"d = a {op} b (div/rem truncate toward zero as in C; fdiv is true division)"))
    d.append(OpDef("sel", S, (_pos("d", _R), _pos("c", _V), _pos("a", _V), _pos("b", _V)), "d = a if c else b"))
    d.append(OpDef("cvt", S, (_pos("d", _R), _pos("a", _V), _kw("to", _N, choices=("i32", "f32"))),
                   "convert a scalar between int and float"))
    d.append(OpDef("pid", S, (_pos("d", _R), _pos("axis", _I)), "d = program id along axis"))
    d.append(OpDef("npid", S, (_pos("d", _R), _pos("axis", _I)), "d = number of programs along axis"))
    d.append(OpDef("arg", S, (_pos("d", _R), _pos("index", _I)),
                   "d = kernel argument `index` (a pointer argument reads as its GM byte address)"))
    d.append(OpDef("jmp", S, (_pos("target", _L),), "jump"))
    d.append(OpDef("bnz", S, (_pos("c", _V), _pos("target", _L)), "branch if c != 0"))
    d.append(OpDef("bz", S, (_pos("c", _V), _pos("target", _L)), "branch if c == 0"))
    d.append(OpDef("barrier", S, (), "stop issuing until every pipe of this core has drained"))
    d.append(OpDef("print", S, (_pos("fmt", _S), _pos("a", _V)), "device_print of a scalar"))
    # -- sync ------------------------------------------------------------------------------------
    flag = (_pos("src", _N, choices=_PIPE_NAMES), _pos("dst", _N, choices=_PIPE_NAMES), _pos("event", _I))
    d.append(OpDef("set_flag", None, flag, "on pipe src, after its earlier instructions complete: raise flag"))
    d.append(OpDef("wait_flag", None, flag, "on pipe dst: block until the flag is raised, then lower it"))
    # -- MTE2: GM -> on-chip ---------------------------------------------------------------------
    d.append(OpDef("load", Pipe.MTE2, (
        _pos("dst", _M, spaces=("l1", "l0a", "l0b", "ub")), _pos("src", _M, spaces=("gm",)), _DT, *_SHAPE,
        _kw("src_rs"), _kw("src_cs", default=1), _kw("dst_rs", default=None), *_valid(), _kw("pad", default=0),
    ), "2-D strided copy GM->buffer; elements outside valid_rows x valid_cols are filled with pad"))
    d.append(OpDef("gather", Pipe.MTE2, (
        _pos("dst", _M, spaces=("l1", "ub")), _pos("src", _M, spaces=("gm",)), _kw("idx", _M, spaces=("ub",)),
        _DT, _kw("n"), _kw("mask", _M, default=None, spaces=("ub",)), _kw("pad", default=0),
    ), "dst[i] = src[idx[i]] (int32 element offsets); masked-off lanes get pad and are not read"))
    # -- MTE1: L1 -> L0A/L0B ---------------------------------------------------------------------
    d.append(OpDef("move", Pipe.MTE1, (
        _pos("dst", _M, spaces=("l0a", "l0b")), _pos("src", _M, spaces=("l1",)), _DT, *_SHAPE,
        _kw("src_rs", default=None), _kw("dst_rs", default=None), _kw("transpose", _I, default=0),
    ), "copy a rows x cols tile L1->L0A/L0B; with transpose the source is cols x rows"))
    d.append(OpDef("img2col", Pipe.MTE1, (
        _pos("dst", _M, spaces=("l0a", "l0b")), _pos("src", _M, spaces=("l1",)), _DT,
        _kw("c"), _kw("h"), _kw("w"), _kw("kh"), _kw("kw"),
        _kw("stride_h", default=1), _kw("stride_w", default=1), _kw("pad_top", default=0),
        _kw("pad_left", default=0), _kw("dil_h", default=1), _kw("dil_w", default=1),
        _kw("ow"), _kw("pos", default=0), _kw("rows"), _kw("k0", default=0), _kw("cols"),
    ), "load3d: rows of output positions x cols of (kh, kw, c) taps from an h x w x c feature map in L1"))
    # -- M: cube -----------------------------------------------------------------------------------
    d.append(OpDef("mmad", Pipe.M, (
        _pos("dst", _M, spaces=("l0c",)), _pos("a", _M, spaces=("l0a",)), _pos("b", _M, spaces=("l0b",)),
        _DT, _kw("m"), _kw("n"), _kw("k"), _kw("init", default=1),
    ), "C[m,n] (= if init else +=) A[m,k] @ B[k,n]; row-major; fp16/bf16 accumulate in f32, i8 in i32"))
    # -- FIX: L0C -> UB/GM/L1 ----------------------------------------------------------------------
    d.append(OpDef("fixpipe", Pipe.FIX, (
        _pos("dst", _M, spaces=("ub", "gm", "l1")), _pos("src", _M, spaces=("l0c",)),
        _kw("src_dtype", _N, choices=("f32", "i32")), _DT, *_SHAPE,
        _kw("src_rs", default=None), _kw("dst_rs", default=None), _kw("dst_cs", default=1),
        _kw("relu", _I, default=0), *_valid(),
    ), "copy the accumulator out with a cast and optional ReLU; only the valid part is written"))
    # -- MTE3: UB -> GM/L1 -------------------------------------------------------------------------
    d.append(OpDef("store", Pipe.MTE3, (
        _pos("dst", _M, spaces=("gm", "l1")), _pos("src", _M, spaces=("ub",)), _DT, *_SHAPE,
        _kw("src_rs", default=None), _kw("dst_rs"), _kw("dst_cs", default=1), *_valid(),
    ), "2-D strided copy UB->GM/L1; only the valid part is written"))
    d.append(OpDef("scatter", Pipe.MTE3, (
        _pos("dst", _M, spaces=("gm",)), _pos("src", _M, spaces=("ub",)), _kw("idx", _M, spaces=("ub",)),
        _DT, _kw("n"), _kw("mask", _M, default=None, spaces=("ub",)),
    ), "dst[idx[i]] = src[i] for unmasked lanes (int32 element offsets)"))
    # -- V: vector on UB ---------------------------------------------------------------------------
    ub = ("ub",)
    d.append(OpDef("vbin", Pipe.V, (
        _pos("op", _N, choices=VECTOR_BINARY), _pos("dst", _M, spaces=ub), _pos("a", _T, spaces=ub),
        _pos("b", _T, spaces=ub), _DT, *_SHAPE, *_strides("dst", "a", "b"),
    ), "dst = a op b elementwise over rows x cols (comparisons write i1); stride 0 broadcasts"))
    d.append(OpDef("vun", Pipe.V, (
        _pos("op", _N, choices=VECTOR_UNARY), _pos("dst", _M, spaces=ub), _pos("a", _M, spaces=ub),
        _DT, *_SHAPE, *_strides("dst", "a"),
    ), "dst = op(a) elementwise"))
    d.append(OpDef("vfma", Pipe.V, (
        _pos("dst", _M, spaces=ub), _pos("a", _M, spaces=ub), _pos("b", _T, spaces=ub), _pos("c", _T, spaces=ub),
        _DT, *_SHAPE, *_strides("dst", "a", "b", "c"),
    ), "dst = a * b + c elementwise, rounded once (Ascend's vmla/vmadd/Axpy); float dtypes; stride 0 broadcasts"))
    d.append(OpDef("vsel", Pipe.V, (
        _pos("dst", _M, spaces=ub), _pos("c", _M, spaces=ub), _pos("a", _T, spaces=ub), _pos("b", _T, spaces=ub),
        _DT, *_SHAPE, *_strides("dst", "c", "a", "b"),
    ), "dst = a where c (i1) else b"))
    d.append(OpDef("vcast", Pipe.V, (
        _pos("dst", _M, spaces=ub), _pos("a", _M, spaces=ub), _kw("from_dtype", _N, choices=DTYPE_NAMES), _DT,
        *_SHAPE, *_strides("dst", "a"),
    ), "dst = a converted from from_dtype to dtype (float->int truncates)"))
    d.append(OpDef("vred", Pipe.V, (
        _pos("op", _N, choices=REDUCTIONS), _pos("dst", _M, spaces=ub), _pos("a", _M, spaces=ub), _DT, *_SHAPE,
        _kw("axis", _I, default=1), *_strides("a"),
    ), "reduce a rows x cols tile along axis (1: one value per row); arg-reductions write i32"))
    d.append(OpDef("vdup", Pipe.V, (
        _pos("dst", _M, spaces=ub), _pos("value", _V), _DT, *_SHAPE, *_strides("dst"),
    ), "fill a tile with a scalar"))
    d.append(OpDef("viota", Pipe.V, (
        _pos("dst", _M, spaces=ub), _pos("start", _V), _DT, *_SHAPE,
        _kw("row_step", default=0), _kw("col_step", default=1), *_strides("dst"),
    ), "dst[r, c] = start + r*row_step + c*col_step (arange and affine offsets)"))
    d.append(OpDef("vcopy", Pipe.V, (
        _pos("dst", _M, spaces=ub), _pos("a", _M, spaces=ub), _DT, *_SHAPE, *_strides("dst", "a"),
    ), "strided copy within UB: broadcast (stride 0), transpose (swapped strides), relayout"))
    d.append(OpDef("vprint", Pipe.V, (
        _pos("fmt", _S), _pos("a", _M, spaces=ub), _DT, *_SHAPE, *_strides("a"),
    ), "device_print of a tile"))
    return d


OPCODES: dict[str, OpDef] = {o.name: o for o in _defs()}


@dataclass(frozen=True, slots=True)
class Instr:
    """One instruction: opcode, arguments in `OpDef.fields` order, and its kernel source line."""

    op: str
    args: tuple[Any, ...]
    loc: SourceLoc | None = None

    @property
    def opdef(self) -> OpDef:
        """The opcode's definition: its pipe and its operand fields."""
        return OPCODES[self.op]

    @property
    def pipe(self) -> Pipe:
        """The pipe that executes this instruction (for a flag, the pipe that sets or waits on it)."""
        pipe = OPCODES[self.op].pipe
        if pipe is not None:
            return pipe
        return PIPES[self.args[0] if self.op == "set_flag" else self.args[1]]

    def get(self, name: str) -> Any:
        """The operand named `name` (a field of the opcode's definition)."""
        return self.args[OPCODES[self.op].index[name]]

    def __str__(self) -> str:
        from isa.asm import format_instr  # the text form lives with the parser

        return format_instr(self)


def make(op: str, *args: Any, loc: SourceLoc | None = None, **kwargs: Any) -> Instr:
    """Build an instruction by field name, filling defaults: `make("mov", Reg(0), 5)`."""
    try:
        opdef = OPCODES[op]
    except KeyError:
        raise ValueError(f"unknown opcode {op!r}") from None
    positional = [f for f in opdef.fields if f.positional]
    if len(args) > len(positional):
        raise ValueError(f"{op}: takes {len(positional)} positional operands, got {len(args)}")
    values: dict[str, Any] = {f.name: a for f, a in zip(positional, args)}
    for name, value in kwargs.items():
        if name not in opdef.index:
            raise ValueError(f"{op}: unknown field {name!r} (fields: {', '.join(opdef.index)})")
        if name in values:
            raise ValueError(f"{op}: field {name!r} given twice")
        values[name] = value
    out = []
    for f in opdef.fields:
        if f.name in values:
            out.append(values[f.name])
        elif f.required:
            raise ValueError(f"{op}: missing field {f.name!r}")
        else:
            out.append(f.default)
    instr = Instr(op, tuple(out), loc)
    check_instr(instr)
    return instr


def check_instr(instr: Instr) -> None:
    """Check every argument against its field's kind; raise ValueError naming the field."""
    opdef = OPCODES[instr.op]
    if len(instr.args) != len(opdef.fields):
        raise ValueError(f"{instr.op}: expected {len(opdef.fields)} arguments, got {len(instr.args)}")
    for f, value in zip(opdef.fields, instr.args):
        if value is None and not f.required and f.default is None:
            continue
        ok = _KIND_CHECK[f.kind](value)
        if ok and f.kind in (Kind.MEM, Kind.TILE) and isinstance(value, Mem) and f.spaces:
            if value.space not in f.spaces:
                raise ValueError(f"{instr.op}: field {f.name} must be in {'/'.join(f.spaces)}, got {value.space}")
        if ok and f.kind is Kind.NAME and f.choices and value not in f.choices:
            raise ValueError(f"{instr.op}: field {f.name} must be one of {', '.join(f.choices)}, got {value!r}")
        if not ok:
            raise ValueError(f"{instr.op}: field {f.name} must be a {f.kind.value}, got {value!r}")


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


_KIND_CHECK = {
    Kind.REG: lambda v: isinstance(v, Reg),
    Kind.VALUE: lambda v: isinstance(v, Reg) or _is_number(v),
    Kind.INT: lambda v: isinstance(v, int) and not isinstance(v, bool),
    Kind.MEM: lambda v: isinstance(v, Mem) and v.space in SPACES,
    Kind.TILE: lambda v: isinstance(v, (Reg, Mem)) or _is_number(v),
    Kind.NAME: lambda v: isinstance(v, str),
    Kind.LABEL: lambda v: isinstance(v, Label),
    Kind.STR: lambda v: isinstance(v, str),
}
