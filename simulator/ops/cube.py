"""M pipe (cube): C[m,n] (=|+=) A[m,k] @ B[k,n], row-major in L0A/L0B/L0C.

fp16/bf16 (and f32) inputs multiply-accumulate in f32; int8 in int32 (wrapping like the hardware).
The cost follows the spec's cube timing model (`cube_cycles`); every mmad also writes its m x n
accumulator to L0C at `cube.l0c_bytes_per_cycle`, so a k=0 mmad (zeroing) is not free.
"""

from __future__ import annotations

import math

import numpy as np

from isa import DTYPES, Instr, MachineSpec
from isa.dtypes import accumulator
from simulator.errors import SimError
from simulator.memory import CoreMemory
from simulator.ops.base import Env, Plan, PipeOp, check_shape, fields, make_resolver, rule

ACC_BYTES = 4  # f32 / i32 accumulator element


def cube_cycles(spec: MachineSpec, dtype: str, m: int, n: int, k: int) -> int:
    """Cycles the M pipe is busy for one mmad: the larger of the compute and of writing C to L0C.

    fractal: one m x n x k_<dtype> block per cycle. systolic (SCALE-Sim's fold model, no overlap between
    folds): output-stationary maps C onto the array, each fold streams K then fills and drains
    (K + rows + cols - 2); weight-stationary maps B, each fold loads it (rows), streams the m rows of A
    and drains (m + 2 rows + cols - 2). A dtype at rate r streams K as ceil(K / r) fp16 slots.
    """
    cube = spec.cube
    k_d = spec.cube_k(dtype)
    if k == 0 or m == 0 or n == 0:
        compute = 0
    elif cube.model == "fractal":
        compute = math.ceil(m / cube.m) * math.ceil(n / cube.n) * math.ceil(k / k_d)
    else:
        slots = math.ceil(k * cube.k / k_d)
        rows, cols = cube.rows, cube.cols
        if cube.dataflow == "os":
            compute = math.ceil(m / rows) * math.ceil(n / cols) * (slots + rows + cols - 2)
        else:
            compute = math.ceil(slots / rows) * math.ceil(n / cols) * (m + 2 * rows + cols - 2)
    write = math.ceil(m * n * ACC_BYTES / cube.l0c_bytes_per_cycle)
    return max(1, compute, write)


@rule("mmad")
def _mmad(instr: Instr, env: Env) -> PipeOp:
    d = DTYPES[instr.get("dtype")]
    if d.name not in ("f16", "bf16", "f32", "i8"):
        raise SimError(f"mmad supports f16, bf16, f32 and i8 inputs, not {d.name}")
    dt, acc = d.np, accumulator(d).np
    e = dt.itemsize
    spec = env.spec
    DST, A, B, M, N, K, INIT = fields(instr, "dst", "a", "b", "m", "n", "k", "init")

    def plan(a: tuple) -> Plan:
        m, n, k = a[M], a[N], a[K]
        check_shape(m=m, n=n, k=k)
        occ = cube_cycles(spec, d.name, m, n, k)
        return Plan((("l0a", a[A], a[A] + m * k * e, False), ("l0b", a[B], a[B] + k * n * e, False),
                     ("l0c", a[DST], a[DST] + m * n * ACC_BYTES, True)), occ, spec.cube.latency)

    wide = np.float32 if d.is_float else np.int64

    def execute(a: tuple, mem: CoreMemory) -> None:
        m, n, k = a[M], a[N], a[K]
        lhs = mem.tile("l0a", a[A], m, k, k, 1, dt).astype(wide)
        rhs = mem.tile("l0b", a[B], k, n, n, 1, dt).astype(wide)
        out = mem.tile("l0c", a[DST], m, n, n, 1, acc)
        if not d.is_float:
            prod = lhs @ rhs
            if not a[INIT]:
                prod += out
            out[...] = prod.astype(acc)  # int64 -> int32 wraps as the accumulator would
        elif a[INIT]:
            out[...] = lhs @ rhs
        else:  # f32 += f32 in place: the same rounding as a new sum, without the temporaries
            out += lhs @ rhs

    return PipeOp(make_resolver(instr), plan, execute)
