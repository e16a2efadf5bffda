"""The `systolic128` preset's cube against SCALE-Sim 3.0: a GEMM on one core with its operands resident in
L0A/L0B, as many mmads as the L0 capacities require, lands within 10 % of SCALE-Sim's compute cycles.

The reference figures come from SCALE-Sim 3.0 (PyPI `scalesim`) for one 128x128 array with stall-free
bandwidth; `benchmarks/scalesim_check.py` reruns them. SCALE-Sim counts folds x (T + rows + cols - 2)
(+ rows for weight-stationary) and reports the 0-based cycle of the last output, one less than the count.
"""

from __future__ import annotations

import math

import pytest

from isa import MachineSpec
from isa.asm import assemble
from simulator import Device, RunResult, SimOptions

SCALESIM_COMPUTE_CYCLES = {  # (dataflow, M = N = K): SCALE-Sim 3.0, 128x128 array
    ("os", 256): 2_039, ("os", 512): 12_255, ("os", 1024): 81_791,
    ("ws", 256): 2_551, ("ws", 512): 14_303, ("ws", 1024): 89_983,
}
BF16 = 2


def largest_fold_multiple(limit: int, fold: int, dim: int) -> int:
    """The largest multiple of `fold` that divides `dim` and is at most `limit` (at least one fold)."""
    best = fold
    for t in range(fold, dim + 1, fold):
        if dim % t == 0 and t <= limit:
            best = t
    return best


def gemm_tiles(spec: MachineSpec, size: int) -> tuple[int, int, int]:
    """(m, n, k) of each mmad for a size^3 bf16 GEMM, from the L0 capacities. Output-stationary keeps K whole
    (a fold streams all of it), weight-stationary keeps M whole (a fold streams every row of A)."""
    cube, buf = spec.cube, spec.buffers
    if cube.dataflow == "os":
        m = largest_fold_multiple(buf.l0a // (size * BF16), cube.rows, size)
        n = largest_fold_multiple(min(buf.l0b // (size * BF16), buf.l0c // (m * 4)), cube.cols, size)
        return m, n, size
    k = largest_fold_multiple(buf.l0a // (size * BF16), cube.rows, size)
    n = largest_fold_multiple(min(buf.l0b // (k * BF16), buf.l0c // (size * 4)), cube.cols, size)
    return size, n, k


def run_gemm(spec: MachineSpec, size: int) -> tuple[RunResult, tuple[int, int, int]]:
    m, n, k = gemm_tiles(spec, size)
    assert m * k * BF16 <= spec.buffers.l0a and k * n * BF16 <= spec.buffers.l0b and m * n * 4 <= spec.buffers.l0c
    count = (size // m) * (size // n) * (size // k)
    lines = [".kernel gemm"]
    lines += [f"    mmad l0c[0], l0a[0], l0b[0], dtype=bf16, m={m}, n={n}, k={k}, init={1 if k == size else 0}"] * count
    result = Device(spec).run(assemble("\n".join(lines) + "\n"), (1,), [], SimOptions(functional=False))
    return result, (m, n, k)


def fold_cycles(spec: MachineSpec, m: int, n: int, k: int) -> int:
    """One mmad's analytic cycles on the systolic model, from the spec fields."""
    rows, cols = spec.cube.rows, spec.cube.cols
    if spec.cube.dataflow == "os":
        return math.ceil(m / rows) * math.ceil(n / cols) * (k + rows + cols - 2)
    return math.ceil(k / rows) * math.ceil(n / cols) * (m + 2 * rows + cols - 2)


@pytest.mark.parametrize("dataflow,size", sorted(SCALESIM_COMPUTE_CYCLES))
def test_systolic_gemm_within_10_percent_of_scalesim(dataflow: str, size: int) -> None:
    base = MachineSpec.load("systolic128")
    assert (base.cube.model, base.cube.rows, base.cube.cols, base.cube.dataflow) == ("systolic", 128, 128, "os")
    spec = base if dataflow == "os" else base.replace(cube={"dataflow": "ws"})
    result, (m, n, k) = run_gemm(spec, size)
    count = (size // m) * (size // n) * (size // k)
    assert result.pipe_busy["m"] == count * fold_cycles(spec, m, n, k)
    reference = SCALESIM_COMPUTE_CYCLES[(dataflow, size)]
    assert abs(result.cycles - reference) <= 0.10 * reference, (result.cycles, reference)


def test_one_fold_per_mmad_matches_scalesim_to_the_cycle() -> None:
    """A single output-stationary mmad of 256^3 is SCALE-Sim's whole GEMM: 4 folds of (256 + 254) cycles."""
    spec = MachineSpec.load("systolic128")
    text = ".kernel t\n    mmad l0c[0], l0a[0], l0b[0], dtype=bf16, m=256, n=256, k=256\n"
    busy = Device(spec).run(assemble(text), (1,), [], SimOptions(functional=False)).pipe_busy["m"]
    assert busy == SCALESIM_COMPUTE_CYCLES[("os", 256)] + 1


def test_systolic_dtype_rates_stretch_the_streamed_dimension() -> None:
    """f32 at rate k_f32 / k streams K as ceil(K k / k_f32) bf16 slots on the output-stationary array."""
    spec = MachineSpec.load("systolic128")
    rate = spec.cube_rate("f32")
    assert rate < 1
    text = ".kernel t\n    mmad l0c[0], l0a[0], l0b[0], dtype=f32, m=128, n=128, k=256\n"
    busy = Device(spec).run(assemble(text), (1,), [], SimOptions(functional=False)).pipe_busy["m"]
    assert busy == fold_cycles(spec, 128, 128, math.ceil(256 / rate))
    assert spec.cube_macs_per_cycle(dtype="f32") == spec.cube.rows * spec.cube.cols * rate


def test_systolic_zeroing_costs_the_l0c_write() -> None:
    spec = MachineSpec.load("systolic128")
    m, n = 1024, 128
    text = f".kernel t\n    mmad l0c[0], l0a[0], l0b[0], dtype=bf16, m={m}, n={n}, k=0\n"
    busy = Device(spec).run(assemble(text), (1,), [], SimOptions(functional=False)).pipe_busy["m"]
    assert busy == math.ceil(m * n * 4 / spec.cube.l0c_bytes_per_cycle) > 1
