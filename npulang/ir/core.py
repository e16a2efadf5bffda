"""The block IR: typed SSA ops on scalars, pointers and tiles, with scf-style regions.

Everything the compiler knows about a kernel after the frontend lives here: `Function` holds a
body `Block` of `Op`s; each op consumes `Value`s and defines new ones, and carries the kernel
source location it came from. Broadcasting and dtype promotion are explicit (the frontend inserts
`splat`/`broadcast`/`cast`), so the operands of `binary`, `cmp` and `where` always have identical
types and no later pass re-derives Python's or Triton's rules.

`infer_result_types` is the one place that says what type each op produces; the `Builder` uses it
to create ops and the verifier (`npulang.ir.verifier`) uses it to check them. `npulang.ir.printer`
gives the readable text form used by golden tests and `kernel.inspect()`.
"""

from __future__ import annotations

import enum
import itertools
from dataclasses import dataclass, field
from typing import Any, Iterator, Union

from isa.dtypes import DTYPES
from npulang.ir.conv import ConvGeometry

# ---------------------------------------------------------------------------------------------
# Types
# ---------------------------------------------------------------------------------------------

FLOAT_DTYPES = ("f16", "bf16", "f32")
INT_DTYPES = ("i8", "i32", "i1")


@dataclass(frozen=True)
class ScalarType:
    """A single number of an ISA dtype ("f16", "bf16", "f32", "i8", "i32", "i1")."""

    dtype: str

    def __post_init__(self) -> None:
        if self.dtype not in DTYPES:
            raise ValueError(f"unknown dtype {self.dtype!r}")

    @property
    def is_float(self) -> bool:
        return self.dtype in FLOAT_DTYPES

    @property
    def is_int(self) -> bool:
        return self.dtype in INT_DTYPES

    def __str__(self) -> str:
        return self.dtype


@dataclass(frozen=True)
class PtrType:
    """A pointer to elements of dtype `pointee` in global memory (offsets count elements)."""

    pointee: str

    def __post_init__(self) -> None:
        if self.pointee not in DTYPES:
            raise ValueError(f"unknown pointee dtype {self.pointee!r}")

    def __str__(self) -> str:
        return f"ptr<{self.pointee}>"


@dataclass(frozen=True)
class TileType:
    """A tile of static shape whose elements are scalars or pointers."""

    shape: tuple[int, ...]
    elem: ScalarType | PtrType

    def __post_init__(self) -> None:
        if not self.shape or any(not isinstance(d, int) or d <= 0 for d in self.shape):
            raise ValueError(f"tile shape must be a non-empty tuple of positive ints, got {self.shape}")
        if not isinstance(self.elem, (ScalarType, PtrType)):
            raise ValueError(f"tile element must be a scalar or pointer type, got {self.elem}")

    @property
    def numel(self) -> int:
        n = 1
        for d in self.shape:
            n *= d
        return n

    def __str__(self) -> str:
        return f"tile<{'x'.join(map(str, self.shape))}x{self.elem}>"


@dataclass(frozen=True)
class DescType:
    """A tensor descriptor: a strided N-D view of global memory, read and written in blocks."""

    pointee: str
    block_shape: tuple[int, ...]

    @property
    def ndim(self) -> int:
        return len(self.block_shape)

    def __str__(self) -> str:
        return f"desc<{'x'.join(map(str, self.block_shape))}x{self.pointee}>"


@dataclass(frozen=True)
class ConvDescType:
    """A convolution descriptor: the im2col matrix of a feature map in GM, read in [BM, BK] blocks."""

    pointee: str
    block_shape: tuple[int, int]

    def __str__(self) -> str:
        return f"convdesc<{'x'.join(map(str, self.block_shape))}x{self.pointee}>"


Type = Union[ScalarType, PtrType, TileType, DescType, ConvDescType]

I1 = ScalarType("i1")
I32 = ScalarType("i32")
F32 = ScalarType("f32")


def elem_type(t: Type) -> ScalarType | PtrType:
    """The element type of a tile, or the type itself for scalars and pointers."""
    if isinstance(t, TileType):
        return t.elem
    if isinstance(t, (DescType, ConvDescType)):
        raise ValueError("a descriptor has no element type")
    return t


