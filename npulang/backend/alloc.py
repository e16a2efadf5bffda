"""Buffer allocation: an aligned address for every symbolic buffer, reusing dead tiles' space.

A buffer is live from its first to its last access in program text. A buffer touched inside a
loop is live for the whole loop: its space is needed again on the next iteration, and giving two
tiles of one loop body the same bytes would serialise the pipes that software pipelining wants
to overlap. The persistent loop over programs (persistent.py) is the exception: its iterations share
no tile, and its pipelined copies own theirs. First fit per space, preferring bytes no earlier tile
used while they last, checked against the spec's capacity.
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

    def apply(self, nodes: list[Node]) -> tuple[list[Symbol], dict[str, int]]:
        """Place every buffer, preferring fresh bytes; if that does not fit, pack tightly (or raise)."""
        live = _live_ranges(nodes)
        usage = self._place(live, fresh_first=True)
        if isinstance(usage, BufferOverflowError):
            usage = self._place(live, fresh_first=False)
        if isinstance(usage, BufferOverflowError):
            raise usage
        symbols = [Symbol(b.name, b.space, b.addr, b.nbytes) for b in live if b.addr is not None]
        return symbols, usage

    def _place(self, live: dict[Buffer, tuple[int, int]],
               fresh_first: bool) -> dict[str, int] | BufferOverflowError:
        """First fit among the tiles live at the same time. With `fresh_first`, bytes no earlier tile used
        are taken while they last: a tile that reuses a dead tile's bytes must wait for its last reader, so
        fresh bytes let a later load start early (e.g. the next pass over a row while this one computes).
        Returns the usage per space, or the error for the first tile that does not fit."""
        placed: dict[str, list[tuple[Buffer, int, int]]] = {}
        usage: dict[str, int] = {}
        for buf in sorted(live, key=lambda b: (live[b][0], -b.nbytes)):
            lo, hi = live[buf]
            everything = placed.get(buf.space, [])
            others = [(p.addr, p.addr + p.nbytes) for p, plo, phi in everything if plo <= hi and lo <= phi]
            fresh = [(p.addr, p.addr + p.nbytes) for p, _, _ in everything]
            addr = self._first_fit(buf, fresh) if fresh_first else None
            buf.addr = addr if addr is not None else self._first_fit(buf, others)
            if buf.addr is None:
                return self._overflow(buf, self.spec.buffer_bytes(buf.space), others)
            everything.append((buf, lo, hi))
            placed[buf.space] = everything
            usage[buf.space] = max(usage.get(buf.space, 0), buf.addr + buf.nbytes)
        return usage

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
        used = sum(hi - (lo or 0) for lo, hi in taken)
        return resource_error(
            BufferOverflowError, self.kernel, buf.loc, self.kernel_loc,
            f"tile '{buf.name}' needs {buf.nbytes} bytes of {buf.space.upper()} but only "
            f"{max(capacity - used, 0)} of its {capacity} bytes are available "
            f"({used} bytes are taken by other live tiles)",
            hint="use smaller BLOCK_* sizes or a lower num_stages")


def _live_ranges(nodes: list[Node]) -> dict[Buffer, tuple[int, int]]:
    live: dict[Buffer, list[int]] = {}
    pos = 0

    def visit(block: list[Node]) -> None:
        nonlocal pos
        for n in block:
            if isinstance(n, MInstr):
                for r in n.reads + n.writes:
                    if isinstance(r.key, Buffer):
                        span = live.setdefault(r.key, [pos, pos])
                        span[1] = pos
                pos += 1
                continue
            start = pos
            for b in blocks_of(n):
                visit(b)
            if isinstance(n, Loop) and not n.persistent:  # programs of the persistent loop share no tile
                for span in live.values():
                    if start <= span[1] and span[0] <= pos:  # touched inside: live for the whole loop
                        span[0], span[1] = min(span[0], start), max(span[1], pos)
    visit(nodes)
    return {b: (s[0], s[1]) for b, s in live.items()}
