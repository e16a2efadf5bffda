"""Reads the block IR's text form (`ir.print_function`) back into `Function`s.

    // constexprs: BLOCK=8
    func @k(%x_ptr: ptr<f32>, %n: i32) {
      %0 = arange {start=0, end=8} : tile<8xi32>  // line 3
      %acc = for %1, %n, %2, %3 : f32 {
      ^(%i: i32, %acc_1: f32):
        yield %acc_1
      }
      return
    }

The grammar is line-oriented, as the printer writes it: one op per line (`results = kind[.sub]
operands {attrs} : types`), a region opens with `{` at the end of its op's line, `^(args):` names
a region's arguments, `} else {` separates the regions of an `if`. Printing a parsed function gives
the text back unchanged, so pass tests can be written as IR text in and IR text out (as MLIR's
FileCheck and xDSL tests are). Operand types are not written: each value's type is the one it was
defined with, so uses must come after definitions, within the enclosing regions.

Op locations: a trailing `// line N` (what `print_function(locs=True)` writes) gives line N of the
kernel source; an op without one is located at its own line and column of the text, so verifier
errors on hand-written IR point into that text. Other `//` comments are ignored, except the
`// constexprs:` and `// specialised:` lines the printer writes directly above `func`.
"""

from __future__ import annotations

import ast
import difflib
import re
from dataclasses import dataclass
from typing import Any, NoReturn

from isa.dtypes import DTYPES
from npulang import ir
from npulang.errors import NpuError
from npulang.ir.printer import SUBOP_ATTRS

_VALUE = re.compile(r"%([A-Za-z0-9_]+)")
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_OPNAME = re.compile(r"([a-z_]+)(?:\.([a-z0-9_]+))?")
_DTYPE = re.compile(r"[a-z]+[0-9]*")
_DIMS = re.compile(r"((?:[0-9]+x)+)")
_INT = re.compile(r"-?[0-9]+(?![0-9.eE])")
_FLOAT = re.compile(r"-?(?:inf|nan|[0-9]+\.[0-9]*(?:[eE][-+]?[0-9]+)?|[0-9]+[eE][-+]?[0-9]+)")
_STRING = re.compile(r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"")
_KEYWORD = re.compile(r"(True|False|None)\b")
_LOC = re.compile(r"//\s*line\s+([0-9]+)\s*$")
_CONSTEXPRS = "// constexprs:"
_SPECIALISED = "// specialised:"
_CONSTEXPR_KEY = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)=")
_SUFFIXED = re.compile(r"(.+)_([1-9][0-9]*)")
_KEYWORDS = {"True": True, "False": False, "None": None}


class IRParseError(NpuError):
    """A mistake in IR text, at `line` and `column` (both from 1) of the text named `source_name`."""

    def __init__(self, what: str, source_name: str, line: int, column: int, source_line: str) -> None:
        self.what = what
        self.source_name = source_name
        self.line = line
        self.column = column
        self.source_line = source_line
        caret = "".join(c if c == "\t" else " " for c in source_line[: column - 1]) + "^"
        super().__init__(f"{source_name}:{line}:{column}: {what}\n    {source_line}\n    {caret}")

    def __reduce__(self) -> tuple[Any, ...]:  # picklable, for errors raised in worker processes
        return (IRParseError, (self.what, self.source_name, self.line, self.column, self.source_line))


@dataclass(frozen=True)
class PrintedConstexpr:
    """A constexpr whose printed form is not a Python literal (a dtype prints as `npu.float32`).

    The IR keeps constexprs only to label the specialisation, so the text is all there is to keep;
    it prints back as it was read.
    """

    text: str

    def __repr__(self) -> str:
        return self.text


def parse_function(text: str, *, filename: str = "<ir>", source_file: str | None = None) -> ir.Function:
    """The one function in `text`, or IRParseError (`filename` names the text in errors and locations;
    `source_file` is the kernel file that `// line N` comments refer to, `filename` if not given)."""
    fns = _Parser(text, filename, source_file or filename).module()
    if len(fns) != 1:
        raise IRParseError(f"expected one function, found {len(fns)} (parse_module reads several)",
                           filename, 1, 1, text.split("\n", 1)[0])
    return fns[0]


