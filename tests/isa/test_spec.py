"""MachineSpec: the default preset's numbers (DESIGN.md §2), user files, errors and the fingerprint."""

import json
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest

from isa import MachineSpec, MachineSpecError
from isa.spec import PRESET_DIR

KIB, MIB = 1024, 1024 * 1024


def preset_data() -> dict[str, Any]:
    return tomllib.loads((PRESET_DIR / "davinci.toml").read_text())


def write_toml(path: Path, data: dict[str, Any], reverse: bool = False) -> Path:
    """A minimal TOML writer for the spec layout (top-level scalars, then one table per section)."""
    def items(d: dict[str, Any]) -> list[tuple[str, Any]]:
        return sorted(d.items(), reverse=reverse)

    lines = [f"{k} = {json.dumps(v)}" for k, v in items(data) if not isinstance(v, dict)]
    for section, table in items(data):
        if isinstance(table, dict):
            lines.append(f"[{section}]")
            lines += [f"{k} = {json.dumps(v)}" for k, v in items(table)]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_default_preset_has_the_design_numbers() -> None:
    spec = MachineSpec.load()
    assert spec == MachineSpec.load("davinci")
    assert spec.name == "davinci"
    assert spec.cores == 24 and spec.clock_ghz == 1.8
    assert (spec.cube.m, spec.cube.n, spec.cube.k, spec.cube.k_int8) == (16, 16, 16, 32)
    assert spec.cube_macs_per_cycle() == 4096 and spec.cube_macs_per_cycle(int8=True) == 8192
    # ≈354 dense fp16 TFLOPS for the device
    assert spec.cube_macs_per_cycle() * 2 * spec.clock_ghz * 1e9 * spec.cores == pytest.approx(354e12, rel=0.01)
    assert spec.vector.bytes_per_cycle == 256
    assert [spec.buffer_bytes(s) for s in ("l1", "l0a", "l0b", "l0c", "ub")] == \
        [512 * KIB, 64 * KIB, 64 * KIB, 128 * KIB, 192 * KIB]
    assert [spec.buffer_alignment(s) for s in ("l1", "ub", "l0a", "l0b", "l0c")] == [32, 32, 512, 512, 64]
    assert spec.l2.bytes == 192 * MIB and spec.l2.bandwidth_x_hbm == 5.0
    assert spec.hbm.bytes_per_second == 1.5e12
    assert spec.hbm_bytes_per_cycle == pytest.approx(1.5e12 / 1.8e9)
    assert spec.l2_bytes_per_cycle == pytest.approx(5 * 1.5e12 / 1.8e9)
    assert spec.mte2.bytes_per_cycle == 128
    assert (spec.mte1.l0a_bytes_per_cycle, spec.mte1.l0b_bytes_per_cycle) == (512, 256)
    assert spec.fix.bytes_per_cycle == 256 and spec.mte3.bytes_per_cycle == 256
    assert spec.sync.event_ids == 8


def test_users_own_file_loads(tmp_path: Path) -> None:
    data = preset_data()
    data["name"], data["cores"], data["buffers"]["ub"] = "mine", 2, 256 * KIB
    path = write_toml(tmp_path / "mine.toml", data)
    for ref in (path, str(path)):
        spec = MachineSpec.load(ref)
        assert (spec.name, spec.cores, spec.buffers.ub) == ("mine", 2, 256 * KIB)
        assert spec.source == str(path)
        assert spec.cube == MachineSpec.load().cube


@pytest.mark.parametrize("change,message", [
    (lambda d: d.pop("cores"), "missing field cores"),
    (lambda d: d["buffers"].pop("ub"), "missing field buffers.ub"),
    (lambda d: d.update(cores="many"), "field cores must be int, got str 'many'"),
    (lambda d: d["cube"].update(m=16.5), "field cube.m must be int, got float 16.5"),
    (lambda d: d["sync"].update(event_ids=True), "field sync.event_ids must be int, got bool True"),
    (lambda d: d.update(buffers=4), "[buffers] must be a table"),
    (lambda d: d["cube"].update(m_int4=64), "unknown field cube.m_int4"),
    (lambda d: d.update(colour="red"), "unknown field colour"),
    (lambda d: d["cube"].update(m=0), "field cube.m must be positive, got 0"),
], ids=["missing", "missing nested", "wrong type", "float for int", "bool for int", "not a table",
        "unknown nested", "unknown", "not positive"])
def test_bad_files_name_the_field_and_the_file(tmp_path: Path, change: Any, message: str) -> None:
    data = preset_data()
    change(data)
    path = write_toml(tmp_path / "bad.toml", data)
    with pytest.raises(MachineSpecError) as info:
        MachineSpec.load(path)
    assert str(info.value).startswith(f"{path}: {message}")


def test_unreadable_and_invalid_files(tmp_path: Path) -> None:
    with pytest.raises(MachineSpecError, match=re.escape(f"{tmp_path / 'none.toml'}: cannot read")):
        MachineSpec.load(tmp_path / "none.toml")
    bad = tmp_path / "broken.toml"
    bad.write_text("cores = = 3\n")
    with pytest.raises(MachineSpecError, match=re.escape(f"{bad}: invalid TOML")):
        MachineSpec.load(bad)


def test_unknown_preset_lists_the_presets() -> None:
    with pytest.raises(MachineSpecError, match=r"no machine preset named 'tpu9' \(presets: .*davinci"):
        MachineSpec.load("tpu9")


def test_fingerprint_depends_on_content_only(tmp_path: Path) -> None:
    default = MachineSpec.load()
    assert re.fullmatch(r"[0-9a-f]{64}", default.fingerprint)
    data = preset_data()
    a = MachineSpec.load(write_toml(tmp_path / "a.toml", data))
    (tmp_path / "other").mkdir()
    b = MachineSpec.load(write_toml(tmp_path / "other" / "b.toml", data, reverse=True))
    assert (tmp_path / "a.toml").read_text() != (tmp_path / "other" / "b.toml").read_text()
    assert a.fingerprint == b.fingerprint == default.fingerprint
    assert a == b == default  # the source path is not part of the identity
    data["mte2"]["latency"] += 1
    changed = MachineSpec.load(write_toml(tmp_path / "c.toml", data))
    assert changed.fingerprint != default.fingerprint and changed != default


def test_replace_changes_fields_and_identity() -> None:
    spec = MachineSpec.load()
    more = spec.replace(cores=48, buffers={"ub": 256 * KIB})
    assert (more.cores, more.buffers.ub, more.buffers.l1) == (48, 256 * KIB, spec.buffers.l1)
    assert spec.cores == 24  # the original is unchanged (frozen)
    assert more.fingerprint != spec.fingerprint
    assert spec.replace(cores=24) == spec and spec.replace(cores=24).fingerprint == spec.fingerprint
    with pytest.raises(MachineSpecError, match="unknown field bogus"):
        spec.replace(bogus=1)
    with pytest.raises(MachineSpecError, match="field cores must be int"):
        spec.replace(cores="48")


def test_from_dict_round_trips_to_dict() -> None:
    spec = MachineSpec.load()
    assert MachineSpec.from_dict(spec.to_dict()) == spec
