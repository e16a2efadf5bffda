"""`@npu.jit`: a kernel's Python function, launched as `kernel[grid](*args, **meta)`.

A launch binds its arguments once (checking them: dtypes, contiguity, int32 range, constexprs),
gathers its `LaunchOptions`, and hands both to the runtime (`npulang.runtime.launch`): compiled,
cached and simulated, or interpreted with `interpret=True` (or `NPU_INTERPRET=1`).
"""

from __future__ import annotations

import dataclasses
import functools
import os
from typing import Any, Callable, Iterable

from npulang import errors, ir
from npulang.frontend import KernelDef
from npulang.runtime.inspection import Inspection, inspection
from npulang.runtime.launch import RUNTIME, Grid, LaunchOptions, Runtime
from npulang.runtime.record import RunRecord

_OPTION_FIELDS = frozenset(f.name for f in dataclasses.fields(LaunchOptions))
# Keywords of a launch that configure it rather than the kernel (never kernel constexprs). num_warps and
# num_ctas are Triton's: accepted so Triton launches run, seen by a callable grid, and otherwise unused.
LAUNCH_KEYWORDS = _OPTION_FIELDS | {"num_warps", "num_ctas"}


class JITFunction(KernelDef):
    """A kernel: launch it as `kernel[grid](*args, **meta)`; see the module docstring.

    It wraps its function as `functools.wraps` would, so `inspect.getsource(kernel)`, `kernel.fn`,
    `kernel.src` and `kernel.__doc__` work as for the plain function.
    """

    def __init__(self, fn: Callable[..., Any], *, runtime: Runtime | None = None,
                 do_not_specialize: Iterable[str | int] = (), **defaults: Any) -> None:
        super().__init__(fn, do_not_specialize)
        functools.update_wrapper(self, fn)
        unknown = set(defaults) - _OPTION_FIELDS
        if unknown:
            raise errors.NpuError(f"@npu.jit({', '.join(sorted(unknown))}=...): not a launch option; "
                                  f"options are {', '.join(sorted(_OPTION_FIELDS))}")
        self.runtime = runtime or RUNTIME
        self.defaults = defaults  # launch options given to @npu.jit(...), overridden per launch

    def __repr__(self) -> str:
        return f"JITFunction({self.__module__}:{self.__qualname__})"

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        raise errors.NpuError(f"@npu.jit function {self.name} cannot be called directly from Python: "
                              f"launch it as {self.name}[grid](...), or call it from another kernel")

    def __getitem__(self, grid: Grid) -> Callable[..., RunRecord]:
        def launcher(*args: Any, **meta: Any) -> RunRecord:
            return self.run(grid, *args, **meta)

        return launcher

    # -- launching ------------------------------------------------------------------------------
    def split(self, meta: dict[str, Any]) -> tuple[LaunchOptions, dict[str, Any], dict[str, Any]]:
        """A call's keywords as (launch options, the launch keywords given, the kernel's keywords).

        A kernel parameter named like a launch option (e.g. `num_stages: npu.constexpr`) stays the kernel's.
        """
        launch = {k: meta[k] for k in LAUNCH_KEYWORDS.intersection(meta) if k not in self.signature.parameters}
        kernel = {k: v for k, v in meta.items() if k not in launch} if launch else meta
        given = {**self.defaults, **self.runtime.scoped_options(),
                 **{k: v for k, v in launch.items() if k in _OPTION_FIELDS}}
        if "interpret" not in given or given["interpret"] is None:
            given["interpret"] = os.environ.get("NPU_INTERPRET", "") not in ("", "0")
        try:
            options = LaunchOptions(**given)
        except TypeError as exc:
            raise errors.NpuError(f"kernel {self.name}: bad launch options: {exc}") from None
        return options, launch, kernel

    def run(self, grid: Grid, *args: Any, **meta: Any) -> RunRecord:
        """Launch over `grid`: bind and check the arguments once, then run through the runtime."""
        options, launch, kernel_kwargs = self.split(meta)
        call = self.bind(args, kernel_kwargs)
        return self.runtime.launch(self, grid, call, options, launch)

    # -- looking inside -------------------------------------------------------------------------
    def specialize(self, *args: Any, **meta: Any) -> tuple[ir.Function, str]:
        """The IR of this kernel for these arguments, and the specialisation's key (built once, then shared).

        The returned function is shared between calls with the same key: treat it as immutable
        (passes return new functions).
        """
        _, _, kernel_kwargs = self.split(meta)
        return self.runtime.ir(self, self.bind(args, kernel_kwargs))

    def inspect(self, *args: Any, **meta: Any) -> Inspection:
        """Every compilation stage of this kernel for these arguments (see `npulang.runtime.inspection`).

        It shows the program a grid larger than the machine runs (a persistent loop per core, see
        `LaunchOptions`); pass `persistent=False` for the one-program-per-core form of smaller grids.
        """
        options, _, kernel_kwargs = self.split(meta)
        spec = self.runtime.get_machine()
        ck = self.runtime.compile_recorded(self, self.bind(args, kernel_kwargs), options.num_stages, spec,
                                           options.persistent is not False)
        return inspection(self.name, spec, ck)


def jit(fn: Callable[..., Any] | None = None, **options: Any) -> Any:
    """Decorate a kernel: `@npu.jit`, or `@npu.jit(interpret=True)` with default launch options.

    `do_not_specialize=["n", 3]` (names or positions) keeps those int arguments out of the specialisation
    on 1 and on multiples of 16, as Triton's option of that name does.
    """
    if fn is None:
        return lambda f: JITFunction(f, **options)
    return JITFunction(fn, **options)
