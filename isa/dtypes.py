"""Element types shared by the ISA, the simulator and the compiler."""

from __future__ import annotations

from dataclasses import dataclass

import ml_dtypes
import numpy as np


@dataclass(frozen=True)
class DType:
    """An element type: its assembly name, numpy type and size in bytes."""

    name: str
    np: np.dtype
    is_float: bool

    @property
    def itemsize(self) -> int:
        """Bytes per element."""
        return self.np.itemsize

    def __str__(self) -> str:
        return self.name


DTYPES: dict[str, DType] = {
    d.name: d
    for d in (
        DType("f16", np.dtype(np.float16), True),
        DType("bf16", np.dtype(ml_dtypes.bfloat16), True),
        DType("f32", np.dtype(np.float32), True),
        DType("i8", np.dtype(np.int8), False),
        DType("i32", np.dtype(np.int32), False),
        DType("i1", np.dtype(np.bool_), False),  # masks: one byte per element
    )
}


def dtype(name: str) -> DType:
    """Look up a dtype by assembly name (`f16`, `bf16`, `f32`, `i8`, `i32`, `i1`)."""
    try:
        return DTYPES[name]
    except KeyError:
        raise ValueError(f"unknown dtype {name!r} (known: {', '.join(DTYPES)})") from None


def from_numpy(np_dtype: np.dtype) -> DType:
    """The ISA dtype of a numpy dtype, or ValueError if the NPU has no such type."""
    np_dtype = np.dtype(np_dtype)
    for d in DTYPES.values():
        if d.np == np_dtype:
            return d
    raise ValueError(f"numpy dtype {np_dtype} has no NPU equivalent (supported: {', '.join(DTYPES)})")


def accumulator(d: DType) -> DType:
    """The cube's accumulator type for an input type: fp32 for floats, int32 for int8."""
    return DTYPES["f32"] if d.is_float else DTYPES["i32"]
