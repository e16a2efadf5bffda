"""The frontend: a kernel's Python source, specialised on constexprs and argument types, to block IR.

`parse_source` reads and parses a function once (kept by its `JITFunction`); `compile_kernel`
generates the IR of one specialisation. See `codegen` for the visitor and `builtins` for how each
`npu.*` call compiles.
"""

from __future__ import annotations

import ast
import inspect
import textwrap
from typing import Any, Callable

from npulang import errors, ir
from npulang.frontend.codegen import CodeGenerator, KernelSource, is_constexpr_value
from npulang.ir import Block, Loc, OpKind, Value


def parse_source(fn: Callable[..., Any]) -> KernelSource:
    """Parse `fn`'s source; errors (no source, not a def) name the function."""
    try:
        lines, first_line = inspect.getsourcelines(fn)
        file = inspect.getsourcefile(fn) or fn.__code__.co_filename
    except (OSError, TypeError) as exc:
        raise errors.NpuError(f"cannot read the source of {fn.__qualname__}: kernels must be defined in a "
                              f"file (not typed into an interactive prompt)") from exc
    text = "".join(lines)
    dedented = textwrap.dedent(text)
    indent = len(lines[0]) - len(lines[0].lstrip()) if lines else 0
    module = ast.parse(dedented)
    tree = next((n for n in module.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))), None)
    if not isinstance(tree, ast.FunctionDef):
        raise errors.NpuError(f"@npu.jit needs a plain 'def' function, got {fn.__qualname__}")
    closure = inspect.getclosurevars(fn).nonlocals if fn.__closure__ else {}
    return KernelSource(
        name=fn.__name__, file=file, tree=tree, line_offset=max(first_line, 1) - 1, col_offset=indent,
        lines=[line.rstrip("\n") for line in lines], globals=fn.__globals__, closure=dict(closure),
    )


def compile_kernel(src: KernelSource, params: list[str], arg_types: dict[str, ir.Type],
                   constexprs: dict[str, Any]) -> ir.Function:
    """The IR of the kernel in `src` for runtime `arg_types` and compile-time `constexprs`.

    `params` lists every parameter in order; each is in exactly one of the two dicts.
    """
    args = [Value(arg_types[p], p) for p in params if p in arg_types]
    scope: dict[str, Any] = {a.name: a for a in args}
    for name, value in constexprs.items():
        if not is_constexpr_value(value):
            raise errors.ConstexprRequiredError(
                src.name, src.file, src.tree.lineno + src.line_offset, src.col_offset,
                f"constexpr parameter '{name}' got {type(value).__name__} {value!r}",
                hint="constexprs are ints, floats, bools, strings, None, npu dtypes, or tuples of these")
        scope[name] = value
    def_loc = Loc(src.file, src.tree.lineno + src.line_offset, src.col_offset)
    body = Block()
    builder = ir.Builder(body, def_loc)
    gen = CodeGenerator(src, scope, builder)
    gen.visit_body(src.tree.body)
    if gen.return_value is not None:
        raise errors.UnsupportedSyntaxError(
            src.name, src.file, def_loc.line, def_loc.col, "a kernel cannot return a value",
            source_line=src.source_line(src.tree.lineno), hint="store results through a pointer argument")
    last = src.tree.body[-1]
    builder.loc = Loc(src.file, (last.end_lineno or last.lineno) + src.line_offset, src.col_offset)
    builder.create(OpKind.RETURN)
    return ir.Function(src.name, args, body, dict(constexprs), def_loc)


__all__ = ["KernelSource", "compile_kernel", "parse_source"]
