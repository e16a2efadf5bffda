"""What the code generator asks about names and statements: which names a body (re)binds, whether a
value changed, whether a block ends in a bare `return`, and the hint for a name npulang lacks."""

from __future__ import annotations

import ast
import difflib
import types
from typing import Any

from npulang import language as lang
from npulang.ir import Value


def missing_hint(module: types.ModuleType, attr: str) -> str | None:
    """For a name npulang lacks: why (atomics), the nearest names, and every builtin a kernel can use."""
    if not module.__name__.startswith("npulang"):
        return None
    if attr.startswith("atomic_"):
        return ("the machine has no atomic operations: have each program store its own partial result "
                "and combine them in a second kernel")
    names = sorted(n for n in dir(module) if hasattr(getattr(module, n), "__npu_builtin__")
                   or isinstance(getattr(module, n), lang.dtype) or n in ("range", "static_range", "constexpr")
                   or n == "math" and isinstance(getattr(module, n), types.ModuleType))
    close = difflib.get_close_matches(attr, names, n=3)
    guess = f"did you mean {' or '.join(close)}? " if close else ""
    return f"{guess}{module.__name__} has: {', '.join(names)}"


def ends_in_bare_return(stmts: list[ast.stmt]) -> bool:
    """True if the statements end in `return` with no value (an early exit)."""
    last = stmts[-1] if stmts else None
    return isinstance(last, ast.Return) and last.value is None


def same_constexpr(a: Any, b: Any) -> bool:
    """Equal constexprs of the same type (so `1` and `True`, or `1` and `1.0`, differ)."""
    return type(a) is type(b) and a == b


def unchanged(before: Any, after: Any) -> bool:
    """True if a name still holds the same thing: the same IR value, or an equal constexpr."""
    if isinstance(before, Value) or isinstance(after, Value):
        return before is after
    return same_constexpr(before, after)


def assigned_names(stmts: list[ast.stmt]) -> list[str]:
    """Names a statement list (re)binds, in first-assignment order."""
    names: dict[str, None] = {}
    for stmt in stmts:
        for node in ast.walk(stmt):
            if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                names[node.id] = None
    return list(names)
