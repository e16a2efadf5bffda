"""Flag insertion: order every cross-pipe conflict with set_flag/wait_flag, race-free by construction.

For each instruction J on pipe P and each earlier conflicting access I on pipe Q != P (same bytes,
one a write), the pass makes sure I happens before J: either already implied (vector clocks track
what each pipe knows has completed, through program order and earlier flags), or by a new flag:
`set_flag Q, P` right after I and `wait_flag Q, P` right before J.

Loops and ifs are compound nodes. From outside, a node is the union of its accesses: conflicts
into it get a wait just before it, conflicts out of it a set just after it. Inside a loop the body
is analysed twice, as two consecutive iterations; conflicts the second copy has with the first
are loop-carried: the flag is primed (set once) at the start of the block holding the loop, waited
before J, set after I each iteration and drained (waited once) at the end of that block; where
event ids run short, primes and drains sit right around the loop instead. Event ids are assigned
at the end by interval colouring over the program text, so every set is consumed by one wait
before the same flag is set again.
"""

from __future__ import annotations

from dataclasses import dataclass

from isa import MachineSpec, Pipe, SourceLoc
from npulang.backend.errors import resource_error
from npulang.backend.mir import Flag, Loop, MInstr, Node, Region, blocks_of, nearest_loc, walk
from npulang.errors import EventIdOverflowError

_PIPES = [p for p in Pipe if p is not Pipe.S]
Clock = dict[Pipe, int]


@dataclass
class _Entry:
    """One recorded access: which pipe did it, its sequence number there, what that pipe knew."""

    region: Region
    write: bool
    pipe: Pipe
    seq: int
    anchor: Node  # a set_flag for this access goes right after this node
    known: Clock


