"""`check_kernel`: one kernel, three layers — compiled, interpreted, the user's numpy reference.

The interpreter is npulang's reference semantics, so comparing all three on the same inputs says
which layer broke: the compiled run alone differs (npulang's compiler or simulator), both runs of the
kernel differ from the reference (the kernel, or the reference, is wrong), or the interpreter alone
differs (npulang's reference semantics). Under `pytest --npu-interpret` (or `NPU_INTERPRET=1`)
only the interpreted run is compared with the reference.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np

from npulang.runtime import JITFunction, RunRecord
from npulang.runtime.launch import Grid
from npulang.testing.compare import Mismatch, find_mismatch, largest

# What a mismatch says about each layer being the odd one out.
VERDICTS = {
    "compiled": "the compiled run disagrees with the interpreter and your reference, which agree: suspect "
                "npulang's compiler or simulator (please report it with this kernel)",
    "reference": "the kernel disagrees with your reference, and its compiled and interpreted runs agree with "
                 "each other: the kernel or the reference is wrong",
    "interpreted": "the interpreter disagrees with the compiled run and your reference, which agree: suspect "
                   "npulang's reference semantics (the IR interpreter)",
    "all": "all three disagree: the kernel or your reference is wrong, and the compiled run also differs "
           "from the interpreter",
}


class KernelMismatch(AssertionError):
    """A `check_kernel` failure; `layer` is the odd one out: compiled, interpreted, reference or all."""

    def __init__(self, message: str, layer: str, worst_index: tuple[int, ...] | None) -> None:
        super().__init__(message)
        self.layer = layer
        self.worst_index = worst_index


@dataclass(frozen=True)
class KernelCheck:
    """What `check_kernel` ran: every array argument after each layer, and the compiled launch's record."""

    interpreted: dict[str, np.ndarray]
    expected: dict[str, np.ndarray]
    compiled: dict[str, np.ndarray] | None  # None when the session runs interpreted only
    record: RunRecord | None  # the compiled launch: cycles, profile


def check_kernel(kernel: JITFunction, grid: Grid, make_args: Callable[[], Sequence[Any]] | Sequence[Any],
                 reference: Callable[..., Any], *, outputs: str | Sequence[str] | None = None,
                 accumulation: int = 1, rtol: float | None = None, atol: float | None = None,
                 ulps: float | None = None, **meta: Any) -> KernelCheck:
    """Run `kernel[grid](*args, **meta)` compiled and interpreted, and `reference(*args)`, then compare.

    Args:
        kernel, grid, meta: as in a launch (`meta` holds constexprs and launch options, not `interpret`).
        make_args: the kernel's positional arguments (arrays and scalars), or a function returning them.
            Every layer gets its own copy of every array.
        reference: numpy code taking the same arguments. It either writes the outputs into its copies
            in place and returns None (every array argument is then compared), returns a dict
            {argument name: expected value}, or returns the value(s) of the arguments named in `outputs`.
        outputs: the argument name(s) `reference`'s returned value(s) stand for.
        accumulation, rtol, atol, ulps: the tolerance, as in `assert_close`; the default atol's scale is
            the largest magnitude among the float arguments and the expected values.

    Returns:
        The arrays after each layer and the compiled run's `RunRecord` (for cycle checks).

    Raises:
        KernelMismatch: naming the layer that disagrees, the argument and its worst elements.
    """
    if not isinstance(kernel, JITFunction):
        raise TypeError(f"check_kernel takes an @npu.jit kernel, got {type(kernel).__name__}")
    if "interpret" in meta:
        raise ValueError("check_kernel runs the kernel both compiled and interpreted: do not pass interpret=")
    args = tuple(make_args() if callable(make_args) else make_args)
    names = list(kernel.signature.parameters)[:len(args)]
    arrays = {name: i for i, (name, a) in enumerate(zip(names, args)) if isinstance(a, np.ndarray)}
    interpret_only = kernel.split(dict(meta))[0].interpret

    interpreted, _ = _launch(kernel, grid, args, arrays, meta, interpret=True)
    compiled, record = (None, None) if interpret_only else _launch(kernel, grid, args, arrays, meta, interpret=False)
    expected = _expected(kernel.name, reference, args, arrays, outputs)
    # cancellation in float32 loses roundings of the operands, not of the result: the absolute slack is
    # relative to the largest value the kernel saw or produced
    scale = max([largest(a) for a in args if isinstance(a, np.ndarray) and a.dtype != np.bool_]
                + [largest(e) for e in expected.values()], default=0.0)
    tol = {"accumulation": accumulation, "rtol": rtol, "atol": atol, "ulps": ulps, "scale": scale}

    failures: list[tuple[str, list[Mismatch]]] = []  # (the odd layer out, the mismatches to show)
    for name in arrays:
        ref = _mismatch(interpreted, expected, name, "interpreted vs reference", tol)
        if compiled is None:
            failures += [("reference", [ref])] if ref else []
            continue
        pair = _mismatch(compiled, interpreted, name, "compiled vs interpreted", tol)
        comp_ref = _mismatch(compiled, expected, name, "compiled vs reference", tol)
        if ref and pair:
            failures.append(("interpreted", [ref]) if comp_ref is None else ("all", [ref, pair]))
        elif ref:
            failures.append(("reference", [ref]))
        elif pair or comp_ref:
            failures.append(("compiled", [pair or comp_ref]))
    if failures:
        layer = failures[0][0]
        body = "\n".join(str(m) for _, shown in failures for m in shown)
        raise KernelMismatch(f"check_kernel({kernel.name}, grid={grid}): {VERDICTS[layer]}.\n{body}", layer,
                             failures[0][1][0].worst_index)
    return KernelCheck(interpreted, expected, compiled, record)


