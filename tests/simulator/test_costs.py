"""Costs that must not be free: per-command DMA set-up, on-chip writes (padding, fills), and vector
operands costed by the 32-byte blocks they touch. Every figure is derived from spec fields."""

from __future__ import annotations

import math

import numpy as np
import pytest

from isa import MachineSpec, SourceLoc
from isa.asm import assemble
from simulator import Device, RunResult, SimOptions

from sim_harness import dma_cycles

LOC = SourceLoc("t.py", 1)


def run(spec: MachineSpec, body: str, args: list[np.ndarray], functional: bool = True) -> RunResult:
    """One program of `body` (may use s0, s1 for the first two pointer arguments)."""
    lines = [".kernel t", *(f".arg a{i} ptr f32" for i in range(len(args)))]
    lines += [f"    arg s{i}, {i}" for i in range(len(args))]
    return Device(spec).run(assemble("\n".join(lines) + "\n" + body), (1,), args, SimOptions(functional=functional))


def loop(count: int, instr: str, step: int, setup: str = "") -> str:
    """`count` copies of `instr` in a loop, s0 advanced by `step` bytes between them, issue marked LOC."""
    return f"""{setup}    mov s5, 0
again:
    {instr} @ "t.py":1
    add s0, s0, {step}
    add s5, s5, 1
    lt s6, s5, {count}
    bnz s6, again
"""