def shape_of(t: Type) -> tuple[int, ...]:
    """The shape of a tile, `()` for scalars and pointers."""
    return t.shape if isinstance(t, TileType) else ()


def with_elem(t: Type, elem: ScalarType | PtrType) -> Type:
    """`t` with its element type replaced (keeps tile-ness and shape)."""
    return TileType(t.shape, elem) if isinstance(t, TileType) else elem


def make_type(shape: tuple[int, ...], elem: ScalarType | PtrType) -> Type:
    """A tile of `shape`, or the bare element type if `shape` is `()`."""
    return TileType(tuple(shape), elem) if shape else elem


# ---------------------------------------------------------------------------------------------
# Values, ops, blocks, functions
# ---------------------------------------------------------------------------------------------

_ids = itertools.count()


class Value:
    """An SSA value: its type, a unique id, and an optional name hint for printing."""

    __slots__ = ("type", "id", "name")

    def __init__(self, type: Type, name: str | None = None) -> None:
        self.type = type
        self.id = next(_ids)
        self.name = name

    def __repr__(self) -> str:
        return f"Value({self.name or ''}#{self.id}: {self.type})"


@dataclass(frozen=True)
class Loc:
    """Where an op came from in the kernel's source (line 1-based, col 0-based as in `ast`)."""

    file: str
    line: int
    col: int = 0

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col + 1}"


class OpKind(enum.Enum):
    """Every op of the block IR. Attributes are listed in braces."""

    # -- values from nowhere
    CONSTANT = "constant"          # {value}; result scalar or splat tile of that value
    PROGRAM_ID = "program_id"      # {axis} -> i32
    NUM_PROGRAMS = "num_programs"  # {axis} -> i32
    ARANGE = "arange"              # {start, end} -> tile<end-start x i32>
    # -- shape manipulation (element type kept)
    SPLAT = "splat"                # (scalar|ptr) {shape} -> tile
    BROADCAST = "broadcast"        # (tile) {shape}: size-1 dims grow, rank unchanged
    EXPAND_DIMS = "expand_dims"    # (tile) {axis}: insert a size-1 dim
    RESHAPE = "reshape"            # (tile) {shape}: same number of elements, row-major
    TRANS = "trans"                # (tile) {perm}
    # -- elementwise (operands of identical type)
    BINARY = "binary"              # (a, b) {op}
    CMP = "cmp"                    # (a, b) {pred} -> i1 of the same shape
    UNARY = "unary"                # (x) {op}
    CAST = "cast"                  # (x) {dtype}
    WHERE = "where"                # (cond: i1, a, b), a and b of one type
    FMA = "fma"                    # (a, b, c) of one float type: a * b + c rounded once
    # -- memory
    ADDPTR = "addptr"              # (ptr, offset: i32 of the same shape); offset counts elements
    LOAD = "load"                  # (ptr[, mask[, other]]) -> pointee
    STORE = "store"                # (ptr, value[, mask])
    MAKE_DESC = "make_desc"        # (base, *shape, *strides) {block_shape} -> desc
    DESC_LOAD = "desc_load"        # (desc, *offsets) -> tile<block_shape>, zero outside the tensor
    DESC_STORE = "desc_store"      # (desc, *offsets, value); elements outside the tensor dropped
    MAKE_CONV_DESC = "make_conv_desc"  # (base) {ConvGeometry attrs} -> convdesc
    CONV_LOAD = "conv_load"        # (convdesc, m, k) -> tile<BM x BK>: the im2col block, zero outside
    # -- compute
    DOT = "dot"                    # (a[M,K], b[K,N][, acc[M,N]]) {out_dtype} -> tile[M,N]
    REDUCE = "reduce"              # (x) {op, axis}; rank-1 input gives a scalar
    SCAN = "scan"                  # (x) {op, axis, reverse}: inclusive prefix (suffix) results, same type
    # -- control flow and misc
    FOR = "for"                    # (lb, ub, step, *inits) [{num_stages}]; region args (iv, *iter_args)
    IF = "if"                      # (cond: i1 scalar); then/else regions end in yield; results
    WHILE = "while"                # (*inits); regions (cond, body) with args (*iter_args): cond yields one
                                   # i1 scalar, body yields the next iteration values; results: the last
    YIELD = "yield"                # (*values): ends the region of a for or an if
    PRINT = "print"                # (*values) {prefix}
    RETURN = "return"              # ends the function body