def _mismatch(actual: dict[str, np.ndarray], expected: dict[str, np.ndarray], name: str, what: str,
              tol: dict[str, Any]) -> Mismatch | None:
    """`find_mismatch` of one argument between two layers (None when the second layer has no such array)."""
    if name not in expected:
        return None
    return find_mismatch(actual[name], expected[name], name=f"{name} ({what})", **tol)


def _launch(kernel: JITFunction, grid: Grid, args: tuple[Any, ...], arrays: dict[str, int], meta: dict[str, Any],
            *, interpret: bool) -> tuple[dict[str, np.ndarray], RunRecord]:
    """One layer's run on its own copies of the arrays: (array arguments by name after the run, the record)."""
    copies = [a.copy() if isinstance(a, np.ndarray) else a for a in args]
    layer = "interpreted" if interpret else "compiled"
    try:
        record = kernel[grid](*copies, interpret=interpret, **meta)
    except Exception as exc:
        hint = "" if interpret else " (the interpreted run passed: suspect npulang's compiler or simulator)"
        exc.add_note(f"check_kernel: in the {layer} run of kernel '{kernel.name}'{hint}")
        raise
    return {name: copies[i] for name, i in arrays.items()}, record


def _expected(kernel: str, reference: Callable[..., Any], args: tuple[Any, ...], arrays: dict[str, int],
              outputs: str | Sequence[str] | None) -> dict[str, np.ndarray]:
    """The reference's expected arrays by argument name (see `check_kernel` for the three forms)."""
    copies = [a.copy() if isinstance(a, np.ndarray) else a for a in args]
    result = reference(*copies)
    if result is None:
        return {name: copies[i] for name, i in arrays.items()}
    if isinstance(result, dict):
        given = result
    elif outputs is None:
        raise ValueError(f"check_kernel({kernel}): the reference returned a value; name the argument(s) it stands "
                         f"for with outputs='...' (or return a dict {{name: value}}, or write the outputs in "
                         f"place and return None)")
    elif isinstance(outputs, str):
        given = {outputs: result}
    else:
        values = tuple(result) if isinstance(result, (tuple, list)) else (result,)
        if len(values) != len(outputs):
            raise ValueError(f"check_kernel({kernel}): outputs={list(outputs)} names {len(outputs)} arguments "
                             f"but the reference returned {len(values)} values")
        given = dict(zip(outputs, values))
    unknown = sorted(set(given) - set(arrays))
    if unknown:
        raise ValueError(f"check_kernel({kernel}): {', '.join(unknown)} is not an array argument of the launch "
                         f"(array arguments: {', '.join(arrays)})")
    return {name: np.asarray(value) for name, value in given.items()}
