"""Roofline verdicts: which unit limits a launch, from its measured per-pipe figures and the spec's rates.

Each unit gives a lower bound on the launch's cycles: a pipe cannot finish before the busiest core's
busy cycles on it (net of time spent waiting on GM bandwidth, which is charged to L2/HBM), and the
shared L2 and HBM cannot move the launch's bytes faster than the spec's rates. The unit whose bound
is nearest the measured cycles limits the kernel; if none comes near (under half), the pipes spend
their time waiting on each other and the launch is latency-bound. The advice is built from the same
figures (instruction counts and mean cycles from the trace, the spec's command set-up costs).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the record reads its verdict from here
    from npulang.runtime.record import RunRecord

SETUP_SHARE = 0.2  # above this share of a load's cycles, its command set-up is what to cut
LATENCY_BOUND = 0.5  # under this fraction of the cycles, no unit limits: the pipes wait on each other
# the pipes by the unit they are the roofline of
DMA_UNITS = ("MTE2", "MTE3", "FIX")  # pipes whose GM transfers may wait on shared bandwidth
UNITS = {"m": "cube", "v": "vector", "mte2": "MTE2", "mte1": "MTE1", "fix": "FIX", "mte3": "MTE3", "s": "scalar"}


@dataclass(frozen=True)
class Verdict:
    """Where a launch sits on the roofline: every unit's bound in cycles, the limiter and what to try."""

    cycles: int
    bounds: dict[str, float]  # unit -> lower bound on the launch's cycles from that unit alone
    limiter: str  # a unit name, or "latency"
    advice: str  # one line: what limits the kernel and what to try

    @property
    def utilisation(self) -> dict[str, float]:
        """Each unit's bound as a fraction of the measured cycles (its roofline position)."""
        return {unit: b / max(1, self.cycles) for unit, b in self.bounds.items()}

    def __str__(self) -> str:
        return self.advice


def unit_bounds(run: RunRecord) -> dict[str, float]:
    """Lower bounds on `run.cycles` per unit: the busiest core's busy cycles per pipe (net of its waits on GM
    bandwidth when the launch was traced), and the shared L2 and HBM traffic over their rates."""
    bounds: dict[str, float] = {}
    waits = run.core_bandwidth or [{} for _ in run.core_busy]
    for pipe, unit in UNITS.items():
        net = [busy.get(pipe, 0) - wait.get(pipe, 0) for busy, wait in zip(run.core_busy, waits)]
        bounds[unit] = float(max(net, default=run.pipe_busy.get(pipe, 0)))
    spec = run.machine
    bounds["HBM"] = run.hbm_bytes / spec.hbm_bytes_per_cycle
    bounds["L2"] = run.gm_bytes / spec.l2_bytes_per_cycle
    return bounds


def verdict(run: RunRecord) -> Verdict | None:
    """The launch's roofline verdict (None for an interpreted launch, which has no cycles)."""
    if run.cycles is None:
        return None
    bounds = unit_bounds(run)
    cycles = max(1, run.cycles)
    limiter = max(bounds, key=lambda u: bounds[u])
    if bounds[limiter] < LATENCY_BOUND * cycles:
        return Verdict(run.cycles, bounds, "latency", _latency_advice(run, bounds))
    share = bounds[limiter] / cycles
    advice = f"{limiter}-bound ({share:.0%} of {run.cycles:,} cycles): " + _advice(run, limiter, bounds)
    if run.stalls is None and limiter in DMA_UNITS:
        advice += (" (untraced: this pipe's busy time includes waits on L2/HBM bandwidth; profile the launch "
                   "in npu.profile() to separate them)")
    return Verdict(run.cycles, bounds, limiter, advice)


def _mean(run: RunRecord, pipe: str) -> tuple[int, float]:
    """Instructions on `pipe` (flags left out) and their mean busy cycles (from the trace; (0, 0) without one)."""
    found = [v for op, v in run.op_cycles.get(pipe, {}).items() if op not in ("set_flag", "wait_flag")]
    n = sum(f[0] for f in found)
    return n, (sum(f[1] for f in found) / n if n else 0.0)


