"""Each simulator error, produced by a small program, with the content of its message."""

from __future__ import annotations

import numpy as np
import pytest

from isa.asm import assemble
from simulator import DeadlockError, Device, FlagError, OutOfBounds, RaceError, SimError, SimOptions

HEADER = """
.kernel k
.arg x ptr f32
    arg s0, 0
"""


def run(body: str, x: np.ndarray | None = None, **options: object):
    x = np.zeros(8, np.float32) if x is None else x
    return Device().run(assemble(HEADER + body), (1,), [x], SimOptions(**options))


def test_on_chip_out_of_bounds_names_buffer_range_and_size() -> None:
    with pytest.raises(OutOfBounds) as err:
        run('    load ub[196600], gm[s0], dtype=f32, rows=1, cols=8, src_rs=8 @ "k.py":3\n')
    msg = str(err.value)
    assert "`load ub[196600], gm[s0], dtype=f32, rows=1, cols=8, src_rs=8` (k.py:3)" in msg
    assert "ub bytes [196600, 196632)" in msg and "ub has 196608 bytes" in msg
    assert "core 0, program (0, 0, 0)" in msg


def test_gm_out_of_bounds_names_nearest_argument() -> None:
    with pytest.raises(OutOfBounds) as err:
        run("    load ub[0], gm[s0+16], dtype=f32, rows=1, cols=8, src_rs=8\n")
    msg = str(err.value)
    assert "outside every argument array" in msg and "nearest is x (argument 0)" in msg
    assert "32 bytes" in msg and "bytes [16, 48) relative to x" in msg


def test_masked_off_part_of_a_load_is_not_checked() -> None:
    x = np.arange(8, dtype=np.float32)
    res = run("    load ub[0], gm[s0], dtype=f32, rows=2, cols=16, src_rs=16, valid_rows=1, valid_cols=8\n", x)
    assert res.cycles > 0


def test_write_to_read_only_array() -> None:
    x = np.zeros(8, np.float32)
    x.flags.writeable = False
    with pytest.raises(OutOfBounds, match="writes argument x, a read-only array"):
        run("    store gm[s0], ub[0], dtype=f32, rows=1, cols=8, dst_rs=8\n", x)


def test_gather_lane_out_of_bounds() -> None:
    body = """    viota ub[0], 6, dtype=i32, rows=1, cols=4
    set_flag v, mte2, 0
    wait_flag v, mte2, 0
    gather ub[64], gm[s0], idx=ub[0], dtype=f32, n=4 @ "k.py":9
"""
    with pytest.raises(OutOfBounds) as err:
        run(body)
    assert "lane 2 reads GM" in str(err.value) and "(k.py:9)" in str(err.value)


def test_race_names_both_instructions() -> None:
    body = """    load ub[0], gm[s0], dtype=f32, rows=1, cols=8, src_rs=8 @ "k.py":4
    vun exp, ub[64], ub[0], dtype=f32, rows=1, cols=8 @ "k.py":5
"""
    with pytest.raises(RaceError) as err:
        run(body)
    msg = str(err.value)
    assert "data race on ub bytes [0, 32)" in msg
    assert "`load ub[0], gm[s0], dtype=f32, rows=1, cols=8, src_rs=8` (k.py:4) on pipe mte2 writes" in msg
    assert "`vun exp, ub[64], ub[0], dtype=f32, rows=1, cols=8` (k.py:5) on pipe v reads" in msg


def test_barrier_and_flags_order_accesses() -> None:
    body = """    load ub[0], gm[s0], dtype=f32, rows=1, cols=8, src_rs=8
    barrier
    vun exp, ub[64], ub[0], dtype=f32, rows=1, cols=8
    set_flag v, mte3, 0
    wait_flag v, mte3, 0
    store gm[s0], ub[64], dtype=f32, rows=1, cols=8, dst_rs=8
"""
    x = np.arange(8, dtype=np.float32)
    run(body, x)
    np.testing.assert_allclose(x, np.exp(np.arange(8, dtype=np.float32)), rtol=1e-6)


def test_gm_race_between_store_and_load() -> None:
    body = """    store gm[s0], ub[0], dtype=f32, rows=1, cols=8, dst_rs=8
    load ub[64], gm[s0+16], dtype=f32, rows=1, cols=2, src_rs=2
"""
    with pytest.raises(RaceError, match=r"data race on gm bytes"):
        run(body)


def test_race_detection_can_be_switched_off() -> None:
    run("    load ub[0], gm[s0], dtype=f32, rows=1, cols=8, src_rs=8\n"
        "    vun exp, ub[64], ub[0], dtype=f32, rows=1, cols=8\n", detect_races=False)


def test_deadlock_wait_never_set() -> None:
    with pytest.raises(DeadlockError) as err:
        run('    wait_flag mte2, v, 0 @ "k.py":7\n    vdup ub[0], 1.0, dtype=f32, rows=1, cols=8\n')
    msg = str(err.value)
    assert "the program ended with instructions still blocked" in msg
    assert "pipe v is blocked at `wait_flag mte2, v, 0` (k.py:7), waiting for flag mte2->v event 0" in msg
    assert "0 set_flag and 1 wait_flag issued" in msg and "1 instructions queued behind" in msg


