"""Machine IR: ISA instructions over symbolic buffers and virtual registers, still structured.

Lowering produces this form; the later passes (software pipelining, buffer allocation, flag
insertion, register allocation, bundling) work on it before `emit` turns it into an
`isa.Program`. Keeping loops and ifs as nodes (not labels and branches) is what lets the flag
pass reason about loop-carried dependencies and the pipelining pass unroll a loop.

Every instruction records the byte regions it reads and writes, so flag insertion and buffer
allocation never re-derive operand semantics.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Iterator, Union

from isa import OPCODES, Pipe, SourceLoc


@dataclass(eq=False)
class Buffer:
    """A symbolic on-chip tile: a space and a size; `addr` is set by buffer allocation."""

    name: str
    space: str
    nbytes: int
    loc: SourceLoc | None = None
    scope: Loop | None = None  # innermost loop whose iterations own it (None: whole kernel)
    addr: int | None = None

    def __repr__(self) -> str:
        return f"{self.space}:{self.name}"


@dataclass(frozen=True, eq=False)
class VReg:
    """A virtual scalar register; register allocation maps it to a machine `s<k>`.

    Identity is the object itself (no global counter: compiles share no state); its text carries the
    object id, which `format_mir` renumbers from 0 per listing.
    """

    name: str = "t"

    def __str__(self) -> str:
        return f"%{self.name}#{id(self)}"


@dataclass(frozen=True)
class BufRef:
    """An on-chip memory operand: a byte offset into a buffer, plus a register's bytes when `reg` is set."""

    buffer: Buffer
    offset: int = 0
    reg: VReg | None = None

    def __str__(self) -> str:
        if self.reg is not None:
            return f"{self.buffer.name}[{self.reg}+{self.offset}]"
        return f"{self.buffer.name}[{self.offset}]" if self.offset else self.buffer.name


@dataclass(frozen=True)
class GmRef:
    """A global-memory operand: a register holding a byte address derived from argument `arg`."""

    base: VReg
    arg: int

    def __str__(self) -> str:
        return f"gm[{self.base}]"


@dataclass(frozen=True)
class Region:
    """Bytes an instruction touches: `[lo, hi)` of a buffer, or all of one GM argument's array."""

    key: Any  # Buffer, or ("gm", arg index)
    lo: int = 0
    hi: int = 0

    def overlaps(self, other: Region) -> bool:
        if isinstance(self.key, Buffer) and isinstance(other.key, Buffer):
            a, b = self.key, other.key
            if a is b:
                return self.lo < other.hi and other.lo < self.hi
            if a.addr is None or b.addr is None or a.space != b.space:
                return False
            return a.addr + self.lo < b.addr + other.hi and b.addr + other.lo < a.addr + self.hi
        return self.key == other.key


@dataclass(eq=False)
class Flag:
    """One set_flag/wait_flag pairing between two pipes; its event id is assigned at the end."""

    src: Pipe
    dst: Pipe
    event: int | None = None


@dataclass(eq=False)
class MInstr:
    """One ISA instruction: opcode, fields by name (values may be VReg/BufRef/GmRef/Flag)."""

    op: str
    args: dict[str, Any]
    loc: SourceLoc | None = None
    reads: tuple[Region, ...] = ()
    writes: tuple[Region, ...] = ()
    flag: Flag | None = None  # set_flag / wait_flag only

    @property
    def pipe(self) -> Pipe:
        if self.flag is not None:
            return self.flag.src if self.op == "set_flag" else self.flag.dst
        pipe = OPCODES[self.op].pipe
        assert pipe is not None, self.op
        return pipe

    def regs(self) -> Iterator[VReg]:
        """Virtual registers this instruction names (reads and writes)."""
        for v in self.args.values():
            if isinstance(v, VReg):
                yield v
            elif isinstance(v, GmRef):
                yield v.base
            elif isinstance(v, BufRef) and v.reg is not None:
                yield v.reg

    def defs(self) -> list[VReg]:
        """The register it writes (scalar ops write their field `d`)."""
        d = self.args.get("d")
        return [d] if isinstance(d, VReg) and OPCODES[self.op].pipe is Pipe.S else []

    def uses(self) -> list[VReg]:
        out = list(self.regs())
        for d in self.defs():
            out.remove(d)
        return out

    def text(self) -> str:
        if self.flag is not None:
            ev = "?" if self.flag.event is None else self.flag.event
            return f"{self.op} {self.flag.src}, {self.flag.dst}, {ev}"
        parts = ", ".join(f"{k}={_fmt(v)}" for k, v in self.args.items() if v is not None)
        return f"{self.op} {parts}"


