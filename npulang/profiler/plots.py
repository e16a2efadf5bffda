"""Profile plots with matplotlib (PNG, SVG or any format it writes): a roofline of the launches, each
launch's roofline position per unit, and a per-pipe timeline of the slowest launch; a roofline of any set of
measured kernels (an npu-tune run); and what machine variants are worth against a base machine (npu-codesign).

Figures are built with `matplotlib.figure.Figure` directly, never pyplot: no global backend or figure
state, so plotting works headless and from several threads.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure

import isa
from npulang import errors
from npulang.runtime.record import RunRecord

MAX_LAUNCHES = 8  # the position panel shows the slowest launches only
LANE_BYTES = {"f16": 2, "bf16": 2, "f32": 4, "i8": 1}  # a vector lane per element of the roofline's dtype


@dataclass(frozen=True)
class RooflinePoint:
    """One measured kernel: its arithmetic (2 per MAC), the HBM bytes it moves and its cycles."""

    label: str
    flops: float
    hbm_bytes: float
    cycles: float


@dataclass(frozen=True)
class Roofs:
    """A machine's roofline in TFLOPS and TB/s, device-wide, for one input dtype."""

    cube_tflops: float
    vector_tflops: float  # one operation per vector lane per cycle
    hbm_tbps: float
    l2_tbps: float

    @classmethod
    def of(cls, spec: isa.MachineSpec, dtype: str = "f16") -> Roofs:
        """The roofs of `spec` for inputs of `dtype` ("f16", "bf16", "f32", "i8")."""
        hz = spec.clock_ghz * 1e9
        return cls(2 * spec.cores * spec.cube_macs_per_cycle(dtype=dtype) * hz / 1e12,
                   spec.cores * spec.vector.bytes_per_cycle / LANE_BYTES[dtype] * hz / 1e12,
                   spec.hbm.bytes_per_second / 1e12, spec.l2_bytes_per_cycle * hz / 1e12)

    def attainable(self, intensity: float) -> float:
        """The most TFLOPS a kernel of `intensity` FLOPs per HBM byte can reach (cube roof, HBM slope)."""
        return min(self.cube_tflops, intensity * self.hbm_tbps)


def intensity_and_tflops(spec: isa.MachineSpec, point: RooflinePoint) -> tuple[float, float]:
    """Where `point` sits on `spec`'s roofline: (FLOPs per HBM byte, achieved TFLOPS at the clock)."""
    seconds = point.cycles / (spec.clock_ghz * 1e9)
    return point.flops / point.hbm_bytes, point.flops / seconds / 1e12


def plot_profile(launches: list[RunRecord], path: str | Path) -> Path:
    """Write the roofline, roofline-position and timeline panels for `launches` to `path`; the format is
    the file's suffix (`.png`, `.svg`, `.pdf`)."""
    timed = sorted((r for r in launches if r.cycles), key=lambda r: -(r.cycles or 0))
    if not timed:
        raise errors.NpuError("nothing to plot: no simulated launch in the profile")
    fig = Figure(figsize=(16, 5), layout="constrained")
    roof, position, timeline = fig.subplots(1, 3, width_ratios=[1, 1, 1.4])
    spec = timed[0].machine
    # a launch's MACs are its cube busy cycles at the peak rate (padded fractals count as work)
    points = [RooflinePoint(_label(r), 2 * r.pipe_busy.get("m", 0) * spec.cube_macs_per_cycle(), r.hbm_bytes,
                            r.cycles or 1) for r in timed]
    _roofline(roof, spec, [p for p in points if p.flops and p.hbm_bytes], "f16",
              empty="no cube work in these launches\n(see the roofline position)")
    _positions(position, timed[:MAX_LAUNCHES])
    _timeline(timeline, timed[0])
    return _save(fig, path)


def plot_roofline(spec: isa.MachineSpec, points: Sequence[RooflinePoint], path: str | Path, *, dtype: str = "f16",
                  title: str = "", note: str = "") -> Path:
    """Write one roofline of `points` (e.g. every shape of an npu-tune run) on `spec` to `path`; `note` is
    printed under the roofs (what was left out)."""
    fig = Figure(figsize=(9, 6), layout="constrained")
    ax = fig.subplots()
    _roofline(ax, spec, [p for p in points if p.flops and p.hbm_bytes], dtype, title=title,
              empty="no shape with a FLOP count to place")
    if note:
        ax.text(0.01, 0.01, note, transform=ax.transAxes, fontsize="small", va="bottom")
    return _save(fig, path)


