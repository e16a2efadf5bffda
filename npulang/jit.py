"""`@npu.jit`: a kernel's Python function, specialised and launched over a grid.

`JITFunction.specialize(*args, **meta)` compiles the kernel for the argument types and
constexpr values of one call (memoised by a key that hashes the source of the kernel and every
`@npu.jit` function and global constant it uses). `kernel[grid](*args, **meta)` launches it:
through the numpy interpreter with `interpret=True` (or `NPU_INTERPRET=1`), otherwise through
`npulang.launch` (compiler back end and simulator, imported only when needed).
"""

from __future__ import annotations

import ast
import hashlib
import inspect as _inspect
import os
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import numpy as np

from isa.dtypes import from_numpy
from npulang import errors, ir
from npulang import language as lang
from npulang.frontend import KernelSource, compile_kernel, parse_source
from npulang.frontend.codegen import is_constexpr_value

# Keyword arguments of a launch that configure it rather than the kernel (never kernel constexprs).
LAUNCH_OPTIONS = ("num_stages", "num_warps", "num_ctas", "interpret", "trace", "timing_only")
_I32_RANGE = (-(2**31), 2**31 - 1)

Grid = tuple[int, ...] | Callable[[dict[str, Any]], tuple[int, ...]]


@dataclass
class BoundCall:
    """One call's arguments sorted out: runtime values (in parameter order) and constexprs."""

    runtime: dict[str, Any]
    constexprs: dict[str, Any]
    options: dict[str, Any]

    @property
    def meta(self) -> dict[str, Any]:
        """Every named argument, as a grid callable sees them (Triton's `META`)."""
        return {**self.runtime, **self.constexprs, **self.options}


@dataclass
class InterpretResult:
    """The result of an interpreted launch: arrays were written in place; no cycle count."""

    grid: tuple[int, int, int]
    fn: ir.Function
    prints: list[str] = field(default_factory=list)
    cycles: None = None


class JITFunction:
    """A kernel: call it as `kernel[grid](*args, **meta)`; see the module docstring."""

    def __init__(self, fn: Callable[..., Any], *, interpret: bool | None = None, **options: Any) -> None:
        self.fn = fn
        self.__name__ = fn.__name__
        self.__qualname__ = fn.__qualname__
        self.__doc__ = fn.__doc__
        self.__module__ = fn.__module__
        self.interpret = interpret
        self.options = options
        self.signature = _inspect.signature(fn)
        self.params = list(self.signature.parameters)
        self.constexpr_params = {
            name for name, p in self.signature.parameters.items()
            if p.annotation is lang.constexpr or p.annotation in ("npu.constexpr", "constexpr",
                                                                  "tl.constexpr")
        }
        self._source: KernelSource | None = None
        self._cache: dict[str, ir.Function] = {}

    def __repr__(self) -> str:
        return f"JITFunction({self.__module__}:{self.__qualname__})"

    @property
    def source(self) -> KernelSource:
        """The parsed source (read on first use)."""
        if self._source is None:
            self._source = parse_source(self.fn)
        return self._source

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        raise errors.NpuError(f"@npu.jit function {self.__name__} cannot be called directly from Python: "
                              f"launch it as {self.__name__}[grid](...), or call it from another kernel")

    # -- identity -----------------------------------------------------------------------------

    def source_hash(self) -> str:
        """Hash of the kernel's source and location, its `@npu.jit` callees and the global constants it reads."""
        return self._hash(set())

    def _hash(self, seen: set[int]) -> str:
        seen.add(id(self))
        src = self.source  # reading the source first gives a clear error when there is none
        h = hashlib.sha256("\n".join(src.lines).encode())
        h.update(f"@{src.file}:{src.line_offset}".encode())  # compiled code carries file:line locations
        for name, value in sorted(_referenced_globals(src).items()):
            if isinstance(value, JITFunction):
                h.update(f"{name}=jit:".encode())
                h.update(value._hash(seen).encode() if id(value) not in seen else b"recursive")
            elif isinstance(value, lang.constexpr) or is_constexpr_value(value):
                h.update(f"{name}={value!r}".encode())
        return h.hexdigest()[:32]

    # -- specialisation -----------------------------------------------------------------------

    def bind(self, args: tuple[Any, ...], meta: Mapping[str, Any]) -> BoundCall:
        """Split one call's arguments into runtime values, constexprs and launch options."""
        options = {k: v for k, v in meta.items() if k in LAUNCH_OPTIONS and k not in self.params}
        kwargs = {k: v for k, v in meta.items() if k not in options}
        try:
            bound = self.signature.bind(*args, **kwargs)
        except TypeError as exc:
            raise errors.NpuError(f"bad arguments for kernel {self.__name__}: {exc}") from None
        bound.apply_defaults()
        runtime: dict[str, Any] = {}
        constexprs: dict[str, Any] = {}
        for name, value in bound.arguments.items():
            if isinstance(value, lang.constexpr):
                value = value.value
            if name in self.constexpr_params:
                if not is_constexpr_value(value):
                    raise errors.NpuError(
                        f"kernel {self.__name__}: constexpr parameter '{name}' needs a compile-time value "
                        f"(int, float, bool, str, None, npu dtype), got {type(value).__name__}")
                constexprs[name] = value
            else:
                runtime[name] = value
        return BoundCall(runtime, constexprs, options)

    def arg_types(self, call: BoundCall) -> dict[str, ir.Type]:
        """The IR type of each runtime argument (numpy array -> pointer of its dtype, ...)."""
        return {name: _arg_type(self.__name__, name, value) for name, value in call.runtime.items()}

    def specialize(self, *args: Any, **meta: Any) -> tuple[ir.Function, str]:
        """The IR of this kernel for these arguments, and the specialisation's key (memoised).

        The returned function is shared between calls with the same key: treat it as immutable
        (passes return new functions).
        """
        call = self.bind(args, meta)
        types = self.arg_types(call)
        key = self.specialization_key(call, types)
        if key not in self._cache:
            self._cache[key] = compile_kernel(self.source, self.params, types, call.constexprs)
        return self._cache[key], key

    def specialization_key(self, call: BoundCall, types: dict[str, ir.Type]) -> str:
        """A hex key of (source hash incl. callees, constexprs, argument types)."""
        parts = [self.source_hash(), repr(sorted((k, repr(v)) for k, v in call.constexprs.items())),
                 repr([(k, str(t)) for k, t in types.items()])]
        return hashlib.sha256("\x00".join(parts).encode()).hexdigest()[:32]

    # -- launching ----------------------------------------------------------------------------

    def __getitem__(self, grid: Grid) -> Callable[..., Any]:
        def launcher(*args: Any, **meta: Any) -> Any:
            return self.run(grid, *args, **meta)

        return launcher

    def run(self, grid: Grid, *args: Any, **meta: Any) -> Any:
        """Launch over `grid`: interpreted (`interpret=True` / NPU_INTERPRET=1) or compiled and simulated."""
        interpret = meta.get("interpret", self.interpret)
        if interpret is None:
            interpret = os.environ.get("NPU_INTERPRET", "") not in ("", "0")
        if interpret:
            from npulang.ir.interpreter import interpret_launch

            return interpret_launch(self, grid, args, meta)
        try:
            from npulang.launch import launch
        except ModuleNotFoundError as exc:
            if exc.name != "npulang.launch":
                raise
            raise NotImplementedError("the compiled launch path (npulang.launch) is not available yet; "
                                      "pass interpret=True to run in the numpy interpreter") from exc
        return launch(self, grid, args, meta)

    def grid_for(self, grid: Grid, call: BoundCall) -> tuple[int, int, int]:
        """The grid as three program counts (a callable grid gets the call's named arguments)."""
        return resolve_grid(self.__name__, grid, call.meta)

    def inspect(self, *args: Any, **meta: Any) -> Any:
        """Every compilation stage of this kernel for these arguments (see `npulang.inspect`)."""
        from npulang.inspect import inspect_kernel

        return inspect_kernel(self, *args, **meta)


