"""Launches: a bound call and its `LaunchOptions` in, a `RunRecord` out.

`Runtime` is the process-wide state of launching: the chosen machine, one simulated `Device` per
machine, the kernel cache and the open profiles. There is exactly one, `RUNTIME`, created here and
held by the package face (`npu.set_machine`, `npu.profile` are its methods); nothing else in
npulang keeps state between calls, and tests or a tuner may build their own `Runtime`. The cache
is process-wide on purpose: a kernel compiled in one thread serves every other.

This package is the only part of npulang that imports the simulator (DESIGN.md §1). It calls the
compiler through `npulang.compiler.compile_ir` only, and knows kernels as `KernelDef`s, not jit.
"""

from __future__ import annotations

import contextlib
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Literal

import numpy as np

import isa
from npulang import errors, ir
from npulang.ir import interpreter
from npulang.compiler import CompiledKernel, compile_ir
from npulang.frontend import BoundCall, KernelDef, build_ir
from npulang.runtime.cache import KernelCache, ProgramKey
from npulang.runtime.profiling import Profile, ProfileRecorder
from npulang.runtime.record import RunRecord, StallSummary
from simulator import Device, OutOfBounds, SimError, SimOptions, StallRecord

Grid = tuple[int, ...] | Callable[[dict[str, Any]], tuple[int, ...]]
SCOPED_OPTIONS = frozenset({"timing_only", "l2", "trace"})  # what `Runtime.launch_defaults` may set


@dataclass(frozen=True, kw_only=True)
class LaunchOptions:
    """How to launch, as opposed to what: options that are never kernel arguments.

    `num_stages` changes the compiled code (it is part of the cache key); so does `persistent`: with
    None (the default) a grid with more programs than the machine has cores runs as one persistent
    loop per core, pipelined across programs (`npulang.compiler.compile_ir` says how deep), a
    smaller grid one program per core; True or False force either way. The others change only how
    the program runs. `l2="cold"` empties L2 before the launch, so its cycles do not depend on
    what ran before (the tuner compares configs this way); `"warm"` keeps what earlier launches
    left, as back-to-back launches on hardware would.
    """

    num_stages: int = 2
    persistent: bool | None = None  # programs as a per-core loop: None when the grid exceeds the cores
    trace: bool = False  # record a Chrome trace (RunRecord.write_trace)
    timing_only: bool = False  # cycles only: no numpy work, outputs untouched
    interpret: bool = False  # run the numpy interpreter instead of compiling (no cycles)
    l2: Literal["warm", "cold"] = "warm"

    def __post_init__(self) -> None:
        if isinstance(self.num_stages, bool) or not isinstance(self.num_stages, int) or self.num_stages < 1:
            raise errors.NpuError(f"num_stages must be a positive int, got {self.num_stages!r}")
        if self.persistent is not None and not isinstance(self.persistent, (bool, np.bool_)):
            raise errors.NpuError(f"persistent must be True, False or None, got {self.persistent!r}")
        for name in ("trace", "timing_only", "interpret"):
            if not isinstance(getattr(self, name), (bool, np.bool_)):
                raise errors.NpuError(f"{name} must be True or False, got {getattr(self, name)!r}")
        if self.l2 not in ("warm", "cold"):
            raise errors.NpuError(f"l2 must be 'warm' or 'cold', got {self.l2!r}")


def resolve_grid(kernel: str, grid: Grid, meta: Callable[[], dict[str, Any]]) -> tuple[int, int, int]:
    """A tuple or callable grid as exactly three non-negative ints (`meta()` is what a callable grid sees)."""
    if callable(grid):
        named = meta()
        try:
            g = grid(named)
        except KeyError as exc:  # the usual mistake: a name the launch does not have
            raise errors.NpuError(f"kernel {kernel}: the grid callable asked for {exc.args[0]!r}, which is not an "
                                  f"argument of this launch (it has: {', '.join(named)})") from None
    else:
        g = grid
    if isinstance(g, (int, np.integer)):
        g = (g,)
    if not isinstance(g, (tuple, list)) or not 1 <= len(g) <= 3 \
            or not all(isinstance(d, (int, np.integer)) and not isinstance(d, bool) and d >= 0 for d in g):
        raise errors.NpuError(f"kernel {kernel}: the grid must be 1 to 3 non-negative ints, got {g!r}")
    dims = [int(d) for d in g] + [1] * (3 - len(g))
    return dims[0], dims[1], dims[2]


def device_args(call: BoundCall) -> list[Any]:
    """The call's runtime values as the device takes them: a bool argument (an i1 scalar) is passed as 0 or 1."""
    return [int(v) if isinstance(v, (bool, np.bool_)) else v for v in call.runtime.values()]


