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

    @property
    def interpreted(self) -> bool:
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

    def report(self) -> str:
        """A readable profile: pipe utilisation, then the hottest source lines with their text."""
        if self.cycles is None:
            return (f"{self.kernel}{list(self.grid)}: interpreted (no cycle count; launch without "
                    f"interpret=True to simulate it on {self.machine.name})")
        out = [f"{self.kernel}{list(self.grid)}: {self.cycles:,} cycles ({self.seconds * 1e6:.1f} us "
               f"at {self.machine.clock_ghz} GHz) on {self.machine.name}"
               + (", as a persistent loop per core" if self.persistent else "")]
        out += [f"  {pipe:<5} {u:6.1%} busy" for pipe, u in self.utilisation.items()]
        for (file, line), cycles in sorted(self.line_cycles.items(), key=lambda kv: -kv[1])[:8]:
            text = linecache.getline(file, line).strip()
            out.append(f"  {cycles:>12,}  {Path(file).name}:{line}  {text}")
        return "\n".join(out)

    def write_trace(self, path: str | Path) -> Path:
        """Write the Chrome trace-event JSON (open it in Perfetto). Launch with `trace=True` first."""
        if self.trace_writer is None:
            raise errors.NpuError(f"{self.kernel}: no trace recorded; launch compiled with trace=True "
                                  f"(kernel[grid](..., trace=True))")
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        self.trace_writer(path)
        return path
