"""Hand-written assembly: what it parses to, how it prints, and the exact error for each mistake."""

import math

import pytest

from isa import OPCODES, ArgSpec, Bundle, Label, Mem, Program, Reg, SourceLoc, Symbol, make
from isa.asm import AsmSyntaxError, assemble, disassemble, format_instr

# Canonical text (already in printed form) using every opcode at least once.
GOLDEN = """\
.kernel every_op
.arg x ptr f16
.arg y ptr f32
.arg n scalar i32
.symbol a_tile l1 0 8192
.symbol acc l0c 0 1024
.meta num_stages "2"
.meta source "k.py"

    arg s0, 0 || load l1[0], gm[s0], dtype=f16, rows=16, cols=16, src_rs=s5 @ "k.py":10
    arg s1, 1 || wait_flag mte2, mte1, 0
    arg s2, 2 || move l0a[0], l1[0], dtype=f16, rows=16, cols=16
    pid s3, 0 || move l0b[0], l1[512], dtype=f16, rows=16, cols=16, transpose=1
    npid s4, 1 || mmad l0c[0], l0a[0], l0b[0], dtype=f16, m=16, n=16, k=16, init=0
    nop || fixpipe ub[0], l0c[0], src_dtype=f32, dtype=f16, rows=16, cols=16, relu=1
    mov s5, 0 || img2col l0a[s6+512], l1[0], dtype=f16, c=16, h=8, w=8, kh=3, kw=3, pad_top=1, ow=8, rows=16, cols=144
loop:
    add s6, s5, 1
    sub s6, s6, -2
    mul s7, s6, 2.5
    div s7, s7, s3
    rem s8, s7, 3
    fdiv s8, s8, 1e-05
    min s9, s8, inf
    max s9, s9, -inf
    and s10, s9, 255
    or s10, s10, 0
    xor s10, s10, -1
    shl s11, s10, 2
    shr s11, s11, 1
    lt s12, s11, s2
    le s12, s11, 2.0
    gt s12, s11, nan
    ge s12, s11, 0
    eq s12, s11, 1
    ne s12, s11, 0
    sel s13, s12, s11, 0
    cvt s14, s13, to=f32
    print "value: %d\\n", s14
    bz s12, done
    bnz s12, loop
done:
    set_flag mte2, v, 1 || vbin add, ub[0], ub[4096], 2.5, dtype=f32, rows=1, cols=1024
    wait_flag mte3, v, 2 || store gm[s1], ub[0], dtype=f32, rows=1, cols=1024, dst_rs=1024
    gather ub[0], gm[s0], idx=ub[1024], dtype=f16, n=64, mask=ub[2048] || vun exp, ub[0], ub[0], dtype=f16, rows=2, cols=32
    scatter gm[s1-64], ub[0], idx=ub[1024], dtype=f32, n=s9 || vsel ub[0], ub[64], ub[128], 0.0, dtype=f32, rows=1, cols=16, b_rs=0, b_cs=0
    vcast ub[0], ub[512], from_dtype=f16, dtype=f32, rows=4, cols=16
    vfma ub[0], ub[512], 0.5, ub[1024], dtype=f32, rows=4, cols=16, c_rs=1, c_cs=0
    vred argmax, ub[0], ub[512], dtype=f32, rows=4, cols=16, axis=0
    vdup ub[0], s9, dtype=i32, rows=1, cols=8
    viota ub[64], 0, dtype=i32, rows=4, cols=8, row_step=8
    vcopy ub[0], ub[64], dtype=i32, rows=8, cols=4, dst_rs=4, a_rs=1, a_cs=8
    vprint "tile", ub[0], dtype=i32, rows=8, cols=4
    barrier
    jmp end
end:
"""

# The same program written loosely: comments, blank lines, keywords in any order, defaults spelled
# out, hex numbers, `+0` offsets and no newline at the end.
LOOSE_HEADER = """
# header
.kernel every_op   # name
.arg x ptr f16
"""


def test_golden_text_is_its_own_printed_form() -> None:
    program = assemble(GOLDEN)
    assert disassemble(program) == GOLDEN
    assert assemble(disassemble(program)) == program


def test_golden_text_uses_every_opcode() -> None:
    used = {ins.op for ins in assemble(GOLDEN).instructions()}
    assert used == set(OPCODES), f"opcodes missing from GOLDEN: {sorted(set(OPCODES) - used)}"


