"""The assembly text form of the ISA (our "PTX"): a ply grammar, its printer and its error messages.

    .kernel vadd                      # program name, first
    .arg x ptr f32                    # arguments in order: name, ptr|scalar, dtype
    .symbol xbuf ub 0 4096            # name space offset size
    .meta num_stages "2"              # key "string value"

        arg s0, 0
    loop:                             # a label is the index of the next bundle
        add s2, s2, 1 || load ub[s3+64], gm[s0], dtype=f32, rows=1, cols=8, src_rs=8 @ "k.py":12
        bnz s4, loop

One bundle per line, its instructions separated by `||`. An instruction is its opcode, its positional
operands, then `key=value` operands, in `OpDef.fields` order. An identifier is a register, a name or a
label depending on the field it fills, so `s` (the scalar pipe) and `s1` (a register) never clash.
The printer writes positional operands always and keyword operands only when they differ from the
field's default, so `assemble(disassemble(p)) == p` and printing is a fixed point of parsing.
"""

from __future__ import annotations

import difflib
import math
import re
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, NoReturn

import ply.lex as lex
import ply.yacc as yacc

from isa.dtypes import DTYPES
from isa.instructions import OPCODES, SPACES, Field, Instr, Kind, Label, Mem, Reg, SourceLoc, check_instr
from isa.program import ArgSpec, Bundle, Program, Symbol

DIRECTIVES = (".kernel", ".arg", ".symbol", ".meta")
RESERVED = ("inf", "nan")  # float literals, so never names or labels
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*")
_REGISTER = re.compile(r"s[0-9]+")
_INDENT = "    "


class AsmSyntaxError(ValueError):
    """A mistake in assembly text, at `line` and `column` (both from 1) of the source `source_name`."""

    def __init__(self, what: str, source_name: str, line: int, column: int, source_line: str) -> None:
        self.what = what
        self.source_name = source_name
        self.line = line
        self.column = column
        # keep tabs so the caret lines up under the offending character
        caret = "".join(c if c == "\t" else " " for c in source_line[: column - 1]) + "^"
        self.source_line = source_line
        super().__init__(f"{source_name}:{line}:{column}: {what}\n{source_line}\n{caret}")

    def __reduce__(self) -> tuple[Any, ...]:  # picklable, for errors raised in worker processes
        return (AsmSyntaxError, (self.what, self.source_name, self.line, self.column, self.source_line))


# -- printing --------------------------------------------------------------------------------------
def format_instr(instr: Instr) -> str:
    """One instruction in assembly text, without its source location: `add s2, s2, 1`."""
    opdef = OPCODES.get(instr.op)
    if opdef is None or len(opdef.fields) != len(instr.args):
        # an invalid instruction still prints, for error messages
        operands = [_format_value(v, None) for v in instr.args]
    else:
        operands = []
        for f, value in zip(opdef.fields, instr.args):
            if f.positional:
                operands.append(_format_value(value, f.kind))
            elif not _is_default(f, value):
                operands.append(f"{f.name}={_format_value(value, f.kind)}")
    return f"{instr.op} {', '.join(operands)}" if operands else instr.op


def disassemble(program: Program) -> str:
    """The program as assembly text: directives, a blank line, then one bundle per line."""
    lines = [f".kernel {_format_name(program.name)}"]
    lines += [f".arg {_format_name(a.name)} {a.kind} {a.dtype}" for a in program.args]
    lines += [f".symbol {_format_name(s.name)} {_format_name(s.space)} {s.offset} {s.size}"
              for s in program.symbols]
    lines += [f".meta {_format_name(k)} {_quote(program.meta[k])}" for k in sorted(program.meta)]
    lines.append("")
    labels_at: dict[int, list[str]] = defaultdict(list)
    for name, index in program.labels.items():
        if not _is_plain_name(name):
            raise ValueError(f"{program.name}: label {name!r} cannot be printed: labels must match "
                             f"[A-Za-z_][A-Za-z0-9_.]* and not be {' or '.join(RESERVED)}")
        labels_at[index].append(name)
    for index, bundle in enumerate(program.bundles):
        lines += [f"{name}:" for name in sorted(labels_at[index])]
        if not bundle.instrs:
            raise ValueError(f"{program.name}: bundle {index} is empty; the text form has none (use nop)")
        lines.append(_INDENT + " || ".join(_format_located(ins) for ins in bundle.instrs))
    lines += [f"{name}:" for name in sorted(labels_at[len(program.bundles)])]
    return "\n".join(lines) + "\n"


