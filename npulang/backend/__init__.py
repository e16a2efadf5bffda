"""The npulang backend: block IR -> VLIW program for one machine spec.

`npulang.compiler.compile_ir` runs its steps (`backend.steps`, over one `Compilation`) in order; each
step is a small module here: lowering/, pipeline, alloc, sync, emit, bundle.
"""

from npulang.backend.compilation import CompiledKernel
from npulang.backend.errors import UnsupportedKernelError

__all__ = ["CompiledKernel", "UnsupportedKernelError"]