def test_golden_text_parses_to_the_expected_instructions() -> None:
    program = assemble(GOLDEN)
    first = program.bundles[0].instrs
    assert first[0] == make("arg", Reg(0), 0)
    assert first[1] == make("load", Mem("l1", None, 0), Mem("gm", Reg(0)), dtype="f16", rows=16, cols=16,
                            src_rs=Reg(5), loc=SourceLoc("k.py", 10))
    assert program.args == (ArgSpec("x", "ptr", "f16"), ArgSpec("y", "ptr", "f32"), ArgSpec("n", "scalar", "i32"))
    assert program.symbols == (Symbol("a_tile", "l1", 0, 8192), Symbol("acc", "l0c", 0, 1024))
    assert program.meta == {"num_stages": "2", "source": "k.py"}
    assert program.labels == {"loop": 7, "done": 31, "end": len(program.bundles)}
    by_op = {ins.op: ins for ins in program.instructions()}
    assert by_op["img2col"].get("dst") == Mem("l0a", Reg(6), 512)
    assert by_op["scatter"].get("dst") == Mem("gm", Reg(1), -64)
    assert by_op["scatter"].get("n") == Reg(9)
    assert by_op["vsel"].get("b") == 0.0 and isinstance(by_op["vsel"].get("b"), float)
    assert by_op["print"].get("fmt") == "value: %d\n"
    assert by_op["bnz"].get("target") == Label("loop")
    assert by_op["set_flag"].pipe.value == "mte2" and by_op["wait_flag"].pipe.value == "v"


def test_numbers_keep_their_type_and_exact_value() -> None:
    program = assemble(GOLDEN)
    values = {ins.op: ins.get("b") for ins in program.instructions() if ins.op in ("sub", "mul", "fdiv", "min",
                                                                                   "max", "le", "gt", "eq")}
    assert values["sub"] == -2 and type(values["sub"]) is int
    assert values["mul"] == 2.5 and values["fdiv"] == 1e-05
    assert values["min"] == math.inf and values["max"] == -math.inf
    assert values["le"] == 2.0 and type(values["le"]) is float
    assert values["eq"] == 1 and type(values["eq"]) is int
    assert math.isnan(values["gt"])


def test_loose_text_reads_the_same_and_prints_canonically() -> None:
    loose = LOOSE_HEADER + """
    arg s0, 0x0 || load dtype=f16, src_rs=s5, cols=0x10, rows=16, src_cs=1, pad=0, src=gm[s0+0], dst=l1[0]\
 @ "k.py":10   # keywords in any order
top:
other:
    vred argmax, ub[0], ub[512], axis=1, rows=4, cols=16, dtype=f32
    mov s1, -0x10
    jmp top"""
    program = assemble(loose)
    assert program.bundles[0].instrs[1] == make("load", Mem("l1"), Mem("gm", Reg(0)), dtype="f16", rows=16,
                                                cols=16, src_rs=Reg(5), loc=SourceLoc("k.py", 10))
    assert program.bundles[2].instrs[0] == make("mov", Reg(1), -16)
    assert program.labels == {"top": 1, "other": 1}
    text = disassemble(program)
    assert text == """\
.kernel every_op
.arg x ptr f16

    arg s0, 0 || load l1[0], gm[s0], dtype=f16, rows=16, cols=16, src_rs=s5 @ "k.py":10
other:
top:
    vred argmax, ub[0], ub[512], dtype=f32, rows=4, cols=16
    mov s1, -16
    jmp top
"""
    assert disassemble(assemble(text)) == text


def test_int_and_float_defaults_differ() -> None:
    # `pad=0.0` is not the default `pad=0`: it must print, or the float would come back an int
    ins = make("load", Mem("ub"), Mem("gm"), dtype="f32", rows=1, cols=8, src_rs=8, pad=0.0)
    assert format_instr(ins) == "load ub[0], gm[0], dtype=f32, rows=1, cols=8, src_rs=8, pad=0.0"
    assert str(make("load", Mem("ub"), Mem("gm"), dtype="f32", rows=1, cols=8, src_rs=8, pad=0)) == \
        "load ub[0], gm[0], dtype=f32, rows=1, cols=8, src_rs=8"


def test_strings_and_names_print_quoted_when_needed() -> None:
    ins = make("print", "tab\t quote\" backslash\\ bell\x07 snow\u2603 wide\U0001f600 line\u2028", Reg(1))
    assert format_instr(ins) == r'print "tab\t quote\" backslash\\ bell\x07 snow☃ wide😀 line\u2028", s1'
    program = Program("my kernel", (Bundle((ins,)),), args=(ArgSpec("a b", "scalar", "i32"),),
                      symbols=(Symbol("inf", "ub", 0, 32),), meta={"odd key": "v\n"})
    text = disassemble(program)
    assert text.splitlines()[:4] == ['.kernel "my kernel"', '.arg "a b" scalar i32', '.symbol "inf" ub 0 32',
                                     '.meta "odd key" "v\\n"']
    assert assemble(text) == program


