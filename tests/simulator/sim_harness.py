"""Run one instruction under test between GM loads and a GM store, from hand-written assembly."""

from __future__ import annotations

import math

import numpy as np

from isa import from_numpy
from isa.asm import assemble
from simulator import Device, RunResult, SimOptions

SLOT = 16384  # UB bytes per operand slot
OUT = 8 * SLOT  # UB offset of the output slot


def run_vector(instr: str, inputs: list[np.ndarray], out: np.ndarray, **options: object) -> RunResult:
    """Load each input (flat) into UB slot i, load `out` into the output slot, run `instr` (its text
    may use {in0}, {in1}, ... and {out} for slot addresses), store the output slot back into `out`."""
    args = [*inputs, out]
    lines = [".kernel under_test"]
    lines += [f".arg a{i} ptr {from_numpy(a.dtype).name}" for i, a in enumerate(args)]
    slots = [SLOT * i for i in range(len(inputs))] + [OUT]
    for i, (a, slot) in enumerate(zip(args, slots)):
        lines.append(f"    arg s{i}, {i}")
        lines.append(f"    load ub[{slot}], gm[s{i}], dtype={from_numpy(a.dtype).name}, rows=1, cols={a.size}, "
                     f"src_rs={a.size}")
    lines.append("    set_flag mte2, v, 0")
    lines.append("    wait_flag mte2, v, 0")
    lines.append("    " + instr.format(out=f"ub[{OUT}]", **{f"in{i}": f"ub[{s}]" for i, s in enumerate(slots[:-1])}))
    lines.append("    set_flag v, mte3, 0")
    lines.append("    wait_flag v, mte3, 0")
    lines.append(f"    store gm[s{len(inputs)}], ub[{OUT}], dtype={from_numpy(out.dtype).name}, rows=1, "
                 f"cols={out.size}, dst_rs={out.size}")
    return Device().run(assemble("\n".join(lines) + "\n"), (1,), args, SimOptions(**options))


def strided(flat: np.ndarray, rows: int, cols: int, rs: int, cs: int) -> np.ndarray:
    """The rows x cols view of a flat array with element strides (the reference for tile operands)."""
    return np.lib.stride_tricks.as_strided(flat, (rows, cols), (rs * flat.itemsize, cs * flat.itemsize))


def dma_cycles(pipe: object, onchip_bytes: int, gm_bytes: int = 0, rate: float | None = None) -> int:
    """A lone DMA command's occupancy from the spec: its set-up plus its on-chip bytes at the pipe's
    rate, or its GM side if that is longer (`pipe` is a spec section: spec.mte2, spec.fix, ...)."""
    rate = pipe.bytes_per_cycle if rate is None else rate
    return max(pipe.command_cycles + math.ceil(onchip_bytes / rate), math.ceil(gm_bytes / rate))
