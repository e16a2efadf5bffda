"""Backend tests that need no simulator: rules, flags, bundles, allocation errors, assembly round trip."""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

import pytest

from isa import MachineSpec
from isa.asm import assemble, disassemble
from npulang import ir
from npulang.compiler import compile_ir
from npulang.passes import generic_pipeline
from npulang.errors import BufferOverflowError
from npulang.backend.lowering import RULES
from npulang.ir.verifier import verify
from tests.npulang.backend_kernels import matmul, vadd

SPEC = MachineSpec.load()


def test_every_op_kind_has_a_lowering_rule() -> None:
    assert set(RULES) == set(ir.OpKind)


def _flags(program) -> Counter:
    counts: Counter = Counter()
    for ins in program.instructions():
        if ins.op in ("set_flag", "wait_flag"):
            counts[(ins.op,) + ins.args] += 1
    return counts


def _balanced(program) -> None:
    """Statically, every (src, dst, event) is set as often as it is waited (loops included)."""
    c = _flags(program)
    keys = {k[1:] for k in c}
    for key in keys:
        assert c[("set_flag",) + key] == c[("wait_flag",) + key], key
        assert key[2] < SPEC.sync.event_ids


def test_vector_add_compiles_to_dma_vector_dma_with_flags() -> None:
    fn = vadd(256)
    verify(fn)
    ck = compile_ir(fn, SPEC)
    ops = [i.op for i in ck.program.instructions()]
    assert ops.count("load") == 2 and ops.count("vbin") == 1 and ops.count("store") == 1
    assert ops.index("wait_flag") < ops.index("vbin") < ops.index("store")
    _balanced(ck.program)
    assert ck.usage["ub"] == 2 * 256 * 4  # the sum reuses the dying x tile in place
    assert assemble(disassemble(ck.program)) == ck.program


@pytest.mark.parametrize("num_stages", [1, 2, 3])
def test_matmul_pipelines_loads_into_private_copies(num_stages: int) -> None:
    fn = matmul(32, 32, 32)
    verify(fn)
    ck = compile_ir(fn, SPEC, num_stages=num_stages)
    _balanced(ck.program)
    names = [s.name for s in ck.buffers if s.space == "l1"]
    assert len(names) == 2 * num_stages  # a and b tiles, one private copy per stage
    loads = [i for i in ck.program.instructions() if i.op == "load"]
    assert len({i.args[0] for i in loads}) == 2 * num_stages
    mmads = [i for i in ck.program.instructions() if i.op == "mmad"]
    assert len({i.get("dst") for i in mmads}) == 1  # one accumulator in L0C for every copy


def test_loads_feeding_dot_go_through_l1_and_result_leaves_by_fixpipe() -> None:
    ck = compile_ir(matmul(32, 32, 32), SPEC, num_stages=1)
    ops = [i.op for i in ck.program.instructions()]
    assert "move" in ops and "fixpipe" in ops and "store" not in ops
    fix = next(i for i in ck.program.instructions() if i.op == "fixpipe")
    assert fix.get("dtype") == "f16" and fix.get("src_dtype") == "f32"


def test_bundles_pack_pipes_and_respect_registers() -> None:
    ck = compile_ir(matmul(32, 32, 32), SPEC)
    assert any(len(b.instrs) > 1 for b in ck.program.bundles)
    for b in ck.program.bundles:
        assert len({i.pipe for i in b.instrs}) == len(b.instrs)


def test_buffer_overflow_names_tile_bytes_and_hint() -> None:
    fn = matmul(128, 512, 128)  # 128x512 f32 accumulator = 256 KiB > 128 KiB of L0C
    with pytest.raises(BufferOverflowError) as err:
        compile_ir(fn, SPEC)
    text = str(err.value)
    assert "needs 262144 bytes of L0C" in text and "131072" in text
    assert "mm.py:10" in text and "hint: use smaller BLOCK_* sizes or a lower num_stages" in text


def test_stages_are_recorded() -> None:
    ck = compile_ir(vadd(64), SPEC, record=True)
    assert [name for name, _ in ck.stages] == ["frontend", "canonicalize", "fold", "canonicalize", "cse", "dce",
                                               "lower", "software-pipeline", "insert-flags", "assembly"]
    assert [name for name, _ in ck.stages[1:6]] == [p.name for p in generic_pipeline()]  # the documented order
    assert ck.stages[-1][1].startswith(".kernel vadd")


GOLDEN = Path(__file__).parent / "golden" / "backend" / "vadd_stages.txt"


def test_golden_stage_text_of_vector_add() -> None:
    """Every stage's text for a small kernel; regenerate with NPU_REGEN_GOLDEN=1 after a deliberate change."""
    ck = compile_ir(vadd(64), SPEC, record=True)
    backend = [name for name, _ in ck.stages].index("lower")
    text = "".join(f"=== {name}\n{body}\n" for name, body in ck.stages[backend:])
    if os.environ.get("NPU_REGEN_GOLDEN"):
        GOLDEN.write_text(text)
    assert text == GOLDEN.read_text()
