"""Parse errors name the line, the column and what was expected; IR that parses but breaks an IR rule is
the verifier's to reject, at the op's place in the text."""

from __future__ import annotations

import pickle

import pytest

from npulang.errors import IRVerifyError, NpuError
from npulang.ir.parser import IRParseError, parse_function
from npulang.ir.verifier import verify


def _fn(*body: str, args: str = "%n: i32") -> str:
    return f"func @f({args}) {{\n" + "".join(f"  {line}\n" for line in body) + "}\n"


# (text, line, column, message fragment)
ERRORS = [
    (_fn("%0 = binary.add %n, %m : i32", "return"), 2, 23, "use of undefined value %m"),
    (_fn("%0 = bniary.add %n, %n : i32", "return"), 2, 8, "unknown op 'bniary' (did you mean 'binary'?)"),
    (_fn("%0 = binary %n, %n : i32", "return"), 2, 8, "binary needs its op as a suffix"),
    (_fn("%0 = splat.add %n {shape=[4]} : tile<4xi32>", "return"), 2, 8, "splat takes no '.add' suffix"),
    (_fn("%0 = binary.add %n, %n", "return"), 2, 25, "defines 1 result(s) but 0 result type(s)"),
    (_fn("binary.add %n, %n : i32", "return"), 2, 21, "defines 0 result(s) but 1 result type(s)"),
    (_fn("%0 = binary.add %n, %n : i33", "return"), 2, 28, "unknown dtype 'i33'"),
    (_fn("%n = binary.add %n, %n : i32", "return"), 2, 3, "%n is already defined (line 1)"),
    (_fn("%0 = splat %n {shape=[0]} : tile<0xi32>", "return"), 2, 31, "tile shape must be a non-empty tuple"),
    (_fn("%0 = splat %n {shape=[4} : tile<4xi32>", "return"), 2, 26, "expected ',' or ']' in a list, got '}'"),
    (_fn("%0 = splat %n {shape=[4], shape=[4]} : tile<4xi32>", "return"), 2, 28, "attribute 'shape' given twice"),
    (_fn("%0 = constant {value=x} : i32", "return"), 2, 24, "expected an attribute value"),
    (_fn("%0 = arange {start=0, end=4} : tile<4xi32", "return"), 2, 44, "expected '>' to close the type"),
    (_fn("return extra"), 2, 10, "expected the end of the line after return, got 'extra'"),
    ("func @f(%n: i32) {\n  return\n", 2, 9, "unexpected end of text: expected '}' closing the '{' of line 1"),
    (_fn("%c = cmp.lt %n, %n : i1", "if %c {", "  yield", "} {", "  yield", "}", "return"), 5, 5,
     "expected '}' or '} else {' between the regions of if, got '{'"),
    (_fn("for %n, %n, %n {", "^(%i: i32):", "  yield", "}", "%j = binary.add %i, %i : i32", "return"), 6, 19,
     "use of undefined value %i"),  # a region's values are not visible after it
    (_fn("%x = for %n, %n, %n, %n : i32 {", "^(%i: i32, %a: i32):", "  yield %x", "}", "return"), 4, 11,
     "use of undefined value %x"),  # nor an op's results inside its own regions
    ("func f(%n: i32) {\n  return\n}\n", 1, 6, "expected '@' before the function name, got 'f(%n:'"),
    ("func @f(%n: i32, ) {\n  return\n}\n", 1, 18, "expected a value name like %x or %0, got ')'"),
    (_fn("return", args="%n: tile<4xtile<4xi32>>"), 1, 13, "tile element must be a scalar or pointer type"),
    ("", 1, 1, "expected one function, found 0"),
    (_fn("return") + _fn("return"), 1, 1, "expected one function, found 2 (parse_module reads several)"),
]


@pytest.mark.parametrize("text, line, column, message", ERRORS, ids=[e[3][:40] for e in ERRORS])
def test_parse_errors_point_at_the_offending_text(text: str, line: int, column: int, message: str) -> None:
    with pytest.raises(IRParseError) as info:
        parse_function(text, filename="t.ir")
    err = info.value
    assert (err.line, err.column) == (line, column) and message in err.what
    source_line = text.split("\n")[line - 1]
    assert err.source_line == source_line
    # the report shows where, the line, and a caret under the column
    assert str(err).splitlines() == [f"t.ir:{line}:{column}: {err.what}", f"    {source_line}",
                                     "    " + " " * (column - 1) + "^"]
    assert isinstance(err, NpuError)
    assert str(pickle.loads(pickle.dumps(err))) == str(err)


def test_sibling_regions_may_reuse_names() -> None:
    text = _fn("%c = cmp.lt %n, %n : i1", "%r = if %c : i32 {", "  %v = binary.add %n, %n : i32", "  yield %v",
               "} else {", "  %v = binary.sub %n, %n : i32", "  yield %v", "}", "return")
    fn = parse_function(text)
    verify(fn)
    then, other = fn.body.ops[1].regions
    assert then.ops[0].result is not other.ops[0].result


@pytest.mark.parametrize("body, message, where", [
    (["%f = cast %n {dtype='f32'} : f32", "%0 = binary.add %n, %f : i32", "return"],
     "binary operands differ in type", "binary at t.ir:3:3"),
    (["%0 = binary.add %n, %n : f32", "return"],
     "result types [ScalarType(dtype='f32')] but operands give [ScalarType(dtype='i32')]", "binary at t.ir:2:3"),
    (["%c = cmp.lt %n, %n : i1", "if %c {", "  %v = binary.add %n, %n : i32", "  yield %v", "} else {",
      "  yield", "}", "return"], "if branch yields [ScalarType(dtype='i32')] but results are []", "if at t.ir:3:3"),
    (["%0 = arange {start=0, end=4} : tile<4xi32>"], "function f: body must end in return", ""),
])
def test_the_verifier_rejects_parsed_ir_at_its_line_in_the_text(body: list[str], message: str, where: str) -> None:
    fn = parse_function(_fn(*body), filename="t.ir")
    with pytest.raises(IRVerifyError) as info:
        verify(fn)
    assert message in str(info.value) and where in str(info.value)