class FlagInsertion:
    """Insert set_flag/wait_flag pairs into machine IR; `apply` rewrites the node lists in place."""

    def __init__(self, spec: MachineSpec, kernel: str, kernel_loc: SourceLoc) -> None:
        self.spec, self.kernel, self.kernel_loc = spec, kernel, kernel_loc
        self.pre: dict[int, list[MInstr]] = {}
        self.primes: dict[int, list[MInstr]] = {}  # loop -> set_flags priming its loop-carried flags
        self.drains: dict[int, list[MInstr]] = {}  # loop -> wait_flags consuming their last sets
        self.post: dict[int, list[MInstr]] = {}
        self.waits: dict[tuple[int, Pipe], list[tuple[Flag, Node]]] = {}  # (node, waiting pipe)
        self.seq: Clock = {p: 0 for p in _PIPES}
        self.done: set[int] = set()

    def apply(self, nodes: list[Node]) -> None:
        vc = {p: {q: 0 for q in _PIPES} for p in _PIPES}
        self._block(nodes, vc, [], None)
        # A loop's primes go first in the enclosing block and its drains last, so its first loads do not
        # wait for the source pipe to finish earlier work, and the pipe after it does not wait for its last
        # consumer (forward conflicts have flags of their own). That lengthens their event intervals: when
        # event ids run out, loops (in program order) keep the hoisting only while the colouring succeeds.
        # Loops inside the persistent loop over programs always keep theirs outside it (see `_order`).
        saved = [(block, list(block)) for block in _blocks(nodes)]
        loops = list(self.primes)
        if self._place(nodes, saved, set(loops)):
            return
        required = {id(inner) for outer in _loops(nodes) if outer.persistent for inner in _loops(outer.body)}
        hoisted = set(required)
        for loop in loops:
            if self._place(nodes, saved, hoisted | {loop}):
                hoisted.add(loop)
        if not self._place(nodes, saved, hoisted):
            self._restore(saved)
            self._rebuild(nodes, required)
            shortage = assign_events(nodes, self.spec.sync.event_ids)
            if shortage is not None:
                raise resource_error(EventIdOverflowError, self.kernel, shortage.loc, self.kernel_loc,
                                     shortage.message, hint="use a lower num_stages or fewer tiles in flight")

    def _place(self, nodes: list[Node], saved: list[tuple[list[Node], list[Node]]],
               hoisted: set[int]) -> bool:
        """Insert the flags with these loops' primes and drains hoisted; False if event ids run out."""
        self._restore(saved)
        self._rebuild(nodes, hoisted)
        return assign_events(nodes, self.spec.sync.event_ids) is None

    @staticmethod
    def _restore(saved: list[tuple[list[Node], list[Node]]]) -> None:
        for block, contents in saved:
            block[:] = contents

    # -- analysis ------------------------------------------------------------------------------
    def _block(self, nodes: list[Node], vc: dict[Pipe, Clock], hist: list[_Entry],
               loop: _LoopCtx | None) -> None:
        for node in nodes:
            if isinstance(node, MInstr):
                self._instr(node, vc, hist, loop)
            else:
                self._compound(node, vc, hist, loop)

    def _instr(self, ins: MInstr, vc: dict[Pipe, Clock], hist: list[_Entry], loop: _LoopCtx | None) -> None:
        pipe = ins.pipe
        if pipe is Pipe.S or not (ins.reads or ins.writes):
            return
        self._order(ins, pipe, ins.reads, ins.writes, vc, hist, loop, ins)
        self._record(ins, pipe, ins.reads, ins.writes, vc, hist)

    def _compound(self, node: Node, vc: dict[Pipe, Clock], hist: list[_Entry], loop: _LoopCtx | None) -> None:
        inner = list(walk([node]))
        by_pipe: dict[Pipe, tuple[list[Region], list[Region]]] = {}
        for ins in inner:
            if ins.pipe is not Pipe.S and ins.flag is None:
                r, w = by_pipe.setdefault(ins.pipe, ([], []))
                r.extend(ins.reads)
                w.extend(ins.writes)
        for pipe, (reads, writes) in by_pipe.items():
            self._order(node, pipe, reads, writes, vc, hist, loop, node)
        if id(node) not in self.done:
            self.done.add(id(node))
            entry = {p: dict(c) for p, c in vc.items()}
            if isinstance(node, Loop):
                self._loop(node, entry)
            else:
                for block in blocks_of(node):
                    self._block(block, {p: dict(c) for p, c in entry.items()}, [], None)
        # Knowledge gained inside is not kept (the body may not run); the node is one access per pipe.
        for pipe, (reads, writes) in by_pipe.items():
            self._record(node, pipe, reads, writes, vc, hist)

    def _loop(self, node: Loop, entry: dict[Pipe, Clock]) -> None:
        hist: list[_Entry] = []
        vc = {p: dict(c) for p, c in entry.items()}
        self._block(node.body, vc, hist, None)  # first iteration: forward edges
        ctx = _LoopCtx(node, {p: s for p, s in self.seq.items()})
        self._block(node.body, vc, hist, ctx)  # second iteration: loop-carried edges

    def _order(self, target: Node, pipe: Pipe, reads: list[Region] | tuple[Region, ...],
               writes: list[Region] | tuple[Region, ...], vc: dict[Pipe, Clock], hist: list[_Entry],
               loop: _LoopCtx | None, anchor_before: Node) -> None:
        known = vc[pipe]
        for flag, source in self.waits.get((id(target), pipe), []):
            src = _latest(hist, source, flag.src)
            if src is not None:
                _join(known, src)
        changed = True
        while changed:
            changed = False
            for e in reversed(hist):
                if e.pipe is pipe or e.seq <= known[e.pipe]:
                    continue
                if e.anchor is target and loop is not None and loop.node.persistent and isinstance(target, Loop):
                    # A loop against its own run in the previous program: its loop-carried flags order that,
                    # since their primes and drains sit outside the loop over programs.
                    continue
                if not _conflicts(e, reads, writes):
                    continue
                flag = Flag(e.pipe, pipe)
                set_ins = MInstr("set_flag", {}, flag=flag)
                wait_ins = MInstr("wait_flag", {}, flag=flag)
                if loop is not None and e.seq <= loop.start[e.pipe]:
                    # Loop-carried: prime before the loop, drain after it.
                    self.primes.setdefault(id(loop.node), []).append(MInstr("set_flag", {}, flag=flag))
                    self.drains.setdefault(id(loop.node), []).insert(0, MInstr("wait_flag", {}, flag=flag))
                self.post.setdefault(id(e.anchor), []).append(set_ins)
                self.pre.setdefault(id(anchor_before), []).append(wait_ins)
                self.waits.setdefault((id(target), pipe), []).append((flag, e.anchor))
                _join(known, e)
                changed = True
                break

    def _record(self, anchor: Node, pipe: Pipe, reads: list[Region] | tuple[Region, ...],
                writes: list[Region] | tuple[Region, ...], vc: dict[Pipe, Clock], hist: list[_Entry]) -> None:
        self.seq[pipe] += 1
        vc[pipe][pipe] = self.seq[pipe]
        known = dict(vc[pipe])
        for r in reads:
            hist.append(_Entry(r, False, pipe, self.seq[pipe], anchor, known))
        for r in writes:
            hist.append(_Entry(r, True, pipe, self.seq[pipe], anchor, known))

    # -- rewriting -----------------------------------------------------------------------------
    def _rebuild(self, nodes: list[Node], hoisted: set[int],
                 outer: tuple[list[Node], list[Node]] | None = None) -> None:
        """Place the flags; hoisted primes and drains go to the head and tail of the enclosing block, or of
        `outer` (the block around the persistent loop over programs, so that a drain never makes one
        program wait for the last consumer of the one before: programs overlap)."""
        head: list[Node] = []
        out: list[Node] = []
        tail: list[Node] = []
        ends = outer if outer is not None else (head, tail)
        for n in nodes:
            inner = ends if outer is not None or (isinstance(n, Loop) and n.persistent) else None
            for b in blocks_of(n):
                self._rebuild(b, hoisted, inner)
            (ends[0] if id(n) in hoisted else out).extend(self.primes.get(id(n), []))
            out.extend(self.pre.get(id(n), []))
            out.append(n)
            (ends[1] if id(n) in hoisted else out).extend(self.drains.get(id(n), []))
            out.extend(self.post.get(id(n), []))
        nodes[:] = head + out + tail[::-1]


