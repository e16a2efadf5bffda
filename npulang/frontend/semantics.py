"""Typing, promotion and broadcasting rules, emitting explicit IR ops (Triton's semantic.py, ours).

The frontend hands runtime values (`ir.Value`) and compile-time Python values (ints, floats,
bools) to a `Semantics` object, which applies the rules below and emits the ops that make them
explicit (`splat`, `broadcast`, `cast`, `addptr`):

- int op float -> float; two floats -> the wider (f16 op bf16 -> f32); two ints -> the wider.
- A Python literal adopts the dtype of the tile it meets (an int literal next to a float tile is
  that float; a float literal next to an int tile makes f32).
- Comparisons give int1; true division `/` of ints gives f32; `//` and `%` on ints truncate
  toward zero (C semantics, as Triton).
- pointer + int -> pointer (offsets in elements); shapes broadcast by numpy's rules.

User mistakes raise `SemanticError`, which the frontend turns into a `CompilationError` at the
kernel line being compiled.
"""

from __future__ import annotations

from typing import Any

from npulang import errors
from npulang import ir
from npulang.ir import I1, I32, OpKind, PtrType, ScalarType, TileType, Value

_FLOAT_RANK = {"f16": 1, "bf16": 1, "f32": 2}
_INT_RANK = {"i1": 0, "i8": 1, "i32": 2}
_INT_RANGE = {"i8": (-128, 127), "i32": (-(2**31), 2**31 - 1), "i1": (0, 1)}
_ARITH = ("add", "sub", "mul", "div", "floordiv", "mod", "min", "max", "pow")
_BITWISE = ("and", "or", "xor", "shl", "shr")


class SemanticError(Exception):
    """A user mistake found by a typing rule; `error_cls` is the CompilationError subclass to raise."""

    def __init__(self, error_cls: type[errors.CompilationError], message: str, hint: str | None = None):
        super().__init__(message)
        self.error_cls = error_cls
        self.message = message
        self.hint = hint


def type_error(message: str, hint: str | None = None) -> SemanticError:
    """A TypeMismatchError to raise at the current source location."""
    return SemanticError(errors.TypeMismatchError, message, hint)


def shape_error(message: str, hint: str | None = None) -> SemanticError:
    """A ShapeMismatchError to raise at the current source location."""
    return SemanticError(errors.ShapeMismatchError, message, hint)


def constexpr_error(message: str, hint: str | None = None) -> SemanticError:
    """A ConstexprRequiredError to raise at the current source location."""
    return SemanticError(errors.ConstexprRequiredError, message, hint)


def describe(x: Any) -> str:
    """How a value is named in error messages: `tile<64x32xf16>`, `i32 scalar`, `constexpr 3`."""
    if isinstance(x, Value):
        t = x.type
        if isinstance(t, TileType):
            return f"{len(t.shape)}-D {t}"
        if isinstance(t, ir.DescType):
            return f"tensor descriptor {t}"
        if isinstance(t, ir.ConvDescType):
            return f"convolution descriptor {t}"
        return f"{t} scalar"
    return f"constexpr {x!r}"


def is_number(x: Any) -> bool:
    """True for a Python bool, int or float (a literal that adopts a tile's dtype)."""
    return isinstance(x, (bool, int, float))


def promote(a: ScalarType, b: ScalarType) -> ScalarType:
    """The common dtype of two scalar dtypes (Triton's rules)."""
    if a == b:
        return a
    if a.is_float and b.is_float:
        if _FLOAT_RANK[a.dtype] == _FLOAT_RANK[b.dtype]:
            return ir.F32  # f16 with bf16
        return a if _FLOAT_RANK[a.dtype] > _FLOAT_RANK[b.dtype] else b
    if a.is_float:
        return a
    if b.is_float:
        return b
    return a if _INT_RANK[a.dtype] > _INT_RANK[b.dtype] else b


