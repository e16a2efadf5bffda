"""Cycle-counting multi-core NPU simulator: runs `isa.Program`s with numpy semantics and spec timing.

    dev = Device()                                   # MachineSpec.load("davinci")
    res = dev.run(program, grid=(n,), args=[x, y, out, n], options=SimOptions(functional=True))
    res.cycles, res.pipe_busy, res.line_cycles; res.write_trace("trace.json")
"""

from simulator.core import CoreStats
from simulator.device import Device, RunResult
from simulator.errors import DeadlockError, FlagError, OutOfBounds, RaceError, SimError
from simulator.options import SimOptions
from simulator.trace import StallRecord

__all__ = ["Device", "SimOptions", "RunResult", "CoreStats", "SimError", "OutOfBounds", "RaceError",
           "DeadlockError", "FlagError", "StallRecord"]
