"""Emission: structured machine IR -> a flat instruction list with labels and machine registers.

Loops become a guarded back-edge branch, ifs a conditional jump; virtual registers get machine
registers by linear scan over the flat list, where a value live into a loop stays live to the
loop's end (the back edge may read it again).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from isa import OPCODES, Instr, Label, Mem, Reg, SourceLoc, make
from isa.instructions import check_instr
from npulang.backend.errors import resource_error
from npulang.backend.mir import BufRef, GmRef, If, Loop, MInstr, Node, VReg, nearest_loc
from npulang.errors import RegisterOverflowError


@dataclass
class FlatCode:
    """The flat form: instructions, labels (name -> index of the next instruction), loop spans."""

    instrs: list[MInstr] = field(default_factory=list)
    labels: dict[str, int] = field(default_factory=dict)
    loops: list[tuple[int, int]] = field(default_factory=list)
    _count: int = 0

    def label(self, stem: str) -> str:
        self._count += 1
        return f"{stem}{self._count}"


def flatten(nodes: list[Node], code: FlatCode | None = None) -> FlatCode:
    """Lower loops and ifs to labels and branches."""
    code = code or FlatCode()
    for n in nodes:
        if isinstance(n, MInstr):
            code.instrs.append(n)
        elif isinstance(n, Loop):
            _flatten_loop(n, code)
        else:
            _flatten_if(n, code)
    return code


def _flatten_loop(n: Loop, code: FlatCode) -> None:
    top, end = code.label("L"), code.label("E")
    test = VReg("c")
    code.instrs.append(MInstr("mov", {"d": n.iv, "a": n.lb}, n.loc))
    if n.min_trips == 0:
        code.instrs.append(MInstr("lt", {"d": test, "a": n.iv, "b": n.ub}, n.loc))
        code.instrs.append(MInstr("bz", {"c": test, "target": Label(end)}, n.loc))
    start = len(code.instrs)
    code.labels[top] = start
    flatten(n.body, code)
    code.instrs.append(MInstr("add", {"d": n.iv, "a": n.iv, "b": n.step}, n.loc))
    code.instrs.append(MInstr("lt", {"d": test, "a": n.iv, "b": n.ub}, n.loc))
    code.instrs.append(MInstr("bnz", {"c": test, "target": Label(top)}, n.loc))
    code.loops.append((start, len(code.instrs) - 1))
    code.labels[end] = len(code.instrs)


def _flatten_if(n: If, code: FlatCode) -> None:
    other, end = code.label("F"), code.label("J")
    code.instrs.append(MInstr("bz", {"c": n.cond, "target": Label(other)}, n.loc))
    flatten(n.then, code)
    if n.orelse:
        code.instrs.append(MInstr("jmp", {"target": Label(end)}, n.loc))
    code.labels[other] = len(code.instrs)
    flatten(n.orelse, code)
    code.labels[end] = len(code.instrs)


def allocate_registers(code: FlatCode, registers: int, kernel: str, kernel_loc: SourceLoc) -> dict[VReg, Reg]:
    """Linear-scan allocation of virtual to machine registers.

    Raises `RegisterOverflowError` at the statement defining the first value that finds none free.
    """
    first: dict[VReg, int] = {}
    last: dict[VReg, int] = {}
    for pos, ins in enumerate(code.instrs):
        for r in ins.regs():
            first.setdefault(r, pos)
            last[r] = pos
    changed = True
    while changed:  # nested loops: extend until stable
        changed = False
        for lo, hi in code.loops:
            for r in first:
                if first[r] < lo <= last[r] < hi:
                    last[r] = hi
                    changed = True
    free = list(range(registers - 1, -1, -1))
    active: list[VReg] = []
    out: dict[VReg, Reg] = {}
    for r in sorted(first, key=lambda v: first[v]):
        for a in [a for a in active if last[a] < first[r]]:
            active.remove(a)
            free.append(out[a].index)
        if not free:
            raise resource_error(RegisterOverflowError, kernel, nearest_loc(code.instrs, first[r]), kernel_loc,
                                 f"the kernel needs more than the machine's {registers} scalar registers at once",
                                 hint="simplify the scalar arithmetic (fewer runtime arguments, offsets or "
                                      "loop-carried scalars live at once) or use a lower num_stages")
        out[r] = Reg(free.pop())
        active.append(r)
    return out


def to_isa(ins: MInstr, regs: dict[VReg, Reg]) -> Instr:
    """Resolve one machine-IR instruction into an ISA instruction."""
    if ins.flag is not None:
        return make(ins.op, ins.flag.src.value, ins.flag.dst.value, ins.flag.event, loc=ins.loc)
    args: dict[str, Any] = {k: _resolve(v, regs) for k, v in ins.args.items()}
    opdef = OPCODES[ins.op]
    unknown = set(args) - set(opdef.index)
    assert not unknown, f"{ins.op}: unknown fields {unknown}"
    values = tuple(args[f.name] if f.name in args else f.default for f in opdef.fields)
    instr = Instr(ins.op, values, ins.loc)
    check_instr(instr)
    return instr


def _resolve(v: Any, regs: dict[VReg, Reg]) -> Any:
    if isinstance(v, VReg):
        return regs[v]
    if isinstance(v, BufRef):
        assert v.buffer.addr is not None, f"buffer {v.buffer.name} was never allocated"
        return Mem(v.buffer.space, regs[v.reg] if v.reg is not None else None, v.buffer.addr + v.offset)
    if isinstance(v, GmRef):
        return Mem("gm", regs[v.base], 0)
    return v
