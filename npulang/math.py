"""`npu.math`: Triton's `tl.math` namespace, so kernels written as `tl.math.exp2(x)` port by renaming.

The same builtins as `npu.*` under the names `tl.math` gives them; nothing here is new semantics.
"""

from npulang.language import (
    abs, cdiv, ceil, cos, erf, exp, exp2, floor, fma, log, log2, maximum, minimum, rsqrt, sigmoid, sin, sqrt, tanh,
)

__all__ = ["abs", "cdiv", "ceil", "cos", "erf", "exp", "exp2", "floor", "fma", "log", "log2", "maximum", "minimum",
           "rsqrt", "sigmoid", "sin", "sqrt", "tanh"]