def test_deadlock_full_queue_behind_a_wait() -> None:
    body = "    wait_flag mte2, v, 0\n" + "    vdup ub[0], 1.0, dtype=f32, rows=1, cols=8\n" * 40
    body += "    set_flag mte2, v, 0\n"
    with pytest.raises(DeadlockError) as err:
        run(body)
    msg = str(err.value)
    assert "issue is stalled at `vdup ub[0], 1.0, dtype=f32, rows=1, cols=8`" in msg
    assert "the v queue is full (32 instructions)" in msg and "waiting for flag mte2->v event 0" in msg


def test_deadlock_barrier_behind_a_wait() -> None:
    with pytest.raises(DeadlockError, match=r"`barrier` waits for every pipe to drain"):
        run("    wait_flag mte3, mte2, 1\n    barrier\n    set_flag mte3, mte2, 1\n")


def test_flag_set_twice() -> None:
    with pytest.raises(FlagError) as err:
        run("    set_flag mte2, v, 3\n    set_flag mte2, v, 3 @ \"k.py\":9\n    wait_flag mte2, v, 3\n")
    assert "`set_flag mte2, v, 3` (k.py:9)" in str(err.value)
    assert "flag mte2->v event 3 is already set and not yet consumed" in str(err.value)


def test_flag_set_left_at_end() -> None:
    with pytest.raises(FlagError, match=r"ended with flag v->mte3 event 0 set and never waited on"):
        run("    set_flag v, mte3, 0\n")


def test_flag_event_out_of_range_and_self_flag() -> None:
    with pytest.raises(FlagError, match=r"event id 8, but the machine has event ids 0..7"):
        run("    set_flag v, mte3, 8\n    wait_flag v, mte3, 8\n")
    with pytest.raises(FlagError, match=r"flags from pipe v to itself"):
        run("    set_flag v, v, 0\n")


def test_max_cycles_stops_a_runaway_loop() -> None:
    with pytest.raises(SimError, match=r"passed max_cycles=1000"):
        run("loop:\n    jmp loop\n", max_cycles=1000)


def test_max_instructions_stops_a_runaway_loop() -> None:
    with pytest.raises(SimError) as err:
        run("loop:\n    jmp loop\n", max_instructions=1000)
    assert str(err.value) == ("kernel k (core 0, program (0, 0, 0)): executed 1001 instructions, past "
                              "SimOptions.max_instructions=1000 (a runaway loop?); pass "
                              "SimOptions(max_instructions=...) a larger bound, or None for no bound")


def test_max_instructions_has_a_default_and_counts_per_program() -> None:
    assert SimOptions().max_instructions == 50_000_000
    with pytest.raises(ValueError, match=r"max_instructions must be positive or None, got 0"):
        SimOptions(max_instructions=0)
    loop = ("    mov s1, 0\nloop:\n    add s1, s1, 1\n    lt s2, s1, 100\n    bnz s2, loop\n")  # 302 instructions
    program = assemble(HEADER + loop)
    for bound in (302, None):  # exactly at the bound, and unbounded, over 4 programs
        res = Device().run(program, (4,), [np.zeros(8, np.float32)], SimOptions(max_instructions=bound))
        assert res.instructions == 4 * 302
    with pytest.raises(SimError, match=r"program \(0, 0, 0\)\): executed 302 instructions, past "
                                       r"SimOptions.max_instructions=301"):
        Device().run(program, (4,), [np.zeros(8, np.float32)], SimOptions(max_instructions=301))


def test_scalar_division_by_zero() -> None:
    with pytest.raises(SimError, match=r"`div s1, 4, s2` .*ZeroDivisionError"):
        run("    div s1, 4, s2\n")


def test_register_out_of_range_is_reported() -> None:
    with pytest.raises(SimError, match=r"register s64 out of range"):
        run("    mov s64, 1\n")


@pytest.mark.parametrize("args, message", [
    ([], r"kernel k takes 1 arguments \(x\), got 0"),
    ([np.zeros(8, np.float16)], r"argument 0 \(x, ptr f32\): expected an array of f32"),
    ([3], r"argument 0 \(x, ptr f32\): expected a numpy array, got int"),
    ([np.zeros((8, 8), np.float32)[:, ::2]], r"must be contiguous"),
])
def test_bad_arguments(args: list, message: str) -> None:
    with pytest.raises(SimError, match=message):
        Device().run(assemble(HEADER), (1,), args)


def test_bad_scalar_argument_and_grid() -> None:
    program = assemble(".kernel k\n.arg n scalar i32\n    arg s0, 0\n")
    with pytest.raises(SimError, match=r"argument 0 \(n, scalar i32\): expected an integer, got 2.5"):
        Device().run(program, (1,), [2.5])
    with pytest.raises(SimError, match=r"grid must be 1 to 3 non-negative integers"):
        Device().run(program, (1, 2, 3, 4), [2])


def test_trace_needs_the_option(tmp_path) -> None:
    res = run("    nop\n")
    with pytest.raises(SimError, match=r"SimOptions\(trace=True\)"):
        res.write_trace(tmp_path / "t.json")
