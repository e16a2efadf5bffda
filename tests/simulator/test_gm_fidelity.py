"""GM model corners: stores reach HBM, no burst beats the HBM rate, gathers take the L2/HBM path."""

from __future__ import annotations

import numpy as np
import pytest

from isa import MachineSpec
from isa.asm import assemble
from simulator import Device, RaceError, SimOptions

RELU_IN_PLACE = """
.kernel relu_in_place
.arg x ptr f16
    arg s0, 0
    pid s1, 0
    mul s1, s1, {tile_bytes}
    add s0, s0, s1
    load ub[0], gm[s0], dtype=f16, rows={rows}, cols={cols}, src_rs={cols}
    set_flag mte2, v, 0
    wait_flag mte2, v, 0
    vun relu, ub[{out}], ub[0], dtype=f16, rows={rows}, cols={cols}
    set_flag v, mte3, 0
    wait_flag v, mte3, 0
    store gm[s0], ub[{out}], dtype=f16, rows={rows}, cols={cols}, dst_rs={cols}
"""


def relu_program(rows: int, cols: int) -> object:
    tile = rows * cols * 2
    return assemble(RELU_IN_PLACE.format(rows=rows, cols=cols, tile_bytes=tile, out=tile))


def test_in_place_relu_larger_than_l2_stays_within_the_read_write_roofline() -> None:
    """Every byte is read once (a miss) and written once (through to HBM): the launch can never beat
    (bytes read + bytes written) / HBM bandwidth, and computes the relu."""
    spec = MachineSpec.load("davinci").replace(l2={"bytes": 256 * 1024})
    rows, cols = 32, 512  # 32 KiB per program
    programs = 4 * spec.cores  # 3 MiB: 12x the L2
    x = np.random.default_rng(1).standard_normal(programs * rows * cols).astype(np.float16)
    ref = np.maximum(x, 0)
    res = Device(spec).run(relu_program(rows, cols), (programs,), [x])
    np.testing.assert_array_equal(x, ref)
    assert res.hbm_bytes == 2 * x.nbytes
    assert res.cycles >= 2 * x.nbytes / spec.hbm_bytes_per_cycle
    timing = Device(spec).run(relu_program(rows, cols), (programs,), [x], SimOptions(functional=False))
    assert timing.cycles == res.cycles


def test_stores_to_resident_lines_still_cost_hbm_bandwidth(spec: MachineSpec) -> None:
    """Write-through: a warm in-place pass reads from L2 but writes every byte to HBM again."""
    rows, cols = 32, 512
    programs = 2 * spec.cores
    x = np.ones(programs * rows * cols, np.float16)
    device = Device(spec)
    device.run(relu_program(rows, cols), (programs,), [x], SimOptions(functional=False))
    warm = device.run(relu_program(rows, cols), (programs,), [x], SimOptions(functional=False))
    assert warm.hbm_bytes == x.nbytes  # the reads hit (the first pass's stores left the lines resident)
    assert warm.cycles >= x.nbytes / spec.hbm_bytes_per_cycle


COLD_LOAD = """
.kernel cold_load
.arg x ptr f16
    arg s0, 0
    pid s1, 0
    mul s2, s1, {size}
    add s0, s0, s2
    mul s3, s1, {stagger}
    add s3, s3, 1
wait:
    sub s3, s3, 1
    bnz s3, wait
    load ub[0], gm[s0], dtype=f16, rows=1, cols={cols}, src_rs={cols}
"""


