"""`RunRecord`: what one launch did, compiled or interpreted, as plain data.

An interpreted launch has no cycle count (`cycles is None`) and no pipe or line figures; everything
else reads the same, so code handling launch results (profiles, the tuner) needs no second type.
"""

from __future__ import annotations

import linecache
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import isa
from npulang import errors
from npulang.runtime.verdict import Verdict, verdict


@dataclass(frozen=True)
class StallSummary:
    """Stall cycles of one kind, summed over cores: `pipe` waited for `reason` ("flag": on `flag`, raised by
    `source`; "queue full": `source`'s issue queue; "barrier"; "bandwidth": GM, past the pipe's own rate)."""

    pipe: str
    reason: str
    source: str
    flag: str
    cycles: int
    count: int

    def __str__(self) -> str:
        what = {"flag": f"waits on flag {self.flag} from {self.source}",
                "queue full": f"issue stalls: the {self.source} queue is full",
                "barrier": "waits at a barrier for every pipe to drain",
                "bandwidth": "waits on shared L2/HBM bandwidth"}.get(self.reason, self.reason)
        return f"{self.pipe:<5} {what}: {self.cycles:,} cycles over {self.count:,} stalls"


@dataclass(frozen=True)
class RunRecord:
    """One launch: cycles, per-pipe busy cycles, per-line cycles, device prints and GM traffic."""

    kernel: str
    grid: tuple[int, int, int]
    machine: isa.MachineSpec = field(repr=False)
    cycles: int | None  # None: interpreted, no timing model ran
    pipe_busy: dict[str, int] = field(default_factory=dict, repr=False)
    line_cycles: dict[tuple[str, int], int] = field(default_factory=dict, repr=False)  # (file, line)
    prints: list[str] = field(default_factory=list, repr=False)
    instructions: int = 0
    gm_bytes: int = 0  # bytes moved on GM ports (burst-rounded)
    hbm_bytes: int = 0  # bytes fetched from HBM (L2 misses)
    persistent: bool = False  # the grid ran as one persistent loop per core (LaunchOptions.persistent)
    trace_writer: Callable[[Path], None] | None = field(default=None, repr=False, compare=False)
    pipe_stall: dict[str, int] = field(default_factory=dict, repr=False)  # flag waits; "s": full queues, barriers
    core_busy: list[dict[str, int]] = field(default_factory=list, repr=False)  # per core, per pipe
    core_stall: list[dict[str, int]] = field(default_factory=list, repr=False)
    core_bandwidth: list[dict[str, int]] = field(default_factory=list, repr=False)  # traced: GM bandwidth waits
    # with a trace (trace=True or inside npu.profile()): every kind of stall, most cycles first
    stalls: tuple[StallSummary, ...] | None = field(default=None, repr=False)
    # per traced pipe: {opcode: (count, busy cycles)}, for verdicts that speak of instructions
    op_cycles: dict[str, dict[str, tuple[int, int]]] = field(default_factory=dict, repr=False)
    buffers: dict[str, int] = field(default_factory=dict, repr=False)  # on-chip bytes allocated per space
    timeline: dict[str, list[int]] = field(default_factory=dict, repr=False)  # traced: busy per pipe per time slice

    @property
    def interpreted(self) -> bool:
        """True for a launch run by the IR interpreter (no cycles, no timing)."""
        return self.cycles is None

    @property
    def seconds(self) -> float | None:
        """Cycles converted at the machine's clock (None when interpreted)."""
        return None if self.cycles is None else self.cycles / (self.machine.clock_ghz * 1e9)

    @property
    def utilisation(self) -> dict[str, float]:
        """Busy fraction of each pipe, averaged over all cores for the launch's duration."""
        total = max(1, (self.cycles or 0) * self.machine.cores)
        return {pipe: busy / total for pipe, busy in self.pipe_busy.items()}

    @property
    def profile(self) -> dict[str, int]:
        """Busy cycles per kernel source line (`file:line` -> cycles), hottest first."""
        lines = sorted(self.line_cycles.items(), key=lambda kv: -kv[1])
        return {f"{file}:{line}": cycles for (file, line), cycles in lines}

    @property
    def verdict(self) -> Verdict | None:
        """The roofline verdict: what limits the launch and what to try (None when interpreted)."""
        return verdict(self)

    def report(self) -> str:
        """A readable profile: the verdict, per-pipe busy and stall cycles, stall reasons, on-chip buffer
        usage, then the hottest source lines with their text."""
        if self.cycles is None:
            return (f"{self.kernel}{list(self.grid)}: interpreted (no cycle count; launch without "
                    f"interpret=True to simulate it on {self.machine.name})")
        out = [f"{self.kernel}{list(self.grid)}: {self.cycles:,} cycles ({self.seconds * 1e6:.1f} us "
               f"at {self.machine.clock_ghz} GHz) on {self.machine.name}"
               + (", as a persistent loop per core" if self.persistent else "")]
        out.append(f"  verdict: {self.verdict}")
        stall = self.pipe_stall
        out += [f"  {pipe:<5} {u:6.1%} busy  {self.pipe_busy[pipe]:>12,} busy  {stall.get(pipe, 0):>12,} stalled"
                for pipe, u in self.utilisation.items()]
        out += self._per_core()
        if self.stalls:
            out.append("  stalls (summed over cores):")
            out += [f"    {s}" for s in self.stalls[:8]]
        if self.buffers:
            out.append("  on-chip buffers: " + ", ".join(
                f"{space} {used:,}/{self.machine.buffer_bytes(space):,} B" for space, used in self.buffers.items()))
        for (file, line), cycles in sorted(self.line_cycles.items(), key=lambda kv: -kv[1])[:8]:
            text = linecache.getline(file, line).strip()
            out.append(f"  {cycles:>12,}  {Path(file).name}:{line}  {text}")
        return "\n".join(out)

    def _per_core(self) -> list[str]:
        """Report lines: each pipe's fewest and most busy and stalled cycles over the cores used (imbalance)."""
        used = [i for i, c in enumerate(self.core_busy) if any(c.values())]
        if len(used) < 2:
            return []
        out = [f"  per core, fewest-most over the {len(used)} cores used:"]
        for pipe in self.pipe_busy:
            busy = [self.core_busy[i].get(pipe, 0) for i in used]
            stall = [self.core_stall[i].get(pipe, 0) for i in used]
            if max(busy) or max(stall):
                out.append(f"    {pipe:<5} busy {min(busy):,}-{max(busy):,}  stalled {min(stall):,}-{max(stall):,}")
        return out

    def write_trace(self, path: str | Path) -> Path:
        """Write the Chrome trace-event JSON (open it in Perfetto). Launch with `trace=True` first."""
        if self.trace_writer is None:
            raise errors.NpuError(f"{self.kernel}: no trace recorded; launch compiled with trace=True "
                                  f"(kernel[grid](..., trace=True))")
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        self.trace_writer(path)
        return path
