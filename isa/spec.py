"""The machine description: every capacity, rate and latency the compiler and simulator use.

A `MachineSpec` is loaded from TOML, either a preset shipped in `isa/presets/` or a user's own
file, so an architect can change the NPU without touching code. Its fingerprint (SHA-256 of the
canonical JSON form) identifies the machine in compile caches and the tuning database.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import tomllib
import typing
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

PRESET_DIR = Path(__file__).parent / "presets"


class MachineSpecError(ValueError):
    """A machine description file is missing a field, has a wrong type, or cannot be read."""


@dataclass(frozen=True, kw_only=True)
class ScalarSpec:
    """The scalar unit: its registers, its issue queue depth per pipe and the cycles a taken branch costs."""
    registers: int
    queue_depth: int
    branch_penalty: int


CUBE_MODELS = ("fractal", "systolic")
CUBE_DATAFLOWS = ("os", "ws")


@dataclass(frozen=True, kw_only=True)
class CubeSpec:
    """The M pipe. `model` picks its timing: "fractal" (Da Vinci: one m x n x k_<dtype> block of MACs per
    cycle) or "systolic" (a rows x cols PE array costed by folds, `dataflow` "os" or "ws", as SCALE-Sim).

    Model-independent: m x n x k_<dtype> is the L0 layout granule a compiler pads cube tiles to, and
    k_<dtype> / k is the input dtype's MAC rate relative to fp16/bf16 (`MachineSpec.cube_rate`).
    `l0c_bytes_per_cycle` bounds every L0C write, so zeroing an accumulator (k=0) is not free.
    """

    model: str
    m: int
    n: int
    k: int
    k_int8: int
    k_f32: int
    latency: int
    l0c_bytes_per_cycle: int
    rows: int | None = None  # systolic only
    cols: int | None = None
    dataflow: str | None = None

    def problems(self) -> str | None:
        """Why the combination of fields describes no cube (None when it is consistent)."""
        if self.model not in CUBE_MODELS:
            return f"cube.model must be one of {', '.join(CUBE_MODELS)}, got {self.model!r}"
        systolic = (self.rows, self.cols, self.dataflow)
        if self.model == "fractal":
            return None if systolic == (None, None, None) else "cube.rows/cols/dataflow need model = \"systolic\""
        if None in systolic:
            return "a systolic cube needs cube.rows, cube.cols and cube.dataflow"
        if self.dataflow not in CUBE_DATAFLOWS:
            return f"cube.dataflow must be one of {', '.join(CUBE_DATAFLOWS)}, got {self.dataflow!r}"
        return None


@dataclass(frozen=True, kw_only=True)
class VectorSpec:
    """`block_bytes`: the unit of the repeat/block-stride addressing; a repeat moves at most
    bytes_per_cycle / block_bytes blocks of each operand."""

    bytes_per_cycle: int
    block_bytes: int
    latency: int


@dataclass(frozen=True, kw_only=True)
class BufferSpec:
    """Per-core on-chip buffer capacities (bytes) or alignments (bytes), one field per buffer."""

    l1: int
    l0a: int
    l0b: int
    l0c: int
    ub: int


@dataclass(frozen=True, kw_only=True)
class L2Spec:
    """The shared L2 cache: its size, its line size and its bandwidth as a multiple of HBM's."""
    bytes: int
    line_bytes: int
    bandwidth_x_hbm: float


@dataclass(frozen=True, kw_only=True)
class HbmSpec:
    """HBM (device memory) bandwidth, shared by all cores."""
    bytes_per_second: float


@dataclass(frozen=True, kw_only=True)
class GmSpec:
    """Global memory as a DMA sees it: the burst every transfer is rounded up to."""
    burst_bytes: int


@dataclass(frozen=True, kw_only=True)
class DmaSpec:
    """`command_cycles`: pipe occupancy of every command besides its bytes (set-up the next command
    cannot overlap); `latency`: start-up until the first byte lands, which later commands overlap."""

    bytes_per_cycle: int
    command_cycles: int
    latency: int


@dataclass(frozen=True, kw_only=True)
class Mte1Spec:
    """The MTE1 pipe (L1 -> L0A/L0B moves, img2col): its rates per destination, command set-up and latency."""
    l0a_bytes_per_cycle: int
    l0b_bytes_per_cycle: int
    command_cycles: int  # as DmaSpec.command_cycles
    latency: int


@dataclass(frozen=True, kw_only=True)
class SyncSpec:
    """Flags between pipes: the event ids each ordered pair of pipes has."""
    event_ids: int


