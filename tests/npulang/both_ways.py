"""`launch_both`: a kernel launched interpreted and compiled, each on fresh copies of its arguments."""

from __future__ import annotations

from typing import Any, Callable


def launch_both(kernel: Any, grid: tuple[int, ...], make_args: Callable[[], list[Any]], **meta: Any) -> list[list[Any]]:
    """The arguments after an interpreted and after a compiled launch (race detection on), in that order."""
    outs = []
    for interpret in (True, False):
        args = make_args()
        kernel[grid](*args, interpret=interpret, **meta)
        outs.append(args)
    return outs