def parse_module(text: str, *, filename: str = "<ir>", source_file: str | None = None) -> list[ir.Function]:
    """Every function in `text`, in order (printed functions concatenated, comments between them)."""
    return _Parser(text, filename, source_file or filename).module()


class _Line:
    """A cursor over one line of the text; every `expect_*` fails with the line and column."""

    def __init__(self, text: str, number: int, source_name: str) -> None:
        self.text = text
        self.number = number
        self.source_name = source_name
        self.pos = 0

    def fail(self, what: str, pos: int | None = None) -> NoReturn:
        col = (self.pos if pos is None else pos) + 1
        raise IRParseError(what, self.source_name, self.number, col, self.text)

    def skip_spaces(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos] in " \t":
            self.pos += 1

    def at_end(self) -> bool:
        """Whether only spaces or a comment are left."""
        self.skip_spaces()
        return self.text.startswith("//", self.pos) or self.pos == len(self.text)

    def peek(self, s: str) -> bool:
        self.skip_spaces()
        return self.text.startswith(s, self.pos)

    def accept(self, s: str) -> bool:
        if self.peek(s):
            self.pos += len(s)
            return True
        return False

    def expect(self, s: str, context: str) -> None:
        if not self.accept(s):
            self.fail(f"expected '{s}' {context}, got {self.rest()}")

    def match(self, pattern: re.Pattern[str]) -> re.Match[str] | None:
        self.skip_spaces()
        m = pattern.match(self.text, self.pos)
        if m:
            self.pos = m.end()
        return m

    def expect_match(self, pattern: re.Pattern[str], what: str) -> re.Match[str]:
        m = self.match(pattern)
        if m is None:
            self.fail(f"expected {what}, got {self.rest()}")
        return m

    def rest(self) -> str:
        """The text at the cursor, for error messages."""
        word = self.text[self.pos:].split(" ", 1)[0]
        return repr(word) if word else "the end of the line"

    def expect_end(self, context: str) -> str | None:
        """Check nothing but a comment is left; return the comment (or None)."""
        if not self.at_end():
            self.fail(f"expected the end of the line {context}, got {self.rest()}")
        comment = self.text[self.pos:]
        return comment or None