class Runtime:
    """The machine launches run on, its devices, the kernel cache and the open profiles."""

    def __init__(self, cache: KernelCache | None = None) -> None:
        self.cache = cache if cache is not None else KernelCache()
        self.profiles = ProfileRecorder()
        self._machine: isa.MachineSpec | None = None
        self._devices: dict[str, tuple[Device, threading.Lock]] = {}
        self._lock = threading.Lock()
        self._scoped = threading.local()  # each thread's stack of `launch_defaults` blocks

    # -- the machine ------------------------------------------------------------------------------
    def set_machine(self, machine: str | Path | isa.MachineSpec) -> isa.MachineSpec:
        """Choose the machine later launches compile for and run on: a preset name, a TOML path or a spec."""
        if not isinstance(machine, (str, Path, isa.MachineSpec)):
            raise errors.NpuError(f"set_machine takes a preset name, a TOML path or an isa.MachineSpec, "
                                  f"got {type(machine).__name__} {machine!r}")
        self._machine = machine if isinstance(machine, isa.MachineSpec) else isa.MachineSpec.load(machine)
        return self._machine

    def get_machine(self) -> isa.MachineSpec:
        """The current machine: `set_machine`'s choice, else `$NPU_MACHINE`, else the `davinci` preset."""
        if self._machine is None:
            self._machine = isa.MachineSpec.load(os.environ.get("NPU_MACHINE", "davinci"))
        return self._machine

    def device(self, spec: isa.MachineSpec | None = None) -> Device:
        """The simulated device for a machine; one per machine, so a warm L2 carries across launches."""
        return self._device(spec or self.get_machine())[0]

    def _device(self, spec: isa.MachineSpec) -> tuple[Device, threading.Lock]:
        """The device and the lock that makes its launches one at a time (threads share a device)."""
        entry = self._devices.get(spec.fingerprint)
        if entry is None:
            with self._lock:
                entry = self._devices.setdefault(spec.fingerprint, (Device(spec), threading.Lock()))
        return entry

    def profile(self) -> Profile:
        """Record every kernel launch inside a `with` block: `prof.cycles`, `prof.launches`."""
        return self.profiles.profile()

    @contextlib.contextmanager
    def launch_defaults(self, **options: Any) -> Iterator[None]:
        """Inside the block, this thread's launches default to these options (`timing_only`, `l2`, `trace`);
        a launch's own keywords still win. For launches made out of reach, inside library calls:
        `with npu.launch_defaults(timing_only=True, l2="cold"): kernel_lib.gemm(a, b)` times the call
        without the numpy work (outputs are left as allocated) on a cold L2, as a benchmark needs."""
        unknown = set(options) - SCOPED_OPTIONS
        if unknown:
            raise errors.NpuError(f"launch_defaults({', '.join(sorted(unknown))}=...): only "
                                  f"{', '.join(sorted(SCOPED_OPTIONS))} can be set for a block")
        LaunchOptions(**options)  # checked now, not at the first launch
        stack = self._scoped.__dict__.setdefault("stack", [])
        stack.append(options)
        try:
            yield
        finally:
            stack.pop()

    def scoped_options(self) -> dict[str, Any]:
        """The options of this thread's open `launch_defaults` blocks, the innermost winning."""
        out: dict[str, Any] = {}
        for options in getattr(self._scoped, "stack", ()):
            out.update(options)
        return out

    # -- compiling ------------------------------------------------------------------------------
    def ir(self, kernel: KernelDef, call: BoundCall) -> tuple[ir.Function, str]:
        """The IR of this specialisation and its key (built once, then shared: treat it as immutable)."""
        key = kernel.specialization_key(call)
        return self.cache.ir(key, lambda: build_ir(kernel, call)), key

    def program(self, kernel: KernelDef, call: BoundCall, num_stages: int, spec: isa.MachineSpec,
                persistent: bool = False) -> isa.Program:
        """The program for this call on `spec`: from memory (microseconds), disk, or a fresh compile."""
        signature = (kernel, call.signature(), kernel.globals_state(), num_stages, spec.fingerprint, persistent)
        program = self.cache.lookup(signature)
        if program is not None:
            return program
        fn, key = self.ir(kernel, call)
        return self.cache.program(
            ProgramKey(key, num_stages, spec.fingerprint, persistent=persistent),
            lambda: compile_ir(fn, spec, num_stages=num_stages, persistent=persistent).program, signature)

    def compile_recorded(self, kernel: KernelDef, call: BoundCall, num_stages: int,
                         spec: isa.MachineSpec, persistent: bool = True) -> CompiledKernel:
        """Compile afresh, keeping the text after every stage (for `kernel.inspect`); not cached."""
        fn, _ = self.ir(kernel, call)
        return compile_ir(fn, spec, num_stages=num_stages, persistent=persistent, record=True)

    # -- launching ------------------------------------------------------------------------------
    def launch(self, kernel: KernelDef, grid: Grid, call: BoundCall, options: LaunchOptions,
               launch_kwargs: dict[str, Any]) -> RunRecord:
        """Run one bound call over `grid`; outputs are written into the numpy arrays.

        A callable grid sees every named argument of the call, launch keywords included (Triton's `META`).
        """
        spec = self.get_machine()
        grid3 = resolve_grid(kernel.name, grid, lambda: {**call.runtime, **call.constexprs, **launch_kwargs})
        if options.interpret:
            fn, _ = self.ir(kernel, call)
            prints = interpreter.interpret(fn, grid3, [call.runtime[a.name] for a in fn.args])
            run = RunRecord(kernel.name, grid3, spec, None, prints=prints)
        else:
            run = self._simulate(kernel, grid3, call, options, spec)
        self.profiles.record(run)
        return run

    def _simulate(self, kernel: KernelDef, grid3: tuple[int, int, int], call: BoundCall, options: LaunchOptions,
                  spec: isa.MachineSpec) -> RunRecord:
        programs = grid3[0] * grid3[1] * grid3[2]
        persistent = programs > spec.cores if options.persistent is None else bool(options.persistent) and programs > 0
        program = self.program(kernel, call, options.num_stages, spec, persistent)
        args = device_args(call)
        grid = grid3
        looped = program.meta.get("grid") == "persistent"
        if looped:  # one program per core, each looping over its share
            args += list(grid3)
            grid = (min(spec.cores, programs), 1, 1)
        functional = not options.timing_only
        # an open npu.profile() block traces its launches: stall reasons come from the trace (cycles are the same)
        traced = options.trace or self.profiles.active()
        sim = SimOptions(functional=functional, detect_races=functional, trace=traced)
        device, lock = self._device(spec)
        try:
            with lock:  # the flush and the run are one step: no other thread's launch comes between
                if options.l2 == "cold":
                    device.flush_l2()
                result = device.run(program, grid, args, sim)
        except OutOfBounds as exc:
            hint = interpreter.READ_ONLY_HINT if "read-only" in str(exc) else \
                "mask the access (mask=offs < n) or check the grid and strides"
            if looped:  # the simulator names the core's persistent program, not the logical one
                hint += ("\n  note: the grid ran as one persistent loop per core, so 'program' above is the "
                         "core's; launch with persistent=False to see the logical program id")
            raise errors.OutOfBoundsError(f"kernel '{kernel.name}': {exc}\n  hint: {hint}") from exc
        except SimError as exc:
            raise errors.NpuRuntimeError(f"kernel '{kernel.name}' failed in the simulator: {exc}") from exc
        reasons = result.stall_reasons()
        return RunRecord(
            kernel.name, grid3, spec, result.cycles, pipe_busy=dict(result.pipe_busy),
            line_cycles={(loc.file, loc.line): c for loc, c in result.line_cycles.items()},
            prints=list(result.prints), instructions=result.instructions, gm_bytes=result.gm_bytes,
            hbm_bytes=result.hbm_bytes, persistent=looped,
            trace_writer=(lambda path: result.write_trace(path)) if traced else None,
            pipe_stall=dict(result.pipe_stall), core_busy=[dict(c.busy) for c in result.per_core],
            core_stall=[dict(c.stall) for c in result.per_core],
            stalls=stall_summaries(reasons) if traced else None, op_cycles=result.op_totals(),
            core_bandwidth=bandwidth_waits(reasons, len(result.per_core)) if traced else [],
            buffers=buffer_usage(program), timeline=result.busy_timeline())


