"""kernel_lib: operators written in npulang, called on numpy arrays, returning numpy arrays.

Named and shaped as NumPy and PyTorch users expect (`softmax(x, axis=-1)`, `layer_norm(x,
normalized_shape, weight, bias, eps)`...). Every argument is checked before anything is compiled; a
bad call raises `kernel_lib.OperatorError` naming the operator, the argument and what to change.
Each operator runs as one launch on the current machine (`npu.get_machine()`), with the config tuned for
its shape in the tuning database, else the nearest tuned shape's, else its documented rule
(`kernel_lib.tuning`; a call never tunes: `npu-tune` does); wrap calls in `with npu.profile() as prof:` to
see their cycles. `from kernel_lib import softmax` and
`import kernel_lib.softmax` both work: a module per operator, re-exported here.
"""

from kernel_lib.activations import gelu, relu, sigmoid, silu, tanh
from kernel_lib.attention import attention
from kernel_lib.batch_norm import batch_norm
from kernel_lib.conv2d import conv2d
from kernel_lib.elementwise import add, mul
from kernel_lib.errors import OperatorError
from kernel_lib.gemm import gemm, matmul
from kernel_lib.layer_norm import layer_norm
from kernel_lib.pooling import avg_pool2d, max_pool2d
from kernel_lib.rms_norm import rms_norm
from kernel_lib.softmax import log_softmax, softmax

__all__ = ["OperatorError", "add", "attention", "avg_pool2d", "batch_norm", "conv2d", "gelu", "gemm", "layer_norm",
           "log_softmax", "matmul", "max_pool2d", "mul", "relu", "rms_norm", "sigmoid", "silu", "softmax", "tanh"]
