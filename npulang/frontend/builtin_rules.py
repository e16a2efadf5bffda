"""How each `npu.*` builtin and tile method compiles: one rule per builtin, registered against it.

A rule takes the code generator (for its `Semantics` and compile-time printing) and the call's
already-evaluated arguments: runtime `ir.Value`s or compile-time Python values. `@implements(lang.f)`
registers a rule for the language function `f`; after `gen` its signature is `f`'s (a test checks
it), so Python binds the arguments and a wrong call is reported as Python would report it.
"""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING, Any, Callable

from npulang import errors, ir
from npulang import language as lang
from npulang.ir import ConvDescType, OpKind, PtrType, ScalarType, TileType, Value
from npulang.ir.conv import LAYOUTS, ConvGeometry
from npulang.frontend.semantics import (
    SemanticError, constexpr_error, describe, is_number, shape_error, type_error,
)

if TYPE_CHECKING:
    from npulang.frontend.ast_to_ir import CodeGenerator

Impl = Callable[..., Any]
RULES: dict[str, Impl] = {}  # by builtin name (the language function's __npu_builtin__)
LANGUAGE: dict[str, Any] = {}  # builtin name -> the npulang.language function its rule implements
METHODS: set[str] = set()  # tile methods: x.sum(axis=0) is sum(x, axis=0)


def implements(*functions: Any, method: bool = False) -> Callable[[Impl], Impl]:
    """Register a rule for the language functions `functions` (and as tile methods, with `method`)."""
    def wrap(rule: Impl) -> Impl:
        for fn in functions:
            name = getattr(fn, "__npu_builtin__", fn.__name__)
            RULES[name], LANGUAGE[name] = rule, fn
            if method:
                METHODS.add(name)
        return rule

    return wrap


def method_rule(name: str, *, tile: bool = True) -> Callable[[Impl], Impl]:
    """Register a rule for a method that has no `npu.*` function: `x.to(...)`, `desc.load(...)`.

    `tile=False` keeps it off tiles (descriptor methods are reached as `desc_<name>`).
    """
    def wrap(rule: Impl) -> Impl:
        RULES[name] = rule
        if tile:
            METHODS.add(name)
        return rule

    return wrap


def call_builtin(gen: CodeGenerator, name: str, args: list[Any], kwargs: dict[str, Any]) -> Any:
    """Compile a call to builtin `name` (or a tile method, with the tile as first argument)."""
    impl = RULES[name]
    try:
        bound = inspect.signature(impl).bind(gen, *args, **kwargs)
    except TypeError as exc:
        raise SemanticError(errors.TypeMismatchError, f"bad call to npu.{name}(): {exc}") from None
    return impl(*bound.args, **bound.kwargs)


# -- argument checks ---------------------------------------------------------------------------


def constexpr_int(x: Any, what: str) -> int:
    """`x` as a compile-time int, or a ConstexprRequiredError naming `what`."""
    if isinstance(x, Value):
        raise constexpr_error(f"{what} must be a constexpr, got a runtime {describe(x)}",
                              "declare the parameter as NAME: npu.constexpr")
    if isinstance(x, bool) or not isinstance(x, int):
        raise type_error(f"{what} must be an int, got {x!r}")
    return x


def constexpr_shape(shape: Any, what: str) -> tuple[int, ...]:
    """A shape given as an int or a tuple/list of constexpr positive ints."""
    dims = tuple(shape) if isinstance(shape, (tuple, list)) else (shape,)
    out = tuple(constexpr_int(d, f"{what} dimension") for d in dims)
    if not out or any(d <= 0 for d in out):
        raise shape_error(f"{what} must have positive dimensions, got {list(out)}")
    return out


def _shape_args(shape: tuple[Any, ...], what: str) -> tuple[int, ...]:
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = tuple(shape[0])
    return constexpr_shape(shape, what)


def dtype_arg(x: Any, what: str = "dtype") -> str:
    """The ISA name of an `npu.<dtype>` argument."""
    if isinstance(x, lang.dtype):
        return x.name
    raise type_error(f"{what} must be an npu dtype such as npu.float32, got {x!r}")


def _tile(x: Any, what: str) -> Value:
    if not isinstance(x, Value) or not isinstance(x.type, TileType):
        raise shape_error(f"{what} needs a tile, got {describe(x)}")
    return x


