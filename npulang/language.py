"""The kernel language's builtins, as users see them: `npu.load`, `npu.dot`, `npu.float16`, ...

Each builtin is a documented Python function that only means something inside an `@npu.jit`
kernel: the frontend recognises it and compiles the call (see `npulang.frontend.builtin_rules`).
Called from ordinary Python, it raises a clear error, except `cdiv`, which also works on host
ints (grids are often computed with it). Names and semantics follow Triton's `tl.*`.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, TypeVar

from npulang.errors import NpuError

F = TypeVar("F", bound=Callable[..., Any])


class dtype:
    """An element type usable in kernels: `npu.float16`, `npu.int8`, ... (`.name` is the ISA name)."""

    _NAMES = {"f16": "float16", "bf16": "bfloat16", "f32": "float32", "i8": "int8", "i32": "int32",
              "i1": "int1"}

    def __init__(self, name: str) -> None:
        if name not in self._NAMES:
            raise ValueError(f"unknown npulang dtype {name!r}")
        self.name = name

    def __eq__(self, other: object) -> bool:
        return isinstance(other, dtype) and other.name == self.name

    def __hash__(self) -> int:
        return hash(("npu.dtype", self.name))

    def __repr__(self) -> str:
        return f"npu.{self._NAMES[self.name]}"

    def is_floating(self) -> bool:
        """True for float16, bfloat16 and float32."""
        return self.name in ("f16", "bf16", "f32")

    def is_int(self) -> bool:
        """True for int1, int8 and int32."""
        return not self.is_floating()


float16 = dtype("f16")
bfloat16 = dtype("bf16")
float32 = dtype("f32")
int8 = dtype("i8")
int32 = dtype("i32")
int1 = dtype("i1")


class constexpr:
    """Marks a kernel parameter as a compile-time constant, or wraps a global constant.

    As an annotation (`BLOCK: npu.constexpr`) the kernel is specialised on the parameter's
    value; `N = npu.constexpr(128)` at module level makes a global usable inside kernels.
    """

    def __init__(self, value: Any) -> None:
        self.value = value.value if isinstance(value, constexpr) else value

    def __repr__(self) -> str:
        return f"constexpr({self.value!r})"


class NotInKernelError(NpuError):
    """A kernel builtin was called from ordinary Python code."""


def builtin(fn: F) -> F:
    """Mark `fn` as a kernel builtin: the frontend compiles calls to it by its name."""

    @functools.wraps(fn)
    def outside_kernel(*args: Any, **kwargs: Any) -> Any:
        raise NotInKernelError(
            f"npu.{fn.__name__}() can only be called inside an @npu.jit kernel "
            f"(launch the kernel as kernel[grid](...) instead of calling it directly)"
        )

    outside_kernel.__npu_builtin__ = fn.__name__  # type: ignore[attr-defined]
    return outside_kernel  # type: ignore[return-value]


# -- program and index space ------------------------------------------------------------------

@builtin
def program_id(axis: int) -> Any:
    """The index of this program along grid `axis` (0, 1 or 2), an int32 scalar."""


@builtin
def num_programs(axis: int) -> Any:
    """The number of programs along grid `axis` (0, 1 or 2), an int32 scalar."""


@builtin
def arange(start: int, end: int) -> Any:
    """The int32 tile `[start, start+1, ..., end-1]`; `start` and `end` must be constexprs."""


def cdiv(x: Any, div: Any) -> Any:
    """Ceiling division `(x + div - 1) // div`, in kernels and on host ints (e.g. grid sizes)."""
    return (x + div - 1) // div


cdiv.__npu_builtin__ = "cdiv"  # type: ignore[attr-defined]


@builtin
def zeros(shape: Any, dtype: dtype) -> Any:
    """A tile of `shape` (constexpr ints) filled with zeros of `dtype`."""


@builtin
def full(shape: Any, value: Any, dtype: dtype) -> Any:
    """A tile of `shape` filled with `value` (a constexpr or a runtime scalar) cast to `dtype`."""


# -- memory ------------------------------------------------------------------------------------

@builtin
def load(pointer: Any, mask: Any = None, other: Any = None, **ignored: Any) -> Any:
    """Load the elements at `pointer` (a pointer or a tile of pointers).

    Lanes where `mask` is false never touch memory and take `other` (0 if not given). Triton's
    cache/eviction/volatile keywords are accepted and ignored.
    """


@builtin
def store(pointer: Any, value: Any, mask: Any = None, **ignored: Any) -> Any:
    """Store `value` (cast to the pointee dtype, broadcast to the pointer's shape) where `mask` is true."""


@builtin
def make_tensor_descriptor(base: Any, shape: Any, strides: Any, block_shape: Any) -> Any:
    """A descriptor of the N-D tensor at `base` with `shape` and `strides` (in elements).

    `desc.load([o0, o1])` reads the `block_shape` block starting at those element offsets (zeros
    outside the tensor); `desc.store([o0, o1], tile)` writes it back, dropping elements outside.
    """


@builtin
def make_conv_descriptor(base: Any, shape: Any, kernel: Any, block_shape: Any, stride: Any = 1, padding: Any = 0,
                         dilation: Any = 1, layout: str = "NCHW", channel_block: Any = None) -> Any:
    """A descriptor of the im2col matrix of the feature map at `base`, for implicit-GEMM convolution.

    `shape` is the input's logical (N, C, H, W) and `layout` its order in memory: "NCHW", "NHWC" or
    "NC1HWC0" (an array [N, ceil(C/CB), H, W, CB], the machine's own; slots past C read as 0);
    `kernel` is (R, S); `stride`, `padding` (zeros) and `dilation` are ints or (h, w) pairs. All are
    constexprs. `desc.load([m, k])` gives the [BM, BK] = `block_shape` block of the im2col matrix at
    row m and column k: row m is output position (n, oy, ox) in row-major order (M = N*OH*OW rows);
    columns are taps in (c1, r, s, c0) order, where channel c = c1 * CB + c0 for CB = `channel_block`
    (default C, giving (r, s, c): an HWIO filter reshaped to [R*S*C, K_out]); K = ceil(C/CB)*R*S*CB,
    with zero columns for channels past C. Positions past M and taps in the padding read as 0.
    BK must divide R*S*CB, and k must be a multiple of BK (m and k >= 0).

    The block is meant as the A operand of `npu.dot`: it compiles to a window DMA of the feature map
    into L1 plus the cube's img2col (load3d) into L0A. NC1HWC0 makes a window one contiguous DMA, NHWC
    a strided one (rows of CB channels); NCHW is transposed by an element-strided DMA, correct but slow.
    """


# -- compute -----------------------------------------------------------------------------------

@builtin
def dot(a: Any, b: Any, acc: Any = None, input_precision: Any = None, allow_tf32: Any = None,
        max_num_imprecise_acc: Any = None, out_dtype: dtype = float32) -> Any:
    """Matrix product of 2-D tiles `a` [M, K] and `b` [K, N], plus `acc` [M, N] if given.

    fp16/bf16 inputs accumulate in fp32, int8 in int32. The result has `acc`'s dtype if given,
    else `out_dtype` (int32 for int8 inputs). Triton's `input_precision`, `allow_tf32` and
    `max_num_imprecise_acc` are accepted and ignored (the cube has one precision per dtype).
    """


@builtin
def where(condition: Any, x: Any, y: Any) -> Any:
    """Elementwise `x` where `condition` is true, else `y` (operands broadcast together)."""


@builtin
def fma(x: Any, y: Any, z: Any) -> Any:
    """Elementwise `x * y + z` rounded once (as Triton's `tl.fma`): float operands, broadcast together.

    On tiles it is one vector instruction (`vfma`), one pass over the data where `x * y + z` takes two. On
    scalars alone it is `x * y + z` on the scalar unit, which has no fused operation (two roundings).
    """


@builtin
def maximum(x: Any, y: Any, propagate_nan: Any = None) -> Any:
    """Elementwise maximum (`propagate_nan` is accepted and ignored)."""


@builtin
def minimum(x: Any, y: Any, propagate_nan: Any = None) -> Any:
    """Elementwise minimum (`propagate_nan` is accepted and ignored)."""


def _math(name: str, doc: str) -> Callable[..., Any]:
    def fn(x: Any) -> Any:
        pass

    fn.__name__ = fn.__qualname__ = name
    fn.__doc__ = doc
    return builtin(fn)


exp = _math("exp", "Elementwise e**x (float tiles; fp16/bf16 computed in fp32).")
exp2 = _math("exp2", "Elementwise 2**x.")
log = _math("log", "Elementwise natural logarithm.")
log2 = _math("log2", "Elementwise base-2 logarithm.")
sqrt = _math("sqrt", "Elementwise square root.")
rsqrt = _math("rsqrt", "Elementwise 1/sqrt(x).")
abs = _math("abs", "Elementwise absolute value (ints and floats).")
erf = _math("erf", "Elementwise error function.")
tanh = _math("tanh", "Elementwise hyperbolic tangent.")
sigmoid = _math("sigmoid", "Elementwise 1/(1+exp(-x)).")
floor = _math("floor", "Elementwise floor.")
ceil = _math("ceil", "Elementwise ceiling.")
sin = _math("sin", "Elementwise sine.")
cos = _math("cos", "Elementwise cosine.")


# -- reductions (also tile methods: x.sum(axis=0)) -----------------------------------------------

@builtin
def sum(input: Any, axis: int | None = None, keep_dims: bool = False, dtype: dtype | None = None) -> Any:
    """Sum along `axis` (all axes if None), after casting to `dtype` if given.

    int8/int1 sum in int32; fp16/bf16 accumulate in fp32.
    """


@builtin
def cumsum(input: Any, axis: int = 0, reverse: bool = False, dtype: dtype | None = None) -> Any:
    """Inclusive prefix sums along `axis` (suffix sums with `reverse=True`), as Triton's `tl.cumsum`.

    The result has the input's dtype (int8/int1 sum in int32). The sums are formed in log2(n) steps,
    each element adding the partial sum 1, 2, 4, ... places back, so floats round as that order does.
    """


@builtin
def max(input: Any, axis: int | None = None, return_indices: bool = False,
        return_indices_tie_break_left: bool = True, keep_dims: bool = False) -> Any:
    """Maximum along `axis`; with `return_indices=True`, also the argmax (first occurrence only)."""


@builtin
def min(input: Any, axis: int | None = None, return_indices: bool = False,
        return_indices_tie_break_left: bool = True, keep_dims: bool = False) -> Any:
    """Minimum along `axis`; with `return_indices=True`, also the argmin (first occurrence only)."""


@builtin
def argmax(input: Any, axis: int, tie_break_left: bool = True, keep_dims: bool = False) -> Any:
    """Index (int32) of the first maximum along `axis` (`tie_break_left=False` is not supported)."""


@builtin
def argmin(input: Any, axis: int, tie_break_left: bool = True, keep_dims: bool = False) -> Any:
    """Index (int32) of the first minimum along `axis` (`tie_break_left=False` is not supported)."""


# -- shapes ------------------------------------------------------------------------------------

@builtin
def trans(input: Any, *dims: int) -> Any:
    """Permute the dimensions of a tile (default: reverse them; `x.T` for 2-D)."""


@builtin
def permute(input: Any, *dims: int) -> Any:
    """Permute the dimensions of a tile by `dims`."""


@builtin
def reshape(input: Any, *shape: int, can_reorder: bool = False) -> Any:
    """The same elements, row-major, in a new constexpr `shape`."""


@builtin
def view(input: Any, *shape: int) -> Any:
    """Alias of `reshape`."""


@builtin
def broadcast_to(input: Any, *shape: int) -> Any:
    """Broadcast a tile (or scalar) to `shape` by numpy's rules."""


@builtin
def expand_dims(input: Any, axis: int | tuple[int, ...]) -> Any:
    """Insert size-1 dimensions at `axis` (as `x[:, None]`)."""


# -- compile time and debugging ----------------------------------------------------------------

class static_range:
    """`for i in npu.static_range(a, b, step)`: a loop unrolled at compile time (constexpr bounds)."""

    def __init__(self, start: int, stop: int | None = None, step: int = 1) -> None:
        raise NotInKernelError("npu.static_range can only be used as a for-loop inside an @npu.jit kernel")


static_range.__npu_builtin__ = "static_range"  # type: ignore[attr-defined]


class range:
    """`for i in npu.range(start, stop, step, num_stages=None)`: a runtime loop, like Python's `range`.

    `num_stages` (a constexpr) asks the compiler to pipeline this loop's loads that many deep,
    overriding the launch's `num_stages`.
    """

    def __init__(self, start: int, stop: int | None = None, step: int = 1, num_stages: int | None = None,
                 **ignored: Any) -> None:
        raise NotInKernelError("npu.range can only be used as a for-loop inside an @npu.jit kernel")


range.__npu_builtin__ = "range"  # type: ignore[attr-defined]


@builtin
def static_assert(condition: Any, message: str = "") -> Any:
    """Fail compilation with `message` unless the constexpr `condition` holds."""


@builtin
def static_print(*values: Any) -> Any:
    """Print constexpr values while the kernel compiles."""


@builtin
def device_print(prefix: str, *args: Any, hex: bool = False) -> Any:
    """Print `prefix` and runtime values (each program prints its own) when the kernel runs.

    `hex=True` is not supported.
    """


@builtin
def multiple_of(input: Any, values: Any) -> Any:
    """A hint that `input` is a multiple of `values`; accepted and returns `input` unchanged."""


@builtin
def max_contiguous(input: Any, values: Any) -> Any:
    """A hint that runs of `values` elements of `input` are contiguous; returns `input` unchanged."""


@builtin
def max_constancy(input: Any, values: Any) -> Any:
    """A hint that runs of `values` elements of `input` are equal; returns `input` unchanged."""
