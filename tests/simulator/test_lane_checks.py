"""Gather and scatter lanes are bounds-checked in timing-only mode exactly as in functional mode.

The lanes' indices are data (here loaded from an argument and offset by a vector add), so timing-only
mode runs such a program's effects to know them, and puts back every GM byte the program wrote.
"""

from __future__ import annotations

import numpy as np
import pytest

from isa.asm import assemble
from simulator import Device, OutOfBounds, SimOptions

# out[i] = table[ids[i] + shift] for 8 lanes, then scattered back: out2[ids[i] + shift] = out[i]
LOOKUP = """
.kernel lookup
.arg ids ptr i32
.arg table ptr f32
.arg out ptr f32
.arg out2 ptr f32
    arg s0, 0
    arg s1, 1
    arg s2, 2
    arg s3, 3
    load ub[0], gm[s0], dtype=i32, rows=1, cols=8, src_rs=8
    set_flag mte2, v, 0
    wait_flag mte2, v, 0
    vbin add, ub[64], ub[0], {shift}, dtype=i32, rows=1, cols=8
    set_flag v, mte2, 0
    wait_flag v, mte2, 0
    gather ub[128], gm[s1], idx=ub[64], dtype=f32, n=8 @ "lookup.py":7
    set_flag mte2, mte3, 0
    wait_flag mte2, mte3, 0
    store gm[s2], ub[128], dtype=f32, rows=1, cols=8, dst_rs=8
    scatter gm[s3], ub[128], idx=ub[64], dtype=f32, n=8 @ "lookup.py":9
"""


def launch(ids: np.ndarray, shift: int, functional: bool, out2_size: int = 64):
    table = np.arange(64, dtype=np.float32) * 10
    out = np.full(8, -1, np.float32)
    out2 = np.full(out2_size, -1, np.float32)
    res = Device().run(assemble(LOOKUP.format(shift=shift)), (1,), [ids, table, out, out2],
                       SimOptions(functional=functional))
    return res, table, out, out2


def test_in_range_lanes_run_in_both_modes_with_identical_cycles_and_timing_only_writes_nothing() -> None:
    ids = np.array([5, 0, 40, 7, 7, 1, 33, 2], np.int32)
    functional, table, out, out2 = launch(ids, 3, True)
    np.testing.assert_array_equal(out, table[ids + 3])
    assert (out2[ids + 3] == table[ids + 3]).all()
    timing, _, out, out2 = launch(ids, 3, False)
    assert timing.cycles == functional.cycles and timing.pipe_busy == functional.pipe_busy
    assert (out == -1).all() and (out2 == -1).all()  # what the program stored and scattered was put back


def arrays(ids: np.ndarray, out2_size: int = 64) -> list[np.ndarray]:
    return [ids, np.arange(64, dtype=np.float32), np.full(8, -1, np.float32), np.full(out2_size, -1, np.float32)]


def error(args: list[np.ndarray], shift: int, functional: bool) -> str:
    """The OutOfBounds message of a launch (the same arrays give the same addresses in both modes)."""
    with pytest.raises(OutOfBounds) as err:
        Device().run(assemble(LOOKUP.format(shift=shift)), (1,), args, SimOptions(functional=functional))
    return str(err.value)


def test_an_out_of_range_gather_lane_raises_in_timing_only_mode_as_in_functional_mode() -> None:
    args = arrays(np.array([5, 0, 40, 7, 61, 1, 33, 2], np.int32))  # lane 4: 61 + 3 is past the 64-element table
    msg = error(args, 3, False)
    assert msg.startswith("`gather ub[128], gm[s1], idx=ub[64], dtype=f32, n=8` (lookup.py:7) "
                          "(core 0, program (0, 0, 0)): lane 4 reads GM bytes")
    assert msg == error(args, 3, True)


def test_a_negative_gather_lane_raises_in_timing_only_mode() -> None:
    args = arrays(np.array([5, 0, 40, 7, 6, 1, 33, 2], np.int32))  # lane 1: 0 - 3 is before the table
    msg = error(args, -3, False)
    assert "(lookup.py:7)" in msg and "lane 1 reads GM bytes" in msg
    assert msg == error(args, -3, True)


def test_an_out_of_range_scatter_lane_raises_in_timing_only_mode_and_earlier_writes_are_put_back() -> None:
    """Every lane is in the 64-element table; lane 6 (50 + 3) is past out2's 40 elements."""
    args = arrays(np.array([5, 0, 30, 7, 36, 1, 50, 2], np.int32), out2_size=40)
    msg = error(args, 3, False)
    assert msg.startswith("`scatter gm[s3], ub[128], idx=ub[64], dtype=f32, n=8` (lookup.py:9) "
                          "(core 0, program (0, 0, 0)): lane 6 writes GM bytes")
    assert (args[2] == -1).all()  # the store before the scatter wrote out; timing-only mode put it back
    assert msg == error(args, 3, True)
    np.testing.assert_array_equal(args[2], args[1][args[0] + 3])  # functional mode keeps what it stored


def test_programs_without_gathers_or_scatters_keep_the_generated_timing_only_code() -> None:
    """Only a program with lanes to check runs its effects in timing-only mode: a plain copy runs the
    generated block code (simulator.codegen) and writes nothing."""
    copy = assemble("""
.kernel copy
.arg x ptr f32
.arg y ptr f32
    arg s0, 0
    arg s1, 1
    load ub[0], gm[s0], dtype=f32, rows=1, cols=8, src_rs=8
    set_flag mte2, mte3, 0
    wait_flag mte2, mte3, 0
    store gm[s1], ub[0], dtype=f32, rows=1, cols=8, dst_rs=8
""")
    device = Device()
    y = np.zeros(8, np.float32)
    device.run(copy, (4,), [np.ones(8, np.float32), y], SimOptions(functional=False, detect_races=False))
    assert (y == 0).all()
    assert "blocks, bounded=False" in device._prepare(copy).compiled