def _format_located(instr: Instr) -> str:
    text = format_instr(instr)
    if instr.loc is not None:
        text += f" @ {_quote(instr.loc.file)}:{instr.loc.line}"
    return text


def _is_default(f: Field, value: Any) -> bool:
    if f.required:
        return False
    if f.default is None:
        return value is None
    # `1.0` is not the default `1`: int and float must survive the round trip
    return type(value) is type(f.default) and value == f.default


def _format_value(value: Any, kind: Kind | None) -> str:
    if isinstance(value, str):
        return value if kind is Kind.NAME and _is_plain_name(value) else _quote(value)
    if isinstance(value, bool):
        return repr(value)
    if isinstance(value, int):
        return int.__repr__(value)  # plain digits even for int subclasses
    if isinstance(value, float):
        return float.__repr__(value)  # shortest text that reads back exactly: 2.0, 1e-05, inf, nan
    return str(value)


def _format_name(name: str) -> str:
    return name if _is_plain_name(name) else _quote(name)


def _is_plain_name(name: str) -> bool:
    return bool(_IDENT.fullmatch(name)) and name not in RESERVED


_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\t": "\\t", "\r": "\\r"}
_UNESCAPES = {"\\": "\\", '"': '"', "n": "\n", "t": "\t", "r": "\r"}
_HEX_ESCAPES = {"x": 2, "u": 4, "U": 8}


def _quote(text: str) -> str:
    out = []
    for ch in text:
        if ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        elif ch.isprintable():
            out.append(ch)
        elif ord(ch) < 0x100:
            out.append(f"\\x{ord(ch):02x}")
        elif ord(ch) < 0x10000:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(f"\\U{ord(ch):08x}")
    return '"' + "".join(out) + '"'


# -- lexer -------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Ident:
    """An identifier operand: a register, name or label, decided by the field it fills."""

    name: str


@dataclass(frozen=True)
class _Str:
    """A double-quoted string operand."""

    value: str


tokens = ("NEWLINE", "DIRECTIVE", "IDENT", "INT", "FLOAT", "INF", "NAN", "STRING", "COMMA", "COLON",
          "LBRACKET", "RBRACKET", "PLUS", "MINUS", "EQUALS", "BAR", "AT")

t_ignore = " \t\r"
t_ignore_COMMENT = r"\#[^\n]*"
t_COMMA = r","
t_COLON = r":"
t_LBRACKET = r"\["
t_RBRACKET = r"\]"
t_PLUS = r"\+"
t_MINUS = r"-"
t_EQUALS = r"="
t_BAR = r"\|\|"
t_AT = r"@"


def t_NEWLINE(t: lex.LexToken) -> lex.LexToken:
    r"\n"
    return t


def t_FLOAT(t: lex.LexToken) -> lex.LexToken:
    r"([0-9]+\.[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?|[0-9]+[eE][-+]?[0-9]+"
    t.value = float(t.value)
    return t


def t_INT(t: lex.LexToken) -> lex.LexToken:
    r"0[xX][0-9a-fA-F]+|[0-9]+"
    t.value = int(t.value, 0) if t.value[:2].lower() == "0x" else int(t.value)
    return t


def t_DIRECTIVE(t: lex.LexToken) -> lex.LexToken:
    r"\.[A-Za-z_][A-Za-z0-9_]*"
    if t.value not in DIRECTIVES:
        _fail(t.lexer, t.lexpos, f"unknown directive {t.value} (directives: {', '.join(DIRECTIVES)})")
    return t


def t_IDENT(t: lex.LexToken) -> lex.LexToken:
    r"[A-Za-z_][A-Za-z0-9_.]*"
    if t.value in RESERVED:
        t.type = t.value.upper()
    return t


def t_STRING(t: lex.LexToken) -> lex.LexToken:
    r'"([^"\\\n]|\\.)*"'
    t.value = _unquote(t.lexer, t.lexpos, t.value)
    return t


def t_UNTERMINATED(t: lex.LexToken) -> None:
    r'"([^"\\\n]|\\.)*\\?'
    _fail(t.lexer, t.lexpos, "unterminated string (missing closing \")")