@dataclass
class _LoopCtx:
    node: Loop
    start: Clock  # sequence numbers when the second analysed iteration began


def _loops(nodes: list[Node]) -> list[Loop]:
    """Every loop in `nodes`, nested ones included."""
    out: list[Loop] = []
    for n in nodes:
        if isinstance(n, Loop):
            out.append(n)
        for b in blocks_of(n):
            out += _loops(b)
    return out


def _blocks(nodes: list[Node]) -> list[list[Node]]:
    """`nodes` and every block nested in it."""
    out = [nodes]
    for n in nodes:
        for b in blocks_of(n):
            out += _blocks(b)
    return out


def _conflicts(e: _Entry, reads: list[Region] | tuple[Region, ...],
               writes: list[Region] | tuple[Region, ...]) -> bool:
    if any(e.region.overlaps(w) for w in writes):
        return True
    return e.write and any(e.region.overlaps(r) for r in reads)


def _latest(hist: list[_Entry], anchor: Node, pipe: Pipe) -> _Entry | None:
    """The latest access of `anchor` on `pipe` (an if or loop is one access on each pipe it uses: a flag
    from one of them says nothing of the others)."""
    for e in reversed(hist):
        if e.anchor is anchor and e.pipe is pipe:
            return e
    return None


def _join(known: Clock, e: _Entry) -> None:
    for p, s in e.known.items():
        if s > known[p]:
            known[p] = s
    known[e.pipe] = max(known[e.pipe], e.seq)


@dataclass(frozen=True)
class EventShortage:
    """Why event ids ran out, and the statement whose data the flag that got none protects."""

    message: str
    loc: SourceLoc | None


def assign_events(nodes: list[Node], event_ids: int) -> EventShortage | None:
    """Give each flag an event id, colouring its live interval (first..last use in program text).

    Returns None, or the shortage when more flags of one pipe pair are outstanding than there are ids.
    """
    span: dict[int, list[int]] = {}
    flags: dict[int, Flag] = {}
    instrs = list(walk(nodes))
    for pos, ins in enumerate(instrs):
        if ins.flag is not None:
            s = span.setdefault(id(ins.flag), [pos, pos])
            s[1] = pos
            flags[id(ins.flag)] = ins.flag
    busy: dict[tuple[Pipe, Pipe], list[int]] = {}  # per pipe pair: end position per event id
    for fid in sorted(span, key=lambda k: span[k][0]):
        flag, (lo, hi) = flags[fid], span[fid]
        ends = busy.setdefault((flag.src, flag.dst), [-1] * event_ids)
        free = [e for e in range(event_ids) if ends[e] < lo]
        if not free:
            return EventShortage(f"{event_ids + 1} flags from {flag.src} to {flag.dst} would be outstanding at "
                                 f"once, but the machine has {event_ids} event id(s) per pipe pair",
                                 nearest_loc(instrs, lo))
        flag.event = free[0]
        ends[free[0]] = hi
    return None