# -- defect 4: per-command DMA cost ---------------------------------------------------------------
@pytest.mark.parametrize("count,nbytes", [(1, 65536), (64, 1024), (512, 128)])
def test_many_small_loads_cost_their_commands(spec: MachineSpec, count: int, nbytes: int) -> None:
    """64 KiB in 1, 64 or 512 loads: each command occupies MTE2 for its set-up plus its bytes."""
    x = np.zeros(65536 // 4, np.float32)
    cols = nbytes // 4
    body = loop(count, f"load ub[0], gm[s0], dtype=f32, rows=1, cols={cols}, src_rs={cols}", nbytes)
    res = run(spec, body, [x], functional=False)
    each = dma_cycles(spec.mte2, nbytes, nbytes)
    assert each == spec.mte2.command_cycles + nbytes // spec.mte2.bytes_per_cycle
    assert res.pipe_busy["mte2"] == res.line_cycles[LOC] == count * each
    assert res.cycles >= count * each + spec.mte2.latency


def test_small_commands_cost_more_than_one_large_on_every_dma_pipe(spec: MachineSpec) -> None:
    """MTE2, MTE1, FIX, MTE3: 16 commands of 1/16 of the bytes take 15 set-ups longer than one."""
    x = np.zeros(16384, np.float32)
    cases = {  # pipe: (spec section, instruction of `cols` f32 per row, its rate)
        "mte2": (spec.mte2, "load ub[0], gm[s0], dtype=f32, rows=16, cols={c}, src_rs={c}", spec.mte2.bytes_per_cycle),
        "mte3": (spec.mte3, "store gm[s0], ub[0], dtype=f32, rows=16, cols={c}, dst_rs={c}", spec.mte3.bytes_per_cycle),
        "fix": (spec.fix, "fixpipe ub[0], l0c[0], src_dtype=f32, dtype=f32, rows=16, cols={c}",
                spec.fix.bytes_per_cycle),
        "mte1": (spec.mte1, "move l0a[0], l1[0], dtype=f32, rows=16, cols={c}", spec.mte1.l0a_bytes_per_cycle),
    }
    for pipe, (section, text, rate) in cases.items():
        one = run(spec, loop(1, text.format(c=256), 0), [x], functional=False).pipe_busy[pipe]
        many = run(spec, loop(16, text.format(c=16), 0), [x], functional=False).pipe_busy[pipe]
        assert one == section.command_cycles + math.ceil(16 * 256 * 4 / rate), pipe
        assert many == 16 * (section.command_cycles + math.ceil(16 * 16 * 4 / rate)), pipe
        assert many - one == 15 * section.command_cycles > 0, pipe


def test_set_up_is_not_hidden_behind_a_contended_gm_stream(spec: MachineSpec) -> None:
    """Every core streams its own cold 64 KiB (HBM-bound): the GM side of each command starts after its
    set-up, so 64 commands of 1 KiB still pay 64 set-ups on every core's MTE2. Both streams stay
    HBM-bound (64 set-ups fit inside each core's share of the HBM time), so neither beats the roofline."""
    x = np.zeros(spec.cores * 65536 // 4, np.float32)

    def stream(count: int) -> RunResult:
        cols = 65536 // count // 4
        body = loop(count, f"load ub[0], gm[s0], dtype=f32, rows=1, cols={cols}, src_rs={cols}", cols * 4,
                    setup="    pid s1, 0\n    mul s1, s1, 65536\n    add s0, s0, s1\n")
        lines = [".kernel t", ".arg x ptr f32", "    arg s0, 0"]
        return Device(spec).run(assemble("\n".join(lines) + "\n" + body), (spec.cores,), [x],
                                SimOptions(functional=False))

    one, many = stream(1), stream(64)
    assert one.hbm_bytes == many.hbm_bytes == x.nbytes
    for core in many.per_core:
        assert core.busy["mte2"] >= 64 * spec.mte2.command_cycles + 65536 // spec.mte2.bytes_per_cycle
    roofline = x.nbytes / spec.hbm_bytes_per_cycle
    assert min(one.cycles, many.cycles) >= roofline


# -- defect 5: on-chip writes cost time --------------------------------------------------------------
def test_fully_padded_load_fills_at_the_mte2_rate(spec: MachineSpec) -> None:
    """valid_rows=0 reads nothing from GM but still writes all of L1 (512 KiB)."""
    rows, cols = 256, spec.buffers.l1 // (256 * 2)
    x = np.zeros(16, np.float32)
    body = f'    load l1[0], gm[s0], dtype=f16, rows={rows}, cols={cols}, src_rs={cols}, valid_rows=0 @ "t.py":1\n'
    res = run(spec, body, [x])
    fill = spec.mte2.command_cycles + spec.buffers.l1 // spec.mte2.bytes_per_cycle
    assert res.line_cycles[LOC] == fill
    assert res.cycles == 1 + fill + spec.mte2.latency
    assert res.gm_bytes == 0


def test_partly_padded_load_costs_the_whole_tile(spec: MachineSpec) -> None:
    """2 valid rows of 64: the GM side moves 2 rows, the on-chip side writes all 64."""
    x = np.zeros(64 * 64, np.float32)
    body = '    load ub[0], gm[s0], dtype=f32, rows=64, cols=64, src_rs=64, valid_rows=2, pad=1.0 @ "t.py":1\n'
    res = run(spec, body, [x])
    assert res.line_cycles[LOC] == dma_cycles(spec.mte2, 64 * 64 * 4, 2 * 64 * 4)
    assert res.gm_bytes == 2 * 64 * 4


def test_img2col_padding_taps_are_written(spec: MachineSpec) -> None:
    """A 3x3 window over a 1x1 map: 8 of 9 taps are padding, all are written at the MTE1 rate."""
    x = np.zeros(16, np.float32)
    body = ('    img2col l0a[0], l1[0], dtype=f16, c=16, h=1, w=1, kh=3, kw=3, pad_top=1, pad_left=1, ow=1, rows=16, '
            'cols=144 @ "t.py":1\n')
    res = run(spec, body, [x])
    assert res.line_cycles[LOC] == dma_cycles(spec.mte1, 16 * 144 * 2, rate=spec.mte1.l0a_bytes_per_cycle)


def test_vdup_fill_costs_its_blocks(spec: MachineSpec) -> None:
    """Zero-filling all of UB takes one repeat per 8 blocks written."""
    n = spec.buffers.ub // 4
    res = run(spec, f'    vdup ub[0], 0.0, dtype=f32, rows=1, cols={n} @ "t.py":1\n', [])
    assert res.line_cycles[LOC] == spec.buffers.ub // spec.vector.bytes_per_cycle


# -- defect 6: vector cost by the blocks each operand touches ------------------------------------------
def repeats(spec: MachineSpec, blocks: int) -> int:
    return max(1, math.ceil(blocks / (spec.vector.bytes_per_cycle // spec.vector.block_bytes)))


def vector_cycles(spec: MachineSpec, instr: str) -> int:
    """Occupancy of one vector instruction, the same in functional and timing-only runs."""
    body = f'    {instr} @ "t.py":1\n'
    full, timing = run(spec, body, []), run(spec, body, [], functional=False)
    assert full.line_cycles == timing.line_cycles
    return full.line_cycles[LOC]


def test_column_of_separate_blocks_costs_a_block_each(spec: MachineSpec) -> None:
    """64 rows x 1 f32, rows 32 B apart: 64 blocks, 64 / 8 repeats, not 1; packed rows: 1 repeat."""
    pitch = spec.vector.block_bytes // 4
    spread = vector_cycles(spec, f"vun exp, ub[0], ub[4096], dtype=f32, rows=64, cols=1, dst_rs={pitch}, a_rs={pitch}")
    packed = vector_cycles(spec, "vun exp, ub[0], ub[4096], dtype=f32, rows=64, cols=1, dst_rs=1, a_rs=1")
    assert spread == repeats(spec, 64) > 1
    assert packed == repeats(spec, 64 * 4 // spec.vector.block_bytes) == 1


def test_transposing_vcopy_touches_a_block_per_element(spec: MachineSpec) -> None:
    n = 64
    transposed = vector_cycles(spec, f"vcopy ub[0], ub[32768], dtype=f32, rows={n}, cols={n}, a_rs=1, a_cs={n}")
    straight = vector_cycles(spec, f"vcopy ub[0], ub[32768], dtype=f32, rows={n}, cols={n}")
    assert straight == repeats(spec, n * n * 4 // spec.vector.block_bytes)
    assert transposed == repeats(spec, n * n) == 8 * straight


def test_unaligned_rows_touch_an_extra_block(spec: MachineSpec) -> None:
    """Rows of 8 f32 starting 16 B into a block straddle two blocks each."""
    cycles = vector_cycles(spec, "vun abs, ub[16], ub[4096], dtype=f32, rows=16, cols=8, dst_rs=16")
    assert cycles == repeats(spec, 16 * 2)


# each opcode with one operand (or the destination) column-strided: 16 x 8 f32, 128 blocks
STRIDED = [
    "vbin add, ub[0], ub[8192], ub[16384], dtype=f32, rows=16, cols=8, b_cs=2",
    "vbin mul, ub[0], ub[8192], 2.0, dtype=f32, rows=16, cols=8, a_cs=3",
    "vun sqrt, ub[0], ub[8192], dtype=f32, rows=16, cols=8, a_rs=1, a_cs=16",
    "vsel ub[0], ub[16384], ub[8192], 0.0, dtype=f32, rows=16, cols=8, dst_cs=2",
    "vfma ub[0], ub[8192], 0.5, ub[16384], dtype=f32, rows=16, cols=8, a_cs=2",
    "vcast ub[0], ub[8192], from_dtype=f16, dtype=f32, rows=16, cols=8, a_cs=2",
    "vcopy ub[0], ub[8192], dtype=f32, rows=16, cols=8, dst_cs=4",
    "vdup ub[0], 1.0, dtype=f32, rows=16, cols=8, dst_cs=2",
    "viota ub[0], 0, dtype=i32, rows=16, cols=8, dst_cs=2",
    "vred sum, ub[0], ub[8192], dtype=f32, rows=16, cols=8, a_cs=2",
    "vred max, ub[0], ub[8192], dtype=f32, rows=16, cols=8, axis=0, a_cs=2",
    'vprint "t", ub[8192], dtype=f32, rows=16, cols=8, a_cs=2',
]


@pytest.mark.parametrize("instr", STRIDED, ids=lambda s: s.split(",")[0])
def test_every_vector_opcode_costs_its_most_scattered_operand(spec: MachineSpec, instr: str) -> None:
    contiguous = instr.split(", a_")[0].split(", b_")[0].split(", dst_")[0]
    assert vector_cycles(spec, instr) == repeats(spec, 16 * 8)
    assert vector_cycles(spec, contiguous) == repeats(spec, 16 * 8 * 4 // spec.vector.block_bytes)
