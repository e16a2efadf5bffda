"""The npulang backend: block IR -> VLIW program for one machine spec.

`compile_function` is the whole pipeline, readable top to bottom; each step is a small named pass
in its own module.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from isa import ArgSpec, MachineSpec, Program, SourceLoc, Symbol
from isa.asm import disassemble
from npulang import ir
from npulang.backend.alloc import BufferAllocation
from npulang.backend.bundle import bundle
from npulang.backend.emit import allocate_registers, flatten, to_isa
from npulang.backend.errors import UnsupportedKernelError
from npulang.backend.lowering import Lowering
from npulang.backend.mir import format_mir
from npulang.backend.pipeline import SoftwarePipelining
from npulang.backend.sync import FlagInsertion
from npulang.errors import BufferOverflowError


@dataclass
class CompiledKernel:
    """A compiled kernel: the program, its on-chip buffer map and peak usage, and stage texts."""

    program: Program
    buffers: list[Symbol]
    usage: dict[str, int]
    stages: list[tuple[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def compile_function(fn: ir.Function, spec: MachineSpec, *, num_stages: int = 2,
                     record: bool = False) -> CompiledKernel:
    """Compile a (canonicalised) block-IR function to an `isa.Program` for `spec`.

    Raises `BufferOverflowError` when the tiles do not fit on chip and `UnsupportedKernelError`
    for constructs the backend cannot lower, both pointing at the kernel line.
    """
    stages: list[tuple[str, str]] = []
    kernel_loc = SourceLoc(fn.loc.file, fn.loc.line) if fn.loc else SourceLoc("<kernel>", 0)
    # 1. Lower ops to machine IR: registers, symbolic index math, buffers placed per use.
    lowering = Lowering(fn, spec)
    nodes = lowering.apply()
    if record:
        stages.append((lowering.name, format_mir(nodes) + "".join(f"\n# {n}" for n in lowering.notes)))
    # 2. Software pipelining: num_stages private copies of each loop's per-iteration tiles.
    pipelining = SoftwarePipelining(num_stages)
    pipelining.apply(nodes)
    if record:
        stages.append((pipelining.name, format_mir(nodes)))
    # 3. Buffer allocation: aligned addresses, reuse of dead tiles, capacity check.
    symbols, usage = BufferAllocation(spec, fn.name, kernel_loc).apply(nodes)
    # 4. Flag insertion: every cross-pipe conflict ordered by set_flag/wait_flag.
    FlagInsertion(spec, fn.name, kernel_loc).apply(nodes)
    if record:
        stages.append(("allocate-buffers+insert-flags", format_mir(nodes)))
    # 5. Flatten loops/ifs to branches and allocate scalar registers.
    code = flatten(nodes)
    regs = allocate_registers(code, spec.scalar.registers, fn.name, kernel_loc)
    instrs = [to_isa(i, regs) for i in code.instrs]
    # 6. Bundle neighbouring instructions of different pipes into VLIW issue bundles.
    bundles, labels = bundle(instrs, code.labels)
    program = Program(fn.name, tuple(bundles), _arg_specs(fn), labels, tuple(symbols),
                      {"num_stages": str(num_stages), "machine": spec.name})
    program.validate(spec)
    if record:
        stages.append(("assembly", disassemble(program)))
    return CompiledKernel(program, symbols, usage, stages, lowering.notes)


def _arg_specs(fn: ir.Function) -> tuple[ArgSpec, ...]:
    out = []
    for name, t in zip(fn.arg_names, fn.arg_types):
        if isinstance(t, ir.PtrType):
            out.append(ArgSpec(name, "ptr", t.pointee))
        else:
            out.append(ArgSpec(name, "scalar", t.dtype))
    return tuple(out)


__all__ = ["compile_function", "CompiledKernel", "BufferOverflowError", "UnsupportedKernelError"]
