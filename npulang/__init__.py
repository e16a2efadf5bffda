"""npulang: a Triton-like kernel language compiled to the NPU ISA.

Write kernels with `@npu.jit` over tiles using the `npu.*` builtins (Triton's names), launch them
as `kernel[grid](*arrays_and_scalars, **constexprs)`; pass `interpret=True` to run the numpy
reference interpreter instead of the compiler and simulator.
"""

from npulang.errors import (
    BufferOverflowError, CompilationError, ConstexprRequiredError, EventIdOverflowError, NpuError, NpuRuntimeError,
    OutOfBoundsError, RegisterOverflowError, ResourceError, ShapeMismatchError, TypeMismatchError,
    UnsupportedSyntaxError,
)
from npulang.jit import InterpretResult, JITFunction, jit
from npulang.language import (
    abs, arange, argmax, argmin, bfloat16, broadcast_to, cdiv, ceil, constexpr, cos, device_print, dot, dtype,
    erf, exp, exp2, expand_dims, float16, float32, floor, full, int1, int8, int32, load, log, log2,
    make_tensor_descriptor, max, max_contiguous, maximum, min, minimum, multiple_of, num_programs, permute,
    program_id, range, reshape, rsqrt, sigmoid, sin, sqrt, static_assert, static_print, static_range, store, sum,
    tanh, trans, view, where, zeros,
)

__all__ = [
    "CompilationError", "ConstexprRequiredError", "NpuError", "NpuRuntimeError", "OutOfBoundsError",
    "ShapeMismatchError", "TypeMismatchError", "UnsupportedSyntaxError", "InterpretResult", "JITFunction",
    "jit", "abs", "arange", "argmax", "argmin", "bfloat16", "broadcast_to", "cdiv", "ceil", "constexpr", "cos",
    "device_print", "dot", "dtype", "erf", "exp", "exp2", "expand_dims", "float16", "float32", "floor", "full",
    "int1", "int8", "int32", "load", "log", "log2", "make_tensor_descriptor", "max", "max_contiguous", "maximum",
    "min", "minimum", "multiple_of", "num_programs", "permute", "program_id", "range", "reshape", "rsqrt", "sigmoid",
    "sin", "sqrt", "static_assert", "static_print", "static_range", "store", "sum", "tanh", "trans", "view",
    "where", "zeros",
]

# Launch-side API: the machine kernels compile for and run on, and launch profiling.
from npulang.launch import RunRecord, get_machine, set_machine  # noqa: E402
from npulang.profiling import Profile, profile  # noqa: E402

__all__ += ["BufferOverflowError", "EventIdOverflowError", "RegisterOverflowError", "ResourceError"]
__all__ += ["RunRecord", "get_machine", "set_machine", "Profile", "profile"]
