"""`with npu.profile() as prof:` records every launch made inside the block, library calls included."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from npulang.launch import RunRecord

_local = threading.local()


@dataclass
class Profile:
    """The launches recorded in one `npu.profile()` block, in launch order."""

    launches: list[RunRecord] = field(default_factory=list)

    @property
    def cycles(self) -> int:
        """Sum of the launches' cycle counts (launches run one after another on the device)."""
        return sum(r.cycles for r in self.launches)

    def summary(self) -> str:
        """A table: one row per launch with its kernel, grid and cycles."""
        rows = [f"{'kernel':<24} {'grid':<16} {'cycles':>12}"]
        for r in self.launches:
            rows.append(f"{r.kernel:<24} {str(r.grid):<16} {r.cycles:>12,}")
        rows.append(f"{'total':<24} {'':<16} {self.cycles:>12,}")
        return "\n".join(rows)

    def __enter__(self) -> Profile:
        _stack().append(self)
        return self

    def __exit__(self, *exc: object) -> None:
        _stack().remove(self)


def profile() -> Profile:
    """Record every kernel launch inside a `with` block: `prof.cycles`, `prof.launches`."""
    return Profile()


def _stack() -> list[Profile]:
    if not hasattr(_local, "stack"):
        _local.stack = []
    return _local.stack


def record(run: RunRecord) -> None:
    """Called by the launcher: add a launch to every open profile (nested blocks all see it)."""
    for prof in _stack():
        prof.launches.append(run)

