"""The compiler pipeline as one entry point: block IR in, `isa.Program` out.

The runtime (jit, launch, inspection) and the autotuner call `compile_ir`; nothing here touches the
simulator or any runtime state, so it may be called from several threads at once.
"""

from __future__ import annotations

from isa import MachineSpec
from npulang import ir
from npulang.backend import CompiledKernel, compile_function
from npulang.passes import PassManager, generic_pipeline


def compile_ir(fn: ir.Function, spec: MachineSpec, *, num_stages: int = 2, record: bool = False) -> CompiledKernel:
    """Compile a frontend-built IR function for `spec`: generic passes, then the backend.

    With `record=True` the result's `stages` hold the text after every step, in order.
    """
    pm = PassManager(generic_pipeline(), verify_each=True, record=record)
    ck = compile_function(pm.run(fn), spec, num_stages=num_stages, record=record)
    ck.stages[:0] = [(s.name, s.text) for s in pm.stages]
    return ck


__all__ = ["compile_ir", "CompiledKernel"]