def t_error(t: lex.LexToken) -> None:
    _fail(t.lexer, t.lexpos, f"unexpected character {t.value[0]!r}")


def _unquote(lexer: Any, pos: int, quoted: str) -> str:
    """Decode the escapes of a string token: \\\\ \\" \\n \\t \\r \\xHH \\uHHHH \\UHHHHHHHH."""
    out: list[str] = []
    body = quoted[1:-1]
    i = 0
    while i < len(body):
        ch = body[i]
        if ch != "\\":
            out.append(ch)
            i += 1
            continue
        code = body[i + 1]  # the token regex guarantees a character after a backslash
        if code in _UNESCAPES:
            out.append(_UNESCAPES[code])
            i += 2
        elif code in _HEX_ESCAPES:
            digits = body[i + 2: i + 2 + _HEX_ESCAPES[code]]
            if len(digits) != _HEX_ESCAPES[code] or not all(c in "0123456789abcdefABCDEF" for c in digits):
                _fail(lexer, pos + 1 + i, f"bad escape in string: \\{code} needs {_HEX_ESCAPES[code]} hex digits")
            if int(digits, 16) > 0x10FFFF:
                _fail(lexer, pos + 1 + i, f"bad escape in string: \\{code}{digits} is not a character")
            out.append(chr(int(digits, 16)))
            i += 2 + len(digits)
        else:
            _fail(lexer, pos + 1 + i, f"bad escape in string: \\{code} "
                                      "(escapes: \\\\ \\\" \\n \\t \\r \\xHH \\uHHHH \\UHHHHHHHH)")
    return "".join(out)


# -- grammar -----------------------------------------------------------------------------------------
@dataclass
class _Token:
    """A parsed value and the source offset of its first character."""

    value: Any
    pos: int


@dataclass
class _Operand:
    value: Any  # int | float | Mem | _Ident | _Str
    pos: int
    key: str | None = None
    key_pos: int = 0


@dataclass
class _InstrText:
    op: str
    pos: int
    operands: list[_Operand]
    loc: SourceLoc | None


@dataclass
class _Statement:
    kind: str  # "directive", "label" or "bundle"
    pos: int
    name: str = ""  # directive or label
    words: list[_Token] = field(default_factory=list)  # directive operands
    instrs: list[_InstrText] = field(default_factory=list)  # bundle


def p_program(p: yacc.YaccProduction) -> None:
    """program : program line
               | empty"""
    if len(p) == 2:
        p[0] = []
        return
    if p[2] is not None:
        p[1].append(p[2])  # in place: a long program must not parse in quadratic time
    p[0] = p[1]


def p_line(p: yacc.YaccProduction) -> None:
    """line : statement NEWLINE
            | NEWLINE"""
    p[0] = p[1] if len(p) == 3 else None


def p_statement_directive(p: yacc.YaccProduction) -> None:
    """statement : DIRECTIVE words"""
    p[0] = _Statement("directive", p.lexpos(1), name=p[1], words=p[2])


def p_statement_label(p: yacc.YaccProduction) -> None:
    """statement : IDENT COLON"""
    p[0] = _Statement("label", p.lexpos(1), name=p[1])


def p_statement_bundle(p: yacc.YaccProduction) -> None:
    """statement : bundle"""
    p[0] = _Statement("bundle", p[1][0].pos, instrs=p[1])


def p_words(p: yacc.YaccProduction) -> None:
    """words : words word
             | empty"""
    p[0] = [] if len(p) == 2 else p[1] + [p[2]]


def p_word(p: yacc.YaccProduction) -> None:
    """word : IDENT
            | INF
            | NAN
            | STRING
            | integer"""
    if p.slice[1].type == "integer":
        p[0] = p[1]
    else:
        p[0] = _Token(_Str(p[1]) if p.slice[1].type == "STRING" else _Ident(p[1]), p.lexpos(1))


def p_bundle(p: yacc.YaccProduction) -> None:
    """bundle : bundle BAR instr
              | instr"""
    p[0] = [p[1]] if len(p) == 2 else p[1] + [p[3]]


def p_instr(p: yacc.YaccProduction) -> None:
    """instr : IDENT operands location
             | IDENT location"""
    operands, loc = (p[2], p[3]) if len(p) == 4 else ([], p[2])
    p[0] = _InstrText(p[1], p.lexpos(1), operands, loc)


