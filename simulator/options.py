"""Simulator settings: one frozen, keyword-only dataclass."""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_MAX_INSTRUCTIONS = 50_000_000  # per program: minutes of simulation, far beyond any real tile loop


@dataclass(frozen=True, kw_only=True)
class SimOptions:
    """How a launch is simulated.

    Attributes:
        functional: compute results with numpy; False is timing only (no numpy work, the argument
            arrays left as they were; a program with a gather or scatter still computes, to check its
            lanes' data-dependent addresses, and its GM writes are undone), for the
            autotuner's inner loop. Cycle counts are the same either way.
        detect_races: check that every pair of conflicting accesses from different pipes is ordered
            by flags or barriers.
        trace: record one event per instruction for `RunResult.write_trace`.
        max_cycles: raise `SimError` when any core's time passes this bound (None: no bound).
        max_instructions: raise `SimError` when one program executes more instructions than this
            (checked at taken branches and at the end), so a runaway loop stops instead of hanging
            (None: no bound).
    """

    functional: bool = True
    detect_races: bool = True
    trace: bool = False
    max_cycles: int | None = None
    max_instructions: int | None = DEFAULT_MAX_INSTRUCTIONS

    def __post_init__(self) -> None:
        if self.max_cycles is not None and self.max_cycles <= 0:
            raise ValueError(f"SimOptions.max_cycles must be positive or None, got {self.max_cycles}")
        if self.max_instructions is not None and self.max_instructions <= 0:
            raise ValueError(f"SimOptions.max_instructions must be positive or None, got {self.max_instructions}")