def test_register_like_labels_and_pipe_names_resolve_by_field() -> None:
    program = assemble(".kernel k\ns1:\n    set_flag s, v, 0 || vdup ub[0], s1, dtype=i32, rows=1, cols=8\n"
                       "    bnz s1, s1\n")
    assert program.bundles[0].instrs[0].args == ("s", "v", 0)
    assert program.bundles[0].instrs[1].get("value") == Reg(1)
    assert program.bundles[1].instrs[0].args == (Reg(1), Label("s1"))


def test_disassemble_rejects_what_text_cannot_hold() -> None:
    jmp = make("jmp", Label("bad label"))
    with pytest.raises(ValueError, match="label 'bad label' cannot be printed"):
        disassemble(Program("k", (Bundle((jmp,)),), labels={"bad label": 0}))
    with pytest.raises(ValueError, match="bundle 0 is empty"):
        disassemble(Program("k", (Bundle(()),)))


def test_format_instr_survives_invalid_instructions() -> None:
    from isa import Instr

    assert format_instr(Instr("frob", (Reg(1), 2))) == "frob s1, 2"
    assert format_instr(Instr("nop", ())) == "nop"


# -- errors: the exact message, with line, column, the source line and a caret ----------------------
def _error(text: str) -> AsmSyntaxError:
    with pytest.raises(AsmSyntaxError) as info:
        assemble(text, "t.s")
    return info.value


