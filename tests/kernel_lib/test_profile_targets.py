"""kernel_lib's operators as `npu-prof <op> --shape ...` targets, found through the installed entry points."""

from __future__ import annotations

from npulang.profiler import cli


def test_the_operators_are_registered_with_npu_prof():
    assert {"gemm", "conv2d", "softmax", "layer_norm", "rms_norm"} <= set(cli.registered_targets())


def test_npu_prof_gemm_profiles_the_library_call(capsys):
    assert cli.main(["gemm", "--shape", "64x48x32", "--dtype", "fp16"]) == 0
    out = capsys.readouterr().out
    assert "_gemm_kernel" in out and "\nslowest: _gemm_kernel" in out


def test_a_target_runs_timing_only_unless_asked_and_the_profile_is_the_same(capsys, monkeypatch):
    import npulang as npu

    modes = []
    launch = npu.launch_defaults

    def spy(**options):
        modes.append(options.get("timing_only"))
        return launch(**options)
    monkeypatch.setattr(npu, "launch_defaults", spy)
    assert cli.main(["gemm", "--shape", "96x80x64"]) == 0
    timing_only = capsys.readouterr().out
    assert cli.main(["gemm", "--shape", "96x80x64", "--functional"]) == 0
    assert capsys.readouterr().out == timing_only and modes == [True]


def test_npu_prof_conv2d_and_a_bad_shape(capsys):
    assert cli.main(["conv2d", "--shape", "1,16,8,8,16,3,3,1,1"]) == 0
    assert "_conv2d_kernel" in capsys.readouterr().out
    assert cli.main(["gemm", "--shape", "64x64"]) == 2
    assert capsys.readouterr().err.strip() == (
        "npu-prof gemm: bad shape '64x64' for gemm: expected MxNxK with positive integers "
        "(usage: npu-prof gemm --shape MxNxK [--dtype fp16|bf16|fp32|int8])")


def test_npu_prof_int8_conv2d_profiles_its_kernels(capsys):
    """The int8 filter is used as drawn (dividing it by C·R·S overflowed int8, or made it float64)."""
    for shape in ("1,16,8,8,16,3,3", "1,4,8,8,4,3,3"):  # C·R·S = 144 > 127; 36
        assert cli.main(["conv2d", "--shape", shape, "--dtype", "int8", "--functional"]) == 0
        assert "_conv2d_kernel" in capsys.readouterr().out
