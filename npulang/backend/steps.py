"""The backend's steps in the `Step` protocol (name + run), each a thin face over the module doing the work.

Steps are made fresh for every compile; whatever a step computes goes on the `Compilation`.
"""

from __future__ import annotations

import copy

from isa import ArgSpec, Program
from isa.asm import disassemble
from npulang import ir
from npulang.backend.alloc import BufferAllocation
from npulang.backend.bundle import bundle
from npulang.backend.compilation import Compilation
from npulang.backend.emit import allocate_registers, flatten, to_isa
from npulang.backend.lowering import Lowering
from npulang.backend.mir import format_mir
from npulang.backend.persistent import GRID_ARGS
from npulang.backend.persistent import PersistentGrid as PersistentLoop
from npulang.backend.pipeline import SoftwarePipelining
from npulang.backend.sync import FlagInsertion
from npulang.errors import BufferOverflowError, EventIdOverflowError


class Lower:
    """Block IR -> machine IR: registers, symbolic index math, buffers placed per use."""

    name = "lower"

    def run(self, unit: Compilation) -> None:
        lowering = Lowering(unit.fn, unit.spec)
        unit.nodes = lowering.apply()
        unit.notes = lowering.notes
        unit.stage(self.name, lambda: format_mir(unit.nodes) + "".join(f"\n# {n}" for n in unit.notes))


class PersistentGrid:
    """One loop per core over the grid's programs, pipelined across them (see `persistent.py`)."""

    name = "persistent-grid"

    def run(self, unit: Compilation) -> None:
        if not unit.program_stages:
            return
        if PersistentLoop(len(unit.fn.args), unit.program_stages).apply(unit.nodes) is None:
            unit.program_stages = 0
            unit.notes.append("programs: one per dispatch (the kernel calls device_print, whose output names "
                              "the dispatched program)")
            return
        unit.notes.append(f"programs: a persistent loop per core over the grid's programs, software-pipelined "
                          f"{unit.program_stages} deep across them")
        unit.stage(self.name, lambda: format_mir(unit.nodes))


class SoftwarePipeline:
    """`num_stages` private copies of each loop's per-iteration tiles (see `pipeline.py`)."""

    name = "software-pipeline"

    def run(self, unit: Compilation) -> None:
        if SoftwarePipelining(unit.num_stages).hoists(unit.nodes):  # kept in case the hoisting does not fit
            unit.unhoisted = copy.deepcopy(unit.nodes)
        SoftwarePipelining(unit.num_stages).apply(unit.nodes)
        unit.stage(self.name, lambda: format_mir(unit.nodes))


class AllocateBuffers:
    """An aligned address per tile, reusing dead tiles' bytes; raises `BufferOverflowError`.

    Running work an iteration ahead keeps more tiles live; if that does not fit, the loops are pipelined
    again without it."""

    name = "allocate-buffers"

    def run(self, unit: Compilation) -> None:
        try:
            _allocate(unit)
        except BufferOverflowError:
            if unit.unhoisted is None:
                raise
            _without_running_ahead(unit)


class InsertFlags:
    """set_flag/wait_flag for every cross-pipe conflict; raises `EventIdOverflowError` (after retrying
    without work run an iteration ahead, whose flags are outstanding longer)."""

    name = "insert-flags"

    def run(self, unit: Compilation) -> None:
        try:
            FlagInsertion(unit.spec, unit.fn.name, unit.kernel_loc).apply(unit.nodes)
        except EventIdOverflowError:
            if unit.unhoisted is None:
                raise
            _without_running_ahead(unit)
            FlagInsertion(unit.spec, unit.fn.name, unit.kernel_loc).apply(unit.nodes)
        unit.stage(self.name, lambda: format_mir(unit.nodes))


def _allocate(unit: Compilation) -> None:
    allocation = BufferAllocation(unit.spec, unit.fn.name, unit.kernel_loc)
    unit.symbols, unit.usage = allocation.apply(unit.nodes)
    unit.allocation_notes = allocation.notes


def _without_running_ahead(unit: Compilation) -> None:
    """Back to the lowered machine IR kept by `SoftwarePipeline`, pipelined and allocated again plainly."""
    assert unit.unhoisted is not None
    unit.nodes, unit.unhoisted = unit.unhoisted, None
    SoftwarePipelining(unit.num_stages, hoist=False).apply(unit.nodes)
    unit.stage(SoftwarePipeline.name, lambda: format_mir(unit.nodes))  # `inspect` shows what was kept
    _allocate(unit)


class Flatten:
    """Loops and ifs -> labels and branches."""

    name = "flatten"

    def run(self, unit: Compilation) -> None:
        unit.code = flatten(unit.nodes)


class AllocateRegisters:
    """Virtual -> machine scalar registers by linear scan; raises `RegisterOverflowError`."""

    name = "allocate-registers"

    def run(self, unit: Compilation) -> None:
        assert unit.code is not None, "allocate-registers runs after flatten"
        unit.registers = allocate_registers(unit.code, unit.spec.scalar.registers, unit.fn.name, unit.kernel_loc)
        unit.instrs = [to_isa(i, unit.registers) for i in unit.code.instrs]


class Bundle:
    """Neighbouring instructions of different pipes -> VLIW issue bundles; the program is built here."""

    name = "bundle"

    def run(self, unit: Compilation) -> None:
        assert unit.code is not None, "bundle runs after flatten"
        bundles, labels = bundle(unit.instrs, unit.code.labels)
        args = _arg_specs(unit.fn)
        meta = {"num_stages": str(unit.num_stages), "machine": unit.spec.name}
        if unit.program_stages:  # the logical grid, passed by the runtime after the kernel's own arguments
            args += tuple(ArgSpec(name, "scalar", "i32") for name in GRID_ARGS)
            meta["grid"] = "persistent"
        unit.program = Program(unit.fn.name, tuple(bundles), args, labels, tuple(unit.symbols), meta)


class Validate:
    """Check the program against the machine (operand kinds, ranges, buffer bounds)."""

    name = "validate"

    def run(self, unit: Compilation) -> None:
        assert unit.program is not None, "validate runs after bundle"
        unit.program.validate(unit.spec)
        unit.stage("assembly", lambda: disassemble(unit.program))  # type: ignore[arg-type]


def _arg_specs(fn: ir.Function) -> tuple[ArgSpec, ...]:
    out = []
    for name, t in zip(fn.arg_names, fn.arg_types):
        if isinstance(t, ir.PtrType):
            out.append(ArgSpec(name, "ptr", t.pointee))
        else:
            out.append(ArgSpec(name, "scalar", t.dtype))
    return tuple(out)
