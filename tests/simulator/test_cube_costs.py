"""The cube's cost corners, from hand-written assembly: every input dtype at its own rate (f32 is not fed at
the fp16 rate), and an mmad's L0C write costs bytes / `cube.l0c_bytes_per_cycle` (k=0 zeroing is not free)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from isa import MachineSpec, MachineSpecError
from isa.asm import assemble
from isa.spec import PRESET_DIR
from simulator import Device

F32_TILE = """
.kernel f32_mmad
.arg a ptr f32
.arg b ptr f32
.arg c ptr f32
    arg s0, 0
    arg s1, 1
    arg s2, 2
    load l0a[0], gm[s0], dtype=f32, rows={m}, cols={k}, src_rs={k}
    load l0b[0], gm[s1], dtype=f32, rows={k}, cols={n}, src_rs={n}
    set_flag mte2, m, 0
    wait_flag mte2, m, 0
    mmad l0c[0], l0a[0], l0b[0], dtype=f32, m={m}, n={n}, k={k}
    set_flag m, fix, 0
    wait_flag m, fix, 0
    fixpipe gm[s2], l0c[0], src_dtype=f32, dtype=f32, rows={m}, cols={n}
"""


def fractal_cycles(spec: MachineSpec, m: int, n: int, k: int, k_step: int) -> int:
    return math.ceil(m / spec.cube.m) * math.ceil(n / spec.cube.n) * math.ceil(k / k_step)


def test_f32_mmad_runs_at_the_f32_rate_not_the_fp16_rate(device: Device, spec: MachineSpec) -> None:
    m, n, k = 32, 48, 64
    rng = np.random.default_rng(6)
    a = rng.standard_normal((m, k)).astype(np.float32)
    b = rng.standard_normal((k, n)).astype(np.float32)
    c = np.zeros((m, n), np.float32)
    res = device.run(assemble(F32_TILE.format(m=m, n=n, k=k)), (1,), [a, b, c])
    np.testing.assert_allclose(c, a @ b, rtol=1e-4, atol=1e-4)
    f32 = fractal_cycles(spec, m, n, k, spec.cube.k_f32)
    assert res.pipe_busy["m"] == f32
    assert f32 != fractal_cycles(spec, m, n, k, spec.cube.k)  # the defect: f32 fed at the fp16 rate
    assert spec.cube_macs_per_cycle(dtype="f32") == spec.cube.m * spec.cube.n * spec.cube.k_f32
    assert spec.cube_macs_per_cycle(dtype="f32") < spec.cube_macs_per_cycle()


@pytest.mark.parametrize("dtype,k_field", [("f16", "k"), ("bf16", "k"), ("i8", "k_int8"), ("f32", "k_f32")])
def test_every_input_dtype_has_its_own_rate(spec: MachineSpec, dtype: str, k_field: str) -> None:
    """Each dtype follows its own spec field: doubling that field halves a K-bound mmad."""
    k = 256
    text = f".kernel t\n    mmad l0c[0], l0a[0], l0b[0], dtype={dtype}, m=16, n=16, k={k}\n"
    depth = getattr(spec.cube, k_field)
    assert Device(spec).run(assemble(text), (1,), []).pipe_busy["m"] == math.ceil(k / depth)
    faster = spec.replace(cube={k_field: 2 * depth})
    assert Device(faster).run(assemble(text), (1,), []).pipe_busy["m"] == math.ceil(k / (2 * depth))


ZERO_L0C = """
.kernel zero_acc
.arg a ptr f16
.arg b ptr f16
.arg c ptr f32
    arg s0, 0
    arg s1, 1
    arg s2, 2
    load l0a[0], gm[s0], dtype=f16, rows=16, cols=16, src_rs=16
    load l0b[0], gm[s1], dtype=f16, rows=16, cols=16, src_rs=16
    set_flag mte2, m, 0
    wait_flag mte2, m, 0
    mmad l0c[0], l0a[0], l0b[0], dtype=f16, m=16, n=16, k=16
    mmad l0c[0], l0a[0], l0b[0], dtype=f16, m={m}, n={n}, k=0
    set_flag m, fix, 0
    wait_flag m, fix, 0
    fixpipe gm[s2], l0c[0], src_dtype=f32, dtype=f32, rows=16, cols=16
"""


def test_k0_mmad_zeroes_l0c_at_the_l0c_write_rate(device: Device, spec: MachineSpec) -> None:
    m, n = 256, 128  # 128 KiB of f32 accumulators: the whole default L0C
    assert m * n * 4 == spec.buffers.l0c
    a = np.ones((16, 16), np.float16)
    c = np.full((16, 16), 7.0, np.float32)
    res = device.run(assemble(ZERO_L0C.format(m=m, n=n)), (1,), [a, a, c])
    np.testing.assert_array_equal(c, 0.0)
    zeroing = math.ceil(m * n * 4 / spec.cube.l0c_bytes_per_cycle)
    assert zeroing > 1  # the defect: 1 cycle for 128 KiB
    assert res.pipe_busy["m"] == fractal_cycles(spec, 16, 16, 16, spec.cube.k) + zeroing


def test_small_k_mmad_is_bound_by_its_l0c_write(spec: MachineSpec) -> None:
    """A shallow mmad writes as many accumulator bytes as a deep one: the write bound applies to every mmad."""
    slow_write = spec.replace(cube={"l0c_bytes_per_cycle": 64})
    text = ".kernel t\n    mmad l0c[0], l0a[0], l0b[0], dtype=f16, m=64, n=64, k=16\n"
    busy = Device(slow_write).run(assemble(text), (1,), []).pipe_busy["m"]
    assert busy == max(fractal_cycles(spec, 64, 64, 16, spec.cube.k), math.ceil(64 * 64 * 4 / 64)) == 256


def test_every_preset_loads_and_round_trips() -> None:
    for path in sorted(PRESET_DIR.glob("*.toml")):
        spec = MachineSpec.load(path.stem)
        assert MachineSpec.from_dict(spec.to_dict()) == spec
        assert spec.cube_tile("f32") == (spec.cube.m, spec.cube.n, spec.cube.k_f32)
        assert spec.cube_rate("f16") == 1.0


@pytest.mark.parametrize("change,message", [
    ({"model": "analog"}, "cube.model must be one of fractal, systolic"),
    ({"rows": 128}, "cube.rows/cols/dataflow need model = \"systolic\""),
    ({"model": "systolic", "rows": 128, "cols": 128}, "a systolic cube needs cube.rows, cube.cols and cube.dataflow"),
    ({"model": "systolic", "rows": 128, "cols": 128, "dataflow": "is"}, "cube.dataflow must be one of os, ws"),
])
def test_inconsistent_cube_models_are_rejected(spec: MachineSpec, change: dict, message: str) -> None:
    with pytest.raises(MachineSpecError, match=message.replace("(", r"\(")):
        spec.replace(cube=change)


def test_the_cube_names_the_dtypes_it_takes(spec: MachineSpec) -> None:
    with pytest.raises(MachineSpecError, match="the cube takes f16, bf16, f32 and i8 inputs, not i32"):
        spec.cube_rate("i32")