def _index_value(gen: CodeGenerator, x: Any, what: str) -> Value:
    v = gen.sem.to_value(x)
    e = v.type
    if not (isinstance(e, ScalarType) and e.is_int):
        raise type_error(f"{what} must be an integer scalar, got {describe(v)}")
    return gen.sem.cast(v, "i32")


class PointerDType:
    """What `ptr.dtype` gives in a kernel: `.element_ty` is the pointee's dtype (as in Triton)."""

    def __init__(self, pointee: str) -> None:
        self.element_ty = lang.dtype(pointee)

    def __repr__(self) -> str:
        return f"pointer<{self.element_ty!r}>"


def value_dtype(v: Value) -> Any:
    """`x.dtype` of a runtime value."""
    e = ir.elem_type(v.type)
    return PointerDType(e.pointee) if isinstance(e, PtrType) else lang.dtype(e.dtype)


# -- program and index space -------------------------------------------------------------------


def _grid_query(gen: CodeGenerator, axis: Any, kind: OpKind) -> Value:
    axis = constexpr_int(axis, f"{kind.value} axis")
    if axis not in (0, 1, 2):
        raise shape_error(f"{kind.value} axis must be 0, 1 or 2, got {axis}")
    return gen.b.value(kind, axis=axis)


@implements(lang.program_id)
def _program_id(gen: CodeGenerator, axis: Any) -> Value:
    return _grid_query(gen, axis, OpKind.PROGRAM_ID)


@implements(lang.num_programs)
def _num_programs(gen: CodeGenerator, axis: Any) -> Value:
    return _grid_query(gen, axis, OpKind.NUM_PROGRAMS)


@implements(lang.arange)
def _arange(gen: CodeGenerator, start: Any, end: Any) -> Value:
    start, end = constexpr_int(start, "arange start"), constexpr_int(end, "arange end")
    if end <= start:
        raise shape_error(f"arange needs end > start, got arange({start}, {end})")
    return gen.b.value(OpKind.ARANGE, start=start, end=end)


@implements(lang.cdiv)
def _cdiv(gen: CodeGenerator, x: Any, div: Any) -> Any:
    if not isinstance(x, Value) and not isinstance(div, Value):
        return (x + div - 1) // div
    return gen.sem.binary("floordiv", gen.sem.binary("sub", gen.sem.binary("add", x, div), 1), div)


@implements(lang.zeros)
def _zeros(gen: CodeGenerator, shape: Any, dtype: Any) -> Value:
    return gen.sem.literal(0, ScalarType(dtype_arg(dtype)), constexpr_shape(shape, "zeros shape"))


@implements(lang.full)
def _full(gen: CodeGenerator, shape: Any, value: Any, dtype: Any) -> Value:
    dims = constexpr_shape(shape, "full shape")
    d = dtype_arg(dtype)
    if is_number(value):
        return gen.sem.literal(value, ScalarType(d), dims)
    if not isinstance(value, Value) or isinstance(value.type, TileType):
        raise type_error(f"full value must be a scalar, got {describe(value)}")
    return gen.sem.broadcast_to(gen.sem.cast(value, d), dims)


# -- memory ------------------------------------------------------------------------------------


@implements(lang.load)
def _load(gen: CodeGenerator, pointer: Any, mask: Any = None, other: Any = None, **ignored: Any) -> Value:
    return gen.sem.load(pointer, mask, other)


@implements(lang.store)
def _store(gen: CodeGenerator, pointer: Any, value: Any, mask: Any = None, **ignored: Any) -> None:
    gen.sem.store(pointer, value, mask)


@implements(lang.make_tensor_descriptor)
def _make_desc(gen: CodeGenerator, base: Any, shape: Any, strides: Any, block_shape: Any) -> Value:
    if not isinstance(base, Value) or not isinstance(base.type, PtrType):
        raise type_error(f"make_tensor_descriptor base must be a pointer argument, got {describe(base)}")
    block = constexpr_shape(block_shape, "block_shape")
    if not isinstance(shape, (tuple, list)) or not isinstance(strides, (tuple, list)) \
            or not len(shape) == len(strides) == len(block):
        raise shape_error(f"make_tensor_descriptor needs {len(block)} sizes and {len(block)} strides "
                          f"(one per block dimension)")
    sizes = [_index_value(gen, s, "tensor descriptor size") for s in shape]
    steps = [_index_value(gen, s, "tensor descriptor stride") for s in strides]
    return gen.b.value(OpKind.MAKE_DESC, (base, *sizes, *steps), block_shape=block)


