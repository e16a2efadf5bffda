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
from npulang.language import (
    abs, arange, argmax, argmin, bfloat16, broadcast_to, cdiv, ceil, constexpr, cos, cumsum, device_print, dot, dtype,
    erf, exp, exp2, expand_dims, float16, float32, floor, fma, full, int1, int8, int32, load, log, log2,
    make_tensor_descriptor, max, max_constancy, max_contiguous, maximum, min, minimum, multiple_of, num_programs,
    permute, program_id, range, reshape, rsqrt, sigmoid, sin, sqrt, static_assert, static_print, static_range,
    store, sum, tanh, trans, view, where, zeros,
)
from npulang.language import make_conv_descriptor

from npulang import math  # Triton's `tl.math` alias namespace (npu.math.exp2)
from npulang.backend.errors import UnsupportedKernelError  # a tuner tells "cannot lower" from ResourceError

# Launch-side API: the decorator, launch options and records, the machine kernels run on, profiling.
# These are methods of the one process-wide `Runtime` (see npulang.runtime.launch).
from npulang.runtime import RUNTIME, JITFunction, LaunchOptions, Profile, RunRecord
from npulang.runtime.jit import jit

get_machine = RUNTIME.get_machine
set_machine = RUNTIME.set_machine
profile = RUNTIME.profile
launch_defaults = RUNTIME.launch_defaults


def __getattr__(name: str) -> object:
    """`npu.autotune` and `npu.Config`, imported on first use: the tuner imports npulang, not the reverse
    (DESIGN.md §1 allows this one face re-export, as `@triton.autotune`)."""
    if name in ("autotune", "Config"):
        import autotune

        return getattr(autotune, name)
    raise AttributeError(f"module 'npulang' has no attribute {name!r}")


__all__ = [
    "CompilationError", "ConstexprRequiredError", "NpuError", "NpuRuntimeError", "OutOfBoundsError",
    "ShapeMismatchError", "TypeMismatchError", "UnsupportedSyntaxError",
    "abs", "arange", "argmax", "argmin", "bfloat16", "broadcast_to", "cdiv", "ceil", "constexpr", "cos", "cumsum",
    "device_print", "dot", "dtype", "erf", "exp", "exp2", "expand_dims", "float16", "float32", "floor", "fma", "full",
    "int1", "int8", "int32", "load", "log", "log2", "make_tensor_descriptor", "max", "max_constancy",
    "max_contiguous", "maximum", "min", "minimum", "multiple_of", "num_programs", "permute", "program_id", "range",
    "reshape", "rsqrt", "sigmoid", "sin", "sqrt", "static_assert", "static_print", "static_range", "store", "sum",
    "tanh", "trans", "view", "where", "zeros", "math",
    "make_conv_descriptor",
    "JITFunction", "LaunchOptions", "Profile", "RunRecord", "get_machine", "jit", "launch_defaults", "profile",
    "set_machine",
    "BufferOverflowError", "EventIdOverflowError", "RegisterOverflowError", "ResourceError", "UnsupportedKernelError",
    "Config", "autotune",
]
