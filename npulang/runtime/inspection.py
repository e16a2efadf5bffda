"""`kernel.inspect(*args, **meta)`: every stage of one compilation, for people reading their kernel."""

from __future__ import annotations

from dataclasses import dataclass
import isa
from isa.asm import disassemble
from npulang.compiler import CompiledKernel


@dataclass
class Inspection:
    """The IR after each pass, the assembly, the buffer map, on-chip usage and compiler notes."""

    kernel: str
    machine: isa.MachineSpec
    stages: list[tuple[str, str]]
    program: isa.Program
    buffers: list[isa.Symbol]
    usage: dict[str, int]
    notes: list[str]

    @property
    def asm(self) -> str:
        """The program as assembly text (it assembles back to the same program)."""
        return disassemble(self.program)

    def stage(self, name: str) -> str:
        """The text after the last stage called `name` (e.g. "frontend", "cse", "lower")."""
        for stage_name, text in reversed(self.stages):
            if stage_name == name:
                return text
        raise KeyError(f"no stage {name!r}; stages: {', '.join(n for n, _ in self.stages)}")

    def buffer_map(self) -> str:
        """One line per on-chip tile: buffer, byte range and size, then each buffer's peak use."""
        rows = [f"{'tile':<28} {'buffer':<6} {'offset':>8} {'bytes':>8}"]
        for s in sorted(self.buffers, key=lambda s: (s.space, s.offset)):
            rows.append(f"{s.name:<28} {s.space:<6} {s.offset:>8} {s.size:>8}")
        rows.append("")
        for space, used in self.usage.items():
            cap = self.machine.buffer_bytes(space)
            rows.append(f"{space:<6} {used:>8} / {cap:>8} bytes ({used / cap:.0%})")
        return "\n".join(rows)

    def __str__(self) -> str:
        parts = [f"// ---- {name} ----\n{text}" for name, text in self.stages]
        parts.append(f"// ---- assembly ----\n{self.asm}")
        parts.append(f"// ---- buffers ----\n{self.buffer_map()}")
        if self.notes:
            parts.append("// ---- notes ----\n" + "\n".join(self.notes))
        return "\n\n".join(parts)


def inspection(kernel: str, spec: isa.MachineSpec, ck: CompiledKernel) -> Inspection:
    """The stages of one recorded compile (`Runtime.compile_recorded`) of `kernel` for `spec`."""
    return Inspection(kernel, spec, ck.stages, ck.program, ck.buffers, ck.usage, ck.notes)
