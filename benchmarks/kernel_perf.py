"""Kernel performance on the default machine: simulated cycles against the roofline, as a Markdown table.

Each kernel is launched through the public API, timing only (no numpy work), with `l2="cold"` so
every launch starts with an empty L2. Rooflines:

- matmul (and x @ Wᵀ): the cube bound, M*N*K / (cube MACs per cycle * cores);
- flash attention: the cube bound of its two matmuls, 2·seq²·d MACs per head (half when causal);
- conv2d (implicit GEMM through `npu.make_conv_descriptor`, and the direct Triton-style kernel of
  examples/idioms.py): the cube bound on the convolution's own MACs, N*OH*OW * K_out * C*R*S /
  (cube MACs per cycle * cores);
- softmax, layer norm, cross-entropy: the HBM bound, the bytes each must move at least (read x once,
  write y once, plus w, b, mean and rstd; logits, labels and loss) divided by the HBM bytes per cycle.

    python benchmarks/kernel_perf.py            # the best config found for each kernel
    python benchmarks/kernel_perf.py --sweep    # every candidate config (a few minutes)
    python benchmarks/kernel_perf.py --persistent=off   # grids as one program per dispatch (the old model)
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import npulang as npu  # noqa: E402
from examples import conv2d as conv  # noqa: E402
from examples import idioms, kernels, norms, tutorials  # noqa: E402


@dataclass
class Row:
    kernel: str
    problem: str
    config: str
    cycles: int
    roofline: float
    bound: str
    gm_mib: float
    hbm_mib: float

    @property
    def fraction(self) -> float:
        return self.roofline / self.cycles


def matmul_desc(size: int, bm: int, bn: int, bk: int, stages: int) -> Row:
    spec = npu.get_machine()
    a, b, c = (np.zeros((size, size), np.float16) for _ in range(3))
    grid = (npu.cdiv(size, bm), npu.cdiv(size, bn))
    run = tutorials.matmul_desc_kernel[grid](a, b, c, size, size, size, BM=bm, BN=bn, BK=bk, num_stages=stages,
                                             timing_only=True, l2="cold", persistent=PERSISTENT)
    roof = size ** 3 / (spec.cube_macs_per_cycle() * spec.cores)
    return _row("matmul_desc_kernel", f"fp16 {size}³",
                f"BM={bm} BN={bn} BK={bk} num_stages={stages}" + _persistent(PERSISTENT), run, roof, "cube")


def matmul_tutorial(size: int, bm: int, bn: int, bk: int, group: int, stages: int) -> Row:
    spec = npu.get_machine()
    a, b, c = (np.zeros((size, size), np.float16) for _ in range(3))
    grid = (npu.cdiv(size, bm) * npu.cdiv(size, bn),)
    run = tutorials.matmul_kernel[grid](
        a, b, c, size, size, size, size, 1, size, 1, size, 1, BLOCK_SIZE_M=bm, BLOCK_SIZE_N=bn,
        BLOCK_SIZE_K=bk, GROUP_SIZE_M=group, ACTIVATION="", ACC_DTYPE=npu.float32, num_stages=stages,
        timing_only=True, l2="cold", persistent=PERSISTENT)
    roof = size ** 3 / (spec.cube_macs_per_cycle() * spec.cores)
    return _row("matmul_kernel (tutorial)", f"fp16 {size}³",
                f"BM={bm} BN={bn} BK={bk} GROUP_SIZE_M={group} num_stages={stages}" + _persistent(PERSISTENT), run,
                roof, "cube")


def softmax(rows: int, cols: int, programs: int, stages: int) -> Row:
    x = np.zeros((rows, cols), np.float32)
    y = np.zeros_like(x)
    block = 1 << (cols - 1).bit_length()
    run = tutorials.softmax_kernel[(programs,)](y, x, cols, cols, rows, cols, BLOCK_SIZE=block,
                                                num_stages=stages, timing_only=True, l2="cold", persistent=PERSISTENT)
    config = f"grid={programs} BLOCK_SIZE={block} num_stages={stages}" + _persistent(PERSISTENT)
    return _row("softmax_kernel", f"fp32 {rows}x{cols}", config, run, _hbm_cycles(2 * x.nbytes), "HBM")


def layer_norm(rows: int, cols: int, block: int, stages: int, dtype: str = "float32") -> Row:
    x = np.zeros((rows, cols), dtype)
    y = np.zeros_like(x)
    w, b = np.zeros(cols, dtype), np.zeros(cols, dtype)
    mean, rstd = np.zeros(rows, np.float32), np.zeros(rows, np.float32)
    run = tutorials.layer_norm_fwd_fused[(rows,)](x, y, w, b, mean, rstd, cols, cols, 1e-5, BLOCK_SIZE=block,
                                                  num_stages=stages, timing_only=True, l2="cold", persistent=PERSISTENT)
    moved = x.nbytes + y.nbytes + w.nbytes + b.nbytes + mean.nbytes + rstd.nbytes
    config = f"grid={rows} BLOCK_SIZE={block} num_stages={stages}" + _persistent(PERSISTENT)
    return _row("layer_norm_fwd_fused", f"{_short(dtype)} {rows}x{cols}", config, run, _hbm_cycles(moved), "HBM")


def rms_norm(rows: int, cols: int, stages: int, dtype: str) -> Row:
    x = np.zeros((rows, cols), dtype)
    w = np.zeros(cols, dtype)
    (y, rstd), run = norms.run_rms_norm(x, w, num_stages=stages, timing_only=True, l2="cold", persistent=PERSISTENT)
    moved = x.nbytes + y.nbytes + w.nbytes + rstd.nbytes
    config = f"grid={rows} BLOCK_SIZE={1 << (cols - 1).bit_length()} num_stages={stages}" + _persistent(PERSISTENT)
    return _row("rms_norm_fwd", f"{_short(dtype)} {rows}x{cols}", config, run, _hbm_cycles(moved), "HBM")


def _short(dtype: str) -> str:
    return {"float32": "fp32", "float16": "fp16"}[dtype]


def _persistent(persistent: bool | None) -> str:
    return "" if persistent is None else f" persistent={persistent}"


def attention(seq: int, d: int, causal: bool, bm: int, bn: int, stages: int, heads: int = 24) -> Row:
    """Flash attention forward, fp16, one batch of `heads` heads."""
    spec = npu.get_machine()
    q = np.zeros((heads * seq, d), np.float16)
    run = kernels.attn_fwd[(seq // bm, heads)](q, q, q, np.zeros_like(q), 0.1, 1, heads, seq, HEAD_DIM=d, BLOCK_M=bm,
                                               BLOCK_N=bn, STAGE=3 if causal else 1, num_stages=stages,
                                               timing_only=True, l2="cold", persistent=PERSISTENT)
    macs = 2 * seq * seq * d * heads * (0.5 if causal else 1)
    roof = macs / (spec.cube_macs_per_cycle() * spec.cores)
    return _row("attn_fwd" + (" (causal)" if causal else ""), f"fp16 {heads} heads x {seq}, d={d}",
                f"BM={bm} BN={bn} num_stages={stages}" + _persistent(PERSISTENT), run, roof, "cube")


def conv2d(n: int, c: int, hw: int, kout: int, r: int, stride: int, pad: int, layout: str, cb: int | None,
           bm: int, bn: int, bk: int) -> Row:
    spec = npu.get_machine()
    shapes = {"NCHW": (n, c, hw, hw), "NHWC": (n, hw, hw, c), "NC1HWC0": (n, -(-c // (cb or c)), hw, hw, cb or c)}
    x = np.zeros(shapes[layout], np.float16)
    w = np.zeros((kout, c, r, r), np.float16)
    _, run = conv.conv2d(x, w, stride=stride, pad=pad, layout=layout, channel_block=cb, bm=bm, bn=bn, bk=bk,
                         timing_only=True, l2="cold", persistent=PERSISTENT)
    out = conv.out_size(hw, r, stride, pad, 1)
    cube = n * out * out * kout * c * r * r / (spec.cube_macs_per_cycle() * spec.cores)
    hbm = _hbm_cycles(x.nbytes + w.nbytes + n * out * out * kout * 2)  # read x and w once, write y
    problem = f"fp16 {layout} N={n} C={c} {hw}x{hw} K={kout} {r}x{r}" + (f"/{stride}" if stride > 1 else "")
    config = f"BM={bm} BN={bn} BK={bk} channel_block={cb or c}" + _persistent(PERSISTENT)
    return _row("conv2d_kernel", problem, config, run, max(cube, hbm), "cube" if cube >= hbm else "HBM")


def linear_bt(size: int, bm: int, bn: int, bk: int, stages: int, variant: str) -> Row:
    """y = x @ Wᵀ with W [N, K] (examples/idioms.py): read through strides (`strides`, the unit stride
    specialised; `unspecialised`, the same kernel with do_not_specialize), or tiles of W and npu.trans."""
    spec = npu.get_machine()
    x, w = np.zeros((size, size), np.float16), np.zeros((size, size), np.float16)
    launch = dict(num_stages=stages, timing_only=True, l2="cold")
    if variant == "trans":
        _, run = idioms.run_linear_trans(x, w, (bm, bn, bk), **launch)
    else:
        kernel = idioms.linear_kernel if variant == "strides" else idioms.linear_kernel_unspecialised
        _, run = idioms.run_linear(x, w, (bm, bn, bk), kernel=kernel, **launch)
    roof = size ** 3 / (spec.cube_macs_per_cycle() * spec.cores)
    name = {"strides": "linear_kernel (x @ Wᵀ, strides)", "unspecialised": "linear_kernel, do_not_specialize",
            "trans": "linear_trans_kernel (npu.trans)"}[variant]
    return _row(name, f"fp16 {size}³", f"BM={bm} BN={bn} BK={bk} num_stages={stages}", run, roof, "cube")


def conv2d_direct(n: int, hw: int, c: int, k: int, rs: int, bw: int, bk: int, bc: int, stages: int) -> Row:
    """The Triton-style direct NHWC convolution of examples/idioms.py (stride 1, same padding)."""
    spec = npu.get_machine()
    x, w = np.zeros((n, hw, hw, c), np.float16), np.zeros((rs, rs, c, k), np.float16)
    _, run = idioms.run_conv2d_nhwc(x, w, 1, rs // 2, (bw, bk, bc), num_stages=stages, timing_only=True,
                                    l2="cold")
    roof = n * hw * hw * k * c * rs * rs / (spec.cube_macs_per_cycle() * spec.cores)
    return _row("conv2d_nhwc_kernel (direct, masks)", f"fp16 N={n} C={c} {hw}x{hw} K={k} {rs}x{rs}",
                f"BLOCK_W={bw} BLOCK_K={bk} BLOCK_C={bc} num_stages={stages}", run, roof, "cube")


def cross_entropy(rows: int, cols: int, stages: int) -> Row:
    logits = np.zeros((rows, cols), np.float32)
    labels = np.zeros(rows, np.int32)
    loss, run = idioms.run_cross_entropy(logits, labels, num_stages=stages, timing_only=True, l2="cold",
                                         persistent=PERSISTENT)
    moved = logits.nbytes + labels.nbytes + loss.nbytes
    block = 1 << (cols - 1).bit_length()
    config = f"grid={rows} BLOCK={block} num_stages={stages}" + _persistent(PERSISTENT)
    return _row("cross_entropy_kernel", f"fp32 {rows}x{cols}", config, run, _hbm_cycles(moved), "HBM")


def _hbm_cycles(nbytes: int) -> float:
    return nbytes / npu.get_machine().hbm_bytes_per_cycle


def _row(kernel: str, problem: str, config: str, run: Any, roof: float, bound: str) -> Row:
    mib = 1 << 20
    return Row(kernel, problem, config, run.cycles, roof, bound, run.gm_bytes / mib,
               run.hbm_bytes / mib)


# The best configs found (first of each list) and the other candidates `--sweep` measures.
CANDIDATES: list[tuple[str, Callable[..., Row], list[tuple[Any, ...]]]] = [
    ("matmul_desc", matmul_desc, [(2048, 128, 256, 32, 2), (2048, 128, 128, 32, 3), (2048, 128, 128, 64, 3),
                                  (2048, 128, 128, 64, 2), (2048, 256, 128, 64, 2)]),
    ("matmul_tutorial", matmul_tutorial, [(2048, 128, 256, 32, 8, 2), (2048, 128, 128, 32, 16, 3),
                                          (2048, 128, 128, 32, 8, 3), (2048, 128, 128, 64, 8, 2)]),
    ("conv2d 3x3", conv2d, [(4, 64, 56, 64, 3, 1, 1, "NHWC", 16, 112, 64, 144),
                            (4, 64, 56, 64, 3, 1, 1, "NHWC", 16, 96, 64, 144),
                            (4, 64, 56, 64, 3, 1, 1, "NHWC", 16, 112, 64, 72),
                            (4, 64, 56, 64, 3, 1, 1, "NHWC", 16, 64, 64, 144)]),
    ("conv2d 3x3 NC1HWC0", conv2d, [(4, 64, 56, 64, 3, 1, 1, "NC1HWC0", 16, 112, 64, 144)]),
    ("conv2d 3x3 NCHW", conv2d, [(4, 64, 56, 64, 3, 1, 1, "NCHW", 16, 112, 64, 144)]),
    ("conv2d 1x1", conv2d, [(4, 64, 56, 256, 1, 1, 0, "NHWC", 32, 112, 256, 32),
                            (4, 64, 56, 256, 1, 1, 0, "NHWC", 32, 112, 128, 32),
                            (4, 64, 56, 256, 1, 1, 0, "NHWC", None, 224, 64, 64),
                            (4, 64, 56, 256, 1, 1, 0, "NHWC", 16, 112, 256, 16)]),
    ("conv2d 7x7/2", conv2d, [(4, 3, 224, 64, 7, 2, 3, "NHWC", None, 128, 64, 49),
                              (4, 3, 224, 64, 7, 2, 3, "NHWC", None, 64, 64, 147),
                              (4, 3, 224, 64, 7, 2, 3, "NHWC", None, 112, 64, 49)]),
    ("softmax", softmax, [(4096, 4096, 192, 2), (4096, 4096, 96, 3), (4096, 4096, 48, 3),
                          (4096, 4096, 24, 2)]),
    ("layer_norm", layer_norm, [(4096, 4096, 2048, 2), (4096, 4096, 2048, 3), (4096, 4096, 4096, 1),
                                (4096, 4096, 1024, 2)]),
    ("layer_norm_fp16", layer_norm, [(4096, 4096, 2048, 2, "float16"), (4096, 4096, 4096, 1, "float16"),
                                     (4096, 4096, 1024, 2, "float16")]),
    ("rms_norm", rms_norm, [(4096, 4096, 1, "float32"), (4096, 4096, 2, "float32")]),
    ("rms_norm_fp16", rms_norm, [(4096, 4096, 2, "float16"), (4096, 4096, 1, "float16")]),
    ("attention", attention, [(2048, 128, False, 64, 128, 3), (2048, 128, False, 64, 128, 2),
                              (2048, 128, False, 64, 256, 2), (2048, 128, False, 128, 64, 2),
                              (2048, 128, False, 32, 256, 3)]),
    ("attention_causal", attention, [(2048, 128, True, 64, 128, 3), (2048, 128, True, 64, 128, 2),
                                     (2048, 128, True, 32, 128, 3), (2048, 128, True, 128, 64, 2)]),
    ("linear_bt", linear_bt, [(2048, 128, 256, 32, 2, "strides"), (2048, 128, 128, 32, 3, "strides")]),
    ("linear_bt_unspecialised", linear_bt, [(2048, 128, 256, 32, 2, "unspecialised")]),
    ("linear_trans", linear_bt, [(2048, 128, 256, 32, 2, "trans"), (2048, 128, 128, 32, 3, "trans")]),
    ("cross_entropy", cross_entropy, [(4096, 4096, 2), (4096, 4096, 1)]),
    ("conv2d_direct", conv2d_direct, [(4, 56, 64, 64, 3, 64, 64, 64, 2), (4, 56, 64, 64, 3, 64, 64, 32, 3),
                                      (4, 56, 64, 64, 3, 32, 64, 64, 2)]),
]
PERSISTENT: bool | None = None  # --persistent: None lets the runtime choose (grids larger than the machine)


def table(rows: list[Row]) -> str:
    out = ["| kernel | problem | config | cycles | roofline | bound | % of roofline | GM MiB | HBM MiB |",
           "|---|---|---|---:|---:|---|---:|---:|---:|"]
    for r in rows:
        out.append(f"| {r.kernel} | {r.problem} | {r.config} | {r.cycles:,} | {r.roofline:,.0f} | "
                   f"{r.bound} | {r.fraction:.1%} | {r.gm_mib:,.0f} | {r.hbm_mib:,.0f} |")
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sweep", action="store_true", help="measure every candidate config")
    parser.add_argument("--persistent", choices=["auto", "on", "off"], default="auto",
                        help="grids as persistent per-core loops: auto (larger than the machine), always, never")
    args = parser.parse_args()
    global PERSISTENT
    PERSISTENT = {"auto": None, "on": True, "off": False}[args.persistent]
    spec = npu.get_machine()
    print(f"machine `{spec.name}`: {spec.cores} cores, {spec.cube_macs_per_cycle()} fp16 MAC/cycle/core, "
          f"HBM {spec.hbm_bytes_per_cycle:.0f} B/cycle; cold L2, timing only\n")
    rows: list[Row] = []
    start = time.time()
    for _, fn, configs in CANDIDATES:
        for config in configs if args.sweep else configs[:1]:
            rows.append(fn(*config))
    print(table(rows))
    print(f"\n({time.time() - start:.0f} s of simulation)")


if __name__ == "__main__":
    main()
