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
    AllocateBuffers, AllocateRegisters, Bundle, Flatten, InsertFlags, Lower, PersistentGrid, SoftwarePipeline,
    Validate,
)
from npulang.errors import IRVerifyError, ResourceError
from npulang.passes import CSE, DCE, Canonicalize, Fold, Pass
from npulang.ir.verifier import verify


def compile_ir(fn: ir.Function, spec: MachineSpec, *, num_stages: int = 2, persistent: bool = False,
               record: bool = False) -> CompiledKernel:
    """Compile a frontend-built IR function for `spec`.

    With `record=True` the result's `stages` hold, in order, the IR text after the input check and each
    generic pass, the machine IR after lowering, software pipelining and flag insertion, and the assembly.
    Raises a `ResourceError` when the kernel does not fit the machine, `UnsupportedKernelError` for
    constructs the backend cannot lower, both pointing at the kernel line.

    With `persistent=True` the program is one loop per core over the grid's programs
    (`npulang.backend.persistent`; its `meta["grid"]` is "persistent" and it takes the logical grid as
    three extra arguments), pipelined `num_stages` deep across them if the kernel has no loop of its
    own, else one deep: a kernel's loops already overlap consecutive programs through their own
    copies, and a second copy of everything costs event ids and buffers for no gain (the softmax
    tutorial ran 0.2 % slower with it, the layer norm's did not fit). If that does not fit the
    machine, it is pipelined one deep, then not persistent at all; `notes` say which.
    """
    tried: list[str] = []
    own_loops = any(op.kind is ir.OpKind.FOR for op in ir.walk(fn.body))
    for program_stages in dict.fromkeys(() if not persistent else (1,) if own_loops else (num_stages, 1)):
        try:
            ck = _compile(fn, spec, num_stages, program_stages, record)
        except ResourceError as exc:
            tried.append(f"programs: a persistent loop pipelined {program_stages} deep does not fit: "
                         f"{str(exc).splitlines()[0]}")
            continue
        ck.notes[:0] = tried
        return ck
    ck = _compile(fn, spec, num_stages, 0, record)
    hint = "; with a lower num_stages for its loops one may" if own_loops and num_stages > 1 else ""
    if tried:
        ck.notes[:0] = tried + [f"programs: one per dispatch (no persistent loop fits the machine{hint})"]
    return ck


def _compile(fn: ir.Function, spec: MachineSpec, num_stages: int, program_stages: int,
             record: bool) -> CompiledKernel:
    unit = Compilation(fn, spec, num_stages, record, program_stages)
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
        # Persistent grid (if asked): one loop per core over the grid's programs, pipelined across them.
        PersistentGrid(),
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
