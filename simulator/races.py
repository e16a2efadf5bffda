"""Race detection with vector clocks: a logical check, independent of timing.

Each pipe carries a vector clock (one entry per pipe). Every memory-touching instruction ticks its
pipe's own entry; set_flag hands the source pipe's clock to the matching wait_flag, which joins it
into the destination pipe's clock; a barrier joins every pipe's clock. An earlier access A on pipe p
happens before a later access B on pipe q iff A's own clock entry is <= B's clock entry for p. Two
accesses from different pipes to overlapping bytes, one a write, neither ordered, are a race.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

_MIN_LIMIT = 64


@dataclass(frozen=True, slots=True)
class AccessRecord:
    lo: int
    hi: int
    write: bool
    pipe: int
    clock: int  # the pipe's own clock entry at this access
    who: Any  # the instruction, for the message
    seq: int  # order of recording, so the earliest conflicting record is the one reported


class RaceDetector:
    """Vector clocks per pipe plus the recent accesses per memory space, for one program run.

    Records are kept per space and per pipe. A pipe's records have non-decreasing clocks, so those a
    later access is not ordered after (clock above its clock entry for that pipe) are a suffix of
    the list: an access only looks at that suffix of every other pipe.

    `active` are the pipes that have memory instructions in the program: a record may be dropped
    once every other active pipe's clock has seen it, since nothing later can race with it.
    """

    def __init__(self, npipes: int, active: Sequence[int], pipe_names: Sequence[str],
                 describe: Callable[[Any], str]) -> None:
        self.npipes = npipes
        self.clocks = [[0] * npipes for _ in range(npipes)]
        self.active = tuple(active)
        self.records: dict[str, list[list[AccessRecord]]] = {}  # space -> pipe -> records, oldest first
        self.counts: dict[str, int] = {}
        self.limits: dict[str, int] = {}
        self.seq = 0
        self.pipe_names = pipe_names
        self.describe = describe

    # -- happens-before edges ----------------------------------------------------------------------
    def snapshot(self, pipe: int) -> tuple[int, ...]:
        """The pipe's clock, handed from a set_flag to its wait_flag."""
        return tuple(self.clocks[pipe])

    def join(self, pipe: int, other: Sequence[int]) -> None:
        vc = self.clocks[pipe]
        for i, c in enumerate(other):
            if c > vc[i]:
                vc[i] = c

    def barrier(self) -> None:
        joined = [max(col) for col in zip(*self.clocks)]
        for vc in self.clocks:
            vc[:] = joined

    # -- accesses --------------------------------------------------------------------------------
    def access(self, pipe: int, accesses: Sequence[tuple[str, int, int, bool]], who: Any) -> str | None:
        """Record one instruction's accesses; return a race message or None."""
        vc = self.clocks[pipe]
        vc[pipe] += 1
        own = vc[pipe]
        for space, lo, hi, write in accesses:
            if hi <= lo:
                continue
            by_pipe = self.records.get(space)
            if by_pipe is None:
                by_pipe = self.records[space] = [[] for _ in range(self.npipes)]
                self.counts[space] = 0
                self.limits[space] = _MIN_LIMIT
            first = None  # the earliest recorded access this one races with
            for q in self.active:  # only they have records
                recs = by_pipe[q]
                if q == pipe or not recs:
                    continue
                seen = vc[q]
                n = i = len(recs)
                while i and recs[i - 1].clock > seen:
                    i -= 1
                for k in range(i, n):
                    r = recs[k]
                    if r.lo < hi and lo < r.hi and (write or r.write):
                        if first is None or r.seq < first.seq:
                            first = r
                        break
            if first is not None:
                return self._message(space, max(lo, first.lo), min(hi, first.hi), first, pipe, write, who)
            by_pipe[pipe].append(AccessRecord(lo, hi, write, pipe, own, who, self.seq))
            self.seq += 1
            self.counts[space] += 1
            if self.counts[space] > self.limits[space]:
                self._prune(space)
        return None

    def _prune(self, space: str) -> None:
        clocks, active = self.clocks, self.active
        # a record is live while some other active pipe has not seen it: its clock is above the least
        # clock entry the other active pipes hold for its pipe
        seen = [min((clocks[q][p] for q in active if q != p), default=float("inf")) for p in range(self.npipes)]
        live = [r for recs in self.records[space] for r in recs if r.clock > seen[r.pipe]]
        # a newer record of the same pipe, range and kind stands for the older ones
        latest: dict[tuple, AccessRecord] = {}
        for r in live:
            key = (r.pipe, r.lo, r.hi, r.write)
            if key not in latest or latest[key].seq < r.seq:
                latest[key] = r
        kept = [r for r in live if latest[(r.pipe, r.lo, r.hi, r.write)] is r]
        by_pipe: list[list[AccessRecord]] = [[] for _ in range(self.npipes)]
        for r in kept:
            by_pipe[r.pipe].append(r)
        self.records[space] = by_pipe
        self.counts[space] = len(kept)
        self.limits[space] = max(_MIN_LIMIT, 2 * len(kept))

    def _message(self, space: str, lo: int, hi: int, r: AccessRecord, pipe: int, write: bool, who: Any) -> str:
        def kind(w: bool) -> str:
            return "writes" if w else "reads"

        return (f"data race on {space} bytes [{lo}, {hi}): {self.describe(r.who)} on pipe "
                f"{self.pipe_names[r.pipe]} {kind(r.write)} them and {self.describe(who)} on pipe "
                f"{self.pipe_names[pipe]} {kind(write)} them with no set_flag/wait_flag or barrier "
                f"ordering the two")
