"""Software pipelining: unroll loops `num_stages` times with a private copy of each per-iteration tile.

A loop's own `num_stages` (from `npu.range(..., num_stages=k)`) wins over the kernel-wide default.

Pipes are decoupled queues, so once consecutive iterations write different buffers the loads
of iteration i+1 run while iteration i computes: the flag pass then only orders each copy's
buffers with themselves (loads wait for the consumer of the same copy `num_stages` iterations
back). Event ids are immediates, so the copies must be distinct code: the loop body is repeated
`num_stages` times, each later copy guarded by `iv + c*step < ub` for ragged trip counts.

Queues are in order, so a loop that hands tiles from the vector unit back to the cube (attention:
scores -> softmax -> P V) would make the two units take turns. There the work before the hand-off
that does not need it (`_early`) runs `num_stages - 1` iterations ahead of the rest: the first
iterations' share before the loop, and in each copy the share of the iteration that far ahead
(guarded like the copies), into that iteration's own tiles.
"""

from __future__ import annotations

from collections import Counter
from typing import Any, Iterator

from isa import Pipe
from npulang.backend.mir import Buffer, BufRef, GmRef, If, Loop, MInstr, Node, Region, VReg, blocks_of, buffers_of, walk


class SoftwarePipelining:
    """Unroll every innermost loop that issues DMA loads into `num_stages` buffer-private copies."""

    def __init__(self, num_stages: int, hoist: bool = True) -> None:
        self.num_stages, self.hoist = num_stages, hoist

    def apply(self, nodes: list[Node]) -> None:
        self.defs = _body_defs(nodes)
        self._apply(nodes)

    def hoists(self, nodes: list[Node]) -> bool:
        """Whether `apply` would run some loop's early work ahead (see `_early`)."""
        self.defs = _body_defs(nodes)
        return self.hoist and any(self._stages(x) > 1 and self._worth_it(x) and _early(x, self._carried(x))
                                  for x in _loops(nodes))

    def _carried(self, loop: Loop) -> set[VReg]:
        """Registers the loop body sets that are also set outside it (loop-carried scalars)."""
        return {r for r, n in _body_defs(loop.body).items() if self.defs[r] != n}

    def _apply(self, nodes: list[Node]) -> None:
        out: list[Node] = []
        for n in nodes:
            for b in blocks_of(n):
                self._apply(b)
            if isinstance(n, Loop) and self._stages(n) > 1 and self._worth_it(n):
                out += self._unroll(n, self._stages(n))
            out.append(n)
        nodes[:] = out

    def _stages(self, loop: Loop) -> int:
        return self.num_stages if loop.num_stages is None else loop.num_stages

    def _worth_it(self, loop: Loop) -> bool:
        """Innermost loops with loads; nested loops with num_stages=1 (e.g. DMA-piece loops) do not count.
        The persistent loop over programs (persistent.py) always: its copies are what overlap programs."""
        if loop.persistent:
            return True
        innermost = all(inner.num_stages == 1 for inner in _loops(loop.body))
        return innermost and any(i.op in ("load", "gather") for i in walk(loop.body))

    def _unroll(self, loop: Loop, stages: int) -> list[Node]:
        """Unroll in place; returns instructions to run before the loop (a runtime step's multiples, and
        the first iterations' early work when it runs ahead: see `_early`)."""
        pre: list[Node] = []
        early = _early(loop, self._carried(loop)) if self.hoist else set()
        steps: dict[int, VReg | int] = {0: 0}
        for c in range(1, max(stages, 2 * stages - 2 if early else 0) + 1):
            if isinstance(loop.step, int):
                steps[c] = c * loop.step
            else:
                steps[c] = VReg("step")
                pre.append(MInstr("mul", {"d": steps[c], "a": loop.step, "b": c}, loop.loc))
        local = [b for b in buffers_of(loop.body) if b.scope is loop]
        defs = _body_defs(loop.body)
        rest = [n for i, n in enumerate(loop.body) if i not in early or isinstance(n, MInstr) and n.defs()]
        bufs: list[dict[int, Buffer]] = [{}]
        for c in range(1, stages):
            bufs.append({id(b): Buffer(f"{b.name}.{c}", b.space, b.nbytes, b.loc, loop) for b in local})
        static = loop.min_trips >= stages and isinstance(loop.ub, int) and isinstance(loop.lb, int) and \
            loop.min_trips % stages == 0
        copies: list[Node] = []
        ahead = [loop.body[i] for i in sorted(early)]
        # Tiles the early work keeps to itself (e.g. L0 operands of its mmad) are fresh for every placement
        # of it, so those before the loop do not stay live through it; the ones late work reads are the
        # iteration's own.
        late_keys = {r.key for n in rest for ins in walk([n]) for r in ins.reads + ins.writes}
        inner = [b for b in local if b not in late_keys]

        def early_bufs(f: int) -> dict[int, Buffer]:
            own = {id(b): Buffer(f"{b.name}.e{f}", b.space, b.nbytes, b.loc, loop) for b in inner}
            return {**bufs[f % stages], **own}

        if early:  # iterations lb .. lb + (stages - 2) * step get their early work before the loop
            for f in range(stages - 1):
                pre += self._guarded(loop, _sum(loop.lb, steps[f], pre, loop), ahead, early_bufs(f), defs, static)
        for c in range(stages):
            if early:  # the early work of the iteration stages - 1 ahead, into that iteration's own tiles
                f = c + stages - 1
                x = _sum(loop.iv, steps[f], copies, loop)
                copies += self._guarded(loop, x, ahead, early_bufs(f), defs, static and f < stages)
            if c == 0:
                copies += rest
                continue
            iv = _sum(loop.iv, steps[c], copies, loop)
            copies += self._guarded(loop, iv, rest, bufs[c], defs, static)
        loop.body[:] = copies
        loop.step = steps[stages]
        if loop.min_trips:
            loop.min_trips = 1
        return pre

    def _guarded(self, loop: Loop, iv: VReg | int, body: list[Node], bufs: dict[int, Buffer],
                 defs: Counter[VReg], unguarded: bool) -> list[Node]:
        """`body` for the iteration at `iv` with private tiles `bufs`, run only when iv < ub (unless known)."""
        # Registers defined only in the body are per-iteration temporaries: fresh ones per copy keep
        # their live ranges short. Loop-carried registers (also defined outside) stay shared.
        regs = {r: VReg(r.name) for r, n in defs.items() if self.defs[r] == n}
        regs[loop.iv] = iv  # type: ignore[assignment]
        cloned = [_clone(n, bufs, regs) for n in body]
        if unguarded:
            return cloned
        more = VReg("more")
        return [MInstr("lt", {"d": more, "a": iv, "b": loop.ub}, loop.loc), If(more, cloned, [], loop.loc)]


