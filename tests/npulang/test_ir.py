"""The block IR: types, the builder's type inference, the printer and the verifier's checks."""

from __future__ import annotations

import pytest

from npulang import ir
from npulang.errors import IRVerifyError
from npulang.ir import I1, I32, Block, Builder, Function, Loc, OpKind, PtrType, ScalarType, TileType, Value
from npulang.ir.verifier import verify

LOC = Loc("k.py", 3, 4)
F16 = ScalarType("f16")


def _function(build) -> Function:
    """A function of (x_ptr: ptr<f16>, n: i32) whose body `build(builder, args)` fills, plus return."""
    args = [Value(PtrType("f16"), "x_ptr"), Value(I32, "n")]
    body = Block()
    b = Builder(body, LOC)
    build(b, args)
    b.create(OpKind.RETURN)
    return Function("k", args, body, {"BLOCK": 8}, LOC)


def _vector_load(b: Builder, args) -> ir.Value:
    offs = b.value(OpKind.ARANGE, start=0, end=8)
    ptrs = b.value(OpKind.ADDPTR, (b.value(OpKind.SPLAT, (args[0],), shape=(8,)), offs))
    mask = b.value(OpKind.CMP, (offs, b.value(OpKind.SPLAT, (args[1],), shape=(8,))), pred="lt")
    return b.value(OpKind.LOAD, (ptrs, mask))


def test_types_print_and_compare() -> None:
    assert str(TileType((4, 8), F16)) == "tile<4x8xf16>"
    assert str(TileType((4,), PtrType("i8"))) == "tile<4xptr<i8>>"
    assert str(ir.DescType("bf16", (16, 32))) == "desc<16x32xbf16>"
    assert TileType((2,), I32) == TileType((2,), ScalarType("i32"))
    assert ir.make_type((), I32) == I32 and ir.shape_of(I32) == ()
    with pytest.raises(ValueError):
        TileType((0,), I32)
    with pytest.raises(ValueError):
        ScalarType("f64")


@pytest.mark.parametrize("kind, operand_types, attrs, expected", [
    (OpKind.ARANGE, [], {"start": 2, "end": 10}, [TileType((8,), I32)]),
    (OpKind.EXPAND_DIMS, [TileType((8,), I32)], {"axis": 1}, [TileType((8, 1), I32)]),
    (OpKind.BROADCAST, [TileType((8, 1), F16)], {"shape": (8, 4)}, [TileType((8, 4), F16)]),
    (OpKind.TRANS, [TileType((2, 3, 4), F16)], {"perm": (2, 0, 1)}, [TileType((4, 2, 3), F16)]),
    (OpKind.CMP, [TileType((8,), F16)] * 2, {"pred": "le"}, [TileType((8,), I1)]),
    (OpKind.CAST, [TileType((8,), F16)], {"dtype": "f32"}, [TileType((8,), ir.F32)]),
    (OpKind.DOT, [TileType((4, 8), F16), TileType((8, 2), F16)], {"out_dtype": "f32"}, [TileType((4, 2),
                                                                                                 ir.F32)]),
    (OpKind.REDUCE, [TileType((4, 8), F16)], {"op": "sum", "axis": 1}, [TileType((4,), F16)]),
    (OpKind.REDUCE, [TileType((8,), F16)], {"op": "argmax", "axis": 0}, [I32]),
    (OpKind.DESC_LOAD, [ir.DescType("f16", (4, 4)), I32, I32], {}, [TileType((4, 4), F16)]),
])
def test_result_types_are_inferred(kind, operand_types, attrs, expected) -> None:
    operands = tuple(Value(t) for t in operand_types)
    assert list(ir.infer_result_types(kind, operands, attrs)) == expected


@pytest.mark.parametrize("kind, operand_types, attrs, message", [
    (OpKind.BINARY, [I32, ir.F32], {"op": "add"}, "differ in type"),
    (OpKind.BINARY, [ir.F32, ir.F32], {"op": "and"}, "needs integers"),
    (OpKind.UNARY, [I32], {"op": "exp"}, "needs a float"),
    (OpKind.DOT, [TileType((4, 8), F16), TileType((4, 2), F16)], {"out_dtype": "f32"}, "inner dimensions"),
    (OpKind.DOT, [TileType((4, 8), F16), TileType((8,), F16)], {"out_dtype": "f32"}, "2-D tiles"),
    (OpKind.ADDPTR, [PtrType("f16"), ir.F32], {}, "offset must be i32"),
    (OpKind.BROADCAST, [TileType((8, 2), F16)], {"shape": (8, 4)}, "cannot broadcast"),
    (OpKind.RESHAPE, [TileType((8,), F16)], {"shape": (3, 3)}, "cannot reshape"),
    (OpKind.LOAD, [TileType((8,), PtrType("f16")), TileType((4,), I1)], {}, "mask"),
])
def test_bad_ops_are_rejected(kind, operand_types, attrs, message) -> None:
    operands = tuple(Value(t) for t in operand_types)
    with pytest.raises(ir.IRTypeError, match=message):
        ir.infer_result_types(kind, operands, attrs)


