"""Race detection with vector clocks: a logical check, independent of timing.

Each pipe carries a vector clock (one entry per pipe). Every memory-touching instruction ticks its
pipe's own entry; set_flag hands the source pipe's clock to the matching wait_flag, which joins it
into the destination pipe's clock; a barrier joins every pipe's clock. An earlier access A on pipe p
happens before a later access B on pipe q iff A's own clock entry is <= B's clock entry for p. Two
accesses from different pipes to overlapping bytes, one a write, neither ordered, are a race.
"""

from __future__ import annotations

import bisect
from operator import itemgetter
from typing import Any, Callable, Sequence

_MIN_LIMIT = 64
_clock = itemgetter(0)  # an access record's clock entry

# An access record is a plain tuple (creating one is the detector's hot path):
# (clock, lo, hi, write, seq, who) = (the pipe's own clock entry at the access, the byte range [lo, hi),
# whether it writes, order of recording (so the earliest conflicting record is the one reported), the
# instruction for the message). Records are kept per pipe, so a record's pipe is its list's index.
AccessRecord = tuple[int, int, int, bool, int, Any]


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
        self._others = [tuple(q for q in self.active if q != p) for p in range(npipes)]
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
        self.clocks[pipe] = [a if a > b else b for a, b in zip(self.clocks[pipe], other)]

    def barrier(self) -> None:
        joined = [max(col) for col in zip(*self.clocks)]
        for vc in self.clocks:
            vc[:] = joined

    # -- accesses --------------------------------------------------------------------------------
    def access(self, pipe: int, accesses: Sequence[tuple[str, int, int, bool]], who: Any) -> str | None:
        """Record one instruction's accesses; return a race message or None."""
        vc = self.clocks[pipe]
        own = vc[pipe] = vc[pipe] + 1
        others = self._others[pipe]
        records, counts, limits = self.records, self.counts, self.limits
        for space, lo, hi, write in accesses:
            if hi <= lo:
                continue
            by_pipe = records.get(space)
            if by_pipe is None:
                by_pipe = records[space] = [[] for _ in range(self.npipes)]
                counts[space] = 0
                limits[space] = _MIN_LIMIT
            first = None  # the earliest recorded access this one races with, and its pipe
            for q in others:  # only active pipes have records
                recs = by_pipe[q]
                seen = vc[q]
                if not recs or recs[-1][0] <= seen:  # the usual case: every record of q is ordered before
                    continue
                i = len(recs) - 1
                while i and recs[i - 1][0] > seen:
                    i -= 1
                for r in recs[i:] if i else recs:
                    if r[1] < hi and lo < r[2] and (write or r[3]):
                        if first is None or r[4] < first[0][4]:
                            first = (r, q)
                        break
            if first is not None:
                r, q = first
                return self._message(space, max(lo, r[1]), min(hi, r[2]), r, q, pipe, write, who)
            seq = self.seq
            by_pipe[pipe].append((own, lo, hi, write, seq, who))
            self.seq = seq + 1
            n = counts[space] = counts[space] + 1
            if n > limits[space]:
                self._prune(space)
        return None

    def _prune(self, space: str) -> None:
        clocks, active = self.clocks, self.active
        # a record is live while some other active pipe has not seen it: its clock is above the least
        # clock entry the other active pipes hold for its pipe
        seen = [min((clocks[q][p] for q in active if q != p), default=float("inf")) for p in range(self.npipes)]
        by_pipe: list[list[AccessRecord]] = []
        kept = 0
        for p, recs in enumerate(self.records[space]):
            # clocks are non-decreasing along a pipe's records: the live ones are a suffix
            live = recs[bisect.bisect_right(recs, seen[p], key=_clock):] if recs else []
            if len(live) > 1:  # a newer record of the same range and kind stands for the older ones
                latest = {r[1:4]: r for r in live}
                live = [r for r in live if latest[r[1:4]] is r]
            by_pipe.append(live)
            kept += len(live)
        self.records[space] = by_pipe
        self.counts[space] = kept
        self.limits[space] = max(_MIN_LIMIT, 2 * kept)

    def _message(self, space: str, lo: int, hi: int, r: AccessRecord, rpipe: int, pipe: int, write: bool,
                 who: Any) -> str:
        def kind(w: bool) -> str:
            return "writes" if w else "reads"

        return (f"data race on {space} bytes [{lo}, {hi}): {self.describe(r[5])} on pipe "
                f"{self.pipe_names[rpipe]} {kind(r[3])} them and {self.describe(who)} on pipe "
                f"{self.pipe_names[pipe]} {kind(write)} them with no set_flag/wait_flag or barrier "
                f"ordering the two")
