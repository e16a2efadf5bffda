"""attention against a float64 numpy reference, compiled and interpreted: awkward lengths, broadcast batch
dimensions, causal (top-left) masks, scales of either sign, fp16/bf16/f32; its argument errors; its rule; npu-tune
and npu-prof on it."""

from __future__ import annotations

import importlib
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import ml_dtypes
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import kernel_lib as kl
import npulang as npu
from kernel_lib.attention import AttentionCall, unmasked_pairs
from npulang.profiler import cli as prof_cli

TOLERANCE = {np.float16: 1e-2, ml_dtypes.bfloat16: 4e-2, np.float32: 1e-5}


def reference(q, k, v, causal=False, scale=None):
    """softmax(q kᵀ · scale) v in float64, the mask as torch's `is_causal` (query i sees keys j <= i)."""
    scale = 1 / math.sqrt(q.shape[-1]) if scale is None else scale
    s = q.astype(np.float64) @ np.swapaxes(k.astype(np.float64), -1, -2) * scale
    if causal:
        s = np.where(np.tril(np.ones(s.shape[-2:], bool)), s, -np.inf)
    p = np.exp(s - s.max(axis=-1, keepdims=True))
    return (p / p.sum(axis=-1, keepdims=True)) @ v.astype(np.float64)


def check(q, k, v, **kw):
    got = kl.attention(q, k, v, **kw)
    want = reference(q, k, v, **kw)
    assert got.dtype == q.dtype and got.shape == want.shape
    tol = TOLERANCE[q.dtype.type]
    np.testing.assert_allclose(got.astype(np.float64), want, rtol=tol, atol=tol)
    return got


lengths = st.one_of(st.sampled_from([1, 2, 63, 64, 65, 127, 128, 129]), st.integers(1, 200))


@settings(max_examples=12, deadline=None)
@given(sq=lengths, sk=lengths, d=st.sampled_from([8, 16, 40, 64]), dv=st.sampled_from([None, 24]),
       batch=st.sampled_from([((), (), ()), ((2,), (2,), (2,)), ((2, 3), (1, 3), (2, 1)), ((3,), (), (3,))]),
       dtype=st.sampled_from([np.float16, ml_dtypes.bfloat16, np.float32]), causal=st.booleans(),
       scale=st.sampled_from([None, 0.5, -0.2, 0.0]), interpret=st.booleans(), seed=st.integers(0, 9))
def test_attention_matches_numpy(sq, sk, d, dv, batch, dtype, causal, scale, interpret, seed):
    rng = np.random.default_rng(seed)
    (bq, bk, bv) = batch
    q = rng.standard_normal((*bq, sq, d)).astype(dtype)
    k = rng.standard_normal((*bk, sk, d)).astype(dtype)
    v = rng.standard_normal((*bv, sk, dv or d)).astype(dtype)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("NPU_INTERPRET", "1" if interpret else "0")
        check(q, k, v, causal=causal, scale=scale)


def test_compiled_and_interpreted_agree_on_a_ragged_causal_problem():
    rng = np.random.default_rng(3)
    q, k, v = (rng.standard_normal((2, n, 48)).astype(np.float16) for n in (150, 97, 97))
    compiled = check(q, k, v, causal=True)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("NPU_INTERPRET", "1")
        interpreted = kl.attention(q, k, v, causal=True)
    np.testing.assert_allclose(interpreted.astype(np.float32), compiled.astype(np.float32), rtol=2e-3, atol=2e-3)


def test_causal_is_top_left_aligned():
    """With more queries than keys, query i sees keys 0..i: the first query sees only key 0 (torch's
    `is_causal`), where a bottom-right mask would let it see all but the last few."""
    rng = np.random.default_rng(0)
    q, k, v = (rng.standard_normal((n, 16)).astype(np.float32) for n in (5, 3, 3))
    out = kl.attention(q, k, v, causal=True)
    np.testing.assert_allclose(out[0], v[0], rtol=1e-6)
    np.testing.assert_allclose(out[4], reference(q, k, v)[4], rtol=1e-5)


def test_a_masked_key_never_outweighs_a_visible_one_whatever_the_scale():
    """With a large scale a visible score can fall below any finite fill (-1e30 once): the mask must still
    win, so query 0 (which sees only key 0) returns v[0] even when its one score is very negative."""
    q = np.full((4, 16), 1.0, np.float32)
    k = np.full((4, 16), -1.0, np.float32)  # every score -16: scaled by 1e30, -1.6e31
    v = np.arange(4 * 8, dtype=np.float32).reshape(4, 8)
    for interpret in ("0", "1"):
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("NPU_INTERPRET", interpret)
            check(q, k, v, causal=True, scale=1e30)


