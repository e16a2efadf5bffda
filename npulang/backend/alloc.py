"""Buffer allocation: an aligned address for every symbolic buffer, reusing dead tiles' space.

A buffer is live from its first to its last access in program text. Three layouts are tried, the
first that fits wins (`_live_ranges`):
1. a buffer touched inside a loop is live for the whole loop, so no two tiles of a loop body share
   bytes and nothing serialises the pipes that software pipelining wants to overlap;
2. the tiles an iteration owns, except the loads' private copies, live only from first to last
   access, so temporaries (vector work, the cube's L0 operands) share bytes by liveness;
3. the loads' copies too (a load then waits for the previous iteration's readers; a note says so).
Tiles that outlive an iteration (carried, loop-invariant) are always live for the whole loop. The
persistent loop over programs (persistent.py) is the exception: its iterations share no tile, and its
pipelined copies own theirs. First fit per space, preferring bytes no earlier tile used while they
last, checked against the capacity.
"""

from __future__ import annotations

from isa import MachineSpec, SourceLoc, Symbol
from npulang.backend.errors import resource_error
from npulang.errors import BufferOverflowError
from npulang.backend.mir import Buffer, Loop, MInstr, Node, blocks_of


class BufferAllocation:
    """Assign `Buffer.addr` for every buffer in the machine IR; `apply` returns the buffer map."""

    def __init__(self, spec: MachineSpec, kernel: str, kernel_loc: SourceLoc) -> None:
        self.spec, self.kernel, self.kernel_loc = spec, kernel, kernel_loc
        self.notes: list[str] = []

    def apply(self, nodes: list[Node]) -> tuple[list[Symbol], dict[str, int]]:
        """Place every buffer: the first layout (see the module docstring) that fits, with the first
        placement of `_place` that fits it (spread out, then first fit, then packed tightly), or raise."""
        for per_iteration in (None, "temporaries", "all"):
            live = _live_ranges(nodes, per_iteration)
            for fresh_first, spread in ((True, True), (True, False), (False, False)):
                usage = self._place(live, fresh_first, spread)
                if not isinstance(usage, BufferOverflowError):
                    break
            if not isinstance(usage, BufferOverflowError):
                break
        if isinstance(usage, BufferOverflowError):
            raise usage
        if per_iteration == "all":
            self.notes.append("on-chip buffers are too small for private copies of the loops' loads: "
                              "pipelined loads share bytes, so num_stages > 1 overlaps less")
        symbols = [Symbol(b.name, b.space, b.addr, b.nbytes) for b in live if b.addr is not None]
        return symbols, usage

    def _place(self, live: dict[Buffer, tuple[int, int]], fresh_first: bool,
               spread: bool) -> dict[str, int] | BufferOverflowError:
        """First fit among the tiles live at the same time. With `fresh_first`, bytes no earlier tile used
        are taken while they last: a tile that reuses a dead tile's bytes must wait for its last reader, so
        fresh bytes let a later load start early (e.g. the next pass over a row while this one computes).
        With `spread`, reused bytes are those freed longest ago (`_coldest_fit`), which fragments more.
        Returns the usage per space, or the error for the first tile that does not fit."""
        placed: dict[str, list[tuple[Buffer, int, int]]] = {}
        usage: dict[str, int] = {}
        for buf in sorted(live, key=lambda b: (live[b][0], -b.nbytes)):
            lo, hi = live[buf]
            everything = placed.get(buf.space, [])
            others = [(p.addr, p.addr + p.nbytes) for p, plo, phi in everything if plo <= hi and lo <= phi]
            fresh = [(p.addr, p.addr + p.nbytes) for p, _, _ in everything]
            addr = self._first_fit(buf, fresh) if fresh_first else None
            if addr is None:
                addr = self._coldest_fit(buf, others, everything) if spread else self._first_fit(buf, others)
            buf.addr = addr
            if buf.addr is None:
                return self._overflow(buf, self.spec.buffer_bytes(buf.space), others)
            everything.append((buf, lo, hi))
            placed[buf.space] = everything
            usage[buf.space] = max(usage.get(buf.space, 0), buf.addr + buf.nbytes)
        return usage

    def _coldest_fit(self, buf: Buffer, taken: list[tuple[int | None, int]],
                     everything: list[tuple[Buffer, int, int]]) -> int | None:
        """Among the aligned addresses where `buf` overlaps no live tile, the one whose earlier tiles died
        first (lowest on ties): back-to-back tiles of one size (e.g. the K pieces of a split dot) then
        alternate between two places, so one is written while the previous one is still being read."""
        align = self.spec.buffer_alignment(buf.space)
        capacity = self.spec.buffer_bytes(buf.space)
        starts = {0} | {-(-(p.addr + p.nbytes) // align) * align for p, _, _ in everything if p.addr is not None}
        best: tuple[int, int] | None = None
        for addr in sorted(starts):
            end = addr + buf.nbytes
            if end > capacity or any(addr < hi and (lo or 0) < end for lo, hi in taken):
                continue
            died = max((phi for p, _, phi in everything if p.addr is not None and addr < p.addr + p.nbytes
                        and p.addr < end), default=-1)
            if best is None or died < best[0]:
                best = (died, addr)
        return None if best is None else best[1]

    def _first_fit(self, buf: Buffer, taken: list[tuple[int | None, int]]) -> int | None:
        """The lowest aligned address where `buf` overlaps none of `taken`, or None if it does not fit."""
        align = self.spec.buffer_alignment(buf.space)
        capacity = self.spec.buffer_bytes(buf.space)
        addr = 0
        for lo, hi in sorted((lo or 0, hi) for lo, hi in taken):
            if addr + buf.nbytes <= lo:
                break
            addr = max(addr, -(-hi // align) * align)
        return None if addr + buf.nbytes > capacity else addr

    def _overflow(self, buf: Buffer, capacity: int,
                  taken: list[tuple[int | None, int]]) -> BufferOverflowError:
        spans = sorted((lo or 0, hi) for lo, hi in taken)
        used = sum(hi - lo for lo, hi in spans)
        free = max(capacity - used, 0)
        gaps, end = [], 0
        for lo, hi in spans + [(capacity, capacity)]:
            gaps.append(lo - end)
            end = max(end, hi)
        split = f"; the largest free range is {max(gaps)} bytes" if free >= buf.nbytes else ""
        return resource_error(
            BufferOverflowError, self.kernel, buf.loc, self.kernel_loc,
            f"tile '{buf.name}' needs {buf.nbytes} bytes of {buf.space.upper()} but only "
            f"{free} of its {capacity} bytes are available "
            f"({used} bytes are taken by other live tiles{split})",
            hint="use smaller BLOCK_* sizes or a lower num_stages")


def _live_ranges(nodes: list[Node], per_iteration: str | None) -> dict[Buffer, tuple[int, int]]:
    """First to last access in program text. A buffer touched inside a loop is live for the whole loop,
    except, with `per_iteration`, a tile the iteration owns (never one that outlives an iteration: carried
    or loop-invariant, or read before it is written, as the pipelining's hoisted work is): with
    "temporaries" unless a DMA load writes it, so temporaries share bytes by
    liveness while the loads the pipeline overlaps keep their private copies; with "all" loads too (the
    copies may then share bytes, and a load waits for the previous iteration's readers)."""
    live: dict[Buffer, list[int]] = {}
    loaded: set[Buffer] = set()
    read_first: set[Buffer] = set()  # first touched by a read: its value comes from an earlier iteration
    pos = 0

    def visit(block: list[Node]) -> None:
        nonlocal pos
        for n in block:
            if isinstance(n, MInstr):
                for r in n.reads + n.writes:
                    if isinstance(r.key, Buffer):
                        if r.key not in live and r in n.reads:
                            read_first.add(r.key)
                        span = live.setdefault(r.key, [pos, pos])
                        span[1] = pos
                if n.op in ("load", "gather"):
                    loaded.update(r.key for r in n.writes if isinstance(r.key, Buffer))
                pos += 1
                continue
            start = pos
            for b in blocks_of(n):
                visit(b)
            if isinstance(n, Loop) and not n.persistent:  # programs of the persistent loop share no tile
                inner = {id(x) for x in _loops_in([n])}
                for buf, span in live.items():
                    owned = id(buf.scope) in inner and span[0] >= start and buf not in read_first and (
                        per_iteration == "all" or per_iteration is not None and buf not in loaded)
                    if start <= span[1] and span[0] <= pos and not owned:  # live for the whole loop
                        span[0], span[1] = min(span[0], start), max(span[1], pos)
    visit(nodes)
    return {b: (s[0], s[1]) for b, s in live.items()}


def _loops_in(nodes: list[Node]) -> list[Loop]:
    """Every loop in `nodes`, nested ones included."""
    out: list[Loop] = []
    for n in nodes:
        out += [n] if isinstance(n, Loop) else []
        for b in blocks_of(n):
            out += _loops_in(b)
    return out
