"""The analytic cost model: read off the compiled program, every rate from the spec, and a ranking that
agrees with the simulator."""

from __future__ import annotations

import numpy as np

import npulang as npu
from autotune import Autotuner, Config, estimate, expand_space
from autotune.costmodel import _c_div, _c_rem
from tests.autotune.kernels import SPACE, gemm, grid, matmul

SHAPE = (128, 96, 256)


def _estimate(config: Config, spec=None):
    tuner = Autotuner(matmul, configs=[config], db="sqlite://")
    compiled = tuner._compile(grid(*SHAPE[:2]), gemm(*SHAPE), {}, config)
    return estimate(compiled[0], spec or npu.get_machine(), compiled[1], compiled[2])


def test_every_rate_comes_from_the_machine_spec():
    config = Config({"BM": 64, "BN": 64, "BK": 32}, num_stages=2)
    spec = npu.get_machine()
    base = _estimate(config, spec)
    assert base.bound == "core" and base.programs == 2 * 2
    faster_dma = _estimate(config, spec.replace(mte2={"bytes_per_cycle": 4 * spec.mte2.bytes_per_cycle},
                                                  mte1={"l0b_bytes_per_cycle": 4 * spec.mte1.l0b_bytes_per_cycle}))
    assert faster_dma.pipe_busy["mte2"] < base.pipe_busy["mte2"] and faster_dma.cycles < base.cycles
    slow_cube = _estimate(config, spec.replace(cube={"k": spec.cube.k // 4}))
    assert slow_cube.pipe_busy["m"] > 2 * base.pipe_busy["m"]
    # one program's MTE2 bytes at the spec's rate: two tiles per k-step, set-up per command, 8 k-steps
    loads = (64 * 32 * 2 + 32 * 64 * 2) // spec.mte2.bytes_per_cycle + 2 * spec.mte2.command_cycles
    assert base.pipe_busy["mte2"] == (SHAPE[2] // 32) * loads


def test_the_ranking_agrees_with_the_simulator():
    tuner = Autotuner(matmul, space=SPACE, db="sqlite://")
    ranked, pruned = tuner._rank(grid(*SHAPE[:2]), gemm(*SHAPE), {}, expand_space(SPACE))
    assert len(ranked) == 22 and len(pruned) == 2
    simulated = []
    for config, _ in ranked:
        run = matmul[grid(*SHAPE[:2])](*gemm(*SHAPE), **config.all_kwargs(), timing_only=True, l2="cold")
        simulated.append(run.cycles)
    model_rank = np.argsort(np.argsort([e for _, e in ranked]))
    sim_rank = np.argsort(np.argsort(simulated))
    spearman = np.corrcoef(model_rank, sim_rank)[0, 1]
    assert spearman > 0.9
    assert min(simulated) in simulated[:3]  # the simulator's best is among the model's first three


def test_scalar_arithmetic_follows_c():
    assert (_c_div(-7, 2), _c_rem(-7, 2), _c_div(7, -2), _c_rem(7, -2)) == (-3, -1, -3, 1)
    assert _c_div(7.0, 2) == 3.5


def test_an_hbm_bound_estimate_counts_the_bytes_the_simulator_moves():
    """Inputs read once and the output written once: the model's HBM bound is the simulator's HBM traffic
    (an output that is only written is not counted as read)."""
    import math

    from examples.tutorials import matmul_kernel

    m, n, k = 4096, 64, 256
    a, b, c = np.zeros((m, k), np.float16), np.zeros((k, n), np.float16), np.zeros((m, n), np.float32)
    args = (a, b, c, m, n, k, k, 1, n, 1, n, 1)
    kwargs = {"ACTIVATION": "", "ACC_DTYPE": npu.float32}
    config = Config({"BLOCK_SIZE_M": 256, "BLOCK_SIZE_N": 64, "BLOCK_SIZE_K": 32, "GROUP_SIZE_M": 1}, num_stages=2)
    launch_grid = lambda meta: (npu.cdiv(m, meta["BLOCK_SIZE_M"]) * npu.cdiv(n, meta["BLOCK_SIZE_N"]),)  # noqa: E731
    tuner = Autotuner(matmul_kernel, configs=[config], db="sqlite://")
    program, dev_args, grid3 = tuner._compile(launch_grid, args, kwargs, config)
    spec = npu.get_machine()
    est = estimate(program, spec, dev_args, grid3)
    run = matmul_kernel[launch_grid](*args, **kwargs, **config.all_kwargs(), timing_only=True, l2="cold")
    assert est.bound == "hbm" and run.hbm_bytes == a.nbytes + b.nbytes + c.nbytes
    assert est.cycles == math.ceil(run.hbm_bytes / spec.hbm_bytes_per_cycle) <= run.cycles