def resolve_grid(kernel: str, grid: Grid, meta: dict[str, Any]) -> tuple[int, int, int]:
    """A tuple or callable grid as exactly three non-negative ints."""
    g = grid(meta) if callable(grid) else grid
    if isinstance(g, (int, np.integer)):
        g = (g,)
    if not isinstance(g, (tuple, list)) or not 1 <= len(g) <= 3 \
            or not all(isinstance(d, (int, np.integer)) and not isinstance(d, bool) and d >= 0 for d in g):
        raise errors.NpuError(f"kernel {kernel}: the grid must be 1 to 3 non-negative ints, got {g!r}")
    dims = [int(d) for d in g] + [1] * (3 - len(g))
    return dims[0], dims[1], dims[2]


def _arg_type(kernel: str, name: str, value: Any) -> ir.Type:
    if isinstance(value, np.ndarray):
        try:
            d = from_numpy(value.dtype)
        except ValueError as exc:
            raise errors.NpuError(f"kernel {kernel}: argument '{name}': {exc}") from None
        if not value.flags.c_contiguous:
            raise errors.NpuError(f"kernel {kernel}: argument '{name}' is not a contiguous array; pass "
                                  f"np.ascontiguousarray(...) and its strides as arguments instead")
        return ir.PtrType(d.name)
    if isinstance(value, (bool, np.bool_)):
        return ir.I1
    if isinstance(value, (int, np.integer)):
        if not _I32_RANGE[0] <= int(value) <= _I32_RANGE[1]:
            raise errors.NpuError(f"kernel {kernel}: argument '{name}' = {value} does not fit in int32")
        return ir.I32 if not isinstance(value, np.int8) else ir.ScalarType("i8")
    if isinstance(value, np.floating) and value.dtype in (np.float16,):
        return ir.ScalarType("f16")
    if isinstance(value, (float, np.floating)):
        return ir.F32
    raise errors.NpuError(f"kernel {kernel}: argument '{name}' of type {type(value).__name__} is not "
                          "supported; pass numpy arrays (pointers), ints, floats, or values of "
                          "npu.constexpr parameters")


def _referenced_globals(src: KernelSource) -> dict[str, Any]:
    """Global and closure values named in the kernel's body (`name` and `module.name`)."""
    found: dict[str, Any] = {}
    tables = (src.closure, src.globals)
    for node in ast.walk(src.tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load):
            for table in tables:
                if node.id in table:
                    found[node.id] = table[node.id]
                    break
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            for table in tables:
                base = table.get(node.value.id)
                if base is not None and hasattr(base, "__dict__") and not isinstance(base, JITFunction):
                    attr = getattr(base, node.attr, None)
                    if isinstance(attr, JITFunction):
                        found[f"{node.value.id}.{node.attr}"] = attr
                    break
    return found


def jit(fn: Callable[..., Any] | None = None, **options: Any) -> Any:
    """Decorate a kernel: `@npu.jit`, or `@npu.jit(interpret=True)` with options."""
    if fn is None:
        return lambda f: JITFunction(f, **options)
    return JITFunction(fn, **options)
