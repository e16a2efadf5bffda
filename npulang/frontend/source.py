"""What a kernel is, as the frontend sees it: its parsed source, its parameters and the constexpr rules.

`KernelDef` is the part of `@npu.jit`'s `JITFunction` that needs no runtime: the frontend inlines
callees through it, and the runtime binds calls and keys its cache with it, so neither imports the
other. `bind` is also where every launch's arguments are checked (dtype, contiguity, int32 range).
"""

from __future__ import annotations

import ast
import hashlib
import inspect
import textwrap
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping

import numpy as np

from isa.dtypes import from_numpy
from npulang import errors, ir
from npulang import language as lang

_I32_RANGE = (-(2**31), 2**31 - 1)
_CONSTEXPR_ANNOTATIONS = (lang.constexpr, "npu.constexpr", "constexpr", "tl.constexpr")


@dataclass
class KernelSource:
    """A function's parsed source and what error messages need: its file and real line numbers."""

    name: str
    file: str
    tree: ast.FunctionDef
    line_offset: int  # add to ast line numbers to get file lines
    col_offset: int  # indentation removed before parsing
    lines: list[str]  # the source as written, indexed by ast line - 1
    globals: dict[str, Any]
    closure: dict[str, Any]

    def source_line(self, line: int) -> str | None:
        i = line - 1
        return self.lines[i] if 0 <= i < len(self.lines) else None


def parse_source(fn: Callable[..., Any]) -> KernelSource:
    """Parse `fn`'s source; errors (no source, not a def) name the function."""
    try:
        lines, first_line = inspect.getsourcelines(fn)
        file = inspect.getsourcefile(fn) or fn.__code__.co_filename
    except (OSError, TypeError) as exc:
        raise errors.NpuError(f"cannot read the source of {fn.__qualname__}: kernels must be defined in a "
                              f"file (not typed into an interactive prompt)") from exc
    text = "".join(lines)
    indent = len(lines[0]) - len(lines[0].lstrip()) if lines else 0
    module = ast.parse(textwrap.dedent(text))
    tree = next((n for n in module.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))), None)
    if not isinstance(tree, ast.FunctionDef):
        raise errors.NpuError(f"@npu.jit needs a plain 'def' function, got {fn.__qualname__}")
    closure = inspect.getclosurevars(fn).nonlocals if fn.__closure__ else {}
    return KernelSource(
        name=fn.__name__, file=file, tree=tree, line_offset=max(first_line, 1) - 1, col_offset=indent,
        lines=[line.rstrip("\n") for line in lines], globals=fn.__globals__, closure=dict(closure),
    )


# -- the constexpr rules -------------------------------------------------------------------------


def is_constexpr_value(x: Any) -> bool:
    """Values a kernel may capture from globals or take as constexpr parameters."""
    if isinstance(x, (tuple, list)):
        return all(is_constexpr_value(v) for v in x)
    return x is None or isinstance(x, (bool, int, float, str, lang.dtype))


def freeze_constexpr(x: Any) -> Any:
    """A hashable form of a constexpr that tells apart what compiles differently.

    Lists become tuples tagged as lists, and every scalar carries its type: 1, 1.0 and True are
    equal (and hash alike) in Python but are three different constexprs.
    """
    if isinstance(x, list):
        return ("list", tuple(freeze_constexpr(v) for v in x))
    if isinstance(x, tuple):
        return ("tuple", tuple(freeze_constexpr(v) for v in x))
    return (type(x).__name__, x)


def arg_type(kernel: str, name: str, value: Any) -> ir.Type:
    """The IR type of one runtime argument, or an NpuError saying why it cannot be passed."""
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


