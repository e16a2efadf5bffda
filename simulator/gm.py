"""GM timing: burst rounding, the shared L2 (residency persists across launches) and a bandwidth
calendar that every core's transfers share, so the device never moves bytes faster than the spec.

Writes are write-through: every stored byte, rounded out to bursts, costs HBM bandwidth when it is
stored, whether its line is resident or not, so nothing is left to write back and a launch's
makespan includes all of its HBM traffic (no hidden cost at `flush_l2` or at the next launch).
Lines a store covers completely become resident (a later read hits them); a partly written line
keeps its residency as it was, since the rest of it was never fetched. Reads move burst-rounded
bytes through L2 and fetch every line that misses from HBM.

Gathers and scatters take the same path at the cost of their worst case, so that cycles never depend
on the data (the tuner compares configurations, not inputs): each of the n lanes moves one burst on
the bus, a gather fetches one line from HBM per lane (n distinct lines, all missing) and a scatter
writes one burst per lane to HBM. Neither changes L2 residency (which lines is data-dependent).

The calendar splits time into buckets of `QUANTUM` cycles. Each bucket holds QUANTUM x HBM bandwidth
of HBM capacity and QUANTUM x L2 bandwidth of L2 capacity. A transfer starting at t fills buckets
forward, taking from each at most its port's rate (the issuing pipe's bytes per cycle) and what is
left of the shared capacities; its occupancy ends where its last byte moves. All bytes pass through
L2; bytes of lines that miss, and every byte written, also consume HBM capacity. Two rules keep
buckets from packing their capacity into part of their span (24 cores' loads starting late in a
bucket would otherwise share all of it, 1.23x the HBM rate): a booking starting at t cuts what is
left of its first bucket to the rates times the bucket's span after t, for itself and every later
booking (bookings come in time order, simulator.device; one that comes after a later start, a
transfer that waited on a flag, may take back the part cut from its own span), and a transfer
cannot end before what the transfers ending in its last bucket took of that bucket, laid out forward
from the bucket's start at the shared rates, has moved. So the transfers that start and end inside
any window spanning two or more buckets move at most the spec's rates times the window, whatever
the order of booking.
"""

from __future__ import annotations

import itertools
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from math import ceil

from isa import MachineSpec
from simulator.memory import GmRegion

QUANTUM = 128  # cycles per calendar bucket: fine enough for tile-sized transfers, coarse enough to be fast
_GROW = 4096  # buckets added at a time
_EPS = 1e-9
_BLOCK_LINES = 64  # L2 lines per residency bitmask (one Python int)
_FULL = (1 << _BLOCK_LINES) - 1  # the mask of a fully resident block (always this very object)
_SHAPES = 4096  # (row shape, offset) pairs whose L2 block masks are kept (GlobalMemory._row_masks)


@dataclass(frozen=True, slots=True)
class GmXfer:
    """The GM side of one transfer: rows x cols elements at `addr`, strides in bytes.

    The core costs it at an offset in the argument array that holds it (see `GlobalMemory.transfer`),
    so bursts and lines are counted as if every array were aligned.

    `scattered` > 0 marks a gather/scatter of that many elements at data-dependent addresses, costed
    at its worst case (see the module docstring), so timing never depends on the data.
    """

    addr: int
    rows: int
    cols: int
    rs: int
    cs: int
    itemsize: int
    write: bool
    scattered: int = 0


def contiguous_bytes(x: GmXfer) -> int:
    """The size of a transfer that is one contiguous run of bytes (see `GlobalMemory.transfer_block`),
    else 0."""
    if x.scattered or x.rows <= 0 or x.cols <= 0 or x.cs != x.itemsize:
        return 0
    row = x.cols * x.itemsize
    return row * x.rows if x.rs == row or x.rows == 1 else 0