def test_printer_names_values_by_hint_and_number() -> None:
    def build(b, args):
        x = _vector_load(b, args)
        b.create(OpKind.PRINT, (x,), {"prefix": "x="})

    text = ir.print_function(_function(build), locs=True)
    assert text.splitlines() == [
        "// constexprs: BLOCK=8",
        "func @k(%x_ptr: ptr<f16>, %n: i32) {",
        "  %0 = arange {start=0, end=8} : tile<8xi32>  // line 3",
        "  %1 = splat %x_ptr {shape=[8]} : tile<8xptr<f16>>  // line 3",
        "  %2 = addptr %1, %0 : tile<8xptr<f16>>  // line 3",
        "  %3 = splat %n {shape=[8]} : tile<8xi32>  // line 3",
        "  %4 = cmp.lt %0, %3 : tile<8xi1>  // line 3",
        "  %5 = load %2, %4 : tile<8xf16>  // line 3",
        "  print %5 {prefix='x='}  // line 3",
        "  return  // line 3",
        "}",
    ]


def _loop(b: Builder, args, *, yield_type_ok: bool = True) -> None:
    x = _vector_load(b, args)
    zero = b.constant(0, I32)
    one = b.constant(1, I32)
    body = Block([Value(I32, "i"), Value(x.type, "acc")])
    inner = Builder(body, LOC)
    y = inner.value(OpKind.BINARY, (body.args[1], body.args[1]), op="mul")
    inner.create(OpKind.YIELD, (y if yield_type_ok else body.args[0],))
    b.create(OpKind.FOR, (zero, args[1], one, x), result_types=(x.type,), regions=(body,))


def test_verifier_accepts_loops_and_prints_regions() -> None:
    fn = _function(_loop)
    verify(fn)
    text = ir.print_function(fn)
    assert "%8 = for %6, %n, %7, %5 : tile<8xf16> {" in text
    assert "  ^(%i: i32, %acc: tile<8xf16>):" in text
    assert "    yield %9" in text


def test_verifier_rejects_a_yield_of_the_wrong_type() -> None:
    with pytest.raises(IRVerifyError, match="for results and yield must match"):
        verify(_function(lambda b, a: _loop(b, a, yield_type_ok=False)))


def test_verifier_rejects_use_before_definition_and_redefinition() -> None:
    def use_before(b, args):
        later = Value(I32)
        b.create(OpKind.BINARY, (args[1], later), {"op": "add"})

    with pytest.raises(IRVerifyError, match="not defined before use"):
        verify(_function(use_before))

    def twice(b, args):
        op = b.create(OpKind.PROGRAM_ID, (), {"axis": 0})
        b.block.ops.append(op)

    with pytest.raises(IRVerifyError, match="defined twice"):
        verify(_function(twice))


def test_verifier_rejects_wrong_result_types_and_missing_return() -> None:
    def wrong(b, args):
        b.create(OpKind.PROGRAM_ID, (), {"axis": 0}, result_types=(ir.F32,))

    with pytest.raises(IRVerifyError, match=r"program_id at k.py:3:5: result types"):
        verify(_function(wrong))
    fn = _function(lambda b, a: None)
    fn.body.ops.pop()
    with pytest.raises(IRVerifyError, match="must end in return"):
        verify(fn)


def test_region_values_do_not_escape() -> None:
    def leak(b, args):
        c = b.constant(True, I1)
        then, other = Block(), Block()
        t = Builder(then, LOC)
        inner = t.constant(1, I32)
        t.create(OpKind.YIELD, ())
        Builder(other, LOC).create(OpKind.YIELD, ())
        b.create(OpKind.IF, (c,), result_types=(), regions=(then, other))
        b.create(OpKind.BINARY, (inner, inner), {"op": "add"})

    with pytest.raises(IRVerifyError, match="not defined before use"):
        verify(_function(leak))
