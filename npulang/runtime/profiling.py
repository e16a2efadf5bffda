"""`with npu.profile() as prof:` records every launch made inside the block, library calls included."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from npulang.runtime.record import RunRecord


@dataclass(eq=False)  # by identity: leaving a block must remove that block, not an equal one
class Profile:
    """The launches recorded in one `npu.profile()` block, in launch order."""

    recorder: ProfileRecorder = field(repr=False)
    launches: list[RunRecord] = field(default_factory=list)

    @property
    def cycles(self) -> int | None:
        """Sum of the launches' cycle counts (None if any launch was interpreted)."""
        if any(r.cycles is None for r in self.launches):
            return None
        return sum(r.cycles or 0 for r in self.launches)

    def summary(self) -> str:
        """A table: one row per launch with its kernel, grid and cycles, then the slowest launch's verdict."""
        rows = [f"{'kernel':<24} {'grid':<16} {'cycles':>12}"]
        for r in self.launches:
            cycles = "interpreted" if r.cycles is None else f"{r.cycles:,}"
            rows.append(f"{r.kernel:<24} {str(r.grid):<16} {cycles:>12}")
        total = "-" if self.cycles is None else f"{self.cycles:,}"
        rows.append(f"{'total':<24} {'':<16} {total:>12}")
        slowest = self.slowest
        if slowest is not None:
            rows.append(f"slowest: {slowest.kernel}{list(slowest.grid)}, {slowest.cycles:,} cycles; {slowest.verdict}")
        return "\n".join(rows)

    @property
    def slowest(self) -> RunRecord | None:
        """The simulated launch with the most cycles (None if none was simulated)."""
        timed = [r for r in self.launches if r.cycles is not None]
        return max(timed, key=lambda r: r.cycles or 0, default=None)

    def __enter__(self) -> Profile:
        self.recorder.stack().append(self)
        return self

    def __exit__(self, *exc: object) -> None:
        self.recorder.stack().remove(self)


class ProfileRecorder:
    """The open `profile()` blocks of each thread (a launch is recorded by the blocks of its own thread)."""

    def __init__(self) -> None:
        self._local = threading.local()

    def stack(self) -> list[Profile]:
        if not hasattr(self._local, "stack"):
            self._local.stack = []
        return self._local.stack

    def profile(self) -> Profile:
        """Record every kernel launch inside a `with` block: `prof.cycles`, `prof.launches`."""
        return Profile(self)

    def active(self) -> bool:
        """Whether a profile block is open in this thread (its launches are traced for stall reasons)."""
        return bool(self.stack())

    def record(self, run: RunRecord) -> None:
        """Add a launch to every open profile of this thread (nested blocks all see it)."""
        for prof in self.stack():
            prof.launches.append(run)
