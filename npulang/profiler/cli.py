"""`npu-prof`: profile every kernel a Python function launches and print the reports and verdicts.

    npu-prof path/to/file.py:function [args...] [--trace out.json] [--plot out.png] [--machine davinci]

Arguments are Python literals (`1024`, `'f16'`, `(64, 64)`), else strings. Other targets (`npu-prof gemm
--shape ...`) are commands that packages register under the `npulang.profile_targets` entry-point
group: a callable taking the remaining argument strings that launches kernels (npulang never imports
the packages above it, so this is how kernel_lib adds its operators).
"""

from __future__ import annotations

import argparse
import ast
import importlib.util
import sys
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, Callable, Sequence

import npulang as npu
from npulang import errors
from npulang.profiler.plots import plot_profile
from npulang.profiler.traces import write_profile_trace

TARGETS_GROUP = "npulang.profile_targets"


def registered_targets() -> dict[str, Any]:
    """Named targets other packages registered (entry points in `npulang.profile_targets`)."""
    return {ep.name: ep for ep in entry_points(group=TARGETS_GROUP)}


def literal(text: str) -> Any:
    """A command-line argument as a Python literal if it is one, else the string itself."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def load_function(target: str) -> Callable[..., Any]:
    """`path/to/file.py:function` -> the function, the file run as a module (its folder on sys.path)."""
    file, _, name = target.rpartition(":")
    path = Path(file)
    if not path.is_file():
        raise errors.NpuError(f"npu-prof: no file {file!r} (give path/to/file.py:function)")
    folder = str(path.resolve().parent)
    if folder not in sys.path:
        sys.path.insert(0, folder)
    spec = importlib.util.spec_from_file_location(f"npu_prof_target_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    fn = getattr(module, name, None)
    if not callable(fn):
        found = ", ".join(k for k, v in vars(module).items() if callable(v) and not k.startswith("_"))
        raise errors.NpuError(f"npu-prof: {file} has no function {name!r} (it has: {found})")
    return fn


def resolve(target: str, args: Sequence[str]) -> Callable[[], Any]:
    """What to run under the profile: a file's function with literal arguments, or a registered target."""
    if ".py:" in target:
        fn = load_function(target)
        return lambda: fn(*[literal(a) for a in args])
    targets = registered_targets()
    if target not in targets:
        known = ", ".join(sorted(targets)) or "none installed"
        raise errors.NpuError(f"npu-prof: unknown target {target!r}: give path/to/file.py:function, or a "
                              f"registered target ({known})")
    command = targets[target].load()
    return lambda: command(list(args))


def main(argv: Sequence[str] | None = None) -> int:
    """`npu-prof`: run the target under `npu.profile()`, print every launch's report and the summary; the exit status.
    """
    parser = argparse.ArgumentParser(prog="npu-prof", description=__doc__.split("\n\n")[0])
    parser.add_argument("target", help="path/to/file.py:function, or a registered target such as gemm")
    parser.add_argument("args", nargs="*", help="the function's arguments (Python literals)")
    parser.add_argument("--trace", type=Path, help="write one Chrome trace of every launch (Perfetto opens it)")
    parser.add_argument("--plot", type=Path, help="write the roofline and timeline plots (.png, .svg)")
    parser.add_argument("--machine", help="machine preset or TOML file (default: $NPU_MACHINE, else davinci)")
    opts, extra = parser.parse_known_args(argv)  # a registered target may take options of its own
    try:
        if opts.machine:
            npu.set_machine(opts.machine)
        run = resolve(opts.target, [*opts.args, *extra])
        with npu.profile() as prof:
            run()
        if not prof.launches:
            raise errors.NpuError(f"npu-prof: {opts.target} launched no kernel")
        for launch in prof.launches:
            print(launch.report(), end="\n\n")
        print(prof.summary())
        if opts.trace:
            print(f"trace: {write_profile_trace(prof.launches, opts.trace)}")
        if opts.plot:
            print(f"plot: {plot_profile(prof.launches, opts.plot)}")
    except errors.NpuError as exc:
        print(exc, file=sys.stderr)
        return 2
    return 0
