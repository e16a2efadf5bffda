"""The block compiler (simulator.codegen) against the instruction-by-instruction issue loop.

Timing-only runs without races or trace execute generated code; the same run with a trace takes the
interpreter. Every number and every error must be the same either way, for random loops whose flags
often block a pipe behind a wait, fill a queue, deadlock or misuse a flag.
"""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from isa.asm import assemble
from simulator import Device, SimError, SimOptions
from simulator.codegen import source

PIPES = ("mte2", "v", "mte3")
BODY = st.one_of(
    st.sampled_from([
        "load ub[0], gm[s0], dtype=f16, rows=4, cols=64, src_rs=64",
        "load ub[8192], gm[s0], dtype=f16, rows=2, cols=64, src_rs=128",
        "vun relu, ub[16384], ub[0], dtype=f16, rows=4, cols=64",
        "store gm[s1], ub[16384], dtype=f16, rows=4, cols=64, dst_rs=64",
        "load ub[s5+512], gm[s0], dtype=f16, rows=2, cols=64, src_rs=64",
        "vun relu, ub[s5+16384], ub[0], dtype=f16, rows=4, cols=64",
        "add s0, s0, 512",
        "add s5, s5, 128",
        "barrier",
        "nop",
    ]),
    st.tuples(st.sampled_from(["set_flag", "wait_flag"]), st.permutations(PIPES), st.integers(0, 1))
    .map(lambda f: f"{f[0]} {f[1][0]}, {f[1][1]}, {f[2]}"),
)


def _kernel(prologue: list[str], body: list[str], epilogue: list[str], iters: int) -> str:
    lines = [".kernel random_loop", ".arg x ptr f16", ".arg out ptr f16",
             "    arg s0, 0", "    arg s1, 1", "    mov s3, 0"]
    lines += [f"    {t}" for t in prologue]
    lines += ["loop:"] + [f"    {t}" for t in body]
    lines += ["    add s3, s3, 1", f"    lt s4, s3, {iters}", "    bnz s4, loop"]
    lines += [f"    {t}" for t in epilogue]
    return "\n".join(lines) + "\n"


def _outcome(program: object, grid: int, options: SimOptions) -> object:
    x = np.arange(8192, dtype=np.float16)
    out = np.zeros(256, np.float16)
    try:
        r = Device().run(program, (grid,), [x, out], options)
    except SimError as exc:
        return type(exc).__name__, str(exc)
    cores = [(c.core, c.programs, c.busy, c.stall, c.free_at) for c in r.per_core]
    return (r.cycles, r.pipe_busy, r.pipe_stall, sorted(r.line_cycles.items(), key=str), r.instructions,
            r.prints, r.gm_bytes, r.hbm_bytes, cores)


@settings(max_examples=60, deadline=None)
@given(prologue=st.lists(BODY, max_size=3), body=st.lists(BODY, min_size=1, max_size=10),
       epilogue=st.lists(BODY, max_size=3), iters=st.integers(1, 6), grid=st.integers(1, 3),
       bound=st.sampled_from([None, None, 200]), max_instructions=st.sampled_from([None, 60]))
def test_blocks_match_the_interpreter(prologue: list[str], body: list[str], epilogue: list[str], iters: int,
                                      grid: int, bound: int | None, max_instructions: int | None) -> None:
    program = assemble(_kernel(prologue, body, epilogue, iters))
    compiled = SimOptions(functional=False, detect_races=False, max_cycles=bound, max_instructions=max_instructions)
    interpreted = SimOptions(functional=False, detect_races=False, trace=True, max_cycles=bound,
                             max_instructions=max_instructions)
    assert _outcome(program, grid, compiled) == _outcome(program, grid, interpreted)


def test_pipelined_loop_matches_and_stalls() -> None:
    """A loop whose store waits on a flag set later in program order: mte3 blocks behind the wait
    and a later set_flag resolves its queue."""
    body = ["wait_flag mte3, mte2, 0", "load ub[0], gm[s0], dtype=f16, rows=4, cols=64, src_rs=64",
            "set_flag mte2, v, 0", "wait_flag v, mte3, 0",
            "store gm[s1], ub[16384], dtype=f16, rows=4, cols=64, dst_rs=64", "set_flag mte3, mte2, 0",
            "wait_flag mte2, v, 0", "vun relu, ub[16384], ub[0], dtype=f16, rows=4, cols=64", "set_flag v, mte3, 0"]
    program = assemble(_kernel(["set_flag mte3, mte2, 0"], body, ["wait_flag mte3, mte2, 0"], 6))
    compiled = _outcome(program, 2, SimOptions(functional=False, detect_races=False))
    assert compiled == _outcome(program, 2, SimOptions(functional=False, detect_races=False, trace=True))
    assert compiled[4] == 2 * (4 + 6 * (len(body) + 3) + 1)
    # 30 programs on 24 cores in step: a core yields before nearly every transfer, the order still the same
    many = _outcome(program, 30, SimOptions(functional=False, detect_races=False))
    assert many == _outcome(program, 30, SimOptions(functional=False, detect_races=False, trace=True))


def test_full_queue_stalls_issue_the_same() -> None:
    """A loop of slow loads fills the mte2 queue, so issue waits for the oldest load to start."""
    program = assemble(_kernel([], ["load ub[0], gm[s0], dtype=f16, rows=16, cols=256, src_rs=0"], [], 50))
    compiled = _outcome(program, 1, SimOptions(functional=False, detect_races=False))
    assert compiled == _outcome(program, 1, SimOptions(functional=False, detect_races=False, trace=True))
    assert compiled[2]["s"] > 0  # the scalar unit stalled on the full queue


def test_generated_source_is_readable_python() -> None:
    program = assemble(_kernel([], ["load ub[0], gm[s0], dtype=f16, rows=4, cols=64, src_rs=64",
                                    "set_flag mte2, v, 0", "wait_flag mte2, v, 0"], [], 3))
    device = Device()
    text = source(device._prepare(program), device.spec)
    compile(text, "<generated>", "exec")
    assert "def block1(t, stall_s, count):" in text
    assert "# bundle 3: load" in text and "raise run._past_max_cycles(3, t)" in text
    assert "past_max_cycles" not in source(device._prepare(program), device.spec, bounded=False)


def test_constant_operands_are_planned_once_per_run() -> None:
    """An instruction whose operands (but a GM address) are constants looks its plan up once per run;
    one with a register operand (s5 starts at 0) looks it up by its operands every time."""
    program = assemble(_kernel([], ["load ub[0], gm[s0], dtype=f16, rows=4, cols=64, src_rs=64",
                                    "vun relu, ub[s5+16384], ub[0], dtype=f16, rows=4, cols=64",
                                    "add s5, s5, 128"], [], 3))
    device = Device()
    text = source(device._prepare(program), device.spec)
    load, vun = (i for i, instr in enumerate(device._prepare(program).instrs) if instr.op in ("load", "vun"))
    assert f"plan = plan{load}\n" in text and f"nonlocal plan{load}" in text
    assert f"plan = plans{vun}.get(a)" in text and f"plan{vun} =" not in text
    compiled = _outcome(program, 2, SimOptions(functional=False, detect_races=False))
    assert compiled == _outcome(program, 2, SimOptions(functional=False, detect_races=False, trace=True))