def p_location(p: yacc.YaccProduction) -> None:
    """location : AT STRING COLON integer
                | empty"""
    p[0] = SourceLoc(p[2], p[4].value) if len(p) == 5 else None


def p_operands(p: yacc.YaccProduction) -> None:
    """operands : operands COMMA operand
                | operand"""
    p[0] = [p[1]] if len(p) == 2 else p[1] + [p[3]]


def p_operand(p: yacc.YaccProduction) -> None:
    """operand : value
               | IDENT EQUALS value"""
    if len(p) == 2:
        p[0] = _Operand(p[1].value, p[1].pos)
    else:
        p[0] = _Operand(p[3].value, p[3].pos, key=p[1], key_pos=p.lexpos(1))


def p_value_ident(p: yacc.YaccProduction) -> None:
    """value : IDENT"""
    p[0] = _Token(_Ident(p[1]), p.lexpos(1))


def p_value_string(p: yacc.YaccProduction) -> None:
    """value : STRING"""
    p[0] = _Token(_Str(p[1]), p.lexpos(1))


def p_value_number(p: yacc.YaccProduction) -> None:
    """value : number
             | memref"""
    p[0] = p[1]


def p_number(p: yacc.YaccProduction) -> None:
    """number : integer
              | FLOAT
              | MINUS FLOAT
              | INF
              | MINUS INF
              | NAN"""
    if p.slice[1].type == "integer":
        p[0] = p[1]
        return
    last = p.slice[-1]
    # one nan object, so that programs holding nan compare equal (tuples compare by identity first)
    value = {"INF": math.inf, "NAN": math.nan}.get(last.type, last.value)
    p[0] = _Token(-value if len(p) == 3 else value, p.lexpos(1))


def p_integer(p: yacc.YaccProduction) -> None:
    """integer : INT
               | MINUS INT"""
    p[0] = _Token(p[1] if len(p) == 2 else -p[2], p.lexpos(1))


def p_memref(p: yacc.YaccProduction) -> None:
    """memref : IDENT LBRACKET index RBRACKET"""
    if p[1] not in SPACES:
        _fail(p.lexer, p.lexpos(1), f"unknown memory space {p[1]!r} (spaces: {', '.join(SPACES)})")
    base, offset = p[3]
    p[0] = _Token(Mem(p[1], base, offset), p.lexpos(1))


def p_index(p: yacc.YaccProduction) -> None:
    """index : integer
             | IDENT
             | IDENT PLUS INT
             | IDENT MINUS INT"""
    if p.slice[1].type == "integer":
        p[0] = (None, p[1].value)
        return
    if not _REGISTER.fullmatch(p[1]):
        _fail(p.lexer, p.lexpos(1), f"expected a register or a number in a memory reference, got {p[1]!r}")
    offset = 0 if len(p) == 2 else (p[3] if p[2] == "+" else -p[3])
    p[0] = (Reg(int(p[1][1:])), offset)


def p_empty(p: yacc.YaccProduction) -> None:
    """empty :"""


def p_error(tok: lex.LexToken) -> None:
    # never called with None (end of input): the text always ends with a newline, after which it may end
    described = {"NEWLINE": "end of line", "STRING": "string", "DIRECTIVE": f"directive {tok.value}"}
    what = described.get(tok.type, repr(str(tok.value)))
    _fail(tok.lexer, tok.lexpos, f"syntax error: unexpected {what}")


_LEXER = lex.lex(reflags=0, errorlog=yacc.NullLogger())
_PARSER = yacc.yacc(start="program", write_tables=False, debug=False, errorlog=yacc.NullLogger())


def _fail(lexer: Any, pos: int, what: str) -> NoReturn:
    """Raise an AsmSyntaxError at source offset `pos` of the text being assembled by `lexer`."""
    text: str = lexer.lexdata
    pos = min(pos, len(text))
    start = text.rfind("\n", 0, pos) + 1
    end = text.find("\n", pos)
    source_line = text[start: end if end >= 0 else len(text)]
    raise AsmSyntaxError(what, lexer.source_name, text.count("\n", 0, pos) + 1, pos - start + 1, source_line)


# -- assembling --------------------------------------------------------------------------------------
def assemble(text: str, name: str | None = None) -> Program:
    """Parse assembly text into a Program.

    Args:
        text: the assembly source.
        name: what to call the source in error messages (a file name); defaults to "<asm>".

    Raises:
        AsmSyntaxError: for any mistake, with its line, column and what to change.
    """
    lexer = _LEXER.clone()
    lexer.source_name = name or "<asm>"
    statements = _PARSER.parse(text if text.endswith("\n") else text + "\n", lexer=lexer)
    return _Assembler(lexer).run(statements)