def _desc(x: Any) -> ir.DescType:
    if not isinstance(x, Value) or not isinstance(x.type, ir.DescType):
        raise type_error(f"expected a tensor descriptor, got {describe(x)}")
    return x.type


def _offsets(gen: CodeGenerator, d: ir.DescType, offsets: Any) -> list[Value]:
    if not isinstance(offsets, (tuple, list)) or len(offsets) != d.ndim:
        raise shape_error(f"a {d.ndim}-D tensor descriptor needs a list of {d.ndim} offsets, got {offsets!r}")
    return [_index_value(gen, o, "descriptor offset") for o in offsets]


@method_rule("desc_load", tile=False)
def _desc_load(gen: CodeGenerator, desc: Any, offsets: Any) -> Value:
    d = _desc(desc)
    return gen.b.value(OpKind.DESC_LOAD, (desc, *_offsets(gen, d, offsets)))


@implements(lang.make_conv_descriptor)
def _make_conv_desc(gen: CodeGenerator, base: Any, shape: Any, kernel: Any, block_shape: Any, stride: Any = 1,
                    padding: Any = 0, dilation: Any = 1, layout: str = "NCHW", channel_block: Any = None) -> Value:
    if not isinstance(base, Value) or not isinstance(base.type, PtrType):
        raise type_error(f"make_conv_descriptor base must be a pointer argument, got {describe(base)}")
    dims = _conv_ints(shape, 4, "shape (N, C, H, W)")
    cb = dims[1] if channel_block is None else constexpr_int(channel_block, "make_conv_descriptor channel_block")
    if layout not in LAYOUTS:
        raise type_error(f"make_conv_descriptor layout must be one of {', '.join(LAYOUTS)}, got {layout!r}")
    geometry = ConvGeometry(
        dims, _conv_ints(kernel, 2, "kernel (R, S)"), _conv_ints(stride, 2, "stride", True),  # type: ignore[arg-type]
        _conv_ints(padding, 2, "padding", True), _conv_ints(dilation, 2, "dilation", True),  # type: ignore[arg-type]
        layout, cb,
        _conv_ints(block_shape, 2, "block_shape [BM, BK]"))  # type: ignore[arg-type]
    problem = geometry.problem()
    if problem is not None:
        raise shape_error(problem)
    return gen.b.value(OpKind.MAKE_CONV_DESC, (base,), **geometry.attrs())


def _conv_ints(x: Any, n: int, what: str, one_for_all: bool = False) -> tuple[int, ...]:
    """A tuple of `n` constexpr ints; with `one_for_all` a single int stands for all `n`."""
    if isinstance(x, (tuple, list)):
        if len(x) != n:
            raise shape_error(f"make_conv_descriptor {what} needs {n} values, got {list(x)}")
        return tuple(constexpr_int(v, f"make_conv_descriptor {what}") for v in x)
    if one_for_all:
        return (constexpr_int(x, f"make_conv_descriptor {what}"),) * 2
    raise shape_error(f"make_conv_descriptor {what} needs {n} values, got {x!r}")


@method_rule("conv_desc_load", tile=False)
def _conv_desc_load(gen: CodeGenerator, desc: Any, offsets: Any) -> Value:
    if not isinstance(offsets, (tuple, list)) or len(offsets) != 2:
        raise shape_error(f"a convolution descriptor load needs a list of 2 offsets [m, k], got {offsets!r}")
    bk = desc.type.block_shape[1] if isinstance(desc, Value) and isinstance(desc.type, ConvDescType) else None
    m, k = offsets
    if bk and all(isinstance(o, int) and not isinstance(o, bool) for o in offsets) and (k % bk or min(m, k) < 0):
        # a runtime k off the grid is the interpreter's runtime error; compiled code would read the wrong taps
        raise shape_error(f"conv descriptor load at [{m}, {k}]: k must be a multiple of the block's K ({bk}) and "
                          "offsets >= 0", hint="step k by BK: for k in range(0, K, BK)")
    return gen.b.value(OpKind.CONV_LOAD, (desc, *(_index_value(gen, o, "descriptor offset") for o in offsets)))


