"""The IR parser: print -> parse -> print is the identity on every kernel the frontend produces (after
each generic pass too), parsed IR verifies and runs like the original, locations survive `locs=True`."""

from __future__ import annotations

import math

import numpy as np
import pytest

from isa import MachineSpec
from isa.asm import disassemble
from npulang import ir
from npulang.compiler import compile_ir
from npulang.ir.parser import PrintedConstexpr, parse_function, parse_module
from npulang.passes import PassManager, generic_pipeline
from npulang.ir.verifier import verify
from tests.npulang import backend_kernels as BK
from tests.npulang import kernels as K
from tests.npulang.ir_launches import LAUNCHES, assert_same_results

SPEC = MachineSpec.load()
F32 = np.zeros(64, np.float32)
I32 = np.zeros(64, np.int32)
UNARY = ["exp", "exp2", "log", "log2", "sqrt", "rsqrt", "abs", "erf", "tanh", "sigmoid", "floor", "ceil", "sin",
         "cos", "neg"]
ARITH = ["add", "sub", "mul", "div", "floordiv", "mod", "maximum", "minimum", "where"]


def _frontend_functions():
    """(id, Function) for every kernel of the tutorials and tests/npulang/kernels.py, as the tests launch them."""
    for kernel, _, args, meta in LAUNCHES:
        yield kernel.__name__, kernel.specialize(*args, **meta)[0]
    for op in UNARY:
        yield f"unary-{op}", K.unary_kernel.specialize(F32, F32, 64, BLOCK=32, OP=op)[0]
    for op in ARITH + ["and", "or", "xor", "shl", "shr"]:
        yield f"binary-i32-{op}", K.binary_kernel.specialize(I32, I32, I32, 64, BLOCK=32, OP=op)[0]
    for op in ARITH:
        yield f"binary-f32-{op}", K.binary_kernel.specialize(F32, F32, F32, 64, BLOCK=32, OP=op)[0]
    x = np.zeros((13, 27), np.float32)
    for op in ["sum", "max", "min", "argmax", "argmin"]:
        for axis in (0, 1):
            out = np.zeros(27, np.int32 if op.startswith("arg") else np.float32)
            yield f"reduce-{op}-{axis}", K.reduce_rows_kernel.specialize(x, out, 13, 27, 27, BM=16, BN=32, OP=op,
                                                                         AXIS=axis)[0]
    yield "transpose", K.transpose_kernel.specialize(x, x.T.copy(), 13, 27, BM=16, BN=16)[0]
    yield "strided_copy", K.strided_copy_kernel.specialize(F32, F32, 10, 3, 2, BLOCK=16)[0]


def _all_functions():
    yield from _frontend_functions()
    yield "bk-vadd", BK.vadd()
    yield "bk-matmul-f16", BK.matmul()
    yield "bk-matmul-i8", BK.matmul(dt="i8", out="i32")
    yield "bk-matmul-f32-out", BK.matmul(BM=16, BN=16, BK=16, out="f32")


FUNCTIONS = list(_all_functions())


@pytest.mark.parametrize("fn", [f for _, f in FUNCTIONS], ids=[i for i, _ in FUNCTIONS])
def test_print_parse_print_is_the_identity_after_every_generic_pass(fn: ir.Function) -> None:
    pm = PassManager(generic_pipeline(), record=True)
    pm.run(fn)
    assert len(pm.stages) == 1 + len(generic_pipeline())
    for stage in pm.stages:
        parsed = parse_function(stage.text, filename=f"<{stage.name}>")
        verify(parsed)
        assert ir.print_function(parsed) == stage.text, f"round trip differs after {stage.name}"
        assert parsed.constexprs.keys() == fn.constexprs.keys()
        assert parsed.arg_names == fn.arg_names and parsed.arg_types == fn.arg_types


@pytest.mark.parametrize("fn", [f for _, f in FUNCTIONS], ids=[i for i, _ in FUNCTIONS])
def test_source_lines_survive_a_round_trip_with_locs(fn: ir.Function) -> None:
    text = ir.print_function(fn, locs=True)
    parsed = parse_function(text, source_file="kernel.py")
    assert ir.print_function(parsed, locs=True) == text
    original = [op.loc.line for op in ir.walk(fn.body)]
    assert [op.loc.line for op in ir.walk(parsed.body)] == original
    assert {op.loc.file for op in ir.walk(parsed.body)} == {"kernel.py"}


@pytest.mark.parametrize("kernel, grid, args, meta", LAUNCHES, ids=[case[0].__name__ for case in LAUNCHES])
def test_parsed_tutorials_compute_what_the_frontend_ir_computes(kernel, grid, args, meta) -> None:
    fn, _ = kernel.specialize(*args, **meta)
    parsed = parse_function(ir.print_function(fn))
    assert_same_results(fn, parsed, grid, args)


