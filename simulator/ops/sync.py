"""set_flag / wait_flag: the flag logic itself lives in the core; the rule only decodes the operands."""

from __future__ import annotations

from isa import Instr
from isa.instructions import PIPES
from simulator.ops.base import PIPE_INDEX, Env, SyncOp, rule


@rule("set_flag", "wait_flag")
def _flag(instr: Instr, env: Env) -> SyncOp:
    src, dst, event = instr.args
    return SyncOp(instr.op == "set_flag", PIPE_INDEX[PIPES[src]], PIPE_INDEX[PIPES[dst]], event)
