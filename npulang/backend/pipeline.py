"""Software pipelining: unroll loops `num_stages` times with a private copy of each per-iteration tile.

A loop's own `num_stages` (from `npu.range(..., num_stages=k)`) wins over the kernel-wide default.

Pipes are decoupled queues, so once consecutive iterations write different buffers the loads
of iteration i+1 run while iteration i computes: the flag pass then only orders each copy's
buffers with themselves (loads wait for the consumer of the same copy `num_stages` iterations
back). Event ids are immediates, so the copies must be distinct code: the loop body is repeated
`num_stages` times, each later copy guarded by `iv + c*step < ub` for ragged trip counts.
"""

from __future__ import annotations

from collections import Counter
from typing import Any, Iterator

from npulang.backend.mir import Buffer, BufRef, GmRef, If, Loop, MInstr, Node, Region, VReg, blocks_of, buffers_of, walk


class SoftwarePipelining:
    """Unroll every innermost loop that issues DMA loads into `num_stages` buffer-private copies."""

    def __init__(self, num_stages: int) -> None:
        self.num_stages = num_stages

    def apply(self, nodes: list[Node]) -> None:
        self.defs = _body_defs(nodes)
        self._apply(nodes)

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
        """Unroll in place; returns instructions to run before the loop (a runtime step's multiples)."""
        pre: list[Node] = []
        steps: dict[int, VReg | int] = {}
        for c in range(1, stages + 1):
            if isinstance(loop.step, int):
                steps[c] = c * loop.step
            else:
                steps[c] = VReg("step")
                pre.append(MInstr("mul", {"d": steps[c], "a": loop.step, "b": c}, loop.loc))
        local = [b for b in buffers_of(loop.body) if b.scope is loop]
        copies: list[Node] = list(loop.body)
        defs = _body_defs(loop.body)
        for c in range(1, stages):
            iv = VReg(f"iv{c}")
            bufs = {id(b): Buffer(f"{b.name}.{c}", b.space, b.nbytes, b.loc, loop) for b in local}
            # Registers defined only in the body are per-iteration temporaries: fresh ones per copy keep
            # their live ranges short. Loop-carried registers (also defined outside) stay shared.
            regs = {r: VReg(r.name) for r, n in defs.items() if self.defs[r] == n}
            regs[loop.iv] = iv
            body = [_clone(n, bufs, regs) for n in loop.body]
            head = MInstr("add", {"d": iv, "a": loop.iv, "b": steps[c]}, loop.loc)
            more = VReg("more")
            test = MInstr("lt", {"d": more, "a": iv, "b": loop.ub}, loop.loc)
            if loop.min_trips >= (c + 1) and isinstance(loop.ub, int) and isinstance(loop.lb, int) and \
                    (loop.min_trips % stages == 0):
                copies += [head] + body
            else:
                copies += [head, test, If(more, body, [], loop.loc)]
        loop.body[:] = copies
        loop.step = steps[stages]
        if loop.min_trips:
            loop.min_trips = 1
        return pre


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