def _fmt(v: Any) -> str:
    return repr(v) if isinstance(v, float) else str(v)


@dataclass(eq=False)
class Loop:
    """`for iv in range(lb, ub, step)` with a positive step; `body` runs once per iteration."""

    iv: VReg
    lb: VReg | int
    ub: VReg | int
    step: VReg | int
    body: list[Node]
    loc: SourceLoc | None = None
    min_trips: int = 0  # iterations known to run (0: maybe none)
    num_stages: int | None = None  # software-pipelining depth for this loop (None: the kernel default)
    persistent: bool = False  # the per-core loop over logical programs (persistent.py)


@dataclass(eq=False)
class If:
    """Run `then` when `cond` is non-zero, else `orelse`."""

    cond: VReg | int
    then: list[Node]
    orelse: list[Node]
    loc: SourceLoc | None = None


Node = Union[MInstr, Loop, If]


def blocks_of(node: Node) -> list[list[Node]]:
    """The nested instruction lists of a compound node."""
    if isinstance(node, Loop):
        return [node.body]
    if isinstance(node, If):
        return [node.then, node.orelse]
    return []


def walk(nodes: list[Node]) -> Iterator[MInstr]:
    """Every instruction in program (text) order."""
    for n in nodes:
        if isinstance(n, MInstr):
            yield n
        else:
            for b in blocks_of(n):
                yield from walk(b)


def buffers_of(nodes: list[Node]) -> list[Buffer]:
    """Every buffer the instructions touch, in first-touch order."""
    seen: dict[int, Buffer] = {}
    for ins in walk(nodes):
        for r in ins.reads + ins.writes:
            if isinstance(r.key, Buffer):
                seen.setdefault(id(r.key), r.key)
    return list(seen.values())


def format_mir(nodes: list[Node]) -> str:
    """Readable text of the machine IR (for `stages` and golden tests); registers numbered from 0."""
    numbers: dict[str, str] = {}
    text = _format(nodes, 0)
    return re.sub(r"#(\d+)", lambda m: "#" + numbers.setdefault(m.group(1), str(len(numbers))), text)


def _format(nodes: list[Node], indent: int) -> str:
    pad = "  " * indent
    out: list[str] = []
    for n in nodes:
        if isinstance(n, MInstr):
            out.append(pad + n.text())
        elif isinstance(n, Loop):
            kind = "for program" if n.persistent else "for"
            out.append(f"{pad}{kind} {n.iv} in range({n.lb}, {n.ub}, {n.step}) {{")
            out.append(_format(n.body, indent + 1))
            out.append(pad + "}")
        else:
            out.append(f"{pad}if {n.cond} {{")
            out.append(_format(n.then, indent + 1))
            if n.orelse:
                out.append(pad + "} else {")
                out.append(_format(n.orelse, indent + 1))
            out.append(pad + "}")
    return "\n".join(line for line in out if line)


def nearest_loc(instrs: list[MInstr], pos: int) -> SourceLoc | None:
    """The source line of the instruction at `pos`, else of the nearest one before it, else after it."""
    for ins in instrs[pos::-1] + instrs[pos + 1:]:
        if ins.loc is not None:
            return ins.loc
    return None
