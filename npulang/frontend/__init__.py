"""The frontend: a kernel's Python source, specialised on constexprs and argument types, to block IR.

`source` says what a kernel is (`KernelDef`, `KernelSource`, the constexpr rules and argument checks);
`ast_to_ir` is the `ast` visitor (`build_ir`); `builtin_rules` says how each `npu.*` call becomes IR,
through `semantics` (typing, broadcasting and promotion).
"""

from npulang.frontend.ast_to_ir import build_ir
from npulang.frontend.source import BoundCall, KernelDef, KernelSource, is_constexpr_value, parse_source

__all__ = ["BoundCall", "KernelDef", "KernelSource", "build_ir", "is_constexpr_value", "parse_source"]
