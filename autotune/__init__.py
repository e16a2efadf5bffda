"""Autotuner: searches kernel configurations with simulated cycles as the objective.

`@npu.autotune(space={...} or configs=[npu.Config(...)], key=[...])` above `@npu.jit` (re-exported lazily
by `npulang`, as `@triton.autotune`). The pieces: `config` (configs and spaces), `costmodel` (the analytic
model read off a compiled program), `search` (the strategies), `tuner` (the decorator, the store, the
verification of the winner). Results live in `tuning_db`.
"""

from autotune.config import Config, expand_space
from autotune.costmodel import CostEstimate, estimate
from autotune.search import ModelGuided, PlainTPE, RandomSearch
from autotune.tuner import Autotuner, TuneReport, autotune

__all__ = ["Autotuner", "Config", "CostEstimate", "ModelGuided", "PlainTPE", "RandomSearch", "TuneReport",
           "autotune", "estimate", "expand_space"]
