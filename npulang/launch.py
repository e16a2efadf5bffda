"""Compiled launches: specialise, compile (cached), run on the simulated device, record the run.

This is the only npulang module that imports the simulator (DESIGN.md §1).
"""

from __future__ import annotations

import linecache
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

import numpy as np

import isa
from npulang import errors
from npulang import profiling
from npulang.compiler import CompiledKernel, compile_ir
from npulang.cache import KERNELS, make_key
from simulator import Device, OutOfBounds, RunResult, SimError, SimOptions

if TYPE_CHECKING:
    from npulang.jit import BoundCall, JITFunction

DEFAULT_NUM_STAGES = 2
_machine: isa.MachineSpec | None = None
_devices: dict[str, Device] = {}


# -- the machine ---------------------------------------------------------------------------------
def set_machine(machine: str | Path | isa.MachineSpec) -> isa.MachineSpec:
    """Choose the machine later launches compile for and run on: a preset name, a TOML path or a spec."""
    global _machine
    _machine = machine if isinstance(machine, isa.MachineSpec) else isa.MachineSpec.load(machine)
    return _machine


def get_machine() -> isa.MachineSpec:
    """The current machine: `set_machine`'s choice, else `$NPU_MACHINE`, else the `davinci` preset."""
    global _machine
    if _machine is None:
        _machine = isa.MachineSpec.load(os.environ.get("NPU_MACHINE", "davinci"))
    return _machine


def device(spec: isa.MachineSpec | None = None) -> Device:
    """The simulated device for a machine; one per machine, so its L2 stays warm across launches."""
    spec = spec or get_machine()
    dev = _devices.get(spec.fingerprint)
    if dev is None:
        dev = _devices[spec.fingerprint] = Device(spec)
    return dev


# -- the run record ------------------------------------------------------------------------------
@dataclass
class RunRecord:
    """One launch: its cycle count, per-pipe utilisation, per-line profile and (on request) trace."""

    kernel: str
    grid: tuple[int, int, int]
    cycles: int
    machine: isa.MachineSpec
    result: RunResult = field(repr=False)

    @property
    def seconds(self) -> float:
        """Cycles converted at the machine's clock."""
        return self.cycles / (self.machine.clock_ghz * 1e9)

    @property
    def utilisation(self) -> dict[str, float]:
        """Busy fraction of each pipe, averaged over all cores for the launch's duration."""
        total = max(1, self.cycles * self.machine.cores)
        return {pipe: busy / total for pipe, busy in self.result.pipe_busy.items()}

    @property
    def profile(self) -> dict[str, int]:
        """Busy cycles per kernel source line (`file:line` -> cycles), hottest first."""
        lines = sorted(self.result.line_cycles.items(), key=lambda kv: -kv[1])
        return {str(loc): cycles for loc, cycles in lines}

    def report(self) -> str:
        """A readable profile: pipe utilisation, then the hottest source lines with their text."""
        out = [f"{self.kernel}{list(self.grid)}: {self.cycles:,} cycles ({self.seconds * 1e6:.1f} us "
               f"at {self.machine.clock_ghz} GHz) on {self.machine.name}"]
        out += [f"  {pipe:<5} {u:6.1%} busy" for pipe, u in self.utilisation.items()]
        for loc, cycles in sorted(self.result.line_cycles.items(), key=lambda kv: -kv[1])[:8]:
            text = linecache.getline(loc.file, loc.line).strip()
            out.append(f"  {cycles:>12,}  {Path(loc.file).name}:{loc.line}  {text}")
        return "\n".join(out)

    def write_trace(self, path: str | Path) -> Path:
        """Write the Chrome trace-event JSON (open it in Perfetto). Launch with `trace=True` first."""
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        try:
            self.result.write_trace(path)
        except SimError as exc:
            raise errors.NpuError(f"{self.kernel}: no trace recorded; launch with trace=True "
                                  f"(kernel[grid](..., trace=True))") from exc
        return Path(path)


# -- compiling -----------------------------------------------------------------------------------
def compile_for(kernel: JITFunction, args: tuple[Any, ...], meta: Mapping[str, Any],
                spec: isa.MachineSpec, *, record: bool = False) -> tuple[isa.Program, CompiledKernel | None]:
    """The program for this call on `spec`: from memory (microseconds), disk, or a fresh compile.

    With `record=True` the kernel is always compiled and its `CompiledKernel` (stage texts) returned.
    """
    return _program_for(kernel, kernel.bind(args, meta), args, meta, spec, record)


def _program_for(kernel: JITFunction, call: BoundCall, args: tuple[Any, ...], meta: Mapping[str, Any],
                 spec: isa.MachineSpec, record: bool) -> tuple[isa.Program, CompiledKernel | None]:
    num_stages = int(call.options.get("num_stages", DEFAULT_NUM_STAGES))
    fast = (id(kernel), _signature(call.runtime), tuple(sorted(call.constexprs.items(), key=lambda kv: kv[0])),
            num_stages, spec.fingerprint)
    memo = _memo(kernel)
    if not record and fast in memo:
        return memo[fast], None
    fn, key = kernel.specialize(*args, **meta)
    compiled: list[CompiledKernel] = []

    def build() -> isa.Program:
        ck = compile_ir(fn, spec, num_stages=num_stages, record=record)
        compiled.append(ck)
        return ck.program

    if record:
        program = build()
    else:
        program = KERNELS.get_or_compile(make_key(key, num_stages, spec.fingerprint), build)
    memo[fast] = program
    return program, (compiled[0] if compiled else None)


def _memo(kernel: JITFunction) -> dict[tuple, isa.Program]:
    memo = kernel.__dict__.get("_programs")
    if memo is None:
        memo = kernel.__dict__["_programs"] = {}
    return memo


def _signature(runtime: Mapping[str, Any]) -> tuple:
    """What of the runtime arguments the compiled code depends on: dtypes of arrays, kinds of scalars."""
    return tuple(v.dtype.str if isinstance(v, np.ndarray) else type(v).__name__ for v in runtime.values())


# -- launching -----------------------------------------------------------------------------------
def launch(kernel: JITFunction, grid: Any, args: tuple[Any, ...], meta: Mapping[str, Any]) -> RunRecord:
    """Compile (cached) and run `kernel` over `grid`; outputs are written into the numpy arrays.

    `meta` may carry `trace=True` to record a Chrome trace, and `timing_only=True` to skip the
    numpy work (cycles only, outputs untouched), as the autotuner does.
    """
    spec = get_machine()
    call = kernel.bind(args, meta)  # once per launch: this is the hot path of a cached kernel
    program, _ = _program_for(kernel, call, args, meta, spec, record=False)
    grid3 = kernel.grid_for(grid, call)
    functional = not call.options.get("timing_only", False)
    options = SimOptions(functional=functional, detect_races=functional, trace=bool(call.options.get("trace")))
    try:
        result = device(spec).run(program, grid3, list(call.runtime.values()), options)
    except OutOfBounds as exc:
        raise errors.OutOfBoundsError(f"kernel '{kernel.__name__}': {exc}\n  hint: mask the access "
                                      f"(mask=offs < n) or check the grid and strides") from exc
    except SimError as exc:
        raise errors.NpuRuntimeError(f"kernel '{kernel.__name__}' failed in the simulator: {exc}") from exc
    run = RunRecord(kernel.__name__, grid3, result.cycles, spec, result)
    profiling.record(run)
    return run
