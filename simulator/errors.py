"""The simulator's exceptions. Each message names the instruction, its kernel line, core and program."""

from __future__ import annotations

from isa import Instr


class SimError(Exception):
    """A program the simulator cannot run: bad arguments, a runaway loop, or one of the subclasses."""


class OutOfBounds(SimError):
    """An access outside an on-chip buffer or outside every GM argument array."""


class RaceError(SimError):
    """Two unordered accesses from different pipes to overlapping bytes, at least one a write."""


class DeadlockError(SimError):
    """Issue or every pipe is blocked forever, e.g. on a wait_flag whose set never comes."""


class FlagError(SimError):
    """A set_flag that would overwrite an unconsumed one, a bad event id, or sets left at the end."""


def instr_text(instr: Instr) -> str:
    """The instruction as assembly text, falling back to its opcode if the printer fails."""
    try:
        return str(instr)
    except Exception:  # the printer must never hide the error being reported
        return instr.op


def describe(instr: Instr) -> str:
    """`text` (file:line) for error messages."""
    where = f" ({instr.loc})" if instr.loc is not None else ""
    return f"`{instr_text(instr)}`{where}"


def context(core: int, pid: tuple[int, int, int]) -> str:
    """Where an error happened, as messages name it: the core and the program id."""
    return f"core {core}, program {pid}"
