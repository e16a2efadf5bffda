"""VLIW bundling: pack consecutive instructions for different pipes into one issue bundle.

Only neighbours are packed (program order is kept), so per-pipe order, flag counts in issue
order and branch targets are untouched. A bundle is closed before an instruction that needs
a free slot it cannot get, reads or writes a register an earlier member writes (registers are
read at issue), touches the same flag, starts at a label, or follows a branch or a barrier.
"""

from __future__ import annotations

from isa import Bundle, Instr, Mem, Pipe, Reg

_ENDS_BUNDLE = ("jmp", "bnz", "bz", "barrier")


def bundle(instrs: list[Instr], labels: dict[str, int]) -> tuple[list[Bundle], dict[str, int]]:
    """Pack `instrs`; returns the bundles and the labels remapped to bundle indices."""
    starts = set(labels.values())
    bundles: list[list[Instr]] = []
    first_of: dict[int, int] = {}  # instruction index -> bundle index
    current: list[Instr] = []
    for i, ins in enumerate(instrs):
        if current and (i in starts or not _fits(current, ins)):
            bundles.append(current)
            current = []
        first_of[i] = len(bundles)
        current.append(ins)
        if ins.op in _ENDS_BUNDLE:
            bundles.append(current)
            current = []
    if current:
        bundles.append(current)
    first_of[len(instrs)] = len(bundles)
    return [Bundle(tuple(b)) for b in bundles], {name: first_of[i] for name, i in labels.items()}


def _fits(current: list[Instr], ins: Instr) -> bool:
    if ins.op == "barrier" or any(c.pipe is ins.pipe for c in current):
        return False
    written = {w for c in current for w in _writes(c)}
    if written & (_reads(ins) | _writes(ins)):
        return False
    if any(_reads(c) & _writes(ins) for c in current):
        return False
    if ins.op in ("set_flag", "wait_flag"):
        key = ins.args[:3]
        return not any(c.op in ("set_flag", "wait_flag") and c.args[:3] == key for c in current)
    return True


def _writes(ins: Instr) -> set[int]:
    scalar_def = ins.op not in ("bnz", "bz", "print")
    if ins.pipe is Pipe.S and ins.args and isinstance(ins.args[0], Reg) and scalar_def:
        return {ins.args[0].index}
    return set()


def _reads(ins: Instr) -> set[int]:
    out: set[int] = set()
    args = ins.args[1:] if _writes(ins) else ins.args
    for a in args:
        if isinstance(a, Reg):
            out.add(a.index)
        elif isinstance(a, Mem) and a.base is not None:
            out.add(a.base.index)
    return out

