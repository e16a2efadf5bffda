"""Compile errors the backend raises for kernels that cannot run on the machine as written."""

from __future__ import annotations

from typing import TypeVar

from isa import SourceLoc
from npulang.errors import CompilationError, ResourceError

E = TypeVar("E", bound=ResourceError)


class UnsupportedKernelError(CompilationError):
    """A kernel construct the backend cannot lower (with what to change instead)."""


def resource_error(kind: type[E], kernel: str, loc: SourceLoc | None, fallback: SourceLoc, message: str,
                   hint: str) -> E:
    """A `kind` error at the statement `loc` that allocates the resource (`fallback`: the kernel's def)."""
    at = loc or fallback
    return kind(kernel, at.file, at.line, 0, message, hint=hint)