def _advice(run: RunRecord, unit: str, bounds: dict[str, float]) -> str:
    spec = run.machine
    mib = 1 << 20
    if unit == "HBM":
        return (f"moves {run.hbm_bytes / mib:.2f} MiB from HBM at {spec.hbm_bytes_per_cycle:.0f} B/cycle; "
                f"only less traffic helps: reuse operands from L1/L2 (larger tiles, a grid order sharing them)")
    if unit == "L2":
        return (f"moves {run.gm_bytes / mib:.2f} MiB through L2 at {spec.l2_bytes_per_cycle:.0f} B/cycle; "
                f"larger tiles read each operand fewer times")
    if unit == "MTE2":
        loads, mean = _mean(run, "mte2")
        mmads, cube = _mean(run, "m")
        fixed = spec.mte2.command_cycles
        out = (f"{loads:,} loads of {mean:.0f} cycles on average ({fixed} of each is command set-up)" if loads
               else f"MTE2 busy {bounds['MTE2']:,.0f} cycles ({fixed} of each load is command set-up)")
        if mmads:
            ratio = bounds["MTE2"] / max(1, bounds["cube"])
            out += f", {ratio:.1f} MTE2 cycles per cube cycle ({mmads:,} mmads of {cube:.0f} cycles)"
        if mean and fixed / mean > SETUP_SHARE:  # many short loads: their set-up is the cost
            out += "; try longer loads (a larger BLOCK_K, fewer commands)"
        else:  # long loads at the pipe's rate: only fewer bytes per MAC helps
            out += (f"; loads run at {spec.mte2.bytes_per_cycle} B/cycle: try larger BLOCK_M/BLOCK_N so each "
                     f"loaded byte feeds more MACs")
        return out + (" or num_stages=3 so loads run further ahead of the cube" if mmads else "")
    if unit == "cube":
        mmads, cube = _mean(run, "m")
        counted = f"{mmads:,} mmads of {cube:.0f} cycles on average: " if mmads else ""
        return (f"{counted}the cube is the busiest unit; overlap the rest "
                f"(num_stages) to near its roof, then only fewer padded fractals (tiles multiple of "
                f"{spec.cube.m}) or a faster dtype help")
    if unit == "vector":
        ops, mean = _mean(run, "v")
        counted = f"{ops:,} vector instructions of {mean:.0f} cycles on average; " if ops else ""
        return (f"{counted}fuse elementwise steps, keep "
                f"values in UB between them, or move work to the cube")
    if unit in ("MTE3", "FIX"):
        return f"the {unit} pipe writes results back; store larger tiles (fewer commands) or in a narrower dtype"
    if unit == "MTE1":
        return "L1 -> L0 moves dominate; reuse L0A/L0B tiles across more mmads (larger N or M per program)"
    return "scalar issue dominates (address arithmetic, loop control); unroll with npu.static_range or larger tiles"


def _latency_advice(run: RunRecord, bounds: dict[str, float]) -> str:
    cycles = max(1, run.cycles or 0)
    best = max(bounds, key=lambda u: bounds[u])
    head = (f"latency-bound: no unit is busy over {LATENCY_BOUND:.0%} of {cycles:,} cycles "
            f"(most: {best} {bounds[best] / cycles:.0%})")
    used = sum(1 for c in run.core_busy if any(c.values()))
    if used < run.machine.cores:
        head += f"; {used} of {run.machine.cores} cores used: more, smaller programs would fill the others"
    flags = [s for s in run.stalls or () if s.reason == "flag"]
    if flags:
        top = flags[0]
        head += (f"; {top.pipe} waits most on flag {top.flag} from {top.source} ({top.cycles:,} cycles): "
                 f"the pipes run one after another: overlap them (num_stages, several programs per core)")
    return head
