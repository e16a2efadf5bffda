"""The profiler above the runtime: `npu-prof` (profile what a Python function launches), roofline and
timeline plots, and one Chrome trace for several launches. The figures themselves (stall reasons,
verdicts, per-line cycles) are the runtime's (`RunRecord.report`, `RunRecord.verdict`, `Profile.summary`).
"""

from npulang.profiler.plots import RooflinePoint, Roofs, plot_profile, plot_roofline, plot_speedups
from npulang.profiler.traces import write_profile_trace

__all__ = ["RooflinePoint", "Roofs", "plot_profile", "plot_roofline", "plot_speedups", "write_profile_trace"]