def plot_speedups(layers: Sequence[str], speedups: Mapping[str, Sequence[float]], totals: Mapping[str, float],
                  path: str | Path, *, title: str = "") -> Path:
    """Write what each machine variant is worth: per layer (left) and in total (right), as speedups over
    the base machine (> 1 is faster); `speedups[variant][i]` belongs to `layers[i]`."""
    if not speedups:
        raise errors.NpuError("nothing to plot: no variant besides the base machine")
    fig = Figure(figsize=(max(9, 4 + 0.45 * len(layers)), 5.5), layout="constrained")
    per_layer, total = fig.subplots(1, 2, width_ratios=[3, 1])
    xs = np.arange(len(layers))
    width = 0.8 / len(speedups)
    for i, (variant, values) in enumerate(speedups.items()):
        per_layer.bar(xs + i * width, values, width, label=variant)
    per_layer.axhline(1.0, color="k", lw=1)
    per_layer.set_xticks(xs + 0.4 - width / 2, layers, rotation=60, ha="right", fontsize="small")
    top = max([1.0, *(v for values in speedups.values() for v in values)])
    per_layer.set(title=title or "speedup per layer over the base machine", ylabel="base time / variant time",
                  ylim=(0, top * 1.35))  # headroom for the legend
    per_layer.legend(fontsize="small", loc="upper left", ncols=2)
    names = list(totals)
    bars = total.bar(np.arange(len(names)), [totals[n] for n in names], color=[f"C{i}" for i in range(len(names))])
    total.bar_label(bars, fmt="%.2f×", fontsize="small")
    total.axhline(1.0, color="k", lw=1)
    total.set_xticks(np.arange(len(names)), names, rotation=60, ha="right", fontsize="small")
    total.set(title="whole workload", ylabel="speedup")
    return _save(fig, path)


def _save(fig: Figure, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    return path


def _label(run: RunRecord) -> str:
    return f"{run.kernel}{list(run.grid)}"


def _roofline(ax, spec: isa.MachineSpec, points: Sequence[RooflinePoint], dtype: str, *, title: str = "",
              empty: str) -> None:
    """Achieved TFLOPS against FLOPs per HBM byte, under the cube and vector roofs and the HBM and L2
    slopes; points are numbered, the legend names them."""
    roofs = Roofs.of(spec, dtype)
    placed = [intensity_and_tflops(spec, p) for p in points]
    ridge = roofs.cube_tflops / roofs.hbm_tbps
    lo = min([x for x, _ in placed] + [ridge / 100]) / 3
    hi = max([x for x, _ in placed] + [ridge * 10]) * 3
    xs = np.logspace(np.log10(lo), np.log10(hi), 200)
    ax.loglog(xs, np.minimum(roofs.cube_tflops, xs * roofs.hbm_tbps), "k-",
              label=f"cube {roofs.cube_tflops:.0f} TFLOPS, HBM {roofs.hbm_tbps:.2f} TB/s")
    ax.loglog(xs, np.minimum(roofs.cube_tflops, xs * roofs.l2_tbps), "k--", label=f"L2 {roofs.l2_tbps:.2f} TB/s")
    ax.loglog(xs, np.minimum(roofs.vector_tflops, xs * roofs.hbm_tbps), "k:",
              label=f"vector {roofs.vector_tflops:.1f} TOPS ({dtype} lanes)")
    for i, (p, (x, y)) in enumerate(zip(points, placed), 1):
        ax.loglog(x, y, "o", label=f"{i}. {p.label}: {100 * y / roofs.attainable(x):.0f} % of roof")
        ax.annotate(str(i), (x, y), textcoords="offset points", xytext=(4, 4), fontsize="small")
    if not points:
        ax.text(0.5, 0.5, empty, ha="center", transform=ax.transAxes)
    ax.set(title=title or f"roofline ({spec.name}, {spec.cores} cores, {dtype})", xlabel="FLOPs per HBM byte",
           ylabel="TFLOPS")
    ax.legend(fontsize="x-small", loc="upper left")
def _positions(ax, launches: list[RunRecord]) -> None:
    """Each unit's bound as a share of each launch's cycles; the roof is 1, the limiter is the tallest bar."""
    verdicts = [r.verdict for r in launches]
    units = list(verdicts[0].bounds)
    width = 0.8 / len(launches)
    for i, (r, v) in enumerate(zip(launches, verdicts)):
        ax.bar(np.arange(len(units)) + i * width, [v.utilisation[u] for u in units], width,
               label=f"{i + 1}. {_label(r)}: {v.limiter}")  # a name may start with "_", which legends skip
    ax.axhline(1.0, color="k", lw=1)
    ax.set_xticks(np.arange(len(units)) + 0.4 - width / 2, units, rotation=45)
    ax.set(title="roofline position (bound / cycles)", ylabel="share of the launch's cycles", ylim=(0, 1.1))
    ax.legend(fontsize="small")


def _timeline(ax, run: RunRecord) -> None:
    """Busy share of each pipe (averaged over cores) across the slowest launch, as a heat map."""
    pipes = [p for p, row in run.timeline.items() if any(row)]
    if not pipes:
        ax.text(0.5, 0.5, "no trace recorded for this launch", ha="center", transform=ax.transAxes)
        return
    bins = len(run.timeline[pipes[0]])
    width = (run.cycles or 1) / bins
    share = np.array([run.timeline[p] for p in pipes]) / (width * run.machine.cores)
    image = ax.imshow(share, aspect="auto", cmap="viridis", vmin=0, vmax=1, extent=(0, run.cycles, len(pipes), 0))
    ax.set_yticks(np.arange(len(pipes)) + 0.5, pipes)
    ax.set(title=f"pipes busy over time: {_label(run)}", xlabel="cycle")
    ax.figure.colorbar(image, ax=ax, label="busy share of all cores")
