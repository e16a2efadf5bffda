"""Configurations and spaces of them: Triton's `Config`, and `space=` grids with an optional constraint.

A config is what a launch adds to the user's arguments: constexpr keyword values and `num_stages`. Its
plain form (`Config.as_dict()`: constexprs plus `num_stages` when set) is what the tuning database stores,
as canonical JSON, and what Optuna samples; `Config.from_dict` reads it back.
"""

from __future__ import annotations

import itertools
import json
from typing import Any, Callable, Iterable, Mapping

from npulang import errors

Scalar = int | float | str | bool
_LAUNCH_FIELDS = ("num_stages",)  # launch options a config may set besides constexprs


class Config:
    """One configuration, as Triton's `triton.Config`: constexpr kwargs and `num_stages`.

    `num_warps` and `num_ctas` are accepted so Triton configs port unchanged; the NPU has no warps, so
    they are ignored. `pre_hook(args_dict)` runs before every launch with this config, as in Triton.
    """

    def __init__(self, kwargs: Mapping[str, Scalar], num_stages: int | None = None, num_warps: int | None = None,
                 num_ctas: int | None = None, pre_hook: Callable[[dict[str, Any]], None] | None = None) -> None:
        for name, value in kwargs.items():
            if not isinstance(value, (bool, int, float, str)):
                raise errors.NpuError(f"Config: {name}={value!r} is not an int, float, str or bool "
                                      "(configs are stored as JSON)")
        if num_stages is not None and (isinstance(num_stages, bool) or not isinstance(num_stages, int)
                                       or num_stages < 1):
            raise errors.NpuError(f"Config: num_stages must be a positive int, got {num_stages!r}")
        self.kwargs = dict(kwargs)
        self.num_stages = num_stages
        self.num_warps, self.num_ctas = num_warps, num_ctas
        self.pre_hook = pre_hook

    def all_kwargs(self) -> dict[str, Any]:
        """What a launch with this config adds (Triton's name): the constexprs and `num_stages` if set."""
        return self.as_dict()

    def as_dict(self) -> dict[str, Scalar]:
        """The plain, JSON-able form stored in the tuning database."""
        out: dict[str, Scalar] = dict(self.kwargs)
        if self.num_stages is not None:
            out["num_stages"] = self.num_stages
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Scalar]) -> Config:
        """Read back `as_dict()`."""
        kwargs = {k: v for k, v in data.items() if k not in _LAUNCH_FIELDS}
        stages = data.get("num_stages")
        return cls(kwargs, num_stages=int(stages) if stages is not None else None)

    def ident(self) -> str:
        """Canonical JSON of `as_dict()`: equal configs, equal strings (the identity used everywhere)."""
        return canonical(self.as_dict())

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Config) and self.ident() == other.ident()

    def __hash__(self) -> int:
        return hash(self.ident())

    def __repr__(self) -> str:
        return ", ".join(f"{k}: {v}" for k, v in self.as_dict().items())


def canonical(config: Mapping[str, Scalar]) -> str:
    """Sorted-key, compact JSON: the identity of a config in memory and in the store."""
    return json.dumps(dict(config), sort_keys=True, separators=(",", ":"))


def expand_space(space: Mapping[str, Iterable[Scalar]],
                 constraint: Callable[[dict[str, Scalar]], bool] | None = None) -> list[Config]:
    """Every combination of a grid of choices (`{"BM": [64, 128], "num_stages": [1, 2]}`) that the
    constraint accepts, in the grid's order; `num_stages` becomes the launch option."""
    if not space:
        raise errors.NpuError("autotune(space=...): the space is empty; give each parameter a list of choices")
    names = list(space)
    choices = []
    for name in names:
        values = list(space[name])
        if not values:
            raise errors.NpuError(f"autotune(space=...): {name!r} has no choices")
        choices.append(values)
    out = []
    for combo in itertools.product(*choices):
        values = dict(zip(names, combo))
        if constraint is None or constraint(dict(values)):
            out.append(Config.from_dict(values))
    if not out:
        raise errors.NpuError("autotune(space=...): the constraint rejects every combination of the space")
    return out