class RowShape:
    """Rows of contiguous bytes (`GlobalMemory.row_shape`): row stride and bytes per row (bytes), rows,
    whether they are written; and, by the offset in an L2 block a transfer of the shape starts at, its
    block masks (`GlobalMemory._row_masks`). One object per shape and memory, so a transfer's plan holds
    it and no shape tuple is hashed per transfer."""

    __slots__ = ("rs", "row", "rows", "write", "masks")

    def __init__(self, rs: int, row: int, rows: int, write: bool) -> None:
        self.rs, self.row, self.rows, self.write = rs, row, rows, write
        self.masks: dict[int, tuple] = {}


class L2Cache:
    """Shared L2 residency by line, close to LRU; fully written lines allocate (see `GlobalMemory`).

    Lines are grouped in blocks of `_BLOCK_LINES`; a block holds a bitmask of its resident lines and
    the epoch (transfer number) that last touched it. Residency is exact per line; eviction takes
    whole least-recently-touched blocks, the oldest eighth of the capacity at once.

    A strided tile whose lines all stayed resident since its last touch (`covered`) is touched again by
    renewing its blocks' epochs, which only eviction reads: the renewal is recorded once per tile (in
    its `covered` entry) and applied to the blocks by `settle`, before anything reads or drops an epoch.
    """

    def __init__(self, capacity_bytes: int, line_bytes: int) -> None:
        self.line_bytes = line_bytes
        self.capacity_lines = max(1, capacity_bytes // line_bytes)
        self.masks: dict[int, int] = {}
        self.epochs: dict[int, int] = {}
        self.resident = 0  # lines
        self.epoch = 0
        # (first block key, masks id) of strided transfers (GlobalMemory._row_masks) whose lines have all been
        # resident since they were touched, to [their blocks' offsets from that key, the epoch of a later
        # touch not yet applied to the blocks (`settle`) or 0]: emptied whenever a line leaves L2
        self.covered: dict[tuple[int, int], list] = {}

    def touch(self, region: int, first: int, last: int) -> int:
        """Touch lines first..last (inclusive) of an array in the current epoch; return how many missed.

        `region` is the array's key shifted left by 40 bits, so blocks of distinct arrays never share
        a key. A fully resident block is stored as the `_FULL` object itself, so the common whole-block
        hit is an identity test rather than big-integer arithmetic."""
        masks, epochs, epoch = self.masks, self.epochs, self.epoch
        missed = 0
        block, lo = divmod(first, _BLOCK_LINES)
        last_block, hi = divmod(last, _BLOCK_LINES)
        block += region
        last_block += region
        while True:
            old = masks.get(block)
            if old is not _FULL:
                top = hi if block == last_block else _BLOCK_LINES - 1
                if old is None:  # a new block: every touched line misses
                    masks[block] = _FULL if lo == 0 and top == _BLOCK_LINES - 1 else ((2 << (top - lo)) - 1) << lo
                    missed += top - lo + 1
                else:
                    bits = ((2 << (top - lo)) - 1) << lo
                    new = bits & ~old
                    if new:
                        missed += new.bit_count()
                        both = old | bits
                        masks[block] = _FULL if both == _FULL else both
            epochs[block] = epoch
            if block == last_block:
                break
            block += 1
            lo = 0
        if missed:
            self.resident += missed
            if self.resident > self.capacity_lines:
                self._evict()
        return missed

    def touch_masks(self, key: int, blocks: tuple[tuple[int, int], ...]) -> int:
        """Touch the lines `blocks` gives ((block offset from `key`, line mask), ascending) in the current
        epoch without evicting (the caller has checked that they fit); return how many missed."""
        masks, epochs, epoch = self.masks, self.epochs, self.epoch
        missed = 0
        for d, bits in blocks:
            block = key + d
            old = masks.get(block)
            if old is not _FULL:
                if old is None:
                    masks[block] = bits
                    missed += bits.bit_count()
                else:
                    new = bits & ~old
                    if new:
                        missed += new.bit_count()
                        both = old | bits
                        masks[block] = _FULL if both == _FULL else both
            epochs[block] = epoch
        self.resident += missed
        return missed

    def settle(self) -> None:
        """Apply the pending renewals of covered transfers to their blocks' epochs (a block touched since
        keeps its later epoch). Dict assignment to existing keys keeps the order blocks were first
        touched in, which breaks ties between equal epochs at eviction, as renewing them at once did."""
        epochs = self.epochs
        for (key, _), entry in self.covered.items():
            deltas, epoch = entry
            if epoch:
                for d in deltas:
                    block = key + d
                    if epochs[block] < epoch:
                        epochs[block] = epoch
                entry[1] = 0

    def forget(self, region: int) -> None:
        """Drop every line of the array keyed `region` (its address shifted left by 40 bits)."""
        self.settle()
        self.covered.clear()
        for block in [b for b in self.masks if region <= b < region + (1 << 40)]:
            self.resident -= self.masks.pop(block).bit_count()
            del self.epochs[block]

    def _evict(self) -> None:
        keep = self.capacity_lines * 7 // 8
        self.settle()
        self.covered.clear()
        for block in sorted(self.epochs, key=self.epochs.__getitem__):
            if self.resident <= keep:
                break
            self.resident -= self.masks.pop(block).bit_count()
            del self.epochs[block]


class BandwidthCalendar:
    """Shared HBM and L2 capacity per bucket of QUANTUM cycles, for one launch."""

    def __init__(self, hbm_bytes_per_cycle: float, l2_bytes_per_cycle: float) -> None:
        self.hbm_rate, self.l2_rate = hbm_bytes_per_cycle, l2_bytes_per_cycle
        self.hbm_cap = hbm_bytes_per_cycle * QUANTUM
        self.l2_cap = l2_bytes_per_cycle * QUANTUM
        self.hbm: list[float] = []  # capacity left per bucket
        self.l2: list[float] = []
        self.lasts: list[int] = []  # the latest start booked in each bucket
        self.hbm_cut: list[float] = []  # capacity cut from each bucket before that start
        self.l2_cut: list[float] = []
        self.hbm_ended: list[float] = []  # capacity of each bucket taken by transfers that end in it
        self.l2_ended: list[float] = []

    def _grow(self, b: int) -> None:
        grow = b + _GROW - len(self.l2)
        self.l2.extend([self.l2_cap] * grow)
        self.hbm.extend([self.hbm_cap] * grow)
        self.lasts.extend([-1] * grow)
        self.l2_cut.extend([0.0] * grow)
        self.hbm_cut.extend([0.0] * grow)
        self.l2_ended.extend([0.0] * grow)
        self.hbm_ended.extend([0.0] * grow)

    def occupy(self, start: int, nbytes: int, hbm_bytes: int, port: float) -> int:
        """Reserve a transfer of `nbytes` (of which `hbm_bytes` come from HBM) starting at cycle `start`
        through a port of `port` bytes/cycle; return its occupancy in whole cycles (at least 1)."""
        if nbytes <= 0:
            return 1
        f = hbm_bytes / nbytes
        hbm, l2 = self.hbm, self.l2
        b = start // QUANTUM
        if b >= len(l2):
            self._grow(b)  # extends the lists in place
        bucket_end = (b + 1) * QUANTUM
        lasts = self.lasts
        last = lasts[b]
        if start >= last:  # in time order: what is left of the bucket is at most its span after `start`
            lasts[b] = start
            span = bucket_end - start
            cut = l2[b] - self.l2_rate * span
            if cut > 0:
                l2[b] -= cut
                self.l2_cut[b] += cut
            cut = hbm[b] - self.hbm_rate * span
            if cut > 0:
                hbm[b] -= cut
                self.hbm_cut[b] += cut
        else:  # booked after a later start cut the bucket: it may use the cut part of [start, last)
            back = min(self.l2_cut[b], self.l2_rate * (last - start))
            l2[b] += back
            self.l2_cut[b] -= back
            back = min(self.hbm_cut[b], self.hbm_rate * (last - start))
            hbm[b] += back
            self.hbm_cut[b] -= back
        # the first bucket, then the next ones while bytes are left
        t = float(start)
        left = float(nbytes)
        dur = bucket_end - t
        while True:
            cap = port * dur
            if l2[b] < cap:
                cap = l2[b]
            if f > 0 and hbm[b] < cap * f:
                cap = hbm[b] / f
            if cap > 0 and cap >= left - _EPS:
                break
            if cap > 0:
                l2[b] -= cap
                hbm[b] -= cap * f
                left -= cap
            t = float(bucket_end)
            b += 1
            if b >= len(l2):
                self._grow(b)
            bucket_end += QUANTUM
            dur = bucket_end - t
        finish = t + dur * left / cap
        l2[b] -= left
        # not before what the transfers ending in this bucket took of it, laid out forward from its start at
        # the shared rate, has moved
        ended = self.l2_ended[b] + left
        self.l2_ended[b] = ended
        floor = bucket_end - QUANTUM + ended / self.l2_rate
        if floor > finish:
            finish = floor
        if f > 0:
            hbm[b] -= left * f
            ended = self.hbm_ended[b] + left * f
            self.hbm_ended[b] = ended
            floor = bucket_end - QUANTUM + ended / self.hbm_rate
            if floor > finish:
                finish = floor
        cycles = ceil(finish - start - _EPS)
        return cycles if cycles > 1 else 1


class GlobalMemory:
    """The device's memory system: L2 (kept across launches) and the current launch's calendar."""

    def __init__(self, spec: MachineSpec) -> None:
        self.burst = spec.gm.burst_bytes
        self._l2_size = (spec.l2.bytes, spec.l2.line_bytes)
        self.l2 = L2Cache(*self._l2_size)
        self._hbm_rate = spec.hbm_bytes_per_cycle
        self._l2_rate = spec.l2_bytes_per_cycle
        self.calendar = BandwidthCalendar(self._hbm_rate, self._l2_rate)
        self.bytes_moved = 0
        self.hbm_bytes = 0
        self._owners: dict[int, weakref.ref] = {}  # array start address -> the array owning it
        self._span = spec.l2.line_bytes * _BLOCK_LINES  # bytes per L2 residency block
        self._shapes: dict[tuple[int, int, int, bool], RowShape] = {}  # see row_shape
        self._masks_kept = 0  # block masks held by the shapes (at most _SHAPES)
        self._masks_ids = itertools.count()  # a masks tuple's id, never reused: covered keys stay unambiguous

    def flush(self) -> None:
        """Forget L2 contents. The shapes' block masks stay: they depend on the machine alone."""
        self.l2 = L2Cache(*self._l2_size)
        self._owners.clear()

    def new_launch(self, regions: Sequence[GmRegion] = ()) -> None:
        """Start a launch at cycle 0 with an empty calendar; L2 contents stay, for arrays still alive.

        L2 lines are keyed by an array's host address, and numpy reuses freed addresses: a new array
        at the address of a dead one must not find that array's lines resident, or cycles would depend
        on the allocator. So each address remembers (weakly) the array that owns it."""
        self.calendar = BandwidthCalendar(self._hbm_rate, self._l2_rate)
        for start, ref in list(self._owners.items()):
            if ref() is None:  # freed since: its lines can never be hit again
                self.l2.forget(start << 40)
                del self._owners[start]
        for r in regions:
            if r.owner is None:
                continue
            ref = self._owners.get(r.start)
            if ref is not None and ref() is not r.owner:
                self.l2.forget(r.start << 40)
            if ref is None or ref() is not r.owner:
                self._owners[r.start] = weakref.ref(r.owner)

    def row_shape(self, x: GmXfer) -> RowShape | None:
        """The shape of a transfer that `transfer_rows` costs (rows of contiguous bytes, not one run), else
        None."""
        if (x.scattered or x.rows <= 0 or x.cols <= 0 or x.cs != x.itemsize or x.rs < 0 or contiguous_bytes(x)
                or self._span % self.burst):
            return None
        key = (x.rs, x.cols * x.itemsize, x.rows, x.write)
        shape = self._shapes.get(key)
        if shape is None:
            shape = self._shapes[key] = RowShape(*key)
        return shape

    def transfer(self, start: int, x: GmXfer, port: float, shift: int = 0, region: int = 0) -> int:
        """Cost of a GM transfer starting at `start` through a port of `port` bytes/cycle (its occupancy).

        The transfer is at offset `x.addr + shift` of the argument array whose host address is
        `region` (the key of its L2 lines). Bytes on the bus are rows rounded out to bursts; bytes
        from HBM are the lines that miss in L2 (reads) or the bus bytes (writes, write-through)."""
        size = contiguous_bytes(x)
        if size:
            return self.transfer_block(start, x.addr + shift, size, port, region << 40, x.write)
        rows = self.row_shape(x)
        if rows is not None:
            return self.transfer_rows(start, x.addr + shift, rows, port, region)
        if x.scattered:  # the worst case of data-dependent addresses (see the module docstring)
            nbytes = x.scattered * self.burst
            hbm_bytes = nbytes if x.write else x.scattered * self.l2.line_bytes
        elif x.rows <= 0 or x.cols <= 0:
            nbytes = hbm_bytes = 0
        else:
            nbytes, missed = self._rows(x, x.addr + shift, region << 40)
            hbm_bytes = nbytes if x.write else missed * self.l2.line_bytes
        self.bytes_moved += nbytes
        self.hbm_bytes += hbm_bytes
        return self.calendar.occupy(start, nbytes, hbm_bytes, port)

    def transfer_rows(self, start: int, base: int, shape: RowShape, port: float, region: int) -> int:
        """`transfer` of rows of contiguous bytes (`row_shape`) at offset `base` of the array at host address
        `region`, by L2 block with the line masks of its shape; row by row if L2 could evict meanwhile."""
        l2 = self.l2
        block0, off = divmod(base, self._span)
        masks = shape.masks.get(off)
        if masks is None:
            masks = self._row_masks(shape, off)
        blocks, nbytes, lines, deltas, ident = masks
        key = (region << 40) + block0
        covered = (key, ident)
        entry = l2.covered.get(covered)
        if entry is not None:  # every line is still resident: only the epochs change (L2Cache.settle)
            l2.epoch += 1
            entry[1] = l2.epoch
            missed = 0
        elif l2.resident + lines <= l2.capacity_lines:  # no eviction can happen inside this transfer
            l2.epoch += 1
            missed = l2.touch_masks(key, blocks)
            l2.covered[covered] = [deltas, 0]
        else:  # it may evict between rows: touch row by row, as the definition says
            l2.epoch += 1
            nbytes, missed = self._row_runs(base, shape.rs, shape.row, shape.rows, shape.write, region << 40)
        hbm_bytes = nbytes if shape.write else missed * l2.line_bytes
        self.bytes_moved += nbytes
        self.hbm_bytes += hbm_bytes
        return self.calendar.occupy(start, nbytes, hbm_bytes, port)

    def _rows(self, x: GmXfer, base: int, key: int) -> tuple[int, int]:
        """(bus bytes, lines missed) of a strided transfer at offset `base` of the array keyed `key`,
        touching L2 row by row (element by element if column-strided), evicting as it goes."""
        burst, l2 = self.burst, self.l2
        line = l2.line_bytes
        l2.epoch += 1
        if x.cs == x.itemsize:  # rows of contiguous bytes
            return self._row_runs(base, x.rs, x.cols * x.itemsize, x.rows, x.write, key)
        nbytes = missed = 0
        write = x.write
        for r in range(x.rows):  # column-strided: every element is its own burst
            a = base + r * x.rs
            for c in range(x.cols):
                e = a + c * x.cs
                nbytes += burst
                if not write:
                    missed += l2.touch(key, e // line, (e + x.itemsize - 1) // line)
                elif x.itemsize >= line and -(-e // line) < (e + x.itemsize) // line:
                    l2.touch(key, -(-e // line), (e + x.itemsize) // line - 1)
        return nbytes, missed

    def _row_runs(self, base: int, rs: int, row: int, rows: int, write: bool, key: int) -> tuple[int, int]:
        """`_rows` of rows of `row` contiguous bytes every `rs` bytes, in the current epoch."""
        burst, l2 = self.burst, self.l2
        line = l2.line_bytes
        nbytes = missed = 0
        for r in range(rows):
            a = base + r * rs
            nbytes += (-(-(a + row) // burst) - a // burst) * burst
            if not write:
                missed += l2.touch(key, a // line, (a + row - 1) // line)
            elif -(-a // line) < (a + row) // line:  # lines the row covers completely
                l2.touch(key, -(-a // line), (a + row) // line - 1)
        return nbytes, missed

    def _row_masks(self, shape: RowShape, off: int) -> tuple[tuple[tuple[int, int], ...], int, int, tuple[int, ...],
                                                             int]:
        """For rows of `row` bytes every `rs` bytes from byte `off` of an L2 block: the (block offset,
        line mask) of every block the rows touch (read) or cover completely (write), in ascending
        order (the order row by row touching first reaches them), the bus bytes, the lines touched, the
        block offsets alone, and an id for these masks.
        None of it depends on L2 state or on which block the transfer starts in (a block spans whole
        bursts), so it is computed once per shape and offset, and kept in `shape.masks`."""
        rs, row, rows, write = shape.rs, shape.row, shape.rows, shape.write
        line, burst = self.l2.line_bytes, self.burst
        bits: dict[int, int] = {}
        nbytes = 0
        for r in range(rows):
            a = off + r * rs
            nbytes += (-(-(a + row) // burst) - a // burst) * burst
            first, last = (-(-a // line), (a + row) // line - 1) if write else (a // line, (a + row - 1) // line)
            for ln in range(first, last + 1):
                block, bit = divmod(ln, _BLOCK_LINES)
                bits[block] = bits.get(block, 0) | (1 << bit)
        blocks = tuple((d, _FULL if m == _FULL else m) for d, m in sorted(bits.items()))
        masks = (blocks, nbytes, sum(m.bit_count() for _, m in blocks), tuple(d for d, _ in blocks),
                 next(self._masks_ids))
        if self._masks_kept >= _SHAPES:  # start again (a covered tile then takes touch_masks, to the same effect)
            for kept in self._shapes.values():
                kept.masks.clear()
            self._shapes.clear()
            self._masks_kept = 0
        self._masks_kept += 1
        shape.masks[off] = masks
        return masks

    def transfer_block(self, start: int, base: int, size: int, port: float, key: int, write: bool) -> int:
        """`transfer` of one contiguous run of `size` > 0 bytes at offset `base` of the array whose L2
        key is `key` (its host address shifted left by 40 bits): the common case, figures precomputed."""
        burst = self.burst
        l2 = self.l2
        line = l2.line_bytes
        l2.epoch += 1
        nbytes = (-(-(base + size) // burst) - base // burst) * burst
        if write:  # write-through: every burst goes to HBM; fully covered lines become resident
            hbm_bytes = nbytes
            first, last = -(-base // line), (base + size) // line - 1
            if first <= last:
                l2.touch(key, first, last)
        else:
            hbm_bytes = l2.touch(key, base // line, (base + size - 1) // line) * line
        self.bytes_moved += nbytes
        self.hbm_bytes += hbm_bytes
        return self.calendar.occupy(start, nbytes, hbm_bytes, port)