def test_constexprs_are_read_back_as_values() -> None:
    fn = next(f for i, f in FUNCTIONS if i == "matmul_kernel")
    parsed = parse_function(ir.print_function(fn))
    assert parsed.constexprs["ACTIVATION"] == "leaky_relu" and parsed.constexprs["BLOCK_SIZE_M"] == 16
    # a dtype is not a Python literal: kept as its printed text
    assert parsed.constexprs["ACC_DTYPE"] == PrintedConstexpr("npu.float32")
    text = "// constexprs: A=(1, 2), B='x, C=1', C=-inf, D=[3, 'a']\nfunc @f() {\n  return\n}\n"
    parsed = parse_function(text)
    assert parsed.constexprs["A"] == (1, 2) and parsed.constexprs["B"] == "x, C=1"
    assert parsed.constexprs["C"] == -math.inf and parsed.constexprs["D"] == [3, "a"]
    assert ir.print_function(parsed) == text


def test_attribute_values_keep_their_python_types() -> None:
    text = """func @f(%p: ptr<f32>) {
  %0 = constant {value=-inf} : tile<4xf32>
  %1 = constant {value=nan} : f32
  %2 = constant {value=-0.0} : f32
  %3 = constant {value=1e-05} : f32
  %4 = constant {value=True} : i1
  %5 = constant {value=-7} : i32
  %6 = constant {value=2.0} : i32
  print %1 {prefix='it\\'s "quoted"\\n'}
  return
}
"""
    fn = parse_function(text)
    values = [op.attrs["value"] for op in fn.body.ops if op.kind is ir.OpKind.CONSTANT]
    assert math.isinf(values[0]) and values[0] < 0 and math.isnan(values[1])
    assert math.copysign(1.0, values[2]) == -1.0 and values[3] == 1e-05
    assert [type(v) for v in values[3:]] == [float, bool, int, float]
    assert fn.body.ops[-2].attrs["prefix"] == "it's \"quoted\"\n"
    assert ir.print_function(fn) == text


def test_shapes_are_tuples_and_names_are_hints() -> None:
    text = """func @f(%x: ptr<f16>) {
  %0 = arange {start=0, end=8} : tile<8xi32>
  %offs = expand_dims %0 {axis=0} : tile<1x8xi32>
  %t = trans %offs {perm=[1, 0]} : tile<8x1xi32>
  %1 = splat %x {shape=[8, 1]} : tile<8x1xptr<f16>>
  %p = addptr %1, %t : tile<8x1xptr<f16>>
  return
}
"""
    fn = parse_function(text)
    verify(fn)
    ops = fn.body.ops
    assert ops[2].attrs["perm"] == (1, 0) and ops[3].attrs["shape"] == (8, 1)
    assert [op.results[0].name for op in ops[:5]] == [None, "offs", "t", None, "p"]
    assert ops[4].results[0].type == ir.TileType((8, 1), ir.PtrType("f16"))
    assert ops[4].operands == (ops[3].result, ops[2].result)  # uses are the defining ops' values


def test_a_module_holds_several_functions_each_with_its_constexprs() -> None:
    vadd, matmul = BK.vadd(), BK.matmul()
    text = "// first\n" + ir.print_function(vadd) + "\n// second\n" + ir.print_function(matmul)
    fns = parse_module(text)
    assert [f.name for f in fns] == ["vadd", "matmul"]
    assert [f.constexprs for f in fns] == [vadd.constexprs, matmul.constexprs]
    assert [ir.print_function(f) for f in fns] == [ir.print_function(vadd), ir.print_function(matmul)]


def test_ops_without_a_loc_comment_are_located_in_the_text() -> None:
    fn = parse_function("func @f(%n: i32) {\n  %0 = binary.add %n, %n : i32\n  return  // line 9\n}\n",
                        filename="t.ir", source_file="k.py")
    assert [op.loc for op in fn.body.ops] == [ir.Loc("t.ir", 2, 2), ir.Loc("k.py", 9)]


@pytest.mark.parametrize("kernel, grid, args, meta", LAUNCHES, ids=[case[0].__name__ for case in LAUNCHES])
def test_parsed_tutorials_compile_to_the_same_program(kernel, grid, args, meta) -> None:
    """Same instructions, buffers, symbol names (from name hints) and source lines as the original."""
    fn, _ = kernel.specialize(*args, **meta)
    parsed = parse_function(ir.print_function(fn, locs=True), source_file=fn.loc.file)
    num_stages = meta.get("num_stages", 2)
    programs = [disassemble(compile_ir(f, SPEC, num_stages=num_stages).program) for f in (fn, parsed)]
    assert programs[0] == programs[1]


def test_a_suffix_the_printer_added_is_read_back_as_the_repeated_hint() -> None:
    text = """func @f(%acc: i32, %x_2: i32) {
  %acc_1 = binary.add %acc, %acc : i32
  %acc_2 = binary.add %acc_1, %acc_1 : i32
  %acc_1_1 = binary.add %acc_2, %x_2 : i32
  %y_1 = binary.add %acc_2, %x_2 : i32
  return
}
"""
    fn = parse_function(text)
    # acc_2 follows acc and acc_1, so the printer made it from hint acc; x_2 and y_1 follow no x or y
    assert [a.name for a in fn.args] == ["acc", "x_2"]
    assert [op.results[0].name for op in fn.body.ops[:-1]] == ["acc", "acc", "acc_1", "y_1"]
    assert ir.print_function(fn) == text
