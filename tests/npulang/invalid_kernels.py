"""Invalid kernels and the exact error each must give (checked by test_errors_frontend.py).

Each kernel's offending line ends with a `# <-` marker; `at` is the text the caret must point at.
All kernels take (x_ptr, n, BLOCK: constexpr) and are specialised for (f32 array, int, BLOCK=8).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

import npulang as npu
from npulang import errors

TABLE = np.arange(4)


@dataclass
class Case:
    kernel: npu.JITFunction
    error: type[errors.CompilationError]
    message: str
    at: str
    hint: str | None = None


CASES: list[Case] = []
BACKEND_CASES: list[Case] = []  # accepted by the frontend, rejected when compiled (test_errors_backend.py)


def invalid(error: type[errors.CompilationError], message: str, at: str, hint: str | None = None, *,
            cases: list[Case] = CASES):
    def register(kernel: npu.JITFunction) -> npu.JITFunction:
        cases.append(Case(kernel, error, message, at, hint))
        return kernel

    return register


def python_helper(x):
    return x


@npu.jit
def scale_by(x, k: npu.constexpr):
    return x * k


@npu.jit
def exp_of(x):
    return npu.exp(x)  # <-


@invalid(errors.ShapeMismatchError, "dot needs 2-D tiles, got 2-D tile<8x8xf32> and 1-D tile<8xf32>",
         at="npu.dot", hint="reshape a 1-D tile to 2-D first, e.g. x[None, :]")
@npu.jit
def dot_2d_with_1d(x_ptr, n, BLOCK: npu.constexpr):
    r = npu.arange(0, BLOCK)
    a = npu.load(x_ptr + r[:, None] * BLOCK + r[None, :])
    v = npu.load(x_ptr + r)
    c = npu.dot(a, v)  # <-
    npu.store(x_ptr + r, c)


@invalid(errors.ShapeMismatchError, "dot inner dimensions differ: a is [8, 4], b is [8, 4]", at="npu.dot")
@npu.jit
def dot_inner_mismatch(x_ptr, n, BLOCK: npu.constexpr):
    a = npu.load(x_ptr + npu.arange(0, BLOCK)[:, None] * 4 + npu.arange(0, 4)[None, :])
    npu.dot(a, a)  # <-


@invalid(errors.TypeMismatchError, "dot operands must have one dtype, got f16 and f32", at="npu.dot")
@npu.jit
def dot_mixed_dtypes(x_ptr, n, BLOCK: npu.constexpr):
    a = npu.load(x_ptr + npu.arange(0, BLOCK)[:, None] * BLOCK + npu.arange(0, BLOCK)[None, :])
    npu.dot(a.to(npu.float16), a)  # <-


@invalid(errors.ConstexprRequiredError, "arange end must be a constexpr, got a runtime i32 scalar",
         at="npu.arange", hint="declare the parameter as NAME: npu.constexpr")
@npu.jit
def arange_runtime_bound(x_ptr, n, BLOCK: npu.constexpr):
    offs = npu.arange(0, n)  # <-
    npu.store(x_ptr + offs, 0.0)


@invalid(errors.ConstexprRequiredError, "sum axis must be a constexpr int, got i32 scalar", at="npu.sum")
@npu.jit
def reduce_runtime_axis(x_ptr, n, BLOCK: npu.constexpr):
    x = npu.load(x_ptr + npu.arange(0, BLOCK))
    npu.store(x_ptr, npu.sum(x, axis=n))  # <-


@invalid(errors.ConstexprRequiredError, "parameter 'k' of scale_by is a constexpr, got a runtime i32 scalar",
         at="scale_by")
@npu.jit
def runtime_value_for_constexpr_param(x_ptr, n, BLOCK: npu.constexpr):
    x = npu.load(x_ptr + npu.arange(0, BLOCK))
    npu.store(x_ptr + npu.arange(0, BLOCK), scale_by(x, n))  # <-


@invalid(errors.ShapeMismatchError, "cannot broadcast shapes [8] and [4]", at="npu.arange(0, BLOCK) +",
         hint="make the shapes equal, or give one a size-1 dimension (x[:, None])")
@npu.jit
def shapes_do_not_broadcast(x_ptr, n, BLOCK: npu.constexpr):
    offs = npu.arange(0, BLOCK) + npu.arange(0, 4)  # <-
    npu.store(x_ptr + offs, 0.0)


@invalid(errors.TypeMismatchError,
         "bitwise and needs integer operands, got 1-D tile<8xf32> and 1-D tile<8xf32>",
         at="x & 1")
@npu.jit
def bitwise_on_floats(x_ptr, n, BLOCK: npu.constexpr):
    x = npu.load(x_ptr + npu.arange(0, BLOCK))
    y = x & 1  # <-
    npu.store(x_ptr + npu.arange(0, BLOCK), y)


@invalid(errors.TypeMismatchError, "exp needs a float operand, got 1-D tile<8xi32>", at="npu.exp",
         hint="convert first: x.to(npu.float32)")
@npu.jit
def exp_of_ints_in_a_callee(x_ptr, n, BLOCK: npu.constexpr):
    y = exp_of(npu.arange(0, BLOCK))
    npu.store(x_ptr + npu.arange(0, BLOCK), y)


@invalid(errors.TypeMismatchError, "fma needs float operands, got 1-D tile<8xi32>",
         at="npu.fma", hint="convert first: x.to(npu.float32)")
@npu.jit
def fma_of_ints(x_ptr, n, BLOCK: npu.constexpr):
    y = npu.fma(npu.arange(0, BLOCK), n, 1)  # <-
    npu.store(x_ptr + npu.arange(0, BLOCK), y)


@invalid(errors.TypeMismatchError, "load needs a pointer or a tile of pointers, got i32 scalar",
         at="npu.load")
@npu.jit
def load_from_a_scalar(x_ptr, n, BLOCK: npu.constexpr):
    v = npu.load(n)  # <-
    npu.store(x_ptr, v)


@invalid(errors.TypeMismatchError, "pointer offset must be an integer, got f32 scalar", at="x_ptr + 1.5",
         hint="use .to(npu.int32)")
@npu.jit
def pointer_plus_float(x_ptr, n, BLOCK: npu.constexpr):
    npu.store(x_ptr + 1.5, 0.0)  # <-


@invalid(errors.ShapeMismatchError, "an if condition must be a scalar, got 1-D tile<8xi1>", at="offs < n",
         hint="use npu.where(mask, a, b) for a per-element choice")
@npu.jit
def if_on_a_tile(x_ptr, n, BLOCK: npu.constexpr):
    offs = npu.arange(0, BLOCK)
    if offs < n:  # <-
        npu.store(x_ptr + offs, 0.0)


@invalid(errors.TypeMismatchError, "'y' is tile<8xi32> in the if branch but tile<8xf32> in the else branch",
         at="if n > 2")
@npu.jit
def if_branches_disagree(x_ptr, n, BLOCK: npu.constexpr):
    offs = npu.arange(0, BLOCK)
    if n > 2:  # <-
        y = offs
    else:
        y = offs.to(npu.float32)
    npu.store(x_ptr + offs, y)


@invalid(errors.TypeMismatchError, "loop-carried 'acc' is tile<8xi32> before the loop but tile<8xf32> after "
         "its body", at="for i in range(n)")
@npu.jit
def loop_carried_type_changes(x_ptr, n, BLOCK: npu.constexpr):
    acc = npu.zeros([BLOCK], dtype=npu.int32)
    for i in range(n):  # <-
        acc = acc + npu.load(x_ptr + npu.arange(0, BLOCK))
    npu.store(x_ptr + npu.arange(0, BLOCK), acc)


@invalid(errors.ShapeMismatchError, "a while condition must be a scalar, got 1-D tile<8xi1>",
         at="npu.arange(0, BLOCK) < n")
@npu.jit
def while_on_a_tile(x_ptr, n, BLOCK: npu.constexpr):
    i = 0
    while npu.arange(0, BLOCK) < n:  # <-
        i += 1


@invalid(errors.CompilationError, "a while loop on a constexpr condition ran 4096 times at compile time",
         at="while", hint="make its condition a runtime value, or loop with range")
@npu.jit
def while_true_forever(x_ptr, n, BLOCK: npu.constexpr):
    i = 0
    while i >= 0:  # <-
        i += 1


@invalid(errors.UnsupportedSyntaxError, "break is not supported in kernels", at="break")
@npu.jit
def break_in_loop(x_ptr, n, BLOCK: npu.constexpr):
    for i in range(n):
        break  # <-


@invalid(errors.UnsupportedSyntaxError, "assigning to subscript is not supported in kernels", at="x[0]")
@npu.jit
def assign_into_a_tile(x_ptr, n, BLOCK: npu.constexpr):
    x = npu.load(x_ptr + npu.arange(0, BLOCK))
    x[0] = 1.0  # <-


@invalid(errors.UnsupportedSyntaxError, "indexing a tile with anything but ':' and None is not supported in "
         "kernels", at="2]")
@npu.jit
def index_a_tile_with_an_int(x_ptr, n, BLOCK: npu.constexpr):
    x = npu.load(x_ptr + npu.arange(0, BLOCK))
    npu.store(x_ptr, x[2])  # <-


@invalid(errors.UnsupportedSyntaxError, "cannot call Python function 'python_helper' from a kernel",
         at="python_helper", hint="decorate it with @npu.jit to call it from kernels")
@npu.jit
def call_plain_python(x_ptr, n, BLOCK: npu.constexpr):
    y = python_helper(n)  # <-
    npu.store(x_ptr, y)


@invalid(errors.UnsupportedSyntaxError, "print is not supported in kernels", at="print",
         hint="use npu.device_print(prefix, values...) or npu.static_print")
@npu.jit
def python_print(x_ptr, n, BLOCK: npu.constexpr):
    print(n)  # <-


@invalid(errors.TypeMismatchError, "global 'TABLE' of type ndarray cannot be used in a kernel", at="TABLE",
         hint="pass it as a kernel argument, or wrap a constant in npu.constexpr(...)")
@npu.jit
def global_array(x_ptr, n, BLOCK: npu.constexpr):
    npu.store(x_ptr, TABLE)  # <-


@invalid(errors.CompilationError, "name 'undefined_thing' is not defined", at="undefined_thing")
@npu.jit
def undefined_name(x_ptr, n, BLOCK: npu.constexpr):
    npu.store(x_ptr, undefined_thing)  # <- # noqa: F821


@invalid(errors.CompilationError, "module 'npulang' has no attribute 'tl_load'", at="npu.tl_load")
@npu.jit
def unknown_builtin(x_ptr, n, BLOCK: npu.constexpr):
    npu.tl_load(x_ptr)  # <-


@invalid(errors.CompilationError, "static_assert failed: BLOCK must be a multiple of 16",
         at="npu.static_assert")
@npu.jit
def failing_static_assert(x_ptr, n, BLOCK: npu.constexpr):
    npu.static_assert(BLOCK % 16 == 0, "BLOCK must be a multiple of 16")  # <-


@invalid(errors.UnsupportedSyntaxError, "return inside a runtime loop or if is not supported in kernels",
         at="return", hint="return at the end of the function, or exit early with `if cond: return` "
                           "outside runtime loops")
@npu.jit
def return_in_runtime_loop(x_ptr, n, BLOCK: npu.constexpr):
    for i in range(n):
        npu.store(x_ptr + i, 1.0)
        return  # <-


@invalid(errors.UnsupportedSyntaxError, "return inside a runtime loop or if is not supported in kernels",
         at="if n > 1", hint="return at the end of the function, or exit early with `if cond: return` "
                             "outside runtime loops")
@npu.jit
def early_exit_inside_a_runtime_if(x_ptr, n, BLOCK: npu.constexpr):
    if n > 0:
        if n > 1:  # <-
            return
        npu.store(x_ptr, 2.0)
    npu.store(x_ptr, 1.0)


@invalid(errors.UnsupportedSyntaxError, "unsupported syntax in a kernel: Lambda", at="lambda")
@npu.jit
def lambda_in_kernel(x_ptr, n, BLOCK: npu.constexpr):
    f = lambda v: v + 1  # <- # noqa: E731
    npu.store(x_ptr, f(n))


@invalid(errors.TypeMismatchError, "bad call to npu.load(): missing a required argument: 'pointer'",
         at="npu.load")
@npu.jit
def builtin_called_wrongly(x_ptr, n, BLOCK: npu.constexpr):
    npu.load(mask=n > 0)  # <-


@invalid(errors.ConstexprRequiredError,
         "a constexpr variable needs a compile-time value, got a runtime i32 scalar", at="n * 2")
@npu.jit
def runtime_value_in_a_constexpr_local(x_ptr, n, BLOCK: npu.constexpr):
    M: npu.constexpr = n * 2  # <-
    npu.store(x_ptr, M)


# -- convolution descriptors ------------------------------------------------------------------------
@invalid(errors.ShapeMismatchError, "conv descriptor block K (8) must divide R*S*channel_block (36), so that a "
         "tile never spans two channel groups", at="npu.make_conv_descriptor")
@npu.jit
def conv_block_k_spans_groups(x_ptr, n, BLOCK: npu.constexpr):
    d = npu.make_conv_descriptor(x_ptr, (1, 4, 8, 8), (3, 3), [16, BLOCK])  # <-
    npu.store(x_ptr + npu.arange(0, 16), npu.sum(d.load([0, 0]), axis=1))


@invalid(errors.ConstexprRequiredError, "make_conv_descriptor shape (N, C, H, W) must be a constexpr, got a "
         "runtime i32 scalar", at="npu.make_conv_descriptor", hint="declare the parameter as NAME: npu.constexpr")
@npu.jit
def conv_runtime_shape(x_ptr, n, BLOCK: npu.constexpr):
    npu.make_conv_descriptor(x_ptr, (1, n, 8, 8), (3, 3), [16, 36])  # <-


@invalid(errors.TypeMismatchError, "make_conv_descriptor layout must be one of NCHW, NHWC, NC1HWC0, got 'CHWN'",
         at="npu.make_conv_descriptor")
@npu.jit
def conv_unknown_layout(x_ptr, n, BLOCK: npu.constexpr):
    npu.make_conv_descriptor(x_ptr, (1, 4, 8, 8), (3, 3), [16, 36], layout="CHWN")  # <-


@invalid(errors.ShapeMismatchError, "conv descriptor has no output positions: the kernel does not fit the padded "
         "input (1, 4, 2, 2)", at="npu.make_conv_descriptor")
@npu.jit
def conv_kernel_larger_than_input(x_ptr, n, BLOCK: npu.constexpr):
    npu.make_conv_descriptor(x_ptr, (1, 4, 2, 2), (5, 5), [16, 100])  # <-


@invalid(errors.CompilationError, "convolution descriptor has no attribute 'store'", at="d.store",
         hint="a convolution descriptor is read-only: use desc.load([m, k])")
@npu.jit
def conv_descriptor_store(x_ptr, n, BLOCK: npu.constexpr):
    d = npu.make_conv_descriptor(x_ptr, (1, 4, 8, 8), (1, 1), [16, 4])
    d.store([0, 0], 1.0)  # <-


@invalid(errors.ShapeMismatchError, "a convolution descriptor load needs a list of 2 offsets [m, k], got [0, 0, 0]",
         at="d.load")
@npu.jit
def conv_load_three_offsets(x_ptr, n, BLOCK: npu.constexpr):
    d = npu.make_conv_descriptor(x_ptr, (1, 4, 8, 8), (1, 1), [16, 4], stride=2)
    d.load([0, 0, 0])  # <-



@invalid(errors.ShapeMismatchError, "conv descriptor load at [0, 2]: k must be a multiple of the block's K (4) "
         "and offsets >= 0", at="d.load", hint="step k by BK: for k in range(0, K, BK)")
@npu.jit
def conv_load_k_off_the_block_grid(x_ptr, n, BLOCK: npu.constexpr):
    d = npu.make_conv_descriptor(x_ptr, (1, 4, 8, 8), (1, 1), [16, 4])
    d.load([0, 2])  # <-


# -- names npulang does not have (test_idioms.py checks the hint that lists the names it has) ---------


@invalid(errors.CompilationError, "module 'npulang' has no attribute 'cumsun'", at="npu.cumsun")
@npu.jit
def missing_npu_name(x_ptr, n, BLOCK: npu.constexpr):
    x = npu.load(x_ptr + npu.arange(0, BLOCK))
    npu.store(x_ptr + npu.arange(0, BLOCK), npu.cumsun(x, 0))  # <-


@invalid(errors.CompilationError, "module 'npulang' has no attribute 'atomic_add'", at="npu.atomic_add",
         hint="the machine has no atomic operations: have each program store its own partial result and "
              "combine them in a second kernel")
@npu.jit
def atomic_add_is_missing(x_ptr, n, BLOCK: npu.constexpr):
    npu.atomic_add(x_ptr, 1.0)  # <-


@invalid(errors.UnsupportedSyntaxError, "while ... else is not supported in kernels", at="while")
@npu.jit
def while_else(x_ptr, n, BLOCK: npu.constexpr):
    i = 0
    while i < n:  # <-
        i += 1
    else:
        i = 0


# -- kernels the frontend accepts and the backend cannot lower (test_errors_backend.py compiles them) -------


@invalid(npu.UnsupportedKernelError, "tiles of rank 4 are not supported by the backend (rank 1 to 3)",
         at="x.reshape", hint="fold the leading dims into rows, e.g. x.reshape(B * M, N), or loop over them with "
                              "npu.static_range", cases=BACKEND_CASES)
@npu.jit
def rank4_tile(x_ptr, n, BLOCK: npu.constexpr):
    x = npu.load(x_ptr + npu.arange(0, 16))
    y = npu.sum(x.reshape(2, 2, 2, 2), axis=3)  # <-
    npu.store(x_ptr + npu.arange(0, 8), y.reshape(8))


@invalid(npu.UnsupportedKernelError,
         "this scalar lives in UB (loaded from memory, or computed on the vector unit) and the scalar unit cannot "
         "read UB, so it cannot steer control flow or a loop bound", at="for",
         hint="decide with scalars computed from arguments and program ids, or apply the value per element with "
              "npu.where or a mask", cases=BACKEND_CASES)
@npu.jit
def loaded_value_as_loop_bound(x_ptr, n, BLOCK: npu.constexpr):
    m = npu.load(x_ptr).to(npu.int32)
    for i in range(m):  # <-
        npu.store(x_ptr + i, 1.0)
