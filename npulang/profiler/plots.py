"""Profile plots with matplotlib (PNG, SVG or any format it writes): a roofline of the launches, each
launch's roofline position per unit, and a per-pipe timeline of the slowest launch.

Figures are built with `matplotlib.figure.Figure` directly, never pyplot: no global backend or figure
state, so plotting works headless and from several threads.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from npulang import errors
from npulang.runtime.record import RunRecord

MAX_LAUNCHES = 8  # the position panel shows the slowest launches only


def plot_profile(launches: list[RunRecord], path: str | Path) -> Path:
    """Write the roofline, roofline-position and timeline panels for `launches` to `path`; the format is
    the file's suffix (`.png`, `.svg`, `.pdf`)."""
    timed = sorted((r for r in launches if r.cycles), key=lambda r: -(r.cycles or 0))
    if not timed:
        raise errors.NpuError("nothing to plot: no simulated launch in the profile")
    fig = Figure(figsize=(16, 5), layout="constrained")
    roof, position, timeline = fig.subplots(1, 3, width_ratios=[1, 1, 1.4])
    _roofline(roof, timed)
    _positions(position, timed[:MAX_LAUNCHES])
    _timeline(timeline, timed[0])
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    return path


def _label(run: RunRecord) -> str:
    return f"{run.kernel}{list(run.grid)}"


def _roofline(ax, launches: list[RunRecord]) -> None:
    """Cube MACs per cycle against MACs per HBM byte, under the cube peak and the HBM and L2 slopes.
    A launch's MACs are its cube busy cycles at the peak rate (padded fractals count as work)."""
    spec = launches[0].machine
    peak = spec.cores * spec.cube_macs_per_cycle()
    points = [(r, r.pipe_busy.get("m", 0) * spec.cube_macs_per_cycle()) for r in launches]
    points = [(r, macs) for r, macs in points if macs and r.hbm_bytes]
    xs = np.logspace(-2, 5, 200)
    ax.loglog(xs, np.minimum(peak, xs * spec.hbm_bytes_per_cycle), "k-", label="HBM roof")
    ax.loglog(xs, np.minimum(peak, xs * spec.l2_bytes_per_cycle), "k--", label="L2 roof")
    for r, macs in points:
        ax.loglog(macs / r.hbm_bytes, macs / (r.cycles or 1), "o", label=_label(r))
    if not points:
        ax.text(0.5, 0.5, "no cube work in these launches\n(see the roofline position)", ha="center",
                transform=ax.transAxes)
    ax.set(title=f"roofline ({spec.name}, {spec.cores} cores)", xlabel="cube MACs per HBM byte",
           ylabel="cube MACs per cycle")
    ax.legend(fontsize="small")


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
