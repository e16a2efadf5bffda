"""The text form of the block IR: one op per line, MLIR-like, regions indented.

Golden pass tests and `kernel.inspect()` show this text; values print by their name hints where
those are unique, else by number, so the same function always prints the same way.
"""

from __future__ import annotations

from typing import Any

from npulang.ir.core import Block, Function, OpKind, Value

# the attribute an op name carries as its suffix (`binary.add`), for the printer and the parser
SUBOP_ATTRS = {OpKind.BINARY: "op", OpKind.UNARY: "op", OpKind.CMP: "pred", OpKind.REDUCE: "op", OpKind.SCAN: "op"}


def _fmt_attr(v: Any) -> str:
    if isinstance(v, (tuple, list)):
        return "[" + ", ".join(_fmt_attr(x) for x in v) + "]"
    if isinstance(v, str):
        return repr(v)
    if isinstance(v, float):
        return repr(v)
    return str(v)


class _Namer:
    """Assigns printable names: name hints where unique, else numbers, in definition order."""

    def __init__(self) -> None:
        self.names: dict[int, str] = {}
        self.used: set[str] = set()
        self.counter = 0

    def define(self, v: Value) -> str:
        if v.name and v.name.isidentifier():
            base = v.name
            name = base
            k = 1
            while name in self.used:
                name = f"{base}_{k}"
                k += 1
        else:
            name = str(self.counter)
            self.counter += 1
        self.used.add(name)
        self.names[v.id] = "%" + name
        return self.names[v.id]

    def use(self, v: Value) -> str:
        return self.names.get(v.id, f"%<undefined#{v.id}>")


def _print_block(block: Block, namer: _Namer, indent: int, locs: bool, out: list[str]) -> None:
    pad = "  " * indent
    for op in block.ops:
        head = ""
        if op.results:
            head = ", ".join(namer.define(r) for r in op.results) + " = "
        name = op.kind.value
        attrs = dict(op.attrs)
        if op.kind in SUBOP_ATTRS:
            name += "." + str(attrs.pop(SUBOP_ATTRS[op.kind]))
        text = pad + head + name
        if op.operands:
            text += " " + ", ".join(namer.use(v) for v in op.operands)
        if attrs:
            text += " {" + ", ".join(f"{k}={_fmt_attr(v)}" for k, v in attrs.items()) + "}"
        if op.results:
            text += " : " + ", ".join(str(r.type) for r in op.results)
        loc = f"  // line {op.loc.line}" if locs else ""
        if not op.regions:
            out.append(text + loc)
            continue
        out.append(text + " {" + loc)
        for i, region in enumerate(op.regions):
            if i:
                out.append(pad + "} else {" if op.kind is OpKind.IF else pad + "} {")
            if region.args:
                out.append(pad + "^(" + ", ".join(f"{namer.define(a)}: {a.type}" for a in region.args) + "):")
            _print_block(region, namer, indent + 1, locs, out)
        out.append(pad + "}")


def print_function(fn: Function, *, locs: bool = False) -> str:
    """The MLIR-like text of `fn`: one op per line, regions indented (`locs` adds source lines)."""
    namer = _Namer()
    args = ", ".join(f"{namer.define(a)}: {a.type}" for a in fn.args)
    out = [f"func @{fn.name}({args}) {{"]
    if fn.specialised:
        out[0] = f"// specialised: {', '.join(f'{k}={v}' for k, v in fn.specialised.items())}\n" + out[0]
    if fn.constexprs:
        out[0] = f"// constexprs: {', '.join(f'{k}={v!r}' for k, v in fn.constexprs.items())}\n" + out[0]
    _print_block(fn.body, namer, 1, locs, out)
    out.append("}")
    return "\n".join(out) + "\n"
