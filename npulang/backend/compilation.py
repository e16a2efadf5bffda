"""The state of one compile and the protocol every compiler step follows.

`npulang.compiler.compile_ir` makes one `Compilation` per call and hands it to each step in turn;
all intermediate results live on it (never in module globals), so compiles may run in parallel.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Protocol

from isa import Instr, MachineSpec, Program, Reg, SourceLoc, Symbol
from npulang import ir
from npulang.backend.emit import FlatCode
from npulang.backend.mir import Node, VReg


@dataclass
class CompiledKernel:
    """A compiled kernel: the program, its on-chip buffer map and peak usage, and stage texts."""

    program: Program
    buffers: list[Symbol]
    usage: dict[str, int]
    stages: list[tuple[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


@dataclass
class Compilation:
    """One kernel on its way from block IR to a program: each step reads and sets some of these fields."""

    fn: ir.Function
    spec: MachineSpec
    num_stages: int
    record: bool = False
    program_stages: int = 0  # >0: a per-core loop over the grid's programs, pipelined this deep (persistent.py)
    nodes: list[Node] = field(default_factory=list)  # machine IR, from lowering to flag insertion
    unhoisted: list[Node] | None = None  # the lowered IR again, when pipelining hoisted work that may not fit
    notes: list[str] = field(default_factory=list)  # how the lowering treated ops (e.g. "lowered to gather")
    allocation_notes: list[str] = field(default_factory=list)  # how buffer allocation had to lay tiles out
    symbols: list[Symbol] = field(default_factory=list)
    usage: dict[str, int] = field(default_factory=dict)
    code: FlatCode | None = None
    registers: dict[VReg, Reg] = field(default_factory=dict)
    instrs: list[Instr] = field(default_factory=list)
    program: Program | None = None
    stages: list[tuple[str, str]] = field(default_factory=list)

    @property
    def kernel_loc(self) -> SourceLoc:
        """The kernel's `def` line: where an error with no better statement is reported."""
        loc = self.fn.loc
        return SourceLoc(loc.file, loc.line) if loc else SourceLoc("<kernel>", 0)

    def stage(self, name: str, text: Callable[[], str]) -> None:
        """Keep the text after step `name` (only built when recording, for `kernel.inspect()`)."""
        if self.record:
            self.stages.append((name, text()))

    def result(self) -> CompiledKernel:
        assert self.program is not None, "the pipeline ended before a program was built"
        return CompiledKernel(self.program, self.symbols, self.usage, self.stages, self.notes + self.allocation_notes)


class Step(Protocol):
    """A named compiler step: `run` reads its input from the compilation and stores its output there."""

    name: str

    def run(self, unit: Compilation) -> None: ...
