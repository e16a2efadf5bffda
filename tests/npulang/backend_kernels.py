"""Block-IR kernels built by hand with `ir.Builder` for the backend tests (no frontend needed), and
`run_compiled`, which compiles a frontend kernel with the backend alone and runs it on the simulator."""

from typing import Any

from isa import MachineSpec
from npulang import ir
from npulang.backend import CompiledKernel, compile_function
from simulator import Device, RunResult, SimOptions

SPEC = MachineSpec.load()
CHECKED = SimOptions(functional=True, detect_races=True)


def run_compiled(jf: Any, grid: tuple[int, ...], args: list[Any], *, num_stages: int = 2,
                 **meta: Any) -> tuple[CompiledKernel, RunResult]:
    """Specialise `jf` for `args`/`meta`, compile it for the default machine, run it (race detection on)."""
    fn, _ = jf.specialize(*args, **meta)
    ck = compile_function(fn, SPEC, num_stages=num_stages)
    call = jf.bind(tuple(args), meta)
    result = Device(SPEC).run(ck.program, grid=grid, args=[call.runtime[n] for n in fn.arg_names], options=CHECKED)
    return ck, result

K = ir.OpKind


def vadd(BLOCK=256):
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
    vx = b.value(K.LOAD, (px, mask)); vy = b.value(K.LOAD, (py, mask))
    s = b.value(K.BINARY, (vx, vy), op="add")
    b.create(K.STORE, (po, s, mask))
    b.create(K.RETURN)
    return ir.Function("vadd", [x, y, o, n], body, {"BLOCK": BLOCK}, L)