class _Assembler:
    """Turns parsed statements into a Program, checking everything the grammar cannot."""

    def __init__(self, lexer: Any) -> None:
        self.lexer = lexer
        self.name: str | None = None
        self.args: list[ArgSpec] = []
        self.symbols: list[Symbol] = []
        self.meta: dict[str, str] = {}
        self.labels: dict[str, int] = {}
        self.label_pos: dict[str, int] = {}
        self.bundles: list[Bundle] = []
        self.label_uses: list[tuple[str, int]] = []

    def fail(self, pos: int, what: str) -> NoReturn:
        _fail(self.lexer, pos, what)

    def run(self, statements: list[_Statement]) -> Program:
        if not statements:
            self.fail(0, "empty program: expected `.kernel <name>`")
        for st in statements:
            if self.name is None and not (st.kind == "directive" and st.name == ".kernel"):
                self.fail(st.pos, "expected `.kernel <name>` before anything else")
            if st.kind == "directive":
                self.directive(st)
            elif st.kind == "label":
                if st.name in self.labels:
                    line = self.lexer.lexdata.count("\n", 0, self.label_pos[st.name]) + 1
                    self.fail(st.pos, f"label {st.name!r} defined twice (first on line {line})")
                self.labels[st.name] = len(self.bundles)
                self.label_pos[st.name] = st.pos
            else:
                self.bundles.append(self.bundle(st.instrs))
        for label, pos in self.label_uses:
            if label not in self.labels:
                self.fail(pos, f"unknown label {label!r}")
        assert self.name is not None
        return Program(self.name, tuple(self.bundles), tuple(self.args), self.labels, tuple(self.symbols), self.meta)

    # -- directives --------------------------------------------------------------------------------
    _USAGE = {".kernel": ("name",), ".arg": ("name", "ptr|scalar", "dtype"),
              ".symbol": ("name", "space", "offset", "size"), ".meta": ("key", '"value"')}

    def directive(self, st: _Statement) -> None:
        usage = self._USAGE[st.name]
        if len(st.words) != len(usage):
            self.fail(st.pos, f"{st.name} takes {len(usage)} operands: {st.name} {' '.join(usage)}")
        w = st.words
        if st.name == ".kernel":
            if self.name is not None:
                self.fail(st.pos, "a second .kernel directive: one program per text")
            self.name = self.word_name(w[0], "kernel name")
        elif st.name == ".arg":
            name = self.word_name(w[0], "argument name")
            kind, dtype = self.word_ident(w[1], "argument kind"), self.word_ident(w[2], "dtype")
            if kind not in ("ptr", "scalar"):
                self.fail(w[1].pos, f"argument {name}: kind must be ptr or scalar, got {kind!r}")
            if dtype not in DTYPES:
                self.fail(w[2].pos, f"argument {name}: unknown dtype {dtype!r} (dtypes: {', '.join(DTYPES)})")
            self.args.append(ArgSpec(name, kind, dtype))
        elif st.name == ".symbol":
            name, space = self.word_name(w[0], "symbol name"), self.word_ident(w[1], "memory space")
            if space not in SPACES:
                self.fail(w[1].pos, f"unknown memory space {space!r} (spaces: {', '.join(SPACES)})")
            self.symbols.append(Symbol(name, space, self.word_int(w[2], "offset"), self.word_int(w[3], "size")))
        else:
            key = self.word_name(w[0], "meta key")
            if key in self.meta:
                self.fail(w[0].pos, f"duplicate .meta key {key!r}")
            if not isinstance(w[1].value, _Str):
                self.fail(w[1].pos, f'.meta value must be a double-quoted string, e.g. .meta {key} "2"')
            self.meta[key] = w[1].value.value

    def word_name(self, word: _Token, what: str) -> str:
        if isinstance(word.value, (_Ident, _Str)):
            return word.value.name if isinstance(word.value, _Ident) else word.value.value
        self.fail(word.pos, f"expected a {what} (identifier or string), got {_describe(word.value)}")

    def word_ident(self, word: _Token, what: str) -> str:
        if isinstance(word.value, _Ident):
            return word.value.name
        self.fail(word.pos, f"expected a {what}, got {_describe(word.value)}")

    def word_int(self, word: _Token, what: str) -> int:
        if isinstance(word.value, int):
            return word.value
        self.fail(word.pos, f"expected an integer {what}, got {_describe(word.value)}")

    # -- instructions --------------------------------------------------------------------------------
    def bundle(self, texts: list[_InstrText]) -> Bundle:
        instrs: list[Instr] = []
        for text in texts:
            ins = self.instr(text)
            for other in instrs:
                if other.pipe == ins.pipe:
                    self.fail(text.pos, f"bundle has two instructions for pipe {ins.pipe}: "
                                        f"`{format_instr(other)}` and `{format_instr(ins)}`")
            instrs.append(ins)
        return Bundle(tuple(instrs))

    def instr(self, text: _InstrText) -> Instr:
        op = text.op
        opdef = OPCODES.get(op)
        if opdef is None:
            close = difflib.get_close_matches(op, OPCODES, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            self.fail(text.pos, f"unknown opcode {op!r}{hint}")
        positional = [f for f in opdef.fields if f.positional]
        n_positional = sum(o.key is None for o in text.operands)
        given: dict[str, tuple[Field, _Operand]] = {}
        seen_keyword = False
        for operand in text.operands:
            if operand.key is None:
                if seen_keyword:
                    self.fail(operand.pos, f"{op}: positional operand after keyword operands")
                if len(given) >= len(positional):
                    self.fail(operand.pos, f"{op}: takes {len(positional)} positional operands, got {n_positional}")
                f = positional[len(given)]
            else:
                seen_keyword = True
                if operand.key not in opdef.index:
                    self.fail(operand.key_pos,
                              f"{op}: unknown field {operand.key!r} (fields: {', '.join(opdef.index)})")
                f = opdef.fields[opdef.index[operand.key]]
                if f.name in given:
                    self.fail(operand.key_pos, f"{op}: field {f.name!r} given twice")
            given[f.name] = (f, operand)
        args = []
        for f in opdef.fields:
            if f.name in given:
                args.append(self.convert(op, *given[f.name]))
            elif f.required:
                self.fail(text.pos, f"{op}: missing field {f.name!r}")
            else:
                args.append(f.default)
        ins = Instr(op, tuple(args), text.loc)
        try:
            check_instr(ins)
        except ValueError as exc:  # a memory space or a name the field does not allow
            m = re.search(r"field (\w+)", str(exc))
            self.fail(given[m.group(1)][1].pos if m and m.group(1) in given else text.pos, str(exc))
        return ins

    def convert(self, op: str, f: Field, operand: _Operand) -> Any:
        """The operand as the Python value its field's kind wants, or an error naming the field."""
        value, kind = operand.value, f.kind
        if isinstance(value, _Ident):
            if kind in (Kind.REG, Kind.VALUE, Kind.TILE) and _REGISTER.fullmatch(value.name):
                return Reg(int(value.name[1:]))
            if kind is Kind.NAME:
                return value.name
            if kind is Kind.LABEL:
                self.label_uses.append((value.name, operand.pos))
                return Label(value.name)
        elif isinstance(value, _Str):
            if kind is Kind.STR:
                return value.value
        elif isinstance(value, Mem):
            if kind in (Kind.MEM, Kind.TILE):
                return value
        elif isinstance(value, int):
            if kind in (Kind.VALUE, Kind.INT, Kind.TILE):
                return value
        elif kind in (Kind.VALUE, Kind.TILE):  # a float
            return value
        article = "an" if kind.value[0] in "aeiou" else "a"
        self.fail(operand.pos, f"{op}: field {f.name} must be {article} {kind.value}, got {_describe(value)}")


def _describe(value: Any) -> str:
    """An operand as the error message names it: `float 2.5`, `register s1`, `name add`."""
    if isinstance(value, _Ident):
        return f"{'register' if _REGISTER.fullmatch(value.name) else 'name'} {value.name}"
    if isinstance(value, _Str):
        return f"string {_quote(value.value)}"
    if isinstance(value, Mem):
        return f"memory reference {value}"
    if isinstance(value, int):
        return f"integer {value}"
    return f"float {float.__repr__(value)}"


__all__ = ["AsmSyntaxError", "assemble", "disassemble", "format_instr"]