def broadcast_shapes(a: tuple[int, ...], b: tuple[int, ...]) -> tuple[int, ...]:
    """numpy's broadcasting of two shapes, or a ShapeMismatchError."""
    n = len(a) if len(a) > len(b) else len(b)
    pa = (1,) * (n - len(a)) + a
    pb = (1,) * (n - len(b)) + b
    out = []
    for x, y in zip(pa, pb):
        if x != y and x != 1 and y != 1:
            raise shape_error(f"cannot broadcast shapes {list(a)} and {list(b)}",
                              "make the shapes equal, or give one a size-1 dimension (x[:, None])")
        out.append(x if y == 1 else y)
    return tuple(out)


class Semantics:
    """Applies the language's rules, emitting ops through `builder` (whose block and loc move)."""

    def __init__(self, builder: ir.Builder) -> None:
        self.b = builder

    # -- literals and casts -----------------------------------------------------------------

    def literal(self, x: Any, elem: ScalarType, shape: tuple[int, ...] = ()) -> Value:
        """A Python number as a constant of `elem` (splat to `shape` if given)."""
        if elem.is_int and not isinstance(x, bool):
            if isinstance(x, float):
                x = int(x)
            lo, hi = _INT_RANGE[elem.dtype]
            if not lo <= x <= hi:
                raise type_error(f"constant {x} does not fit in {elem.dtype}")
        if elem == I1:
            x = bool(x)
        elif elem.is_int:
            x = int(x)
        else:
            x = float(x)
        return self.b.constant(x, ir.make_type(shape, elem))

    def literal_dtype(self, x: Any) -> ScalarType:
        """The dtype a lone Python number gets: bool -> i1, int -> i32, float -> f32."""
        if isinstance(x, bool):
            return I1
        if isinstance(x, int):
            lo, hi = _INT_RANGE["i32"]
            if not lo <= x <= hi:
                raise type_error(f"integer constant {x} does not fit in int32")
            return I32
        if isinstance(x, float):
            return ir.F32
        raise type_error(f"expected a number or a tile, got {x!r}")

    def to_value(self, x: Any) -> Value:
        """A runtime value for `x` (Python numbers become constants)."""
        if isinstance(x, Value):
            return x
        return self.literal(x, self.literal_dtype(x))

    def _literal_for(self, x: Any, other: Value) -> Value:
        """A Python number next to `other` adopts `other`'s dtype where that loses nothing."""
        e = ir.elem_type(other.type)
        if isinstance(e, PtrType):
            return self.to_value(x)
        if isinstance(x, bool):
            return self.literal(x, e if e == I1 else self.literal_dtype(x))
        if isinstance(x, int) and e.is_int and e != I1:
            lo, hi = _INT_RANGE[e.dtype]
            return self.literal(x, e if lo <= x <= hi else I32)
        if isinstance(x, (int, float)) and e.is_float:
            return self.literal(x, e)
        return self.to_value(x)

    def cast(self, v: Value, dtype: str) -> Value:
        """`v` converted to `dtype` (no op if it already is)."""
        e = ir.elem_type(v.type)
        if isinstance(e, PtrType):
            raise type_error(f"cannot cast pointer {v.type} to {dtype}")
        if e.dtype == dtype:
            return v
        return self.b.value(OpKind.CAST, (v,), dtype=dtype)

    def to_bool(self, v: Any) -> Value:
        """An i1 value: comparisons as is, other numbers compared with zero."""
        v = self.to_value(v)
        e = ir.elem_type(v.type)
        if e == I1:
            return v
        if isinstance(e, PtrType):
            raise type_error(f"expected a condition, got pointer {v.type}")
        return self.compare("ne", v, 0)

    # -- shapes -----------------------------------------------------------------------------

    def broadcast_to(self, v: Value, shape: tuple[int, ...]) -> Value:
        """`v` broadcast to `shape` (scalars splat; missing leading dims added; size-1 dims grow)."""
        shape = tuple(shape)
        t = v.type
        if ir.shape_of(t) == shape:
            return v
        if not shape:
            raise shape_error(f"cannot use {describe(v)} where a scalar is expected")
        if not isinstance(t, TileType):
            return self.b.value(OpKind.SPLAT, (v,), shape=shape)
        if broadcast_shapes(t.shape, shape) != shape:
            raise shape_error(f"cannot broadcast {describe(v)} to shape {list(shape)}")
        while len(ir.shape_of(v.type)) < len(shape):
            v = self.b.value(OpKind.EXPAND_DIMS, (v,), axis=0)
        if ir.shape_of(v.type) != shape:
            v = self.b.value(OpKind.BROADCAST, (v,), shape=shape)
        return v

    def _common(self, *xs: Any) -> list[Value]:
        """Values of one shape (broadcast) for any mix of runtime values and Python numbers."""
        anchor = next((x for x in xs if isinstance(x, Value)), None)
        vals = [x if isinstance(x, Value) else (self._literal_for(x, anchor) if anchor is not None
                                                 else self.to_value(x)) for x in xs]
        shape: tuple[int, ...] = ()
        for v in vals:
            shape = broadcast_shapes(shape, ir.shape_of(v.type))
        return [self.broadcast_to(v, shape) for v in vals]

    def _unify(self, a: Any, b: Any) -> tuple[Value, Value]:
        """Broadcast and promote two operands to one type."""
        va, vb = self._common(a, b)
        ea, eb = ir.elem_type(va.type), ir.elem_type(vb.type)
        if isinstance(ea, PtrType) or isinstance(eb, PtrType):
            if ea != eb:
                raise type_error(f"cannot combine {describe(va)} and {describe(vb)}")
            return va, vb
        e = promote(ea, eb)
        return self.cast(va, e.dtype), self.cast(vb, e.dtype)

    # -- elementwise ------------------------------------------------------------------------

    def binary(self, op: str, a: Any, b: Any) -> Value:
        """`a op b` for runtime operands (at least one is a Value)."""
        ea = ir.elem_type(a.type) if isinstance(a, Value) else None
        eb = ir.elem_type(b.type) if isinstance(b, Value) else None
        if isinstance(ea, PtrType) or isinstance(eb, PtrType):
            return self._pointer_arith(op, a, b)
        if op in ("div", "pow"):  # true division and powers of ints are f32
            va, vb = self._unify(a, b)
            if ir.elem_type(va.type).is_int:
                va, vb = self.cast(va, "f32"), self.cast(vb, "f32")
            return self.b.value(OpKind.BINARY, (va, vb), op=op)
        va, vb = self._unify(a, b)
        e = ir.elem_type(va.type)
        if op in _BITWISE and e.is_float:
            raise type_error(f"bitwise {op} needs integer operands, got {describe(va)} and {describe(vb)}",
                             "use .to(npu.int32) first, or a comparison for a mask")
        if op in _ARITH and e == I1 and op not in ("min", "max"):
            va, vb = self.cast(va, "i32"), self.cast(vb, "i32")
        return self.b.value(OpKind.BINARY, (va, vb), op=op)

    def _pointer_arith(self, op: str, a: Any, b: Any) -> Value:
        if op == "add" and not (isinstance(a, Value) and isinstance(ir.elem_type(a.type), PtrType)):
            a, b = b, a
        if op not in ("add", "sub") or (isinstance(b, Value) and isinstance(ir.elem_type(b.type), PtrType)):
            raise type_error(f"unsupported pointer arithmetic: {describe(a)} {op} {describe(b)}",
                             "pointers only take integer offsets: ptr + offs or ptr - offs")
        off = self.to_value(b)
        oe = ir.elem_type(off.type)
        if not (isinstance(oe, ScalarType) and oe.is_int):
            raise type_error(f"pointer offset must be an integer, got {describe(off)}", "use .to(npu.int32)")
        off = self.cast(off, "i32")
        if op == "sub":
            off = self.b.value(OpKind.UNARY, (off,), op="neg")
        shape = broadcast_shapes(ir.shape_of(a.type), ir.shape_of(off.type))
        return self.b.value(OpKind.ADDPTR, (self.broadcast_to(a, shape), self.broadcast_to(off, shape)))

    def compare(self, pred: str, a: Any, b: Any) -> Value:
        """An i1 comparison of two operands after broadcasting and promotion."""
        va, vb = self._unify(a, b)
        return self.b.value(OpKind.CMP, (va, vb), pred=pred)

    def unary(self, op: str, x: Any) -> Value:
        """An elementwise unary op (math ops need floats)."""
        v = self.to_value(x)
        e = ir.elem_type(v.type)
        if isinstance(e, PtrType):
            raise type_error(f"{op} of a pointer {v.type}")
        if op in ir.FLOAT_ONLY_UNARY and not e.is_float:
            raise type_error(f"{op} needs a float operand, got {describe(v)}",
                             "convert first: x.to(npu.float32)")
        if op == "not" and e.is_float:
            raise type_error(f"~ needs an integer operand, got {describe(v)}")
        if op == "neg" and e == I1:
            v = self.cast(v, "i32")
        return self.b.value(OpKind.UNARY, (v,), op=op)

    def logical_not(self, x: Any) -> Value:
        """Python's `not` on a runtime value: true where it is zero."""
        return self.b.value(OpKind.UNARY, (self.to_bool(x),), op="not")

    def fma(self, x: Any, y: Any, z: Any) -> Value:
        """`x * y + z` rounded once, the three promoted to one float type and broadcast together; on scalars
        alone a multiply and an add (the scalar unit has no fused operation)."""
        vx, vy, vz = self._common(x, y, z)
        elems = [ir.elem_type(v.type) for v in (vx, vy, vz)]
        e = promote(promote(elems[0], elems[1]), elems[2]) if all(isinstance(t, ScalarType) for t in elems) else None
        if e is None or not e.is_float:
            bad = next(v for v in (vx, vy, vz) if not getattr(ir.elem_type(v.type), "is_float", False))
            raise type_error(f"fma needs float operands, got {describe(bad)}", "convert first: x.to(npu.float32)")
        if not isinstance(vx.type, TileType):
            return self.binary("add", self.binary("mul", vx, vy), vz)
        vx, vy, vz = (self.cast(v, e.dtype) for v in (vx, vy, vz))
        return self.b.value(OpKind.FMA, (vx, vy, vz))

    def where(self, cond: Any, x: Any, y: Any) -> Value:
        """`x` where `cond` else `y`, all three broadcast together."""
        c = self.to_bool(cond)
        vx, vy = self._unify(x, y)
        shape = broadcast_shapes(ir.shape_of(c.type), ir.shape_of(vx.type))
        c, vx, vy = (self.broadcast_to(v, shape) for v in (c, vx, vy))
        return self.b.value(OpKind.WHERE, (c, vx, vy))

    # -- memory -----------------------------------------------------------------------------

    def _pointer(self, ptr: Any, what: str) -> tuple[Value, PtrType]:
        if not isinstance(ptr, Value) or not isinstance(ir.elem_type(ptr.type), PtrType):
            raise type_error(f"{what} needs a pointer or a tile of pointers, got {describe(ptr)}",
                             "pass a numpy array argument and add offsets to it: x_ptr + offs")
        return ptr, ir.elem_type(ptr.type)

    def load(self, ptr: Any, mask: Any = None, other: Any = None) -> Value:
        """Load through `ptr`; `mask` and `other` broadcast to the pointer's shape."""
        ptr, pt = self._pointer(ptr, "load")
        if mask is None:
            return self.b.value(OpKind.LOAD, (ptr,))
        mask = self.to_bool(mask)
        shape = broadcast_shapes(ir.shape_of(ptr.type), ir.shape_of(mask.type))
        ptr, mask = self.broadcast_to(ptr, shape), self.broadcast_to(mask, shape)
        operands = [ptr, mask]
        if other is not None:
            if is_number(other):
                ov = self.literal(other, ScalarType(pt.pointee))
            elif isinstance(other, Value) and isinstance(ir.elem_type(other.type), ScalarType):
                ov = self.cast(other, pt.pointee)
            else:
                raise type_error(f"load other must be a number or a tile of numbers, got {describe(other)}")
            operands.append(self.broadcast_to(ov, shape))
        return self.b.value(OpKind.LOAD, operands)

    def store(self, ptr: Any, value: Any, mask: Any = None) -> None:
        """Store `value` (cast to the pointee dtype) through `ptr` where `mask` holds."""
        ptr, pt = self._pointer(ptr, "store")
        v = self.literal(value, ScalarType(pt.pointee)) if is_number(value) else value
        if not isinstance(v, Value) or isinstance(ir.elem_type(v.type), PtrType) or isinstance(v.type, (
                ir.DescType, ir.ConvDescType)):
            raise type_error(f"store needs a number or a tile of numbers as value, got {describe(value)}")
        shape = broadcast_shapes(ir.shape_of(ptr.type), ir.shape_of(v.type))
        if mask is not None:
            mask = self.to_bool(mask)
            shape = broadcast_shapes(shape, ir.shape_of(mask.type))
        operands = [self.broadcast_to(ptr, shape), self.broadcast_to(self.cast(v, pt.pointee), shape)]
        if mask is not None:
            operands.append(self.broadcast_to(mask, shape))
        self.b.create(OpKind.STORE, operands)

    # -- compute ----------------------------------------------------------------------------

    def dot(self, a: Any, b: Any, acc: Any, out_dtype: str) -> Value:
        """`a @ b (+ acc)` on 2-D tiles with the cube's accumulation types."""
        for v in (a, b):
            if not isinstance(v, Value) or not isinstance(v.type, TileType):
                raise shape_error(f"dot needs 2-D tiles, got {describe(v)}")
        ta, tb = a.type, b.type
        if len(ta.shape) != 2 or len(tb.shape) != 2:
            raise shape_error(f"dot needs 2-D tiles, got {describe(a)} and {describe(b)}",
                              "reshape a 1-D tile to 2-D first, e.g. x[None, :]")
        if ta.shape[1] != tb.shape[0]:
            raise shape_error(f"dot inner dimensions differ: a is {list(ta.shape)}, b is {list(tb.shape)}",
                              "a must be [M, K] and b [K, N]")
        if ta.elem != tb.elem:
            raise type_error(f"dot operands must have one dtype, got {ta.elem} and {tb.elem}",
                             "convert one with .to(...)")
        e = ta.elem
        if not isinstance(e, ScalarType) or e not in (ScalarType("f16"), ScalarType("bf16"), ir.F32,
                                                       ScalarType("i8")):
            raise type_error(f"dot supports float16, bfloat16, float32 and int8 tiles, got {e}")
        out = "i32" if e.is_int else out_dtype
        m, n = ta.shape[0], tb.shape[1]
        if acc is None:
            return self.b.value(OpKind.DOT, (a, b), out_dtype=out)
        acc = self.to_value(acc)
        ae = ir.elem_type(acc.type)
        if not isinstance(ae, ScalarType):
            raise type_error(f"dot accumulator must be numeric, got {describe(acc)}")
        if e.is_int != ae.is_int:
            raise type_error(f"dot accumulator {describe(acc)} does not match {e} operands",
                             "accumulate int8 products in int32 and float products in float32")
        acc = self.broadcast_to(acc, (m, n)) if not isinstance(acc.type, TileType) else acc
        if acc.type.shape != (m, n):
            raise shape_error(f"dot accumulator {describe(acc)} must have shape {[m, n]}")
        return self.b.value(OpKind.DOT, (a, b, acc), out_dtype=ae.dtype)

    def reduce(self, x: Any, op: str, axis: Any, keep_dims: bool = False) -> Value:
        """Reduce a tile along `axis` (or all axes if None)."""
        if not isinstance(x, Value) or not isinstance(x.type, TileType):
            raise shape_error(f"{op} needs a tile, got {describe(x)}")
        if isinstance(ir.elem_type(x.type), PtrType):
            raise type_error(f"{op} of pointers")
        rank = len(x.type.shape)
        if axis is None:
            if op in ("argmax", "argmin") and rank != 1:
                raise constexpr_error(f"{op} needs an axis for a {rank}-D tile")
            flat = x if rank == 1 else self.b.value(OpKind.RESHAPE, (x,), shape=(x.type.numel,))
            out = self.reduce(flat, op, 0)
            if keep_dims:
                out = self.b.value(OpKind.SPLAT, (out,), shape=(1,) * rank)
            return out
        if not isinstance(axis, int) or isinstance(axis, bool):
            raise constexpr_error(f"{op} axis must be a constexpr int, got {describe(axis)}")
        if not -rank <= axis < rank:
            raise shape_error(f"{op} axis {axis} is out of range for {describe(x)}")
        axis %= rank
        e = ir.elem_type(x.type)
        if op == "sum" and e.is_int and e != I32:
            x = self.cast(x, "i32")
        out = self.b.value(OpKind.REDUCE, (x,), op=op, axis=axis)
        if keep_dims:
            out = self.expand_dims(out, axis)
        return out

    def scan(self, x: Value, op: str, axis: Any, reverse: Any) -> Value:
        """Inclusive prefix results of `op` along a constexpr `axis` (ints below 32 bits widened to i32)."""
        rank = len(ir.shape_of(x.type))
        if not isinstance(axis, int) or isinstance(axis, bool):
            raise constexpr_error(f"cum{op} axis must be a constexpr int, got {describe(axis)}")
        if not -rank <= axis < rank:
            raise shape_error(f"cum{op} axis {axis} is out of range for {describe(x)}")
        if not isinstance(reverse, bool):
            raise constexpr_error(f"cum{op} reverse must be a constexpr bool, got {describe(reverse)}")
        if isinstance(ir.elem_type(x.type), PtrType):
            raise type_error(f"cum{op} of pointers")
        if ir.elem_type(x.type).is_int and ir.elem_type(x.type) != I32:
            x = self.cast(x, "i32")
        return self.b.value(OpKind.SCAN, (x,), op=op, axis=axis % rank, reverse=reverse)

    def expand_dims(self, x: Any, axis: int) -> Value:
        """Insert a size-1 dimension at `axis` (negative counts from the end of the result)."""
        v = self.to_value(x)
        rank = len(ir.shape_of(v.type)) + 1
        if not -rank <= axis < rank:
            raise shape_error(f"expand_dims axis {axis} out of range for {describe(v)}")
        if not isinstance(v.type, TileType):
            return self.b.value(OpKind.SPLAT, (v,), shape=(1,))
        return self.b.value(OpKind.EXPAND_DIMS, (v,), axis=axis % rank)

    def reshape(self, x: Any, shape: tuple[int, ...]) -> Value:
        v = self.to_value(x)
        if not isinstance(v.type, TileType):
            return self.b.value(OpKind.SPLAT, (v,), shape=shape)
        numel = 1
        for d in shape:
            numel *= d
        if numel != v.type.numel:
            raise shape_error(f"cannot reshape {describe(v)} ({v.type.numel} elements) to {list(shape)}")
        if tuple(shape) == v.type.shape:
            return v
        return self.b.value(OpKind.RESHAPE, (v,), shape=tuple(shape))

    def trans(self, x: Any, perm: tuple[int, ...] | None) -> Value:
        if not isinstance(x, Value) or not isinstance(x.type, TileType):
            raise shape_error(f"trans needs a tile, got {describe(x)}")
        rank = len(x.type.shape)
        perm = tuple(reversed(range(rank))) if not perm else tuple(perm)
        if sorted(perm) != list(range(rank)):
            raise shape_error(f"trans dims {list(perm)} are not a permutation of {rank} dimensions")
        if perm == tuple(range(rank)):
            return x
        return self.b.value(OpKind.TRANS, (x,), perm=perm)
