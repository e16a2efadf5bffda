"""A program: VLIW bundles plus its labels, arguments, symbols and metadata."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

from isa.dtypes import DTYPES
from isa.instructions import OPCODES, Instr, Kind, Label, Mem, Pipe, Reg, check_instr
from isa.spec import MachineSpec


class ProgramError(ValueError):
    """A structurally invalid program: two instructions in one slot, an unknown label, ..."""


@dataclass(frozen=True)
class Bundle:
    """Instructions issued together in one cycle, at most one per pipe slot."""

    instrs: tuple[Instr, ...]

    def __post_init__(self) -> None:
        seen: set[Pipe] = set()
        for ins in self.instrs:
            if ins.pipe in seen:
                raise ProgramError(f"bundle has two instructions for pipe {ins.pipe}: {ins}")
            seen.add(ins.pipe)


@dataclass(frozen=True)
class ArgSpec:
    """A kernel argument: `ptr` (with the element dtype it points to) or a scalar of `dtype`."""

    name: str
    kind: str  # "ptr" or "scalar"
    dtype: str

    def __post_init__(self) -> None:
        if self.kind not in ("ptr", "scalar"):
            raise ProgramError(f"argument {self.name}: kind must be ptr or scalar, got {self.kind!r}")
        if self.dtype not in DTYPES:
            raise ProgramError(f"argument {self.name}: unknown dtype {self.dtype!r}")


@dataclass(frozen=True)
class Symbol:
    """A named on-chip region, for buffer maps, traces and error messages."""

    name: str
    space: str
    offset: int
    size: int


@dataclass(frozen=True)
class Program:
    """What the simulator runs: bundles executed from index 0 until the last one."""

    name: str
    bundles: tuple[Bundle, ...]
    args: tuple[ArgSpec, ...] = ()
    labels: Mapping[str, int] = field(default_factory=dict)  # label -> bundle index
    symbols: tuple[Symbol, ...] = ()
    meta: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for ins in self.instructions():
            for value in ins.args:
                if isinstance(value, Label) and value.name not in self.labels:
                    raise ProgramError(f"{self.name}: unknown label {value.name!r} in `{ins}`")
        for name, index in self.labels.items():
            if not 0 <= index <= len(self.bundles):
                raise ProgramError(f"{self.name}: label {name!r} points outside the program ({index})")

    def instructions(self) -> list[Instr]:
        """Every instruction of the program, bundle by bundle, in issue order."""
        return [ins for b in self.bundles for ins in b.instrs]

    def validate(self, spec: MachineSpec) -> None:
        """Check everything the machine constrains: register numbers, event ids, argument indices."""
        for ins in self.instructions():
            check_instr(ins)
            opdef = OPCODES[ins.op]
            for f, value in zip(opdef.fields, ins.args):
                regs = [value] if isinstance(value, Reg) else []
                if isinstance(value, Mem) and value.base is not None:
                    regs.append(value.base)
                for r in regs:
                    if not 0 <= r.index < spec.scalar.registers:
                        raise ProgramError(f"{self.name}: register {r} out of range "
                                           f"(machine has s0..s{spec.scalar.registers - 1}) in `{ins}`")
                if f.name == "event" and not 0 <= value < spec.sync.event_ids:
                    raise ProgramError(f"{self.name}: event id {value} out of range "
                                       f"(machine has 0..{spec.sync.event_ids - 1}) in `{ins}`")
            if ins.op == "arg" and not 0 <= ins.args[1] < len(self.args):
                raise ProgramError(f"{self.name}: argument index {ins.args[1]} out of range in `{ins}`")
            if ins.op in ("set_flag", "wait_flag") and ins.args[0] == ins.args[1]:
                raise ProgramError(f"{self.name}: flag between a pipe and itself in `{ins}`")


__all__ = ["ArgSpec", "Bundle", "Program", "ProgramError", "Symbol", "Kind"]
