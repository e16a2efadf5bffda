"""Block-IR kernels built by hand with `ir.Builder` for the backend tests (no frontend needed), and
`run_compiled`, which compiles a frontend kernel with `compile_ir` and runs it on the simulator (no launch
layer), and `both`, which runs a launching helper interpreted and compiled."""

from typing import Any

from isa import MachineSpec
from npulang import ir
from npulang.compiler import CompiledKernel, compile_ir
from simulator import Device, RunResult, SimOptions

SPEC = MachineSpec.load()
CHECKED = SimOptions(functional=True, detect_races=True)


def run_compiled(jf: Any, grid: tuple[int, ...], args: list[Any], *, num_stages: int = 2,
                 **meta: Any) -> tuple[CompiledKernel, RunResult]:
    """Specialise `jf` for `args`/`meta`, compile it for the default machine, run it (race detection on)."""
    fn, _ = jf.specialize(*args, **meta)
    ck = compile_ir(fn, SPEC, num_stages=num_stages)
    call = jf.bind(tuple(args), meta)
    runtime = [call.runtime[n] for n in fn.arg_names]
    result = Device(SPEC).run(ck.program, grid=grid, args=runtime, options=CHECKED)
    return ck, result


def both(run: Any, *args: Any, **kwargs: Any) -> tuple[Any, Any]:
    """Outputs of `run(*args, **kwargs)` interpreted and compiled (race detector on)."""
    interpreted, _ = run(*args, interpret=True, **kwargs)
    compiled, record = run(*args, **kwargs)
    assert record.cycles > 0
    return interpreted, compiled


K = ir.OpKind


def vadd(BLOCK=256):
    """out = x + y over n f32 elements, BLOCK per program, the tail masked."""
    L = ir.Loc("k.py", 3)
    x, y, o = (ir.Value(ir.PtrType("f32"), n) for n in "xyo")
    n = ir.Value(ir.I32, "n")
    body = ir.Block()
    b = ir.Builder(body, L)
    pid = b.value(K.PROGRAM_ID, axis=0)
    blk = b.constant(BLOCK, ir.I32)
    start = b.value(K.BINARY, (pid, blk), op="mul")
    ar = b.value(K.ARANGE, start=0, end=BLOCK)
    offs = b.value(K.BINARY, (b.value(K.SPLAT, (start,), shape=(BLOCK,)), ar), op="add")
    mask = b.value(K.CMP, (offs, b.value(K.SPLAT, (n,), shape=(BLOCK,))), pred="lt")
    px = b.value(K.ADDPTR, (b.value(K.SPLAT, (x,), shape=(BLOCK,)), offs))
    py = b.value(K.ADDPTR, (b.value(K.SPLAT, (y,), shape=(BLOCK,)), offs))
    po = b.value(K.ADDPTR, (b.value(K.SPLAT, (o,), shape=(BLOCK,)), offs))
    vx = b.value(K.LOAD, (px, mask))
    vy = b.value(K.LOAD, (py, mask))
    s = b.value(K.BINARY, (vx, vy), op="add")
    b.create(K.STORE, (po, s, mask))
    b.create(K.RETURN)
    return ir.Function("vadd", [x, y, o, n], body, {"BLOCK": BLOCK}, L)