def test_the_module_and_the_package_give_the_same_function():
    assert importlib.import_module("kernel_lib.attention").attention is kl.attention


def test_unmasked_pairs_counts_the_causal_triangle():
    assert unmasked_pairs(4, 4, True) == 10 and unmasked_pairs(4, 4, False) == 16
    assert unmasked_pairs(5, 3, True) == 1 + 2 + 3 + 3 + 3 and unmasked_pairs(3, 5, True) == 6


def test_the_rule_is_used_without_a_database_and_never_simulates():
    q = np.zeros((1, 256, 64), np.float16)
    call = AttentionCall(q, q, q, np.empty_like(q), 1, (0, 0, 0), 0.125, False)
    problem = call.problem()
    first, source = problem.candidates()[0]
    assert (first, source) == ({"BM": 64, "BN": 128, "num_stages": 3}, "heuristic")
    with npu.profile() as prof:
        problem.launch(timing_only=True)
    assert len(prof.launches) == 1  # the one launch, no search


Q = np.zeros((2, 8, 16), np.float16)


@pytest.mark.parametrize("call,message", [
    (lambda: kl.attention(Q.astype(np.int8), Q, Q), "kernel_lib.attention: q has dtype int8; attention takes "
                                                    "float16, bfloat16 or float32"),
    (lambda: kl.attention(Q, Q.astype(np.float32), Q), "kernel_lib.attention: arguments must share one dtype"),
    (lambda: kl.attention(Q, Q[..., :8], Q), "kernel_lib.attention: q and k must share the head dimension D"),
    (lambda: kl.attention(Q, Q, Q[:, :4]), "kernel_lib.attention: k and v must have as many keys"),
    (lambda: kl.attention(Q, np.zeros((3, 8, 16), np.float16), Q), "kernel_lib.attention: the leading dimensions"),
    (lambda: kl.attention(Q[0, 0], Q, Q), "kernel_lib.attention: q must have at least 2 dimension(s)"),
    (lambda: kl.attention(Q, Q, Q, scale=float("nan")), "kernel_lib.attention: scale must be a finite number"),
    (lambda: kl.attention(Q, Q, Q, scale="0.1"), "kernel_lib.attention: scale must be a finite number"),
    (lambda: kl.attention(Q, Q, Q, causal="yes"), "kernel_lib.attention: causal must be True or False"),
    (lambda: kl.attention(Q[:, :0], Q, Q), "kernel_lib.attention: q is empty"),
])
def test_attention_errors(call, message):
    with pytest.raises(kl.OperatorError) as info:
        call()
    assert str(info.value).startswith(message), str(info.value)


def test_npu_tune_attention_saves_the_config_the_library_call_then_uses(tuning_db):
    env = {**os.environ, "NPU_TUNING_DB": tuning_db}
    proc = subprocess.run([str(Path(sys.executable).parent / "npu-tune"), "attention_causal", "--shapes", "1x2x96x32",
                           "--trials", "2", "--json", "--no-verify"], capture_output=True, text=True, env=env,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr
    (result,) = [json.loads(line) for line in proc.stdout.splitlines()]
    assert (result["op"], result["shape"], result["trials"]) == ("attention_causal", "1x2x96x32", 2)
    assert result["cycles"] >= result["roofline_cycles"] > 0
    x = np.zeros((2, 96, 32), np.float16)
    problem = AttentionCall(x, x, x, np.empty_like(x), 2, (96 * 32,) * 3, 32 ** -0.5, True).problem()
    assert problem.candidates()[0] == (result["config"], "tuned")


def test_npu_prof_attention_profiles_the_library_call(capsys):
    assert {"attention", "attention_causal"} <= set(prof_cli.registered_targets())
    assert prof_cli.main(["attention", "--shape", "1x2x80x32", "--dtype", "bf16"]) == 0
    assert "\nslowest: _attention_kernel" in capsys.readouterr().out
    assert prof_cli.main(["attention_causal", "--shape", "2x80x32"]) == 2
    assert "expected BxHxSxD with positive integers" in capsys.readouterr().err
