"""The exceptions npulang raises, shaped after Python's and Triton's own error reports.

User mistakes found while compiling a kernel are `CompilationError`s: their text shows
`file:line:col: message`, the kernel's source line with a caret under the column, and a hint of
what to change. Mistakes found while running a kernel are `NpuRuntimeError`s. The original cause
of an error is chained (`raise ... from exc`), so nothing is lost, but users never need to read
an internal traceback to find their mistake.
"""

from __future__ import annotations

import linecache


class NpuError(Exception):
    """Base of every npulang exception."""


class CompilationError(NpuError):
    """A mistake in a kernel's source, reported at its file, line and column.

    Args:
        kernel: the name of the kernel being compiled.
        file: the kernel's source file.
        line: 1-based line in that file.
        col: 0-based column (as in Python's ast); shown 1-based.
        message: what is wrong.
        source_line: the text of that line, shown with a caret under `col` (optional).
        hint: what to change (optional).
    """

    def __init__(
        self,
        kernel: str,
        file: str,
        line: int,
        col: int,
        message: str,
        *,
        source_line: str | None = None,
        hint: str | None = None,
    ) -> None:
        if source_line is None:  # e.g. from the backend, which knows the line but not the text
            source_line = linecache.getline(file, line).rstrip("\n") or None
            if source_line is not None and col == 0:
                col = len(source_line) - len(source_line.lstrip())  # caret at the statement
        self.kernel = kernel
        self.file = file
        self.line = line
        self.col = col
        self.message = message
        self.source_line = source_line
        self.hint = hint
        super().__init__(self._render())

    def _render(self) -> str:
        text = f"{self.file}:{self.line}:{self.col + 1}: {self.message}"
        if self.source_line is not None:
            stripped = self.source_line.rstrip()
            text += f"\n    {stripped}\n    {' ' * self.col}^"
        text += f"\n  in kernel '{self.kernel}'"
        if self.hint:
            text += f"\n  hint: {self.hint}"
        return text


class UnsupportedSyntaxError(CompilationError):
    """Python syntax or a call that npulang kernels do not support."""


class TypeMismatchError(CompilationError):
    """Operands whose dtypes cannot be combined, or a value of the wrong kind (tile, pointer, scalar)."""


class ShapeMismatchError(CompilationError):
    """Tile shapes that cannot be broadcast together or do not fit an operation (e.g. `dot`)."""


class ConstexprRequiredError(CompilationError):
    """A runtime value where the compiler needs a value known at compile time."""


class ResourceError(CompilationError):
    """A kernel needs more of a machine resource than the machine has (Triton's `OutOfResources`).

    Reported at the statement that allocates the resource. An autotuner catches this to skip a
    config that is too big, as opposed to a kernel the compiler cannot lower at all.
    """


class BufferOverflowError(ResourceError):
    """The tiles a kernel keeps on chip do not fit a buffer (L1, L0A, L0B, L0C or UB)."""


class EventIdOverflowError(ResourceError):
    """More set_flag/wait_flag pairs between two pipes are outstanding at once than there are event ids."""


class RegisterOverflowError(ResourceError):
    """More scalar values are live at once than the machine has scalar registers."""


class NpuRuntimeError(NpuError):
    """A kernel did something invalid while it ran (interpreter or simulator)."""


class OutOfBoundsError(NpuRuntimeError):
    """An unmasked load or store touched memory outside its array."""


class IRVerifyError(NpuError):
    """The block IR broke one of its own rules: a compiler bug, not a user mistake."""