class _Parser:
    """Recursive descent over the lines of the text, with a stack of scopes of value names."""

    def __init__(self, text: str, source_name: str, source_file: str) -> None:
        self.lines = text.split("\n")
        self.index = 0
        self.source_name = source_name
        self.source_file = source_file
        self.scopes: list[dict[str, ir.Value]] = []
        self.defined_at: dict[str, int] = {}
        self.printed: set[str] = set()  # every name defined so far in the function, in text order

    # -- lines ------------------------------------------------------------------------------------

    def _next(self, skip_comments: bool = True) -> _Line | None:
        """The next non-blank line (and not a comment line if `skip_comments`), or None at the end."""
        while self.index < len(self.lines):
            text = self.lines[self.index]
            self.index += 1
            stripped = text.strip()
            if stripped and not (skip_comments and stripped.startswith("//")):
                return _Line(text, self.index, self.source_name)
        return None

    def _eof(self, what: str) -> NoReturn:
        number = len(self.lines)
        while number > 1 and not self.lines[number - 1].strip():
            number -= 1
        last = self.lines[number - 1] if self.lines else ""
        raise IRParseError(f"unexpected end of text: expected {what}", self.source_name, number, len(last) + 1, last)

    # -- functions --------------------------------------------------------------------------------

    def module(self) -> list[ir.Function]:
        fns = []
        constexprs: dict[str, Any] = {}
        specialised: dict[str, int] = {}
        while (line := self._next(skip_comments=False)) is not None:
            if line.peek("//"):
                if line.peek(_CONSTEXPRS):
                    constexprs = _constexprs(line)
                elif line.peek(_SPECIALISED):
                    specialised = _specialised(line)
                continue
            fn = self._function(line, constexprs)
            fn.specialised = specialised
            fns.append(fn)
            constexprs, specialised = {}, {}
        return fns

    def _function(self, line: _Line, constexprs: dict[str, Any]) -> ir.Function:
        line.skip_spaces()
        start = line.pos
        line.expect("func", "to start a function")
        line.expect("@", "before the function name")
        name = line.expect_match(_IDENT, "a function name").group()
        line.expect("(", "before the function arguments")
        self.scopes = [{}]
        self.defined_at = {}
        self.printed: set[str] = set()
        args = self._typed_values(line, ")")
        line.expect("{", "to open the function body")
        line.expect_end("after '{'")
        body, close = self._block(line.number, allow_args=False)
        close.expect_end("after the '}' closing the function")
        return ir.Function(name, args, body, constexprs, ir.Loc(self.source_name, line.number, start))

    def _typed_values(self, line: _Line, close: str) -> list[ir.Value]:
        """`%a: type, %b: type` up to `close` (function and region arguments), defined in scope."""
        values: list[ir.Value] = []
        if line.accept(close):
            return values
        while True:
            name, pos, hint = self._declare(line)
            line.expect(":", f"after %{name}")
            values.append(self._define(line, name, pos, hint, self._type(line)))
            if line.accept(close):
                return values
            line.expect(",", f"or '{close}' after an argument")

    # -- blocks and ops ---------------------------------------------------------------------------

    def _block(self, opened_at: int, allow_args: bool) -> tuple[ir.Block, _Line]:
        """The ops up to a line starting with `}`; that line is returned with its cursor past the brace."""
        args: list[ir.Value] = []
        ops: list[ir.Op] = []
        while (line := self._next()) is not None:
            if line.accept("}"):
                return ir.Block(args, ops), line
            if allow_args and not ops and not args and line.accept("^("):
                args = self._typed_values(line, ")")
                line.expect(":", "after the region arguments")
                line.expect_end("after the region arguments")
            else:
                ops.append(self._op(line))
        self._eof(f"'}}' closing the '{{' of line {opened_at}")

    def _op(self, line: _Line) -> ir.Op:
        line.skip_spaces()
        start = line.pos
        names: list[tuple[str, int, str | None]] = []
        if line.peek("%"):
            names.append(self._declare(line))
            while line.accept(","):
                names.append(self._declare(line))
            line.expect("=", "after the result names")
        kind, attrs = self._op_name(line)
        operands: list[ir.Value] = []
        if line.peek("%"):
            operands.append(self._use(line))
            while line.accept(","):
                operands.append(self._use(line))
        if line.peek("{") and not self._region_opens(line):
            self._attrs(line, attrs)
        types: list[ir.Type] = []
        types_at = line.pos
        if line.accept(":"):
            types.append(self._type(line))
            while line.accept(","):
                types.append(self._type(line))
        if len(types) != len(names):
            line.fail(f"{kind.value} defines {len(names)} result(s) but {len(types)} result type(s) follow ':'",
                      types_at)
        regions: tuple[ir.Block, ...] = ()
        if line.accept("{"):
            comment = line.expect_end(f"after '{{' opening a region of {kind.value}")
            regions = self._regions(kind, line.number)
        else:
            comment = line.expect_end(f"after {kind.value}")
        loc = ir.Loc(self.source_name, line.number, start)
        if comment and (m := _LOC.match(comment)):
            loc = ir.Loc(self.source_file, int(m.group(1)))
        results = tuple(self._define(line, name, pos, hint, t) for (name, pos, hint), t in zip(names, types))
        return ir.Op(kind, tuple(operands), results, attrs, regions, loc)

    def _op_name(self, line: _Line) -> tuple[ir.OpKind, dict[str, Any]]:
        """The op kind and, for ops like `binary.add`, the attribute its suffix gives."""
        line.skip_spaces()
        pos = line.pos
        m = line.expect_match(_OPNAME, "an op name")
        try:
            kind = ir.OpKind(m.group(1))
        except ValueError:
            close = difflib.get_close_matches(m.group(1), [k.value for k in ir.OpKind], n=1)
            line.fail(f"unknown op {m.group(1)!r}" + (f" (did you mean {close[0]!r}?)" if close else ""), pos)
        sub_attr = SUBOP_ATTRS.get(kind)
        if sub_attr is None and m.group(2) is not None:
            line.fail(f"{kind.value} takes no '.{m.group(2)}' suffix", pos)
        if sub_attr is not None and m.group(2) is None:
            line.fail(f"{kind.value} needs its {sub_attr} as a suffix, e.g. '{kind.value}.<{sub_attr}>'", pos)
        return kind, ({sub_attr: m.group(2)} if sub_attr else {})

    @staticmethod
    def _region_opens(line: _Line) -> bool:
        """Whether the `{` at the cursor opens a region (nothing follows it) rather than attributes."""
        rest = line.text[line.pos + 1:].strip()
        return not rest or rest.startswith("//")

    def _regions(self, kind: ir.OpKind, opened_at: int) -> tuple[ir.Block, ...]:
        """The regions after an op line ending in `{`, up to the `}` that closes the last one."""
        regions = []
        while True:
            self.scopes.append({})
            block, close = self._block(opened_at, allow_args=True)
            for name in self.scopes.pop():
                del self.defined_at[name]
            regions.append(block)
            if close.at_end():
                close.expect_end("after '}'")
                break
            separator = "else {" if kind is ir.OpKind.IF else "{"
            if not close.accept(separator):
                close.fail(f"expected '}}' or '}} {separator}' between the regions of {kind.value}, "
                           f"got {close.rest()}")
            close.expect_end("after a region separator")
        return tuple(regions)

    def _attrs(self, line: _Line, attrs: dict[str, Any]) -> None:
        line.expect("{", "to open the attributes")
        while True:
            pos = line.pos
            key = line.expect_match(_IDENT, "an attribute name").group()
            if key in attrs:
                line.fail(f"attribute {key!r} given twice", pos)
            line.expect("=", f"after attribute {key!r}")
            attrs[key] = self._attr_value(line)
            if line.accept("}"):
                return
            line.expect(",", "or '}' after an attribute")

    def _attr_value(self, line: _Line) -> Any:
        """A number, string, True/False/None, or a bracketed list of them (read as a tuple)."""
        if line.accept("["):
            items: list[Any] = []
            if line.accept("]"):
                return ()
            while True:
                items.append(self._attr_value(line))
                if line.accept("]"):
                    return tuple(items)
                line.expect(",", "or ']' in a list")
        if m := line.match(_INT):
            return int(m.group())
        if m := line.match(_FLOAT):
            return float(m.group())
        if m := line.match(_STRING):
            return ast.literal_eval(m.group())
        if m := line.match(_KEYWORD):
            return _KEYWORDS[m.group(1)]
        line.fail(f"expected an attribute value (number, string, True, False, None or [list]), got {line.rest()}")

    # -- values and types -------------------------------------------------------------------------

    @staticmethod
    def _value_name(line: _Line) -> tuple[str, int]:
        line.skip_spaces()
        pos = line.pos
        return line.expect_match(_VALUE, "a value name like %x or %0").group(1), pos

    def _declare(self, line: _Line) -> tuple[str, int, str | None]:
        """A defining name, its column, and the name hint that prints as it.

        The printer numbers values without an identifier hint and writes a hint `h` already taken as
        `h_1`, `h_2`, ... (the first free one), so `%acc_2` after `%acc` and `%acc_1` is hint `acc` again:
        the parsed function prints the same and compiles to the same symbols as the original.
        """
        name, pos = self._value_name(line)
        hint: str | None = name if name.isidentifier() else None
        m = _SUFFIXED.fullmatch(name)
        if m and int(m.group(2)) <= len(self.printed):
            base, k = m.group(1), int(m.group(2))
            if base in self.printed and all(f"{base}_{j}" in self.printed for j in range(1, k)):
                hint = base
        self.printed.add(name)
        return name, pos, hint

    def _define(self, line: _Line, name: str, pos: int, hint: str | None, type: ir.Type) -> ir.Value:
        if name in self.defined_at:
            line.fail(f"%{name} is already defined (line {self.defined_at[name]})", pos)
        value = ir.Value(type, hint)
        self.scopes[-1][name] = value
        self.defined_at[name] = line.number
        return value

    def _use(self, line: _Line) -> ir.Value:
        name, pos = self._value_name(line)
        for scope in reversed(self.scopes):
            if name in scope:
                return scope[name]
        line.fail(f"use of undefined value %{name}", pos)

    def _type(self, line: _Line) -> ir.Type:
        """`i32`, `ptr<f16>`, `tile<8x16xf32>`, `tile<8xptr<f16>>`, `desc<16x8xf16>` or `convdesc<16x8xf16>`."""
        line.skip_spaces()
        pos = line.pos
        try:
            if line.accept("ptr<"):
                t: ir.Type = ir.PtrType(self._dtype(line))
            elif line.accept("tile<"):
                shape = self._dims(line)
                t = ir.TileType(shape, self._type(line))
            elif line.accept("desc<"):
                shape = self._dims(line)
                t = ir.DescType(self._dtype(line), shape)
            elif line.accept("convdesc<"):
                shape = self._dims(line)
                t = ir.ConvDescType(self._dtype(line), shape)  # type: ignore[arg-type]
            else:
                return ir.ScalarType(self._dtype(line))
        except ValueError as exc:
            line.fail(str(exc), pos)
        line.expect(">", "to close the type")
        return t

    @staticmethod
    def _dims(line: _Line) -> tuple[int, ...]:
        m = line.expect_match(_DIMS, "a shape like 8x16x")
        return tuple(int(d) for d in m.group(1).split("x")[:-1])

    @staticmethod
    def _dtype(line: _Line) -> str:
        line.skip_spaces()
        pos = line.pos
        m = line.expect_match(_DTYPE, "a type (i32, f16, ptr<...>, tile<...>, desc<...>)")
        if m.group() not in DTYPES:
            line.fail(f"unknown dtype {m.group()!r} (known: {', '.join(DTYPES)})", pos)
        return m.group()