def specialisation(value: Any) -> int | None:
    """What an int argument is specialised on, as Triton does: 1 when it equals 1 (compiled as the
    constant), 16 when it is a multiple of 16, else None."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        return None
    return 1 if value == 1 else 16 if value % 16 == 0 else None


@dataclass
class BoundCall:
    """One call's arguments sorted out and checked: runtime values and their IR types, constexprs, and
    the int arguments specialised (name -> 1: equals 1, 16: a multiple of 16; see `specialisation`)."""

    runtime: dict[str, Any]  # in parameter order
    types: dict[str, ir.Type]
    constexprs: dict[str, Any]
    specialised: dict[str, int] = field(default_factory=dict)

    def signature(self) -> tuple[Any, ...]:
        """What compiled code depends on, hashable: argument types, frozen constexprs, specialisations."""
        return (tuple(self.types.values()),
                tuple((k, freeze_constexpr(v)) for k, v in self.constexprs.items()),
                tuple(self.specialised.items()))


# -- the kernel ----------------------------------------------------------------------------------


class KernelDef:
    """A Python function written as a kernel: its signature, constexpr parameters and parsed source."""

    def __init__(self, fn: Callable[..., Any], do_not_specialize: Iterable[str | int] = ()) -> None:
        self.fn = fn
        self.signature = inspect.signature(fn)
        self.params = list(self.signature.parameters)
        self.constexpr_params = {name for name, p in self.signature.parameters.items()
                                 if p.annotation in _CONSTEXPR_ANNOTATIONS}
        self.do_not_specialize = frozenset(self._param_name(p) for p in do_not_specialize)
        self._source: KernelSource | None = None
        self._global_names: list[str] | None = None  # what referenced_globals found (the source is fixed)

    def _param_name(self, p: str | int) -> str:
        """A `do_not_specialize` entry (a name or a position) as a parameter name."""
        if isinstance(p, int) and not isinstance(p, bool) and 0 <= p < len(self.params):
            return self.params[p]
        if isinstance(p, str) and p in self.params:
            return p
        raise errors.NpuError(f"@npu.jit(do_not_specialize=...): {p!r} is not a parameter of "
                              f"{self.fn.__name__} (parameters: {', '.join(self.params)})")

    @property
    def name(self) -> str:
        return self.fn.__name__

    @property
    def source(self) -> KernelSource:
        """The parsed source (read on first use)."""
        if self._source is None:
            self._source = parse_source(self.fn)
        return self._source

    @property
    def src(self) -> str:
        """The kernel's source text, as written (Triton's `kernel.src`)."""
        return "\n".join(self.source.lines) + "\n"

    def source_hash(self) -> str:
        """Hash of the kernel's source and location, its kernel callees and the global constants it reads."""
        return self._hash(set())

    def _hash(self, seen: set[int]) -> str:
        seen.add(id(self))
        src = self.source  # reading the source first gives a clear error when there is none
        h = hashlib.sha256("\n".join(src.lines).encode())
        h.update(f"@{src.file}:{src.line_offset}".encode())  # compiled code carries file:line locations
        for name, value in sorted(referenced_globals(src).items()):
            if isinstance(value, KernelDef):
                h.update(f"{name}=jit:".encode())
                h.update(value._hash(seen).encode() if id(value) not in seen else b"recursive")
            elif isinstance(value, lang.constexpr) or is_constexpr_value(value):
                h.update(f"{name}={value!r}".encode())
        return h.hexdigest()[:32]

    def globals_state(self) -> tuple[Any, ...]:
        """The current values of the global constants and kernel callees this kernel reads, hashable.

        A launch's cache signature includes it, so rebinding a global constant (or redefining a callee)
        after a launch recompiles instead of running the stale program; the names are found once.
        """
        return self._globals_state(set())

    def _globals_state(self, seen: set[int]) -> tuple[Any, ...]:
        seen.add(id(self))
        if self._global_names is None:
            self._global_names = sorted(referenced_globals(self.source))
        src, state = self.source, []
        for name in self._global_names:
            value = _resolve(src, name)
            if isinstance(value, KernelDef):
                state.append((name, value, value._globals_state(seen) if id(value) not in seen else ()))
            elif isinstance(value, lang.constexpr) or is_constexpr_value(value):
                state.append((name, repr(value)))
        return tuple(state)

    def bind(self, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> BoundCall:
        """Split and check one call's arguments; runs on every launch, so it stays in microseconds."""
        try:
            bound = self.signature.bind(*args, **kwargs)
        except TypeError as exc:
            raise errors.NpuError(f"bad arguments for kernel {self.name}: {exc}") from None
        bound.apply_defaults()
        runtime: dict[str, Any] = {}
        types: dict[str, ir.Type] = {}
        constexprs: dict[str, Any] = {}
        specialised: dict[str, int] = {}
        for name, value in bound.arguments.items():
            if isinstance(value, lang.constexpr):
                value = value.value
            if name in self.constexpr_params:
                if not is_constexpr_value(value):
                    raise errors.NpuError(
                        f"kernel {self.name}: constexpr parameter '{name}' needs a compile-time value "
                        f"(int, float, bool, str, None, npu dtype, or a tuple or list of these), "
                        f"got {type(value).__name__}")
                constexprs[name] = value
            else:
                runtime[name] = value
                types[name] = arg_type(self.name, name, value)
                spec = specialisation(value) if name not in self.do_not_specialize else None
                if spec is not None:
                    specialised[name] = spec
        return BoundCall(runtime, types, constexprs, specialised)

    def specialization_key(self, call: BoundCall) -> str:
        """A hex key of (source hash incl. callees and globals, constexprs, argument types, specialisations)."""
        parts = [self.source_hash(), repr(sorted((k, repr(v)) for k, v in call.constexprs.items())),
                 repr([(k, str(t)) for k, t in call.types.items()]), repr(sorted(call.specialised.items()))]
        return hashlib.sha256("\x00".join(parts).encode()).hexdigest()[:32]


def _resolve(src: KernelSource, name: str) -> Any:
    """The current value of a name `referenced_globals` found (`name` or `module.name`), None if gone."""
    base, _, attr = name.partition(".")
    for table in (src.closure, src.globals):
        if base in table:
            return getattr(table[base], attr, None) if attr else table[base]
    return None


def referenced_globals(src: KernelSource) -> dict[str, Any]:
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
                if base is not None and hasattr(base, "__dict__") and not isinstance(base, KernelDef):
                    attr = getattr(base, node.attr, None)
                    if isinstance(attr, KernelDef):
                        found[f"{node.value.id}.{node.attr}"] = attr
                    break
    return found
