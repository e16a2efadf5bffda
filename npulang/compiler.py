"""The compiler pipeline as one entry point: block IR in, `isa.Program` out.

The runtime (jit, launch, inspection) and the autotuner call `compile_ir`; nothing here touches the
simulator or any runtime state, and every step keeps its state on the one `Compilation` made per
call, so it may be called from several threads at once.
"""

from __future__ import annotations

from isa import MachineSpec
from npulang import ir
from npulang.backend.compilation import CompiledKernel, Compilation, Step
from npulang.backend.steps import (
    AllocateBuffers, AllocateRegisters, Bundle, Flatten, InsertFlags, Lower, SoftwarePipeline, Validate,
)
from npulang.errors import IRVerifyError
from npulang.passes import CSE, DCE, Canonicalize, Fold, Pass
from npulang.ir.verifier import verify


def compile_ir(fn: ir.Function, spec: MachineSpec, *, num_stages: int = 2, record: bool = False) -> CompiledKernel:
    """Compile a frontend-built IR function for `spec`.

    With `record=True` the result's `stages` hold, in order, the IR text after the input check and each
    generic pass, the machine IR after lowering, software pipelining and flag insertion, and the assembly.
    Raises a `ResourceError` when the kernel does not fit the machine, `UnsupportedKernelError` for
    constructs the backend cannot lower, both pointing at the kernel line.
    """
    unit = Compilation(fn, spec, num_stages, record)
    steps: list[Step] = [
        # Check the frontend's IR (a broken invariant is a compiler bug, reported as IRVerifyError).
        OnIR(None),
        # Canonicalize: local identities (x + 0, no-op casts, shape ops of constants) removed.
        OnIR(Canonicalize()),
        # Fold: ops whose operands are all constants become constants (the interpreter's rules).
        OnIR(Fold()),
        # Canonicalize again: clean up what folding exposed.
        OnIR(Canonicalize()),
        # CSE: one op for each distinct computation.
        OnIR(CSE()),
        # DCE: drop ops whose results are unused.
        OnIR(DCE()),
        # Lower to machine IR: registers, symbolic index math, buffers placed per use.
        Lower(),
        # Software-pipeline: num_stages private copies of each loop's per-iteration tiles.
        SoftwarePipeline(),
        # Allocate buffers: aligned addresses, reuse of dead tiles, capacity check (BufferOverflowError).
        AllocateBuffers(),
        # Insert flags: every cross-pipe conflict ordered by set_flag/wait_flag (EventIdOverflowError).
        InsertFlags(),
        # Flatten: loops and ifs to labels and branches.
        Flatten(),
        # Allocate registers: linear scan over the flat code (RegisterOverflowError).
        AllocateRegisters(),
        # Bundle: neighbouring instructions of different pipes into VLIW issue bundles.
        Bundle(),
        # Validate: the program against the machine description.
        Validate(),
    ]
    for step in steps:
        step.run(unit)
    return unit.result()


class OnIR:
    """A generic block-IR pass as a compiler step: the function after it, verified (None: the input)."""

    def __init__(self, ir_pass: Pass | None) -> None:
        self.ir_pass = ir_pass
        self.name = ir_pass.name if ir_pass is not None else "frontend"

    def run(self, unit: Compilation) -> None:
        if self.ir_pass is not None:
            unit.fn = self.ir_pass.run(unit.fn)
        try:
            verify(unit.fn)
        except IRVerifyError as exc:
            raise IRVerifyError(f"IR invalid after {self.name}: {exc}") from exc
        unit.stage(self.name, lambda: ir.print_function(unit.fn))


__all__ = ["compile_ir", "CompiledKernel"]
