"""Where bytes live: per-core on-chip buffers, GM as the launch's argument arrays, and tile views.

Memory operands are byte addresses; strides are in elements. GM addresses are the host addresses of
the numpy arrays passed as arguments (`arr.ctypes.data`), so an access is mapped back to the array
that holds it, and an address inside no argument is an out-of-bounds error.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from isa import MachineSpec
from isa.instructions import ON_CHIP

_VIEW_CACHE = 4096  # cached views per core and launch; a miss only rebuilds a view


def span(addr: int, rows: int, cols: int, rs: int, cs: int, itemsize: int) -> tuple[int, int]:
    """The byte range [lo, hi) touched by a rows x cols tile with element strides rs, cs."""
    if rows <= 0 or cols <= 0:
        return addr, addr
    lo = hi = 0
    d = (rows - 1) * rs
    if d < 0:
        lo += d
    else:
        hi += d
    d = (cols - 1) * cs
    if d < 0:
        lo += d
    else:
        hi += d
    return addr + lo * itemsize, addr + (hi + 1) * itemsize


@dataclass(frozen=True)
class GmRegion:
    """One pointer argument's array, seen as bytes at its host address."""

    name: str
    index: int
    start: int
    end: int
    data: np.ndarray  # uint8 view sharing memory with the argument array
    writable: bool = True
    owner: np.ndarray | None = None  # the array that owns the memory (L2 lines belong to it)


class GmArgs:
    """The GM regions of one launch, sorted by address for lookup."""

    def __init__(self, regions: list[GmRegion]) -> None:
        self.regions = sorted(regions, key=lambda r: r.start)
        self._starts = [r.start for r in self.regions]
        # no two arguments share bytes: a range inside one argument is found in that one alone
        self.disjoint = all(a.end <= b.start for a, b in zip(self.regions, self.regions[1:]))

    def find(self, lo: int, hi: int) -> GmRegion | None:
        """The region holding all of [lo, hi), or None."""
        # overlapping arguments (views of one array) may need a look further back; kernels have few
        for i in range(bisect.bisect_right(self._starts, lo) - 1, -1, -1):
            r = self.regions[i]
            if hi <= r.end:
                return r
        return None

    def nearest(self, lo: int, hi: int) -> GmRegion | None:
        """The region closest to [lo, hi), for error messages."""
        if not self.regions:
            return None

        def distance(r: GmRegion) -> int:
            return max(r.start - hi, lo - r.end, 0)

        return min(self.regions, key=distance)

    def describe_miss(self, lo: int, hi: int) -> str:
        r = self.nearest(lo, hi)
        if r is None:
            return f"GM bytes [{lo:#x}, {hi:#x}) are outside every argument (the kernel has no pointer arguments)"
        return (f"GM bytes [{lo:#x}, {hi:#x}) are outside every argument array; nearest is "
                f"{r.name} (argument {r.index}) at [{r.start:#x}, {r.end:#x}), {r.end - r.start} bytes: "
                f"the access covers bytes [{lo - r.start}, {hi - r.start}) relative to {r.name}")


class CoreMemory:
    """One core's on-chip buffers plus the launch's GM, with typed strided views for numpy work."""

    def __init__(self, spec: MachineSpec, gm: GmArgs) -> None:
        self.buffers = {s: np.zeros(spec.buffer_bytes(s), np.uint8) for s in ON_CHIP}
        self.gm = gm
        # on-chip tile views by (space, addr, rows, cols, rs, cs, dtype), and rules' bound views by their own
        # keys (`bound`): on-chip buffers never move, and a kernel's loops touch the same tiles again and again
        self.views: dict[tuple, Any] = {}
        self.print: Callable[[str, Any], None] = lambda fmt, value: None  # set by the core per program

    def raw(self, space: str, addr: int, nbytes: int = 1) -> tuple[np.ndarray, int]:
        """The uint8 array holding `addr` and the offset of `addr` in it (bounds already checked)."""
        if space != "gm":
            return self.buffers[space], addr
        region = self.gm.find(addr, addr + max(nbytes, 1))
        if region is None:  # only reachable for accesses whose range was not checked
            raise AssertionError(f"unchecked GM access at {addr:#x}")
        return region.data, addr - region.start

    def tile(self, space: str, addr: int, rows: int, cols: int, rs: int, cs: int, dt: np.dtype) -> np.ndarray:
        """A rows x cols view of dtype `dt` at byte `addr`, element strides rs, cs (writes go through)."""
        if rows <= 0 or cols <= 0:
            return np.empty((max(rows, 0), max(cols, 0)), dt)
        on_chip = space != "gm"
        if on_chip:
            key = (space, addr, rows, cols, rs, cs, dt)
            view = self.views.get(key)
            if view is not None:
                return view
        e = dt.itemsize
        lo, hi = span(addr, rows, cols, rs, cs, e)
        buf, base = self.raw(space, lo, hi - lo)
        view = np.ndarray((rows, cols), dtype=dt, buffer=buf, offset=base + addr - lo, strides=(rs * e, cs * e))
        if on_chip:
            self.remember(key, view)
        return view

    def remember(self, key: tuple, value: Any) -> Any:
        """Keep `value` in the view cache under `key` (bounded: cleared when full) and return it."""
        views = self.views
        if len(views) >= _VIEW_CACHE:
            views.clear()
        views[key] = value
        return value

    def vector(self, space: str, addr: int, n: int, dt: np.dtype) -> np.ndarray:
        """n contiguous elements at byte `addr`."""
        return self.tile(space, addr, 1, n, n, 1, dt)[0]
