"""Per-opcode semantics, one module per pipe; importing this package registers every rule in RULES."""

from simulator.ops import cube, fix, mte1, mte2, mte3, scalar, sync, vector  # noqa: F401 - registration
from simulator.ops.base import PIPE_INDEX, PIPE_NAMES, PIPE_ORDER, RULES, Env, PipeOp, Plan, ScalarOp, SyncOp

__all__ = ["PIPE_INDEX", "PIPE_NAMES", "PIPE_ORDER", "RULES", "Env", "PipeOp", "Plan", "ScalarOp", "SyncOp"]