def matmul(BM=32, BN=32, BK=32, dt="f16", out="f16"):
    L = ir.Loc("mm.py", 10)
    a, b, c = (ir.Value(ir.PtrType(t), n) for n, t in (("a", dt), ("b", dt), ("c", out)))
    M, N, Kd, sam, sak, sbk, sbn, scm, scn = (ir.Value(ir.I32, n) for n in "M N K sam sak sbk sbn scm scn".split())
    body = ir.Block(); bb = ir.Builder(body, L)
    def c32(v): return bb.constant(v, ir.I32)
    def bin(x, y, op): return bb.value(K.BINARY, (x, y), op=op)
    def sp(x, shape): return bb.value(K.SPLAT, (x,), shape=shape)
    def bc(x, shape): return bb.value(K.BROADCAST, (x,), shape=shape)
    def ex(x, ax): return bb.value(K.EXPAND_DIMS, (x,), axis=ax)
    pm = bb.value(K.PROGRAM_ID, axis=0); pn = bb.value(K.PROGRAM_ID, axis=1)
    om = bin(sp(bin(pm, c32(BM), "mul"), (BM,)), bb.value(K.ARANGE, start=0, end=BM), "add")
    on = bin(sp(bin(pn, c32(BN), "mul"), (BN,)), bb.value(K.ARANGE, start=0, end=BN), "add")
    ok = bb.value(K.ARANGE, start=0, end=BK)
    def grid2(rowv, rs, colv, cs, R, C):
        r = bc(bin(ex(rowv, 1), sp(rs, (R, 1)), "mul"), (R, C))
        cc = bc(bin(ex(colv, 0), sp(cs, (1, C)), "mul"), (R, C))
        return bin(r, cc, "add")
    ap = bb.value(K.ADDPTR, (sp(a, (BM, BK)), grid2(om, sam, ok, sak, BM, BK)))
    bp = bb.value(K.ADDPTR, (sp(b, (BK, BN)), grid2(ok, sbk, on, sbn, BK, BN)))
    acc0 = bb.constant(0.0, ir.TileType((BM, BN), ir.ScalarType("i32" if dt == "i8" else "f32")))
    nk = bin(bin(Kd, c32(BK - 1), "add"), c32(BK), "floordiv")
    loop_body = ir.Block()
    iv = ir.Value(ir.I32, "k"); ap_a = ir.Value(ap.type, "a_ptrs"); bp_a = ir.Value(bp.type, "b_ptrs"); acc_a = ir.Value(acc0.type, "acc")
    loop_body.args = [iv, ap_a, bp_a, acc_a]
    lb = ir.Builder(loop_body, ir.Loc("mm.py", 20))
    rem = lb.value(K.BINARY, (Kd, lb.value(K.BINARY, (iv, lb.constant(BK, ir.I32)), op="mul")), op="sub")
    okx = lb.value(K.EXPAND_DIMS, (ok,), axis=0)
    ma = lb.value(K.BROADCAST, (lb.value(K.CMP, (okx, lb.value(K.SPLAT, (rem,), shape=(1, BK))), pred="lt"),), shape=(BM, BK))
    oky = lb.value(K.EXPAND_DIMS, (ok,), axis=1)
    mb = lb.value(K.BROADCAST, (lb.value(K.CMP, (oky, lb.value(K.SPLAT, (rem,), shape=(BK, 1))), pred="lt"),), shape=(BK, BN))
    row_ok = lb.value(K.BROADCAST, (lb.value(K.CMP, (lb.value(K.EXPAND_DIMS, (om,), axis=1),
                                                     lb.value(K.SPLAT, (M,), shape=(BM, 1))), pred="lt"),), shape=(BM, BK))
    col_ok = lb.value(K.BROADCAST, (lb.value(K.CMP, (lb.value(K.EXPAND_DIMS, (on,), axis=0),
                                                     lb.value(K.SPLAT, (N,), shape=(1, BN))), pred="lt"),), shape=(BK, BN))
    ma = lb.value(K.BINARY, (ma, row_ok), op="and")
    mb = lb.value(K.BINARY, (mb, col_ok), op="and")
    za = lb.constant(0.0 if dt != "i8" else 0, ir.TileType((BM, BK), ir.ScalarType(dt)))
    zb = lb.constant(0.0 if dt != "i8" else 0, ir.TileType((BK, BN), ir.ScalarType(dt)))
    va = lb.value(K.LOAD, (ap_a, ma, za)); vb = lb.value(K.LOAD, (bp_a, mb, zb))
    accn = lb.create(K.DOT, (va, vb, acc_a), {"out_dtype": acc0.type.elem.dtype}).result
    sa = lb.value(K.BINARY, (lb.constant(BK, ir.I32), sak), op="mul")
    sb = lb.value(K.BINARY, (lb.constant(BK, ir.I32), sbk), op="mul")
    apn = lb.value(K.ADDPTR, (ap_a, lb.value(K.SPLAT, (sa,), shape=(BM, BK))))
    bpn = lb.value(K.ADDPTR, (bp_a, lb.value(K.SPLAT, (sb,), shape=(BK, BN))))
    lb.create(K.YIELD, (apn, bpn, accn))
    fo = bb.create(K.FOR, (c32(0), nk, c32(1), ap, bp, acc0), result_types=(ap.type, bp.type, acc0.type), regions=(loop_body,))
    acc = fo.results[2]
    cv = bb.value(K.CAST, (acc,), dtype=out) if out != acc0.type.elem.dtype else acc
    cp = bb.value(K.ADDPTR, (sp(c, (BM, BN)), grid2(om, scm, on, scn, BM, BN)))
    mm_ = bc(bb.value(K.CMP, (ex(om, 1), sp(M, (BM, 1))), pred="lt"), (BM, BN))
    mn_ = bc(bb.value(K.CMP, (ex(on, 0), sp(N, (1, BN))), pred="lt"), (BM, BN))
    mask = bin(mm_, mn_, "and")
    bb.create(K.STORE, (cp, cv, mask)); bb.create(K.RETURN)
    return ir.Function("matmul", [a, b, c, M, N, Kd, sam, sak, sbk, sbn, scm, scn], body, {"BM": BM}, L)