def stall_summaries(stalls: list[StallRecord]) -> tuple[StallSummary, ...]:
    """A traced launch's stalls grouped by pipe, reason, source and flag, most cycles first."""
    groups: dict[tuple[str, str, str, str], list[int]] = {}
    for s in stalls:
        total = groups.setdefault((s.pipe, s.reason, s.source, s.flag), [0, 0])
        total[0] += s.cycles
        total[1] += 1
    out = [StallSummary(*key, cycles, count) for key, (cycles, count) in groups.items()]
    return tuple(sorted(out, key=lambda s: -s.cycles))


def bandwidth_waits(stalls: list[StallRecord], cores: int) -> list[dict[str, int]]:
    """Per core, per pipe: cycles its GM transfers waited on shared bandwidth."""
    out: list[dict[str, int]] = [{} for _ in range(cores)]
    for s in stalls:
        if s.reason == "bandwidth":
            out[s.core][s.pipe] = out[s.core].get(s.pipe, 0) + s.cycles
    return out


def buffer_usage(program: isa.Program) -> dict[str, int]:
    """On-chip bytes the compiler allocated per buffer space (the end of its highest buffer)."""
    usage: dict[str, int] = {}
    for sym in program.symbols:
        usage[sym.space] = max(usage.get(sym.space, 0), sym.offset + sym.size)
    return usage


RUNTIME = Runtime()