@method_rule("desc_store", tile=False)
def _desc_store(gen: CodeGenerator, desc: Any, offsets: Any, value: Any) -> None:
    d = _desc(desc)
    offs = _offsets(gen, d, offsets)
    if is_number(value):
        v = gen.sem.literal(value, ScalarType(d.pointee))
    elif isinstance(value, Value) and isinstance(ir.elem_type(value.type), ScalarType):
        v = gen.sem.cast(value, d.pointee)
    else:
        raise type_error(f"descriptor store needs a tile of numbers, got {describe(value)}")
    gen.b.create(OpKind.DESC_STORE, (desc, *offs, gen.sem.broadcast_to(v, d.block_shape)))


# -- compute -----------------------------------------------------------------------------------


@implements(lang.dot)
def _dot(gen: CodeGenerator, a: Any, b: Any, acc: Any = None, input_precision: Any = None,
         allow_tf32: Any = None, max_num_imprecise_acc: Any = None, out_dtype: Any = lang.float32) -> Value:
    return gen.sem.dot(a, b, acc, dtype_arg(out_dtype, "dot out_dtype"))


@implements(lang.where)
def _where(gen: CodeGenerator, condition: Any, x: Any, y: Any) -> Any:
    if not any(isinstance(v, Value) for v in (condition, x, y)):
        return x if condition else y
    return gen.sem.where(condition, x, y)


@implements(lang.fma)
def _fma(gen: CodeGenerator, x: Any, y: Any, z: Any) -> Any:
    if not any(isinstance(v, Value) for v in (x, y, z)):
        return x * y + z
    return gen.sem.fma(x, y, z)


def _minmax(op: str) -> Impl:
    def impl(gen: CodeGenerator, x: Any, y: Any, propagate_nan: Any = None) -> Any:
        if not isinstance(x, Value) and not isinstance(y, Value):
            return (x if x > y else y) if op == "max" else (x if x < y else y)
        return gen.sem.binary(op, x, y)

    return impl


implements(lang.maximum)(_minmax("max"))
implements(lang.minimum)(_minmax("min"))


def _math(op: str) -> Impl:
    def impl(gen: CodeGenerator, x: Any) -> Value:
        if not isinstance(x, Value):
            x = gen.sem.to_value(float(x) if op != "abs" else x)
        return gen.sem.unary(op, x)

    return impl


for _op in ("exp", "exp2", "log", "log2", "sqrt", "rsqrt", "abs", "erf", "tanh", "sigmoid", "floor",
            "ceil", "sin", "cos"):
    implements(getattr(lang, _op), method=True)(_math(_op))


# -- reductions --------------------------------------------------------------------------------


@implements(lang.sum, method=True)
def _sum(gen: CodeGenerator, input: Any, axis: Any = None, keep_dims: Any = False,
         dtype: Any = None) -> Value:
    x = _tile(input, "sum")
    if dtype is not None:
        x = gen.sem.cast(x, dtype_arg(dtype))
    return gen.sem.reduce(x, "sum", axis, bool(keep_dims))


@implements(lang.cumsum, method=True)
def _cumsum(gen: CodeGenerator, input: Any, axis: Any = 0, reverse: Any = False, dtype: Any = None) -> Value:
    x = _tile(input, "cumsum")
    if dtype is not None:
        x = gen.sem.cast(x, dtype_arg(dtype))
    return gen.sem.scan(x, "sum", axis, reverse)


def _extremum(op: str) -> Impl:
    def impl(gen: CodeGenerator, input: Any, axis: Any = None, return_indices: Any = False,
             return_indices_tie_break_left: Any = True, keep_dims: Any = False) -> Any:
        if not return_indices_tie_break_left:
            raise SemanticError(errors.UnsupportedSyntaxError, f"{op}: only the first index of ties is supported")
        x = _tile(input, op)
        value = gen.sem.reduce(x, op, axis, bool(keep_dims))
        if return_indices:
            return value, gen.sem.reduce(x, "arg" + op, axis, bool(keep_dims))
        return value

    return impl