BINARY_OPS = ("add", "sub", "mul", "div", "floordiv", "mod", "min", "max",
              "and", "or", "xor", "shl", "shr", "pow")
INT_ONLY_BINARY = ("and", "or", "xor", "shl", "shr")
CMP_PREDS = ("lt", "le", "gt", "ge", "eq", "ne")
UNARY_OPS = ("neg", "not", "abs", "exp", "exp2", "log", "log2", "sqrt", "rsqrt", "erf", "tanh",
             "sigmoid", "floor", "ceil", "sin", "cos")
FLOAT_ONLY_UNARY = ("exp", "exp2", "log", "log2", "sqrt", "rsqrt", "erf", "tanh", "sigmoid",
                    "floor", "ceil", "sin", "cos")
REDUCE_OPS = ("sum", "max", "min", "argmax", "argmin")
SCAN_OPS = ("sum",)


@dataclass(eq=False)
class Block:
    """A list of ops with block arguments (the loop variable and iteration values of a `for`)."""

    args: list[Value] = field(default_factory=list)
    ops: list[Op] = field(default_factory=list)


@dataclass(frozen=True, eq=False)
class Op:
    """One operation: kind, operand values, result values, attributes, nested regions, location.

    Frozen: a pass that changes an op builds a new one (`dataclasses.replace`), so the IR kept for
    an earlier stage or shared by the frontend's memo never changes under its holder. (`attrs` is a
    dict for convenience; nothing mutates it in place.)
    """

    kind: OpKind
    operands: tuple[Value, ...]
    results: tuple[Value, ...]
    attrs: dict[str, Any]
    regions: tuple[Block, ...]
    loc: Loc

    @property
    def result(self) -> Value:
        """The single result of a one-result op."""
        if len(self.results) != 1:
            raise ValueError(f"{self.kind.value} has {len(self.results)} results, not one")
        return self.results[0]


@dataclass(eq=False)
class Function:
    """A specialised kernel: named arguments, a body ending in `return`, and its specialisation.

    `constexprs` maps each compile-time parameter to its value; `arg_types` is the type of each
    runtime argument in order (the same as `[a.type for a in args]`). `specialised` maps int arguments
    to what the specialisation knows of them: 1 (equal to 1, compiled as the constant) or 16 (a multiple
    of 16).
    """

    name: str
    args: list[Value]
    body: Block
    constexprs: dict[str, Any] = field(default_factory=dict)
    loc: Loc | None = None
    specialised: dict[str, int] = field(default_factory=dict)

    @property
    def arg_names(self) -> list[str]:
        return [a.name or f"arg{i}" for i, a in enumerate(self.args)]

    @property
    def arg_types(self) -> list[Type]:
        return [a.type for a in self.args]


def walk(block: Block) -> Iterator[Op]:
    """Every op in `block` and its regions, in program order (an op before its regions' ops)."""
    for op in block.ops:
        yield op
        for region in op.regions:
            yield from walk(region)


# ---------------------------------------------------------------------------------------------
# Result types
# ---------------------------------------------------------------------------------------------


class IRTypeError(ValueError):
    """An op whose operands or attributes do not fit its kind (caught and reported by callers)."""


def _expect(cond: bool, message: str) -> None:
    if not cond:
        raise IRTypeError(message)


def _same_types(kind: str, operands: tuple[Value, ...]) -> Type:
    first = operands[0].type
    for v in operands[1:]:
        _expect(v.type == first, f"{kind} operands differ in type: {first} vs {v.type}")
    return first


def _index_operands(kind: str, values: tuple[Value, ...]) -> None:
    for v in values:
        _expect(v.type == I32, f"{kind} expects i32 scalar indices, got {v.type}")