def _sum(a: VReg | int, b: VReg | int, out: list[Node], loop: Loop) -> VReg | int:
    """a + b as an operand, emitting the add into `out` unless both are constants."""
    if isinstance(a, int) and isinstance(b, int):
        return a + b
    if b == 0:
        return a
    d = VReg("iv")
    out.append(MInstr("add", {"d": d, "a": a, "b": b}, loop.loc))
    return d


def _early(loop: Loop, carried: set[VReg]) -> set[int]:
    """Positions in the loop body of the work that may run one iteration ahead of the rest: everything
    before the hand-off from the vector unit back to the cube (a UB -> L1 store) that the hand-off's
    chain does not need. In attention that is Q Kᵀ and the softmax of iteration i+1, which then run
    while the cube does P V of iteration i, and the vector unit never waits for the cube's round trip.
    Empty unless the early work has an mmad and vector work stays late (plain matmul loops are left as
    they are).

    The late set starts at the hand-offs and grows to a fixed point with every instruction that reads
    a register or buffer late work writes earlier in the body, conflicts with late work on a tile the
    iterations share (carried, GM) anywhere in the body (early work of i+1 runs before late work of i),
    writes a carried register (`carried`), or moves an L0A/L0B operand for a late mmad (it would hold L0
    space across iterations). Nested ifs and loops, and prints (their order is visible), stay late."""
    body = loop.body
    late = {i for i, n in enumerate(body) if not isinstance(n, MInstr) or n.flag is not None or n.op == "vprint"
            or (n.pipe is Pipe.S and (len(n.defs()) != 1 or n.defs()[0] in carried or n.reads or n.writes))}
    seeds = {i for i, n in enumerate(body) if isinstance(n, MInstr) and n.op == "store"
             and any(isinstance(r.key, Buffer) and r.key.space == "l1" for r in n.writes)}
    if not seeds:
        return set()
    late |= seeds
    touched = [(list(walk([n])), i) for i, n in enumerate(body)]
    changed = True
    while changed:
        changed = False
        late_defs = {d for ins, i in touched if i in late for x in ins for d in x.defs()}
        for ins, i in touched:
            if i in late:
                continue
            x = ins[0]
            if any(u in late_defs for u in x.uses()) or any(
                    _conflicts(x, y, loop, shared_only=j > i) for ys, j in touched if j in late for y in ys):
                late.add(i)
                changed = True
    early = set(range(len(body))) - late
    moved = [body[i] for i in early if body[i].pipe is not Pipe.S]  # type: ignore[union-attr]
    rest = [ins for i in late for ins in walk([body[i]])]
    if not any(ins.op == "mmad" for ins in moved) or not any(ins.pipe is Pipe.V for ins in rest):
        return set()
    return early


