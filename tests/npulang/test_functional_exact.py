"""The functional launch's fast paths (bound views, in-place accumulation, per-launch errstate, cheaper
race checks) change no result: tutorial outputs are bit-identical to numpy doing the same arithmetic
in the same order, and cycles equal the timing-only launch's (the generated timing code)."""

from __future__ import annotations

import numpy as np

from examples import tutorials as tut
from npulang.runtime import RUNTIME


def _cold(fn, **launch):
    RUNTIME.device().flush_l2()
    return fn(**launch)


def test_matmul_is_bit_identical_to_blockwise_f32_accumulation_and_cycles_match_timing_only():
    rng = np.random.default_rng(3)
    a = rng.standard_normal((128, 192)).astype(np.float16)
    b = rng.standard_normal((192, 128)).astype(np.float16)
    bm, bn, bk = 64, 64, 32

    def run(**launch):
        return tut.run_matmul(a, b, np.float16, block=(bm, bn, bk), group=2, **launch)

    c, full = _cold(run)
    _, timing = _cold(run, timing_only=True)
    assert full.cycles == timing.cycles
    expected = np.zeros((128, 128), np.float32)
    for i in range(0, 128, bm):
        for j in range(0, 128, bn):
            acc = np.zeros((bm, bn), np.float32)
            for k in range(0, 192, bk):  # one mmad per K step, accumulating in f32
                acc += a[i:i + bm, k:k + bk].astype(np.float32) @ b[k:k + bk, j:j + bn].astype(np.float32)
            expected[i:i + bm, j:j + bn] = acc
    assert c.tobytes() == expected.astype(np.float16).tobytes()


def test_softmax_is_bit_identical_to_numpy_and_cycles_match_timing_only():
    x = np.random.default_rng(4).standard_normal((48, 256)).astype(np.float32)
    out, full = _cold(lambda **kw: tut.run_softmax(x, programs=6, **kw))
    _, timing = _cold(lambda **kw: tut.run_softmax(x, programs=6, **kw), timing_only=True)
    assert full.cycles == timing.cycles
    assert out.tobytes() == tut.ref_softmax(x).tobytes()
