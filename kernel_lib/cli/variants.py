"""Machine variants for `npu-codesign`: a base `isa.MachineSpec` with some fields, or a whole section, changed.

A field is named by its dotted path in the TOML layout (`hbm.bytes_per_second`, `buffers.ub`, `cube.rows`). A
bare name stands for the one field of that name, and a buffer's bare name (`ub`, `l1`, `l0a`, `l0b`, `l0c`) for
its capacity, `buffers.<name>` (not its alignment). Numbers take binary units (`128KiB`, `1MiB`, `1GiB`),
decimal ones (`3T`, `1.5G`) and exponents (`1.5e12`). A section (`cube`, `hbm`, ...) takes a preset name or
a TOML file and copies that machine's section, so `cube=systolic128` puts the 128x128 systolic array into the
base machine and leaves its cores, clock, buffers and memory system as they are.
"""

from __future__ import annotations

import dataclasses
import itertools
import re
import typing
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import isa

_UNITS = {"": 1, "k": 1e3, "m": 1e6, "g": 1e9, "t": 1e12, "ki": 1 << 10, "mi": 1 << 20, "gi": 1 << 30, "ti": 1 << 40}
_NUMBER = re.compile(r"([0-9]*\.?[0-9]+(?:e[-+]?[0-9]+)?)\s*([kmgt]i?)?b?", re.IGNORECASE)
_IDENTITY = ("name", "description", "source")  # not hardware: a variant keeps the base machine's


class VariantError(ValueError):
    """A --vary or --variant that names no field, gives a bad value, or describes no machine (one line)."""


@dataclass(frozen=True)
class Variant:
    """One machine to tune on: how the table heads its column, its spec, and the changes from the base."""

    name: str
    spec: isa.MachineSpec
    changes: Mapping[str, Any]  # dotted path -> the value set (empty for a whole machine or the base)


def machine_fields(cls: type = isa.MachineSpec, prefix: str = "") -> dict[str, type]:
    """Every field a variant may change, by dotted path: sections (their dataclass) and scalars (int,
    float, str)."""
    out: dict[str, type] = {}
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if f.name in _IDENTITY:
            continue
        kind = next((a for a in typing.get_args(hints[f.name]) if a is not type(None)), hints[f.name])
        out[prefix + f.name] = kind
        if dataclasses.is_dataclass(kind):
            out.update(machine_fields(kind, f"{prefix}{f.name}."))
    return out


def resolve(name: str) -> str:
    """The dotted path `name` stands for, or a VariantError listing the fields."""
    fields = machine_fields()
    if name in fields:
        return name
    if f"buffers.{name}" in fields:
        return f"buffers.{name}"
    matches = [p for p in fields if p.rsplit(".", 1)[-1] == name]
    if len(matches) == 1:
        return matches[0]
    why = f"{name!r} could be {' or '.join(matches)}" if matches else f"no machine field {name!r}"
    raise VariantError(f"{why}; fields: {', '.join(fields)}")


def parse_value(path: str, text: str) -> Any:
    """`text` as a value of the field at `path`: a number with optional units, a string, or (a section) the
    section of a preset or TOML file, in the TOML layout."""
    kind = machine_fields()[path]
    if dataclasses.is_dataclass(kind):
        try:
            section = getattr(isa.MachineSpec.load(text), path)
        except isa.MachineSpecError as exc:
            raise VariantError(f"{path}={text}: {exc} (a section takes a preset name or a TOML file)") from None
        return {k: v for k, v in dataclasses.asdict(section).items() if v is not None}
    if kind is str:
        return text
    match = _NUMBER.fullmatch(text.strip())
    if match is None:
        raise VariantError(f"{path}={text}: not a number (e.g. 196608, 192KiB, 1.5e12)")
    value = float(match[1]) * _UNITS[(match[2] or "").lower()]
    if kind is int:
        if value != int(value):
            raise VariantError(f"{path}={text}: {path} is a whole number, got {value:g}")
        return int(value)
    return value


def apply(base: isa.MachineSpec, changes: Mapping[str, Any], name: str) -> isa.MachineSpec:
    """`base` with `changes` (dotted path -> value) made, checked as a machine file is, and for buffers that
    are whole multiples of their alignment."""
    data = base.to_dict()
    for path, value in changes.items():
        *sections, leaf = path.split(".")
        table = data
        for section in sections:
            table = table[section]
        table[leaf] = value
    try:
        spec = isa.MachineSpec.from_dict(data, source=f"variant {name}")
    except isa.MachineSpecError as exc:
        raise VariantError(str(exc)) from None
    for buffer in (f.name for f in dataclasses.fields(base.buffers)):
        size, align = spec.buffer_bytes(buffer), spec.buffer_alignment(buffer)
        if size % align:
            raise VariantError(f"variant {name}: buffers.{buffer} = {size:,} B is not a multiple of its "
                               f"alignment ({align} B)")
    return spec


def parse_vary(text: str) -> tuple[str, str, list[tuple[str, Any]]]:
    """`ub=128KiB,256KiB` -> (the name as written, its dotted path, [(value text, value), ...])."""
    name, sep, values = text.partition("=")
    texts = [v.strip() for v in values.split(",") if v.strip()]
    if not sep or not name.strip() or not texts:
        raise VariantError(f"--vary {text}: give FIELD=VALUE[,VALUE...], e.g. ub=128KiB,256KiB")
    path = resolve(name.strip())
    return name.strip(), path, [(v, parse_value(path, v)) for v in texts]


def variants(base: isa.MachineSpec, varies: Sequence[str], machines: Sequence[str] = (), *,
             cross: bool = False) -> list[Variant]:
    """The base machine, then its variants: each value of each --vary on its own (`cross`: every
    combination of one value per --vary), then each whole machine of `machines` (presets or TOML files)."""
    parsed = [parse_vary(v) for v in varies]
    out = [Variant(f"{base.name} (base)", base, {})]
    if cross and parsed:
        combos = [list(zip(parsed, choice)) for choice in itertools.product(*(values for _, _, values in parsed))]
    else:
        combos = [[(p, choice)] for p in parsed for choice in p[2]]
    for combo in combos:
        name = ", ".join(f"{written}={text}" for (written, _, _), (text, _) in combo)
        changes = {path: value for (_, path, _), (_, value) in combo}
        out.append(Variant(name, apply(base, changes, name), changes))
    for machine in machines:
        try:
            spec = isa.MachineSpec.load(machine)
        except isa.MachineSpecError as exc:
            raise VariantError(f"--variant {machine}: {str(exc).splitlines()[0]}") from None
        out.append(Variant(spec.name, spec, {}))
    return out