@dataclass(frozen=True, kw_only=True)
class MachineSpec:
    """One NPU: its cores, pipes, buffers and memory system. Load with `MachineSpec.load`."""

    name: str
    description: str
    cores: int
    clock_ghz: float
    scalar: ScalarSpec
    cube: CubeSpec
    vector: VectorSpec
    buffers: BufferSpec
    alignment: BufferSpec
    l2: L2Spec
    hbm: HbmSpec
    gm: GmSpec
    mte2: DmaSpec
    mte1: Mte1Spec
    fix: DmaSpec
    mte3: DmaSpec
    sync: SyncSpec
    source: str = field(default="<dict>", compare=False, repr=False)

    # -- loading -------------------------------------------------------------------------------
    @classmethod
    def load(cls, name_or_path: str | Path = "davinci") -> MachineSpec:
        """Load a preset by name (`"davinci"`) or a TOML file by path."""
        path = Path(name_or_path)
        if path.suffix != ".toml" and not path.exists():
            path = PRESET_DIR / f"{name_or_path}.toml"
            if not path.exists():
                presets = ", ".join(sorted(p.stem for p in PRESET_DIR.glob("*.toml")))
                raise MachineSpecError(f"no machine preset named {name_or_path!r} (presets: {presets})")
        try:
            data = tomllib.loads(path.read_text())
        except OSError as exc:
            raise MachineSpecError(f"{path}: cannot read machine description: {exc}") from exc
        except tomllib.TOMLDecodeError as exc:
            raise MachineSpecError(f"{path}: invalid TOML: {exc}") from exc
        return cls.from_dict(data, source=str(path))

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "<dict>") -> MachineSpec:
        """Build a spec from nested dicts (the TOML layout), checking every field."""
        return _build(cls, data, source, prefix="", extra={"source": source})

    def replace(self, **changes: Any) -> MachineSpec:
        """A copy with some fields changed; nested sections take dicts of their own fields."""
        data = self.to_dict()
        for key, value in changes.items():
            if isinstance(value, dict):
                data[key] = {**data[key], **value}
            else:
                data[key] = value
        return MachineSpec.from_dict(data, source=f"{self.source} (modified)")

    def to_dict(self) -> dict[str, Any]:
        """The TOML layout; optional fields left unset are left out."""
        data = dataclasses.asdict(self)
        del data["source"]
        return {k: {f: x for f, x in v.items() if x is not None} if isinstance(v, dict) else v
                for k, v in data.items()}

    # -- identity ------------------------------------------------------------------------------
    @cached_property
    def fingerprint(self) -> str:
        """SHA-256 of the canonical JSON form: equal specs, equal fingerprints, whatever the file."""
        canonical = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()

    # -- derived rates (bytes per cycle, device-wide) -------------------------------------------
    @property
    def hbm_bytes_per_cycle(self) -> float:
        """HBM bandwidth in bytes per core clock cycle (the whole device's)."""
        return self.hbm.bytes_per_second / (self.clock_ghz * 1e9)

    @property
    def l2_bytes_per_cycle(self) -> float:
        """L2 bandwidth in bytes per core clock cycle (the whole device's)."""
        return self.hbm_bytes_per_cycle * self.l2.bandwidth_x_hbm

    # -- the cube, whatever its timing model ----------------------------------------------------
    def cube_k(self, dtype: str = "f16") -> int:
        """The reduction depth of one layout granule (and, on a fractal cube, of one cycle) for an input dtype."""
        if dtype in ("f16", "bf16"):
            return self.cube.k
        if dtype == "i8":
            return self.cube.k_int8
        if dtype == "f32":
            return self.cube.k_f32
        raise MachineSpecError(f"the cube takes f16, bf16, f32 and i8 inputs, not {dtype}")

    def cube_tile(self, dtype: str = "f16") -> tuple[int, int, int]:
        """(m, n, k) of the L0 layout granule for an input dtype: what a compiler pads cube tiles to."""
        return self.cube.m, self.cube.n, self.cube_k(dtype)

    def cube_rate(self, dtype: str = "f16") -> float:
        """MACs per cycle of an input dtype relative to fp16/bf16."""
        return self.cube_k(dtype) / self.cube.k

    def cube_macs_per_cycle(self, int8: bool = False, dtype: str | None = None) -> int:
        """Peak MACs per cycle per core (fp16 unless `dtype` or `int8`)."""
        dt = dtype if dtype is not None else "i8" if int8 else "f16"
        if self.cube.model == "systolic":
            return int(self.cube.rows * self.cube.cols * self.cube_rate(dt))
        return self.cube.m * self.cube.n * self.cube_k(dt)

    def buffer_bytes(self, space: str) -> int:
        """The capacity of an on-chip buffer (`l1`, `l0a`, `l0b`, `l0c`, `ub`) in bytes."""
        return getattr(self.buffers, space)

    def buffer_alignment(self, space: str) -> int:
        """The byte alignment every allocation in an on-chip buffer must have."""
        return getattr(self.alignment, space)


_SCALARS = {int: (int,), float: (int, float), str: (str,)}


def _build(cls: type, data: Any, source: str, prefix: str, extra: dict[str, Any] | None = None) -> Any:
    where = prefix.rstrip(".") or "top level"
    if not isinstance(data, dict):
        raise MachineSpecError(f"{source}: [{where}] must be a table")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls) if f.name != "source"]
    unknown = sorted(set(data) - set(names))
    if unknown:
        raise MachineSpecError(f"{source}: unknown field {prefix}{unknown[0]} (known: {', '.join(names)})")
    optional = {f.name for f in dataclasses.fields(cls) if f.default is None}  # `x: T | None = None` fields
    values: dict[str, Any] = dict(extra or {})
    for name in names:
        if data.get(name) is None and name in optional:
            continue
        if name not in data:
            raise MachineSpecError(f"{source}: missing field {prefix}{name}")
        hint, value = hints[name], data[name]
        if name in optional:
            hint = next(a for a in typing.get_args(hint) if a is not type(None))
        if dataclasses.is_dataclass(hint):
            values[name] = _build(hint, value, source, f"{prefix}{name}.")
            continue
        if isinstance(value, bool) or not isinstance(value, _SCALARS[hint]):
            raise MachineSpecError(
                f"{source}: field {prefix}{name} must be {hint.__name__}, got {type(value).__name__} {value!r}"
            )
        if hint in (int, float) and value <= 0:
            raise MachineSpecError(f"{source}: field {prefix}{name} must be positive, got {value!r}")
        values[name] = hint(value)
    built = cls(**values)
    problem = built.problems() if hasattr(built, "problems") else None
    if problem:
        raise MachineSpecError(f"{source}: {problem}")
    return built
