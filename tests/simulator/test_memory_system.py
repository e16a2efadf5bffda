"""Shared L2/HBM bandwidth across cores, L2 residency across launches, and pipe overlap."""

from __future__ import annotations

import numpy as np

from isa import MachineSpec
from isa.asm import assemble
from simulator import Device, SimOptions

from sim_harness import dma_cycles

COPY = """
.kernel copy
.arg x ptr f16
.arg out ptr f16
    arg s0, 0
    arg s1, 1
    pid s2, 0
    mul s3, s2, {tile_bytes}
    add s0, s0, s3
    add s1, s1, s3
    load ub[0], gm[s0], dtype=f16, rows={rows}, cols={cols}, src_rs={cols}
    set_flag mte2, mte3, 0
    wait_flag mte2, mte3, 0
    store gm[s1], ub[0], dtype=f16, rows={rows}, cols={cols}, dst_rs={cols}
"""


def test_streaming_copy_on_all_cores_is_hbm_bound_then_l2_bound(spec: MachineSpec) -> None:
    rows, cols = 64, 512  # 64 KiB per program
    programs = 4 * spec.cores
    tile_bytes = rows * cols * 2
    program = assemble(COPY.format(rows=rows, cols=cols, tile_bytes=tile_bytes))
    x = np.random.default_rng(0).standard_normal(programs * rows * cols).astype(np.float16)
    out = np.zeros_like(x)
    device = Device(spec)
    cold = device.run(program, (programs,), [x, out])
    np.testing.assert_array_equal(out, x)
    assert all(len(c.programs) == 4 for c in cold.per_core)
    # every byte read misses and every byte written goes through to HBM: HBM moves reads + writes
    hbm_bytes = 2 * x.nbytes
    assert cold.hbm_bytes == hbm_bytes
    floor = hbm_bytes / spec.hbm_bytes_per_cycle
    assert floor <= cold.cycles <= 1.10 * floor
    warm = device.run(program, (programs,), [x, out])
    assert warm.hbm_bytes == x.nbytes  # reads hit; writes are write-through, warm or not
    assert warm.cycles < 0.6 * cold.cycles
    # nothing moves faster than the ports, the L2 or (for the writes) HBM allow
    port_floor = x.nbytes / spec.cores / spec.mte2.bytes_per_cycle
    assert warm.cycles >= max(port_floor, 2 * x.nbytes / spec.l2_bytes_per_cycle, x.nbytes / spec.hbm_bytes_per_cycle)
    device.flush_l2()
    assert device.run(program, (programs,), [x, out], SimOptions(functional=False)).cycles == cold.cycles


OVERLAP = """
.kernel overlap
.arg x ptr f16
    arg s0, 0
    {dma}
    {mmad}
"""
DMA = "load ub[0], gm[s0], dtype=f16, rows=128, cols=256, src_rs=256"
MMAD = "mmad l0c[0], l0a[0], l0b[0], dtype=f16, m=128, n=128, k=128"


def test_independent_dma_and_mmad_overlap(spec: MachineSpec) -> None:
    x = np.zeros((128, 256), np.float16)

    def cycles(dma: str, mmad: str) -> int:
        return Device(spec).run(assemble(OVERLAP.format(dma=dma, mmad=mmad)), (1,), [x]).cycles

    dma_only, mmad_only, both = cycles(DMA, "nop"), cycles("nop", MMAD), cycles(DMA, MMAD)
    assert dma_only == 1 + dma_cycles(spec.mte2, x.nbytes, x.nbytes) + spec.mte2.latency
    assert mmad_only == 2 + 8 * 8 * 8 + spec.cube.latency
    assert both == max(dma_only, mmad_only)  # not the sum


def test_l2_capacity_evicts_old_lines() -> None:
    small = MachineSpec.load("davinci").replace(l2={"bytes": 64 * 1024})
    program = assemble(COPY.format(rows=64, cols=256, tile_bytes=32768))
    x = np.ones(8 * 64 * 256, np.float16)  # 256 KiB read + 256 KiB written: 8x the L2
    device = Device(small)
    first = device.run(program, (8,), [x, np.zeros_like(x)], SimOptions(functional=False))
    again = device.run(program, (8,), [x, np.zeros_like(x)], SimOptions(functional=False))
    assert again.hbm_bytes == first.hbm_bytes == 2 * x.nbytes  # nothing survived: all misses again


STEPPED = """
.kernel stepped
.arg x ptr f16
    arg s0, 0
    add s0, s0, {first}
    mov s1, 0
loop:
    load ub[0], gm[s0], dtype=f16, rows=1, cols={cols}, src_rs={cols}
    add s0, s0, {step}
    add s1, s1, 1
    lt s2, s1, {loads}
    bnz s2, loop
"""


def test_a_load_whose_address_changes_is_costed_at_each_address(spec: MachineSpec) -> None:
    """Plans are cached by shape and shifted to each address: bursts and L2 lines must still follow
    every address, not the first one."""
    burst, line = spec.gm.burst_bytes, spec.l2.line_bytes
    cols, loads = 100, 40
    x = np.zeros(16384, np.float16)
    for first, step in ((0, 34), (6, 2), (2, 200), (0, 0)):
        res = Device(spec).run(assemble(STEPPED.format(first=first, step=step, cols=cols, loads=loads)), (1,), [x],
                               SimOptions(functional=False))
        starts = [first + i * step for i in range(loads)]
        moved = sum((-(-(a + 2 * cols) // burst) - a // burst) * burst for a in starts)
        lines = {n for a in starts for n in range(a // line, (a + 2 * cols - 1) // line + 1)}
        assert (res.gm_bytes, res.hbm_bytes) == (moved, len(lines) * line)


def test_l2_lines_belong_to_the_array_not_to_a_reused_address(spec: MachineSpec) -> None:
    """numpy reuses freed addresses; a new array there must start cold, or cycles depend on the allocator."""
    rows, cols = 64, 512
    program = assemble(COPY.format(rows=rows, cols=cols, tile_bytes=rows * cols * 2))
    memory = bytearray(spec.cores * rows * cols * 2)
    x = np.frombuffer(memory, np.float16)  # owns nothing numpy knows of: the array is its own owner
    out = np.zeros_like(x)
    device = Device(spec)
    cold = device.run(program, (spec.cores,), [x, out])
    assert device.run(program, (spec.cores,), [x, out]).hbm_bytes == out.nbytes  # warm: only the writes
    same_address = np.frombuffer(memory, np.float16)  # another array at x's address
    assert same_address.ctypes.data == x.ctypes.data
    again = device.run(program, (spec.cores,), [same_address, out])
    assert again.hbm_bytes == x.nbytes + out.nbytes  # its reads miss; writes go through as always
    del x, same_address
    resident = device.gm.l2.resident
    device.run(program, (spec.cores,), [np.zeros_like(out), out])
    assert device.gm.l2.resident < resident + out.nbytes // spec.l2.line_bytes  # dead arrays' lines dropped
    assert cold.hbm_bytes == 2 * out.nbytes
