"""Compile errors the backend raises for kernels that cannot run on the machine as written."""

from __future__ import annotations

from npulang.errors import CompilationError


class BufferOverflowError(CompilationError):
    """The tiles a kernel keeps on chip do not fit a buffer (L1, L0A, L0B, L0C or UB)."""


class UnsupportedKernelError(CompilationError):
    """A kernel construct the backend cannot lower (with what to change instead)."""