def infer_result_types(kind: OpKind, operands: tuple[Value, ...], attrs: dict[str, Any]) -> tuple[Type, ...]:
    """The result types of an op of `kind`, or IRTypeError if operands/attrs do not fit.

    Not defined for `constant`, `for` and `if`, whose result types are given by their creator.
    """
    n = len(operands)
    if kind in (OpKind.PROGRAM_ID, OpKind.NUM_PROGRAMS):
        _expect(n == 0 and attrs.get("axis") in (0, 1, 2), f"{kind.value} takes an axis 0, 1 or 2")
        return (I32,)
    if kind is OpKind.ARANGE:
        start, end = attrs["start"], attrs["end"]
        _expect(n == 0 and end > start, f"arange needs end > start, got [{start}, {end})")
        return (TileType((end - start,), I32),)
    if kind is OpKind.SPLAT:
        _expect(n == 1 and not isinstance(operands[0].type, (TileType, DescType, ConvDescType)),
                "splat takes one scalar")
        return (TileType(tuple(attrs["shape"]), operands[0].type),)
    if kind is OpKind.BROADCAST:
        t = operands[0].type
        shape = tuple(attrs["shape"])
        _expect(n == 1 and isinstance(t, TileType) and len(shape) == len(t.shape), "broadcast keeps rank")
        _expect(all(a in (1, b) for a, b in zip(t.shape, shape)), f"cannot broadcast {t} to {list(shape)}")
        return (TileType(shape, t.elem),)
    if kind is OpKind.EXPAND_DIMS:
        t = operands[0].type
        _expect(n == 1 and isinstance(t, TileType), "expand_dims takes a tile")
        axis = attrs["axis"]
        _expect(0 <= axis <= len(t.shape), f"expand_dims axis {axis} out of range for {t}")
        return (TileType(t.shape[:axis] + (1,) + t.shape[axis:], t.elem),)
    if kind is OpKind.RESHAPE:
        t = operands[0].type
        shape = tuple(attrs["shape"])
        _expect(n == 1 and isinstance(t, TileType), "reshape takes a tile")
        new = TileType(shape, t.elem)
        _expect(new.numel == t.numel, f"cannot reshape {t} to {list(shape)}")
        return (new,)
    if kind is OpKind.TRANS:
        t = operands[0].type
        perm = tuple(attrs["perm"])
        _expect(n == 1 and isinstance(t, TileType), "trans takes a tile")
        _expect(sorted(perm) == list(range(len(t.shape))), f"bad permutation {list(perm)} for {t}")
        return (TileType(tuple(t.shape[p] for p in perm), t.elem),)
    if kind is OpKind.BINARY:
        _expect(n == 2 and attrs.get("op") in BINARY_OPS, f"bad binary op {attrs.get('op')!r}")
        t = _same_types("binary", operands)
        e = elem_type(t)
        _expect(isinstance(e, ScalarType), f"binary {attrs['op']} on pointers: use addptr")
        _expect(not (attrs["op"] in INT_ONLY_BINARY and e.is_float), f"{attrs['op']} needs integers, got {e}")
        return (t,)
    if kind is OpKind.CMP:
        _expect(n == 2 and attrs.get("pred") in CMP_PREDS, f"bad cmp predicate {attrs.get('pred')!r}")
        t = _same_types("cmp", operands)
        return (with_elem(t, I1),)
    if kind is OpKind.UNARY:
        op = attrs.get("op")
        _expect(n == 1 and op in UNARY_OPS, f"bad unary op {op!r}")
        e = elem_type(operands[0].type)
        _expect(isinstance(e, ScalarType), f"unary {op} on a pointer")
        _expect(not (op in FLOAT_ONLY_UNARY and not e.is_float), f"{op} needs a float operand, got {e}")
        _expect(not (op == "not" and e.is_float), f"not needs an integer operand, got {e}")
        return (operands[0].type,)
    if kind is OpKind.CAST:
        _expect(n == 1 and attrs.get("dtype") in DTYPES, f"bad cast dtype {attrs.get('dtype')!r}")
        _expect(isinstance(elem_type(operands[0].type), ScalarType), "cast of a pointer")
        return (with_elem(operands[0].type, ScalarType(attrs["dtype"])),)
    if kind is OpKind.FMA:
        _expect(n == 3, "fma takes (a, b, c)")
        t = _same_types("fma", operands)
        e = elem_type(t)
        _expect(isinstance(e, ScalarType) and e.is_float, f"fma needs float operands, got {t}")
        return (t,)
    if kind is OpKind.WHERE:
        _expect(n == 3, "where takes (cond, a, b)")
        t = _same_types("where", operands[1:])
        _expect(operands[0].type == with_elem(t, I1),
                f"where condition {operands[0].type} does not match {t}")
        return (t,)
    if kind is OpKind.ADDPTR:
        _expect(n == 2, "addptr takes (ptr, offset)")
        p, o = operands[0].type, operands[1].type
        _expect(isinstance(elem_type(p), PtrType), f"addptr base must be a pointer, got {p}")
        _expect(o == with_elem(p, I32), f"addptr offset must be i32 of the pointer's shape, got {o}")
        return (p,)
    if kind is OpKind.LOAD:
        _expect(1 <= n <= 3, "load takes (ptr[, mask[, other]])")
        p = operands[0].type
        pe = elem_type(p)
        _expect(isinstance(pe, PtrType), f"load needs a pointer, got {p}")
        out = with_elem(p, ScalarType(pe.pointee))
        if n >= 2:
            _expect(operands[1].type == with_elem(p, I1), f"load mask {operands[1].type} does not match {p}")
        if n == 3:
            _expect(operands[2].type == out, f"load other {operands[2].type} must be {out}")
        return (out,)
    if kind is OpKind.STORE:
        _expect(2 <= n <= 3, "store takes (ptr, value[, mask])")
        p = operands[0].type
        pe = elem_type(p)
        _expect(isinstance(pe, PtrType), f"store needs a pointer, got {p}")
        _expect(operands[1].type == with_elem(p, ScalarType(pe.pointee)),
                f"store value {operands[1].type} does not match pointer {p}")
        if n == 3:
            _expect(operands[2].type == with_elem(p, I1), f"store mask {operands[2].type} does not match {p}")
        return ()
    if kind is OpKind.MAKE_DESC:
        block = tuple(attrs["block_shape"])
        nd = len(block)
        _expect(nd >= 1 and n == 1 + 2 * nd, f"make_desc takes base, {nd} sizes and {nd} strides")
        base = operands[0].type
        _expect(isinstance(base, PtrType), f"make_desc base must be a scalar pointer, got {base}")
        _index_operands("make_desc", operands[1:])
        _expect(all(isinstance(b, int) and b > 0 for b in block), f"bad block shape {list(block)}")
        return (DescType(base.pointee, block),)
    if kind is OpKind.DESC_LOAD:
        d = operands[0].type
        _expect(isinstance(d, DescType) and n == 1 + d.ndim, "desc_load takes (desc, *offsets)")
        _index_operands("desc_load", operands[1:])
        return (TileType(d.block_shape, ScalarType(d.pointee)),)
    if kind is OpKind.DESC_STORE:
        d = operands[0].type
        _expect(isinstance(d, DescType) and n == 2 + d.ndim, "desc_store takes (desc, *offsets, value)")
        _index_operands("desc_store", operands[1:-1])
        _expect(operands[-1].type == TileType(d.block_shape, ScalarType(d.pointee)),
                f"desc_store value {operands[-1].type} does not match {d}")
        return ()
    if kind is OpKind.MAKE_CONV_DESC:
        _expect(n == 1 and isinstance(operands[0].type, PtrType), "make_conv_desc takes one scalar pointer")
        try:
            geometry = ConvGeometry.from_attrs(attrs)
            problem = geometry.problem()
        except (KeyError, TypeError, ValueError) as exc:
            raise IRTypeError(f"make_conv_desc attributes are malformed: {exc!r}") from None
        _expect(problem is None, str(problem))
        return (ConvDescType(operands[0].type.pointee, geometry.block_shape),)
    if kind is OpKind.CONV_LOAD:
        d = operands[0].type
        _expect(isinstance(d, ConvDescType) and n == 3, "conv_load takes (convdesc, m, k)")
        _index_operands("conv_load", operands[1:])
        return (TileType(d.block_shape, ScalarType(d.pointee)),)
    if kind is OpKind.DOT:
        _expect(n in (2, 3), "dot takes (a, b[, acc])")
        a, b = operands[0].type, operands[1].type
        _expect(isinstance(a, TileType) and isinstance(b, TileType) and len(a.shape) == 2 == len(b.shape),
                f"dot needs 2-D tiles, got {a} and {b}")
        _expect(a.shape[1] == b.shape[0], f"dot inner dimensions differ: {a} @ {b}")
        _expect(a.elem == b.elem, f"dot operand dtypes differ: {a.elem} vs {b.elem}")
        out = TileType((a.shape[0], b.shape[1]), ScalarType(attrs["out_dtype"]))
        if n == 3:
            _expect(operands[2].type == out, f"dot accumulator {operands[2].type} must be {out}")
        return (out,)
    if kind is OpKind.REDUCE:
        t = operands[0].type
        op, axis = attrs.get("op"), attrs.get("axis")
        _expect(n == 1 and isinstance(t, TileType) and op in REDUCE_OPS, "reduce takes one tile and an op")
        _expect(isinstance(axis, int) and 0 <= axis < len(t.shape),
                f"reduce axis {axis} out of range for {t}")
        e = I32 if op in ("argmax", "argmin") else t.elem
        return (make_type(t.shape[:axis] + t.shape[axis + 1:], e),)
    if kind is OpKind.SCAN:
        t = operands[0].type if n == 1 else None
        _expect(isinstance(t, TileType) and attrs.get("op") in SCAN_OPS, "scan takes one tile and an op")
        axis = attrs.get("axis")
        _expect(isinstance(axis, int) and 0 <= axis < len(t.shape), f"scan axis {axis} out of range for {t}")
        _expect(attrs.get("reverse") in (False, True), "scan reverse must be a bool")
        _expect(isinstance(t.elem, ScalarType) and t.elem.dtype in ("f16", "bf16", "f32", "i32"),  # type: ignore
                f"scan needs a float or i32 tile, got {t}")
        return (t,)  # type: ignore[return-value]
    if kind in (OpKind.YIELD, OpKind.PRINT, OpKind.RETURN):
        return ()
    raise IRTypeError(f"result types of {kind.value} are given by its creator")