ERRORS = [
    ("syntax", ".kernel k\n    add s1, s2 s3\n",
     "t.s:2:16: syntax error: unexpected 's3'\n    add s1, s2 s3\n               ^"),
    ("end of line", ".kernel k\n\tmov s1,\n",
     "t.s:2:9: syntax error: unexpected end of line\n\tmov s1,\n\t       ^"),
    ("bad character", ".kernel k\n    mov s1, 1 | mov s2, 2\n",
     "t.s:2:15: unexpected character '|'\n    mov s1, 1 | mov s2, 2\n              ^"),
    ("unknown opcode", ".kernel k\n    addd s1, s1, 1\n",
     "t.s:2:5: unknown opcode 'addd' (did you mean 'add'?)\n    addd s1, s1, 1\n    ^"),
    ("unknown field", ".kernel k\n    mov s1, 1, bogus=3\n",
     "t.s:2:16: mov: unknown field 'bogus' (fields: d, a)\n    mov s1, 1, bogus=3\n               ^"),
    ("field twice", ".kernel k\n    cvt s1, s2, to=f32, to=i32\n",
     "t.s:2:25: cvt: field 'to' given twice\n    cvt s1, s2, to=f32, to=i32\n                        ^"),
    ("too many positional", ".kernel k\n    mov s1, 1, 2\n",
     "t.s:2:16: mov: takes 2 positional operands, got 3\n    mov s1, 1, 2\n               ^"),
    ("positional after keyword", ".kernel k\n    cvt s1, to=f32, s2\n",
     "t.s:2:21: cvt: positional operand after keyword operands\n    cvt s1, to=f32, s2\n                    ^"),
    ("missing field", ".kernel k\n    load ub[0], gm[0], dtype=f32, rows=1, cols=8\n",
     "t.s:2:5: load: missing field 'src_rs'\n    load ub[0], gm[0], dtype=f32, rows=1, cols=8\n    ^"),
    ("float for register", ".kernel k\n    mov 2.5, s1\n",
     "t.s:2:9: mov: field d must be a register, got float 2.5\n    mov 2.5, s1\n        ^"),
    ("name for value", ".kernel k\n    mov s1, foo\n",
     "t.s:2:13: mov: field a must be a register or immediate, got name foo\n    mov s1, foo\n            ^"),
    ("float for int", ".kernel k\n    pid s1, 1.0\n",
     "t.s:2:13: pid: field axis must be an integer immediate, got float 1.0\n    pid s1, 1.0\n            ^"),
    ("string for name", '.kernel k\n    cvt s1, s2, to="f32"\n',
     't.s:2:20: cvt: field to must be a name, got string "f32"\n    cvt s1, s2, to="f32"\n                   ^'),
    ("space not allowed", ".kernel k\n    load l0c[0], gm[0], dtype=f32, rows=1, cols=8, src_rs=8\n",
     "t.s:2:10: load: field dst must be in l1/l0a/l0b/ub, got l0c\n"
     "    load l0c[0], gm[0], dtype=f32, rows=1, cols=8, src_rs=8\n         ^"),
    ("name not allowed", ".kernel k\n    vun add, ub[0], ub[0], dtype=f32, rows=1, cols=8\n",
     "t.s:2:9: vun: field op must be one of neg, abs, exp, exp2, log, log2, sqrt, rsqrt, recip, erf, tanh, "
     "sigmoid, relu, not, floor, ceil, sin, cos, got 'add'\n"
     "    vun add, ub[0], ub[0], dtype=f32, rows=1, cols=8\n        ^"),
    ("unknown space", ".kernel k\n    vdup l3[0], 1, dtype=i32, rows=1, cols=8\n",
     "t.s:2:10: unknown memory space 'l3' (spaces: gm, l1, l0a, l0b, l0c, ub)\n"
     "    vdup l3[0], 1, dtype=i32, rows=1, cols=8\n         ^"),
    ("duplicate pipe", ".kernel k\n    mov s1, 1 || vdup ub[0], 1, dtype=i32, rows=1, cols=8 || add s2, s1, 1\n",
     "t.s:2:62: bundle has two instructions for pipe s: `mov s1, 1` and `add s2, s1, 1`\n"
     "    mov s1, 1 || vdup ub[0], 1, dtype=i32, rows=1, cols=8 || add s2, s1, 1\n" + " " * 61 + "^"),
    ("duplicate flag pipe", ".kernel k\n    set_flag v, mte3, 0 || vdup ub[0], 1, dtype=i32, rows=1, cols=8\n",
     "t.s:2:28: bundle has two instructions for pipe v: `set_flag v, mte3, 0` and "
     "`vdup ub[0], 1, dtype=i32, rows=1, cols=8`\n"
     "    set_flag v, mte3, 0 || vdup ub[0], 1, dtype=i32, rows=1, cols=8\n" + " " * 27 + "^"),
    ("unknown label", ".kernel k\nloop:\n    jmp lop\n",
     "t.s:3:9: unknown label 'lop'\n    jmp lop\n        ^"),
    ("label twice", ".kernel k\nloop:\n    nop\nloop:\n",
     "t.s:4:1: label 'loop' defined twice (first on line 2)\nloop:\n^"),
    ("bad escape", '.kernel k\n    print "a\\q", s1\n',
     't.s:2:13: bad escape in string: \\q (escapes: \\\\ \\" \\n \\t \\r \\xHH \\uHHHH \\UHHHHHHHH)\n'
     '    print "a\\q", s1\n            ^'),
    ("short hex escape", '.kernel k\n    print "\\x4", s1\n',
     't.s:2:12: bad escape in string: \\x needs 2 hex digits\n    print "\\x4", s1\n           ^'),
    ("unterminated string", '.kernel k\n    print "abc, s1\n',
     't.s:2:11: unterminated string (missing closing ")\n    print "abc, s1\n          ^'),
    ("no kernel", "    nop\n",
     "t.s:1:5: expected `.kernel <name>` before anything else\n    nop\n    ^"),
    ("empty", "# nothing\n",
     "t.s:1:1: empty program: expected `.kernel <name>`\n# nothing\n^"),
    ("unknown directive", ".kernel k\n.args x ptr f32\n",
     "t.s:2:1: unknown directive .args (directives: .kernel, .arg, .symbol, .meta)\n.args x ptr f32\n^"),
    ("directive arity", ".kernel k\n.arg x ptr\n",
     "t.s:2:1: .arg takes 3 operands: .arg name ptr|scalar dtype\n.arg x ptr\n^"),
    ("arg kind", ".kernel k\n.arg x pointer f32\n",
     "t.s:2:8: argument x: kind must be ptr or scalar, got 'pointer'\n.arg x pointer f32\n       ^"),
    ("arg dtype", ".kernel k\n.arg x ptr f64\n",
     "t.s:2:12: argument x: unknown dtype 'f64' (dtypes: f16, bf16, f32, i8, i32, i1)\n.arg x ptr f64\n           ^"),
    ("meta value", ".kernel k\n.meta stages 2\n",
     't.s:2:14: .meta value must be a double-quoted string, e.g. .meta stages "2"\n.meta stages 2\n             ^'),
    ("second kernel", ".kernel k\n.kernel j\n",
     "t.s:2:1: a second .kernel directive: one program per text\n.kernel j\n^"),
    ("label with code", ".kernel k\nloop: nop\n",
     "t.s:2:7: syntax error: unexpected 'nop'\nloop: nop\n      ^"),
    ("memory base", ".kernel k\n    vdup ub[x], 1, dtype=i32, rows=1, cols=8\n",
     "t.s:2:13: expected a register or a number in a memory reference, got 'x'\n"
     "    vdup ub[x], 1, dtype=i32, rows=1, cols=8\n            ^"),
]


@pytest.mark.parametrize("text,message", [e[1:] for e in ERRORS], ids=[e[0] for e in ERRORS])
def test_error_message(text: str, message: str) -> None:
    err = _error(text)
    assert str(err) == message
    line, column = (int(n) for n in message.split(":")[1:3])
    assert (err.line, err.column, err.source_name) == (line, column, "t.s")


def test_errors_are_value_errors_and_default_source_name() -> None:
    with pytest.raises(ValueError, match=r"^<asm>:1:1: "):
        assemble("nop")