def matmul(BM=32, BN=32, BK=32, dt="f16", out="f16"):
    """The tutorial's masked matmul C[M, N] = A[M, K] @ B[K, N], runtime strides, one tile per program."""
    L = ir.Loc("mm.py", 10)
    a, b, c = (ir.Value(ir.PtrType(t), n) for n, t in (("a", dt), ("b", dt), ("c", out)))
    M, N, Kd, sam, sak, sbk, sbn, scm, scn = (ir.Value(ir.I32, n)
                                              for n in "M N K sam sak sbk sbn scm scn".split())
    acc_type = ir.TileType((BM, BN), ir.ScalarType("i32" if dt == "i8" else "f32"))
    body = ir.Block()
    bb = ir.Builder(body, L)

    def c32(v):
        return bb.constant(v, ir.I32)

    def bin(x, y, op, builder=bb):
        return builder.value(K.BINARY, (x, y), op=op)

    def sp(x, shape, builder=bb):
        return builder.value(K.SPLAT, (x,), shape=shape)

    def bc(x, shape, builder=bb):
        return builder.value(K.BROADCAST, (x,), shape=shape)

    def ex(x, ax, builder=bb):
        return builder.value(K.EXPAND_DIMS, (x,), axis=ax)

    def below(index, limit, axis, shape, builder):
        """broadcast(expand_dims(index, axis) < limit) to shape."""
        small = (1, shape[1]) if axis == 0 else (shape[0], 1)
        cmp = builder.value(K.CMP, (ex(index, axis, builder), sp(limit, small, builder)), pred="lt")
        return bc(cmp, shape, builder)

    def grid2(rowv, rs, colv, cs, R, C):
        r = bc(bin(ex(rowv, 1), sp(rs, (R, 1)), "mul"), (R, C))
        cc = bc(bin(ex(colv, 0), sp(cs, (1, C)), "mul"), (R, C))
        return bin(r, cc, "add")

    pm = bb.value(K.PROGRAM_ID, axis=0)
    pn = bb.value(K.PROGRAM_ID, axis=1)
    om = bin(sp(bin(pm, c32(BM), "mul"), (BM,)), bb.value(K.ARANGE, start=0, end=BM), "add")
    on = bin(sp(bin(pn, c32(BN), "mul"), (BN,)), bb.value(K.ARANGE, start=0, end=BN), "add")
    ok = bb.value(K.ARANGE, start=0, end=BK)
    ap = bb.value(K.ADDPTR, (sp(a, (BM, BK)), grid2(om, sam, ok, sak, BM, BK)))
    bp = bb.value(K.ADDPTR, (sp(b, (BK, BN)), grid2(ok, sbk, on, sbn, BK, BN)))
    acc0 = bb.constant(0.0, acc_type)
    nk = bin(bin(Kd, c32(BK - 1), "add"), c32(BK), "floordiv")

    loop_body = ir.Block()
    iv, ap_a, bp_a = ir.Value(ir.I32, "k"), ir.Value(ap.type, "a_ptrs"), ir.Value(bp.type, "b_ptrs")
    acc_a = ir.Value(acc0.type, "acc")
    loop_body.args = [iv, ap_a, bp_a, acc_a]
    lb = ir.Builder(loop_body, ir.Loc("mm.py", 20))
    rem = bin(Kd, bin(iv, lb.constant(BK, ir.I32), "mul", lb), "sub", lb)
    ma = below(ok, rem, 0, (BM, BK), lb)
    mb = below(ok, rem, 1, (BK, BN), lb)
    ma = bin(ma, below(om, M, 1, (BM, BK), lb), "and", lb)
    mb = bin(mb, below(on, N, 0, (BK, BN), lb), "and", lb)
    zero = 0.0 if dt != "i8" else 0
    za = lb.constant(zero, ir.TileType((BM, BK), ir.ScalarType(dt)))
    zb = lb.constant(zero, ir.TileType((BK, BN), ir.ScalarType(dt)))
    va = lb.value(K.LOAD, (ap_a, ma, za))
    vb = lb.value(K.LOAD, (bp_a, mb, zb))
    accn = lb.create(K.DOT, (va, vb, acc_a), {"out_dtype": acc0.type.elem.dtype}).result
    sa = bin(lb.constant(BK, ir.I32), sak, "mul", lb)
    sb = bin(lb.constant(BK, ir.I32), sbk, "mul", lb)
    apn = lb.value(K.ADDPTR, (ap_a, sp(sa, (BM, BK), lb)))
    bpn = lb.value(K.ADDPTR, (bp_a, sp(sb, (BK, BN), lb)))
    lb.create(K.YIELD, (apn, bpn, accn))
    fo = bb.create(K.FOR, (c32(0), nk, c32(1), ap, bp, acc0), result_types=(ap.type, bp.type, acc0.type),
                   regions=(loop_body,))

    acc = fo.results[2]
    cv = bb.value(K.CAST, (acc,), dtype=out) if out != acc0.type.elem.dtype else acc
    cp = bb.value(K.ADDPTR, (sp(c, (BM, BN)), grid2(om, scm, on, scn, BM, BN)))
    mm_ = bc(bb.value(K.CMP, (ex(om, 1), sp(M, (BM, 1))), pred="lt"), (BM, BN))
    mn_ = bc(bb.value(K.CMP, (ex(on, 0), sp(N, (1, BN))), pred="lt"), (BM, BN))
    mask = bin(mm_, mn_, "and")
    bb.create(K.STORE, (cp, cv, mask))
    bb.create(K.RETURN)
    return ir.Function("matmul", [a, b, c, M, N, Kd, sam, sak, sbk, sbn, scm, scn], body, {"BM": BM}, L)