def _constexprs(line: _Line) -> dict[str, Any]:
    """The `// constexprs: K=repr, ...` comment the printer writes above `func`."""
    line.accept(_CONSTEXPRS)
    text = line.text[line.pos:].strip()
    out: dict[str, Any] = {}
    for key, value in _split_items(text):
        try:
            out[key] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            out[key] = float(value) if value in ("inf", "-inf", "nan") else PrintedConstexpr(value)
    return out


def _specialised(line: _Line) -> dict[str, int]:
    """The `// specialised: n=16, stride=1` comment the printer writes above `func`."""
    line.accept(_SPECIALISED)
    out: dict[str, int] = {}
    for key, value in _split_items(line.text[line.pos:].strip()):
        if value not in ("1", "16"):
            line.fail(f"a specialisation is 1 or 16, got {value!r}")
        out[key] = int(value)
    return out


def _split_items(text: str) -> list[tuple[str, str]]:
    """`K=v, K2=v2` split at the commas outside brackets and strings that precede a `name=`."""
    items: list[tuple[str, str]] = []
    depth, quote, start, i = 0, "", 0, 0
    while i <= len(text):
        c = text[i] if i < len(text) else ","
        if quote:
            if c == "\\":
                i += 1
            elif c == quote:
                quote = ""
        elif c in "'\"":
            quote = c
        elif c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
        elif c == "," and depth == 0 and (i == len(text) or _CONSTEXPR_KEY.match(text, i + 2)):
            m = _CONSTEXPR_KEY.match(text, start)
            if m:
                items.append((m.group(1), text[m.end():i]))
            start = i + 2
        i += 1
    return items
