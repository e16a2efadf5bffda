"""Scalar pipe semantics, grid dispatch, every opcode having a rule, and the Chrome trace."""

from __future__ import annotations

import json

import numpy as np
import pytest

import isa
from isa.asm import assemble
from simulator import Device, SimOptions
from simulator.ops import RULES

from sim_harness import dma_cycles

SCALARS = """
.kernel s
.arg n scalar i32
.arg f scalar f32
    arg s1, 0
    arg s2, 1
    div s3, -7, 2
    print "div", s3
    rem s3, -7, 2
    print "rem", s3
    fdiv s3, 7, 2
    print "fdiv", s3
    div s3, s2, 2
    print "fdiv-float", s3
    mul s3, s1, 3
    sub s3, s3, 1
    print "mul-sub", s3
    min s3, s1, 4
    max s4, s1, 4
    add s3, s3, s4
    print "min+max", s3
    and s3, 12, 10
    or s4, 12, 10
    xor s5, 12, 10
    shl s6, 1, 5
    shr s7, -64, 2
    print "and", s3
    print "or", s4
    print "xor", s5
    print "shl", s6
    print "shr", s7
    lt s3, 1, 2
    le s4, 2, 1
    gt s5, 2, 1
    ge s6, 2, 2
    eq s7, 3, 3
    ne s8, 3, 3
    add s3, s3, s4
    add s3, s3, s5
    add s3, s3, s6
    add s3, s3, s7
    add s3, s3, s8
    print "comparisons", s3
    sel s3, 0, 10, 20
    print "sel", s3
    cvt s3, -2.75, to=i32
    print "cvt", s3
    cvt s3, 3, to=f32
    print "cvtf", s3
    mov s3, 0
    mov s4, 0
loop:
    add s4, s4, s3
    add s3, s3, 1
    lt s5, s3, 5
    bnz s5, loop
    print "loop", s4
    bz 0, skip
    print "never", 0
skip:
    jmp end
    print "never", 1
end:
    nop
    barrier
"""


def test_scalar_semantics() -> None:
    res = Device().run(assemble(SCALARS), (1,), [6, 1.5])
    values = dict(line.split(") ", 1)[1].split(" ", 1) for line in res.prints)
    assert values == {
        "div": "-3", "rem": "-1", "fdiv": "3.5", "fdiv-float": "0.75", "mul-sub": "17", "min+max": "10",
        "and": "8", "or": "14", "xor": "6", "shl": "32", "shr": "-16", "comparisons": "4", "sel": "20",
        "cvt": "-2", "cvtf": "3.0", "loop": "10",
    }
    assert all(line.startswith("pid (0, 0, 0) ") for line in res.prints)


def test_taken_branches_cost_the_penalty(spec: isa.MachineSpec) -> None:
    straight = Device(spec).run(assemble(".kernel s\n    nop\n    nop\n    nop\n"), (1,), [])
    taken = Device(spec).run(assemble(".kernel s\n    jmp a\na:\n    jmp b\nb:\n    nop\n"), (1,), [])
    assert straight.cycles == 3
    assert taken.cycles == 3 + 2 * spec.scalar.branch_penalty


def test_grid_order_and_program_ids() -> None:
    text = """
.kernel ids
.arg out ptr i32
    arg s0, 0
    pid s1, 0
    pid s2, 1
    pid s3, 2
    npid s4, 0
    npid s5, 1
    mul s6, s3, s5
    add s6, s6, s2
    mul s6, s6, s4
    add s6, s6, s1
    mul s7, s6, 4
    add s0, s0, s7
    mul s8, s1, 100
    mul s9, s2, 10
    add s8, s8, s9
    add s8, s8, s3
    vdup ub[0], s8, dtype=i32, rows=1, cols=1
    set_flag v, mte3, 0
    wait_flag v, mte3, 0
    store gm[s0], ub[0], dtype=i32, rows=1, cols=1, dst_rs=1
"""
    out = np.full((2, 3, 4), -1, np.int32)
    res = Device().run(assemble(text), (4, 3, 2), [out])
    z, y, x = np.meshgrid(range(2), range(3), range(4), indexing="ij")
    np.testing.assert_array_equal(out, 100 * x + 10 * y + z)
    first = res.per_core[0].programs
    assert first[0] == (0, 0, 0) and res.per_core[1].programs[0] == (1, 0, 0)  # axis 0 fastest
    assert sum(len(c.programs) for c in res.per_core) == 24


def test_every_opcode_has_a_rule() -> None:
    assert set(RULES) == set(isa.OPCODES)


def test_chrome_trace(tmp_path) -> None:
    text = """
.kernel t
.arg x ptr f32
    arg s0, 0
    load ub[0], gm[s0], dtype=f32, rows=1, cols=8, src_rs=8 @ "t.py":3
    set_flag mte2, v, 0
    wait_flag mte2, v, 0
    vun exp, ub[0], ub[0], dtype=f32, rows=1, cols=8 @ "t.py":4
"""
    res = Device().run(assemble(text), (2,), [np.zeros(8, np.float32)], SimOptions(trace=True))
    path = tmp_path / "trace.json"
    res.write_trace(path)
    events = json.loads(path.read_text())["traceEvents"]
    names = {(e["pid"], e["args"]["name"]) for e in events if e["ph"] == "M" and e["name"] == "process_name"}
    assert names == {(0, "core 0"), (1, "core 1")}
    threads = {e["args"]["name"] for e in events if e["ph"] == "M" and e["name"] == "thread_name"}
    assert threads == {"s", "mte2", "mte1", "m", "v", "fix", "mte3"}
    loads = [e for e in events if e["ph"] == "X" and e["name"] == "load"]
    assert len(loads) == 2 and loads[0]["tid"] == 1 and loads[0]["args"]["loc"] == "t.py:3"
    assert loads[0]["args"]["instr"] == "load ub[0], gm[s0], dtype=f32, rows=1, cols=8, src_rs=8"
    vec = next(e for e in events if e["ph"] == "X" and e["name"] == "vun")
    assert vec["ts"] >= loads[0]["ts"] + loads[0]["dur"] and vec["dur"] == 1


@pytest.mark.parametrize("functional", [True, False])
def test_results_summaries(functional: bool) -> None:
    text = """
.kernel t
.arg x ptr f32
    arg s0, 0
    load ub[0], gm[s0], dtype=f32, rows=1, cols=64, src_rs=64 @ "t.py":3
    set_flag mte2, v, 0
    wait_flag mte2, v, 0
    vun exp, ub[0], ub[0], dtype=f32, rows=1, cols=64 @ "t.py":4
"""
    res = Device().run(assemble(text), (3,), [np.zeros(64, np.float32)], SimOptions(functional=functional))
    load = dma_cycles(isa.MachineSpec.load("davinci").mte2, 256, 256)
    assert res.instructions == 3 * 5
    assert res.pipe_busy["mte2"] == 3 * load and res.pipe_busy["v"] == 3 * 1 and res.pipe_busy["s"] == 3
    assert res.line_cycles == {isa.SourceLoc("t.py", 3): 3 * load, isa.SourceLoc("t.py", 4): 3}
    assert res.pipe_stall["v"] == sum(c.stall["v"] for c in res.per_core) > 0