def _conflicts(x: MInstr, y: MInstr, loop: Loop, shared_only: bool) -> bool:
    """x and y touch the same buffer or GM argument, one writing. With `shared_only`, only what the
    iterations share counts (a tile of the loop's own has a private copy per pipelined iteration), and
    an L0A/L0B tile x writes for y to read (an operand moved early would hold L0 space)."""
    for mine, theirs, x_writes in ((x.writes, y.reads + y.writes, True), (x.reads, y.writes, False)):
        for r in mine:
            if not any(q.key is r.key or q.key == r.key for q in theirs):
                continue
            private = isinstance(r.key, Buffer) and r.key.scope is loop and not (
                x_writes and r.key.space in ("l0a", "l0b"))
            if not shared_only or not private:
                return True
    return False


def _loops(nodes: list[Node]) -> Iterator[Loop]:
    for n in nodes:
        if isinstance(n, Loop):
            yield n
        for b in blocks_of(n):
            yield from _loops(b)


def _body_defs(nodes: list[Node]) -> Counter[VReg]:
    """How many times each register is defined in `nodes` (nested loops' induction variables included)."""
    counts: Counter[VReg] = Counter(d for ins in walk(nodes) for d in ins.defs())
    counts.update(inner.iv for inner in _loops(nodes))
    return counts


def _clone(n: Node, bufs: dict[int, Buffer], regs: dict[VReg, VReg]) -> Node:
    if isinstance(n, Loop):
        return Loop(regs.get(n.iv, n.iv), _sub(n.lb, bufs, regs), _sub(n.ub, bufs, regs),
                    _sub(n.step, bufs, regs), [_clone(x, bufs, regs) for x in n.body], n.loc, n.min_trips,
                    n.num_stages)
    if isinstance(n, If):
        return If(_sub(n.cond, bufs, regs), [_clone(x, bufs, regs) for x in n.then],
                  [_clone(x, bufs, regs) for x in n.orelse], n.loc)
    return MInstr(n.op, {k: _sub(v, bufs, regs) for k, v in n.args.items()}, n.loc,
                  tuple(_region(r, bufs) for r in n.reads), tuple(_region(r, bufs) for r in n.writes), n.flag)


def _sub(v: Any, bufs: dict[int, Buffer], regs: dict[VReg, VReg]) -> Any:
    if isinstance(v, VReg):
        return regs.get(v, v)
    if isinstance(v, BufRef):
        return BufRef(bufs.get(id(v.buffer), v.buffer), v.offset, regs.get(v.reg, v.reg) if v.reg else None)
    if isinstance(v, GmRef):
        return GmRef(regs.get(v.base, v.base), v.arg)
    return v


def _region(r: Region, bufs: dict[int, Buffer]) -> Region:
    if isinstance(r.key, Buffer):
        return Region(bufs.get(id(r.key), r.key), r.lo, r.hi)
    return r