# ---------------------------------------------------------------------------------------------
# Building
# ---------------------------------------------------------------------------------------------


class Builder:
    """Appends ops to a block at the current source location.

    The frontend moves `loc` as it walks the kernel; passes use a builder to emit replacements.
    """

    def __init__(self, block: Block, loc: Loc) -> None:
        self.block = block
        self.loc = loc

    def create(
        self,
        kind: OpKind,
        operands: tuple[Value, ...] | list[Value] = (),
        attrs: dict[str, Any] | None = None,
        *,
        result_types: tuple[Type, ...] | None = None,
        regions: tuple[Block, ...] = (),
        name: str | None = None,
    ) -> Op:
        """Create an op, append it to the block, and return it (types inferred unless given)."""
        operands = tuple(operands)
        attrs = dict(attrs or {})
        if result_types is None:
            result_types = infer_result_types(kind, operands, attrs)
        results = tuple(Value(t, name) for t in result_types)
        op = Op(kind, operands, results, attrs, tuple(regions), self.loc)
        self.block.ops.append(op)
        return op

    def value(self, kind: OpKind, operands: tuple[Value, ...] | list[Value] = (), **attrs: Any) -> Value:
        """Create a one-result op and return its result."""
        return self.create(kind, operands, attrs).result

    def constant(self, value: int | float | bool, type: Type) -> Value:
        """A scalar constant, or a tile filled with `value`."""
        return self.create(OpKind.CONSTANT, (), {"value": value}, result_types=(type,)).result