implements(lang.max, method=True)(_extremum("max"))
implements(lang.min, method=True)(_extremum("min"))


def _arg(op: str) -> Impl:
    def impl(gen: CodeGenerator, input: Any, axis: Any, tie_break_left: Any = True,
             keep_dims: Any = False) -> Value:
        if not tie_break_left:
            raise SemanticError(errors.UnsupportedSyntaxError, f"{op}: only the first index of ties is supported")
        return gen.sem.reduce(_tile(input, op), op, axis, bool(keep_dims))

    return impl


implements(lang.argmax, method=True)(_arg("argmax"))
implements(lang.argmin, method=True)(_arg("argmin"))


# -- shapes ------------------------------------------------------------------------------------


def _dims(dims: tuple[Any, ...]) -> tuple[int, ...] | None:
    if len(dims) == 1 and isinstance(dims[0], (tuple, list)):
        dims = tuple(dims[0])
    return tuple(constexpr_int(d, "trans dimension") for d in dims) or None


@implements(lang.trans, lang.permute, method=True)
def _trans(gen: CodeGenerator, input: Any, *dims: Any) -> Value:
    return gen.sem.trans(input, _dims(dims))


@implements(lang.reshape, method=True)
def _reshape(gen: CodeGenerator, input: Any, *shape: Any, can_reorder: Any = False) -> Value:
    return gen.sem.reshape(input, _shape_args(shape, "reshape shape"))


@implements(lang.view, method=True)
def _view(gen: CodeGenerator, input: Any, *shape: Any) -> Value:
    return gen.sem.reshape(input, _shape_args(shape, "view shape"))


@implements(lang.broadcast_to, method=True)
def _broadcast_to(gen: CodeGenerator, input: Any, *shape: Any) -> Value:
    return gen.sem.broadcast_to(gen.sem.to_value(input), _shape_args(shape, "broadcast_to shape"))


@implements(lang.expand_dims, method=True)
def _expand_dims(gen: CodeGenerator, input: Any, axis: Any) -> Value:
    axes = axis if isinstance(axis, (tuple, list)) else (axis,)
    out = gen.sem.to_value(input)
    for a in sorted(constexpr_int(a, "expand_dims axis") for a in axes):
        out = gen.sem.expand_dims(out, a)
    return out


@method_rule("to")
def _to(gen: CodeGenerator, input: Any, dtype: Any, fp_downcast_rounding: Any = None,
        bitcast: Any = False) -> Value:
    if bitcast:
        raise SemanticError(errors.UnsupportedSyntaxError, "bitcast is not supported")
    v = gen.sem.to_value(input)
    if isinstance(ir.elem_type(v.type), PtrType):
        raise type_error(f"cannot convert pointer {v.type} with .to()")
    return gen.sem.cast(v, dtype_arg(dtype))


# -- compile time and debugging ----------------------------------------------------------------


@implements(lang.static_assert)
def _static_assert(gen: CodeGenerator, condition: Any, message: Any = "") -> None:
    if isinstance(condition, Value):
        raise constexpr_error("static_assert needs a constexpr condition, got a runtime "
                              f"{describe(condition)}")
    if not condition:
        raise SemanticError(errors.CompilationError, f"static_assert failed: {message}".rstrip(": "))


@implements(lang.static_print)
def _static_print(gen: CodeGenerator, *values: Any) -> None:
    print(*values)


@implements(lang.device_print)
def _device_print(gen: CodeGenerator, prefix: Any, *args: Any, hex: Any = False) -> None:
    if not isinstance(prefix, str):
        raise type_error(f"device_print's first argument must be a string prefix, got {describe(prefix)}")
    if hex:
        raise SemanticError(errors.UnsupportedSyntaxError, "device_print(hex=True) is not supported")
    values = [gen.sem.to_value(a) for a in args]
    gen.b.create(OpKind.PRINT, values, {"prefix": prefix})


@implements(lang.multiple_of, lang.max_contiguous, lang.max_constancy)
def _hint(gen: CodeGenerator, input: Any, values: Any) -> Any:
    return input


@implements(lang.constexpr)
def _constexpr(gen: CodeGenerator, value: Any) -> Any:
    if isinstance(value, Value):
        raise constexpr_error(f"npu.constexpr() needs a compile-time value, got a runtime {describe(value)}")
    return value