@pytest.mark.parametrize("stagger", [0, 5, 37])
def test_no_window_of_256_cycles_moves_more_than_the_hbm_rate(spec: MachineSpec, stagger: int) -> None:
    """One cold load per core, starting at a sweep of offsets within a calendar bucket (and staggered
    across cores): from the first start to the last completion, HBM moves at most its rate (1 % slack)."""
    rate = spec.hbm_bytes_per_cycle
    checked = 0
    for pad in range(0, 260, 13):  # moves every load's start through two calendar buckets
        for size in (8192, 16384, 65536):
            source = COLD_LOAD.format(size=size, cols=size // 2, stagger=stagger)
            source = source.replace("wait:", "\n".join(["    nop"] * pad) + "\nwait:")
            x = np.zeros(spec.cores * size // 2, np.float16)
            res = Device(spec).run(assemble(source), (spec.cores,), [x], SimOptions(functional=False, trace=True))
            mte2 = [(start, occ) for core, pipe, start, occ, *_ in res._trace if occ and start >= pad]
            first = min(s for s, _ in mte2)
            last = max(s + o for s, o in mte2)
            assert len(mte2) == spec.cores and res.hbm_bytes == x.nbytes
            if last - first >= 256:
                checked += 1
                assert x.nbytes <= 1.01 * rate * (last - first), (pad, size, x.nbytes / (rate * (last - first)))
    assert checked >= 40


GATHER = """
.kernel gathers
.arg src ptr f32
.arg out ptr f32
    arg s0, 0
    arg s1, 1
    viota ub[0], 0, dtype=i32, rows=1, cols={n}
    set_flag v, mte2, 0
    wait_flag v, mte2, 0
    gather ub[{data}], gm[s0], idx=ub[0], dtype=f32, n={n}
    set_flag mte2, mte3, 0
    wait_flag mte2, mte3, 0
    scatter gm[s1], ub[{data}], idx=ub[0], dtype=f32, n={n}
"""


def test_gathers_and_scatters_are_costed_as_lines_and_bursts_identically_in_both_modes(spec: MachineSpec) -> None:
    """Timing-only mode has no indices: every lane is costed at its worst case, one burst on the bus,
    and for a gather one L2 line missed (for a scatter one burst written through), so both modes agree."""
    n = 1024
    burst, line = spec.gm.burst_bytes, spec.l2.line_bytes
    program = assemble(GATHER.format(n=n, data=4 * n))
    src = np.arange(n, dtype=np.float32)
    out = np.zeros(n, np.float32)
    functional = Device(spec).run(program, (1,), [src, out])
    np.testing.assert_array_equal(out, src)
    timing = Device(spec).run(program, (1,), [src, out], SimOptions(functional=False))
    assert functional.cycles == timing.cycles
    assert functional.gm_bytes == 2 * n * burst
    assert functional.hbm_bytes == n * line + n * burst
    # a port-bound lone core: each pipe moves its lanes' bursts at its port rate at best
    assert timing.pipe_busy["mte2"] >= n * burst / spec.mte2.bytes_per_cycle
    assert timing.pipe_busy["mte3"] >= n * burst / spec.mte3.bytes_per_cycle


LATE_AND_EARLY = """
.kernel late_and_early
.arg x ptr f16
.arg y ptr f16
    arg s0, 0
    arg s1, 1
    pid s2, 0
    lt s3, s2, {late}
    bz s3, read_y
    mul s4, s2, {stream}
    add s0, s0, s4
    mov s5, 0
stream:
    load ub[0], gm[s0], dtype=f16, rows=1, cols={cols}, src_rs={cols}
    add s0, s0, {chunk}
    add s5, s5, 1
    lt s6, s5, {loads}
    bnz s6, stream
read_y:
    load ub[0], gm[s1], dtype=f16, rows=1, cols={cols}, src_rs={cols}
"""


@pytest.mark.parametrize("functional", [False, True])
def test_l2_residency_follows_simulated_time_not_grid_order(functional: bool) -> None:
    """Programs 0..6 stream 2 MiB each, then read chunk Y late; programs 7..13 read Y at cycle 0. The
    late readers come first in grid order, but the early readers fetch Y from HBM and the late ones hit.
    HBM is made slower than a core's port so that a miss shows in the load's occupancy."""
    spec = MachineSpec.load("davinci")
    hbm_rate = spec.mte2.bytes_per_cycle / 2
    spec = spec.replace(hbm={"bytes_per_second": hbm_rate * spec.clock_ghz * 1e9})
    chunk, late = 65536, 7
    loads = 2 * 1024 * 1024 // chunk
    program = assemble(LATE_AND_EARLY.format(late=late, stream=loads * chunk, chunk=chunk, cols=chunk // 2,
                                             loads=loads))
    x = np.zeros(late * loads * chunk // 2, np.float16)
    y = np.ones(chunk // 2, np.float16)
    res = Device(spec).run(program, (2 * late,), [x, y], SimOptions(functional=functional, trace=True))
    assert res.hbm_bytes == x.nbytes + y.nbytes  # Y is fetched once
    y_loads = {}  # core -> (start, occupancy) of its last load: the read of Y
    for core, _pipe, start, occ, index, _pid in res._trace:
        if occ and res._instrs[index].op == "load":
            y_loads[core] = (start, occ)
    early = [y_loads[c] for c in range(late, 2 * late)]
    assert max(s for s, _ in early) < min(s for s, _ in (y_loads[c] for c in range(late)))
    assert early[0][1] >= chunk / hbm_rate  # the first early reader misses: HBM-bound
    # the late readers hit: port-bound, sharing L2 bandwidth with the streams, never HBM-bound
    assert all(chunk / spec.mte2.bytes_per_cycle <= y_loads[c][1] < chunk / hbm_rate for c in range(late))


SCATTER_THEN_LOAD = """
.kernel scatter_then_load
.arg idx ptr i32
.arg out ptr f32
    arg s0, 0
    arg s1, 1
    load ub[0], gm[s0], dtype=i32, rows=1, cols=8, src_rs=8
    set_flag mte2, mte3, 0
    wait_flag mte2, mte3, 0
    scatter gm[s1], ub[64], idx=ub[0], dtype=f32, n=8
    load ub[1024], gm[s1{load_at}], dtype=f32, rows=1, cols=1, src_rs=1
"""


@pytest.mark.parametrize("functional", [True, False])
def test_a_scatter_then_an_unordered_load_of_its_bytes_is_a_race(functional: bool) -> None:
    """The load of out[12] is not ordered after the scatter that writes it (lane 3 -> element 12)."""
    idx = np.array([0, 2, 6, 12, 14, 16, 18, 20], np.int32)
    out = np.zeros(32, np.float32)
    with pytest.raises(RaceError, match="data race on gm bytes"):
        Device().run(assemble(SCATTER_THEN_LOAD.format(load_at="+48")), (1,), [idx, out],
                     SimOptions(functional=functional))


def test_a_load_of_bytes_no_scatter_lane_writes_is_not_a_race() -> None:
    """With the indices known (functional mode), only the lanes' bytes count: out[1] is never written."""
    idx = np.array([0, 2, 6, 12, 14, 16, 18, 20], np.int32)
    out = np.zeros(32, np.float32)
    Device().run(assemble(SCATTER_THEN_LOAD.format(load_at="+4")), (1,), [idx, out])
