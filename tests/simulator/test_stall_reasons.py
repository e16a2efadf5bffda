"""Why pipes waited, recorded only with the trace: flag waits (which flag, from which pipe), full issue
queues and GM bandwidth, on hand-written assembly whose waits are known; the trace's flag flows; and
cycles that do not change when the trace is on."""

from __future__ import annotations

import json

import numpy as np
import pytest

from isa.asm import assemble
from simulator import Device, SimOptions
from simulator.ops import PIPE_NAMES

FLAG_WAIT = """
.kernel t
.arg x ptr f32
    arg s0, 0
    load ub[0], gm[s0], dtype=f32, rows=1, cols=4096, src_rs=4096
    set_flag mte2, v, 0
    wait_flag mte2, v, 0
    vun exp, ub[0], ub[0], dtype=f32, rows=1, cols=8
"""

# v blocks on the flag behind a long load; 40 vector instructions then fill its queue, so issue stalls
QUEUE_FULL = FLAG_WAIT.replace("cols=4096, src_rs=4096", "cols=16384, src_rs=16384") + \
    "    vun exp, ub[0], ub[0], dtype=f32, rows=1, cols=8\n" * 40

# every core loads its own 64 KiB at once: the shared HBM gives each far less than MTE2's rate
BANDWIDTH = """
.kernel t
.arg x ptr f32
    arg s0, 0
    pid s1, 0
    mul s1, s1, 65536
    add s0, s0, s1
    load ub[0], gm[s0], dtype=f32, rows=1, cols=16384, src_rs=16384
    set_flag mte2, v, 0
    wait_flag mte2, v, 0
"""


def run(text: str, grid: int, x: np.ndarray, **options: object):
    return Device().run(assemble(text), (grid,), [x], SimOptions(**options))


def test_a_flag_wait_names_the_flag_and_the_producing_pipe_and_ends_when_the_load_completes(tmp_path) -> None:
    res = run(FLAG_WAIT, 1, np.zeros(4096, np.float32), trace=True)
    stalls = res.stall_reasons()
    assert [(s.pipe, s.reason, s.source, s.flag) for s in stalls] == [("v", "flag", "mte2", "mte2->v #0")]
    (stall,) = stalls
    assert stall.cycles == res.pipe_stall["v"] > 0
    res.write_trace(tmp_path / "t.json")
    events = json.loads((tmp_path / "t.json").read_text())["traceEvents"]
    load = next(e for e in events if e["ph"] == "X" and e["name"] == "load")
    assert stall.start == 3  # the wait_flag's bundle issues on cycle 3
    assert stall.start + stall.cycles == load["ts"] + load["dur"] + Device().spec.mte2.latency


def test_a_full_queue_stalls_issue_and_says_whose_queue() -> None:
    res = run(QUEUE_FULL, 1, np.zeros(16384, np.float32), trace=True)
    full = [s for s in res.stall_reasons() if s.reason == "queue full"]
    assert full and {(s.pipe, s.source) for s in full} == {("s", "v")}
    assert sum(s.cycles for s in full) == res.pipe_stall["s"] > 0


def test_bandwidth_stalls_are_the_part_of_each_load_past_its_pipe_rate(tmp_path) -> None:
    dev = Device()
    cores = dev.spec.cores
    res = dev.run(assemble(BANDWIDTH), (cores,), [np.zeros(16384 * cores, np.float32)], SimOptions(trace=True))
    waits = [s for s in res.stall_reasons() if s.reason == "bandwidth"]
    assert {(s.pipe, s.source) for s in waits} == {("mte2", "GM")} and len({s.core for s in waits}) > 1
    res.write_trace(tmp_path / "t.json")
    events = json.loads((tmp_path / "t.json").read_text())["traceEvents"]
    loads = {e["pid"]: e for e in events if e["ph"] == "X" and e["name"] == "load"}
    slices = [e for e in events if e["ph"] == "X" and e["name"] == "stall: bandwidth"]
    assert len(slices) == len(waits)
    for s in slices:  # the stall is the tail of its load's slice: the load at the pipe's rate, then waiting
        load = loads[s["pid"]]
        assert load["ts"] < s["ts"] and s["ts"] + s["dur"] == load["ts"] + load["dur"]
        assert s["ts"] - load["ts"] >= 65536 / dev.spec.mte2.bytes_per_cycle
    # all cores together cannot beat the HBM's rate
    assert res.cycles >= 65536 * cores / dev.spec.hbm_bytes_per_cycle


def test_flag_flows_join_each_set_to_its_wait_with_unique_ids(tmp_path) -> None:
    res = run(QUEUE_FULL.replace("cols=8\n", "cols=8\n    set_flag v, mte3, 1\n    wait_flag v, mte3, 1\n", 1),
              2, np.zeros(16384, np.float32), trace=True)
    res.write_trace(tmp_path / "t.json")
    events = json.loads((tmp_path / "t.json").read_text())["traceEvents"]
    starts = {e["id"]: e for e in events if e["ph"] == "s"}
    ends = {e["id"]: e for e in events if e["ph"] == "f"}
    assert len(starts) == sum(e["ph"] == "s" for e in events) == 4  # two flags on each of two cores
    assert starts.keys() == ends.keys()
    pipe = {name: i for i, name in enumerate(PIPE_NAMES)}
    for i, s in starts.items():
        f = ends[i]
        src, dst = s["name"].split(" ")[0].split("->")
        assert (s["tid"], f["tid"]) == (pipe[src], pipe[dst]) and s["pid"] == f["pid"]
        assert f["bp"] == "e" and f["ts"] >= s["ts"]
        wait = next(e for e in events if e["ph"] == "X" and e["name"] == "wait_flag" and e["pid"] == f["pid"]
                    and e["tid"] == f["tid"] and e["ts"] <= f["ts"] <= e["ts"] + e["dur"])
        assert wait["args"]["instr"].startswith(f"wait_flag {src}, {dst}")


@pytest.mark.parametrize("text,grid,size", [(FLAG_WAIT, 1, 4096), (QUEUE_FULL, 3, 16384),
                                            (BANDWIDTH, 24, 16384 * 24)])
def test_recording_stall_reasons_changes_no_cycle(text: str, grid: int, size: int) -> None:
    x = np.zeros(size, np.float32)
    plain = run(text, grid, x, functional=False, detect_races=False)  # the generated timing-only code
    traced = run(text, grid, x, trace=True)
    assert (traced.cycles, traced.pipe_busy, traced.pipe_stall) == (plain.cycles, plain.pipe_busy, plain.pipe_stall)
    assert not plain.traced and plain.stall_reasons() == [] and plain.op_totals() == {}

