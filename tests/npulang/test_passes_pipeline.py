"""The generic pipeline on every tutorial kernel: IR verified after each pass, results unchanged,
stages recorded; plus folding of an `if` on a constant condition."""

from __future__ import annotations

import numpy as np
import pytest

from npulang import ir
from npulang.errors import IRVerifyError
from npulang.ir.interpreter import interpret
from npulang.passes import Pass, PassManager, generic_pipeline
from examples import tutorials as T
from tests.npulang.ir_launches import LAUNCHES, assert_same_results



@pytest.mark.parametrize("kernel, grid, args, meta", LAUNCHES, ids=[case[0].__name__ for case in LAUNCHES])
def test_generic_pipeline_verifies_and_preserves_results(kernel, grid, args, meta) -> None:
    fn, _ = kernel.specialize(*args, **meta)
    before_text = ir.print_function(fn)
    pm = PassManager(generic_pipeline())  # verifies after every pass
    optimized = pm.run(fn)
    assert [s.name for s in pm.stages] == ["frontend", "canonicalize", "fold", "canonicalize", "cse", "dce"]
    assert ir.print_function(fn) == before_text  # passes never mutate their input
    assert len(list(ir.walk(optimized.body))) <= len(list(ir.walk(fn.body)))
    assert_same_results(fn, optimized, grid, args)


class _Breaks(Pass):
    name = "breaks-ir"

    def run(self, fn: ir.Function) -> ir.Function:
        body = ir.Block(list(fn.body.args), fn.body.ops[:-1])  # drops the return
        return ir.Function(fn.name, fn.args, body, fn.constexprs, fn.loc)


def test_pass_manager_names_the_pass_that_broke_the_ir() -> None:
    fn, _ = T.add_kernel.specialize(np.zeros(4, np.float32), np.zeros(4, np.float32), np.zeros(4,
                                                                                               np.float32), 4,
                                    BLOCK_SIZE=4)
    with pytest.raises(IRVerifyError, match="IR invalid after breaks-ir: function add_kernel: body must end"):
        PassManager([_Breaks()]).run(fn)
    PassManager([_Breaks()], verify_each=False).run(fn)


def test_fold_replaces_an_if_on_a_constant_by_its_branch() -> None:
    loc = ir.Loc("k.py", 1)
    args = [ir.Value(ir.PtrType("i32"), "out")]
    body = ir.Block()
    b = ir.Builder(body, loc)
    cond = b.value(ir.OpKind.CMP, (b.constant(2, ir.I32), b.constant(3, ir.I32)), pred="lt")
    then, other = ir.Block(), ir.Block()
    ir.Builder(then, loc).create(ir.OpKind.YIELD, (b.constant(10, ir.I32),))
    ir.Builder(other, loc).create(ir.OpKind.YIELD, (b.constant(20, ir.I32),))
    result = b.create(ir.OpKind.IF, (cond,), result_types=(ir.I32,), regions=(then, other)).result
    b.create(ir.OpKind.STORE, (args[0], result))
    b.create(ir.OpKind.RETURN)
    fn = PassManager(generic_pipeline()).run(ir.Function("k", args, body))
    assert [op.kind.value for op in fn.body.ops] == ["constant", "store", "return"]
    out = np.zeros(1, np.int32)
    interpret(fn, (1, 1, 1), [out])
    assert out[0] == 10
