"""M pipe (cube): C[m,n] (=|+=) A[m,k] @ B[k,n], row-major in L0A/L0B/L0C.

fp16/bf16 (and f32) inputs multiply-accumulate in f32; int8 in int32 (wrapping like the hardware).
"""

from __future__ import annotations

import math

import numpy as np

from isa import DTYPES, Instr
from isa.dtypes import accumulator
from simulator.errors import SimError
from simulator.memory import CoreMemory
from simulator.ops.base import Env, Plan, PipeOp, check_shape, fields, make_resolver, rule


@rule("mmad")
def _mmad(instr: Instr, env: Env) -> PipeOp:
    d = DTYPES[instr.get("dtype")]
    if d.name not in ("f16", "bf16", "f32", "i8"):
        raise SimError(f"mmad supports f16, bf16, f32 and i8 inputs, not {d.name}")
    dt, acc = d.np, accumulator(d).np
    e = dt.itemsize
    cube = env.spec.cube
    k_step = cube.k_int8 if d.name == "i8" else cube.k
    DST, A, B, M, N, K, INIT = fields(instr, "dst", "a", "b", "m", "n", "k", "init")

    def plan(a: tuple) -> Plan:
        m, n, k = a[M], a[N], a[K]
        check_shape(m=m, n=n, k=k)
        occ = max(1, math.ceil(m / cube.m) * math.ceil(n / cube.n) * math.ceil(k / k_step))
        return Plan((("l0a", a[A], a[A] + m * k * e, False), ("l0b", a[B], a[B] + k * n * e, False),
                     ("l0c", a[DST], a[DST] + m * n * 4, True)), occ, cube.latency)

    def execute(a: tuple, mem: CoreMemory) -> None:
        m, n, k = a[M], a[N], a[K]
        wide = np.float32 if d.is_float else np.int64
        lhs = mem.tile("l0a", a[A], m, k, k, 1, dt).astype(wide)
        rhs = mem.tile("l0b", a[B], k, n, n, 1, dt).astype(wide)
        out = mem.tile("l0c", a[DST], m, n, n, 1, acc)
        prod = lhs @ rhs
        if not a[INIT]:
            prod = prod + out
        out[...] = prod.astype(acc)  # int64 -> int32 wraps as the accumulator would

    return PipeOp(make_resolver(instr), plan, execute)
