"""The npulang pytest plugin (entry point `pytest11`): --npu-interpret, fixtures, Hypothesis profiles.

Sessions are real `pytest` runs in a subprocess on a test file written to a temporary directory, so
they load the plugin from its entry point, as a user's session does.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from hypothesis import settings

import npulang as npu
from npulang.testing import pytest_plugin

# what Hypothesis reads to tell it runs in CI (hypothesis._settings.is_in_ci): the sessions below run as on a
# developer's machine unless a test sets one
CI_VARIABLES = ("CI", "__TOX_ENVIRONMENT_VARIABLE_ORIGINAL_CI", "TF_BUILD", "bamboo.buildKey", "BUILDKITE", "CIRCLECI",
                "CIRRUS_CI", "CODEBUILD_BUILD_ID", "GITHUB_ACTIONS", "GITLAB_CI", "HEROKU_TEST_RUN_ID",
                "TEAMCITY_VERSION")


KERNEL = '''
import numpy as np
import npulang as npu


@npu.jit
def double(x_ptr, out_ptr, n, BLOCK: npu.constexpr):
    offs = npu.program_id(0) * BLOCK + npu.arange(0, BLOCK)
    npu.store(out_ptr + offs, npu.load(x_ptr + offs, mask=offs < n) * 2.0, mask=offs < n)


def launch(**options):
    x = np.arange(1000, dtype=np.float32)
    out = np.zeros_like(x)
    run = double[(4,)](x, out, 1000, BLOCK=256, **options)
    assert np.array_equal(out, 2 * x)
    return run
'''


@npu.jit
def double(x_ptr, out_ptr, n, BLOCK: npu.constexpr):
    offs = npu.program_id(0) * BLOCK + npu.arange(0, BLOCK)
    npu.store(out_ptr + offs, npu.load(x_ptr + offs, mask=offs < n) * 2.0, mask=offs < n)


def _pytest(tmp_path: Path, tests: str, *args: str, env: dict[str, str] | None = None,
            python: list[str] | None = None) -> subprocess.CompletedProcess:
    (tmp_path / "test_user.py").write_text(KERNEL + textwrap.dedent(tests))
    clean = {k: v for k, v in os.environ.items() if k not in (*CI_VARIABLES, "NPU_INTERPRET", "PYTEST_ADDOPTS")}
    return subprocess.run([sys.executable, *(python or ["-m", "pytest"]), "-p", "no:cacheprovider", "-q", *args,
                           "test_user.py"], cwd=tmp_path, env={**clean, **(env or {})}, capture_output=True,
                          text=True, timeout=300)


def test_npu_interpret_reruns_the_session_interpreted_with_the_fixtures_and_profile(tmp_path: Path) -> None:
    tests = '''
        import pytest
        from hypothesis import settings
        from npulang.testing import check_kernel

        def test_launches_are_interpreted(npu_interpret):
            assert npu_interpret and launch().cycles is None

        def test_an_explicit_interpret_false_still_compiles():
            assert launch(interpret=False).cycles > 0

        def test_check_kernel_compares_the_interpreter_with_the_reference():
            args = (np.arange(9, dtype=np.float32), np.zeros(9, np.float32), 9)
            checked = check_kernel(double, (1,), args, lambda x, out, n: 2 * x, outputs="out_ptr", BLOCK=16)
            assert checked.compiled is None

        @pytest.mark.npu_compiled
        def test_needs_cycles():
            raise AssertionError("skipped under --npu-interpret")

        def test_switches_machine(npu_device):
            npu.set_machine("systolic128")
            assert launch().machine.name == "systolic128"

        def test_gets_the_previous_machine_back(npu_device):
            assert npu.get_machine().name == "davinci" and npu_device.spec.name == "davinci"

        def test_the_npulang_profile_is_loaded():
            assert settings.get_current_profile_name() == "npulang" and settings().deadline is None
            assert settings().database is not None and not settings().derandomize
    '''
    result = _pytest(tmp_path, tests, "--npu-interpret")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "6 passed, 1 skipped" in result.stdout


@pytest.mark.npu_compiled
def test_without_npu_interpret_launches_compile_and_marked_tests_run(npu_interpret: bool) -> None:
    x = np.arange(64, dtype=np.float32)
    assert not npu_interpret and double[(1,)](x, np.zeros_like(x), 64, BLOCK=64).cycles > 0


def test_the_profile_is_chosen_only_when_none_was() -> None:
    chosen = settings.get_current_profile_name()
    try:
        for start, after in [("default", "npulang"), ("ci", "ci")]:  # CI: Hypothesis' own, derandomized
            settings.load_profile(start)
            pytest_plugin.use_hypothesis_profiles()
            assert settings.get_current_profile_name() == after
        assert settings.get_profile("npulang").deadline is None and settings.get_profile("ci").derandomize
    finally:
        settings.load_profile(chosen)


def test_a_failing_example_is_kept_and_replayed_first(tmp_path: Path) -> None:
    tests = '''
        from pathlib import Path
        from hypothesis import given
        from npulang.testing import arrays, assert_close, shapes

        @given(x=arrays(np.float32, shapes(1, max_side=500, multiple_of=256)))
        def test_double(x):
            with Path("tried.txt").open("a") as f:
                f.write(f"{x.size}\\n")
            out = np.zeros_like(x)
            double[(npu.cdiv(x.size, 256),)](x, out, min(x.size, 256), BLOCK=256, interpret=True)  # bug: 1 block
            assert_close(out, 2.0 * x)
    '''
    first = _pytest(tmp_path, tests)
    assert first.returncode == 1 and "are not close" in first.stdout
    assert _last_tried(tmp_path) == 257  # shrunk to one past the block, the smallest failing size
    assert any((tmp_path / ".hypothesis" / "examples").iterdir())
    (tmp_path / "tried.txt").unlink()
    second = _pytest(tmp_path, tests)
    assert second.returncode == 1
    assert int((tmp_path / "tried.txt").read_text().split()[0]) == 257  # replayed from the database first


def _last_tried(tmp_path: Path) -> int:
    return int((tmp_path / "tried.txt").read_text().split()[-1])  # Hypothesis ends by rerunning the shrunk one


def test_a_session_without_hypothesis_loads_the_plugin(tmp_path: Path) -> None:
    blocker = '''
import sys, pytest

class NoHypothesis:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("hypothesis", "_hypothesis_pytestplugin"):
            raise ModuleNotFoundError(f"No module named {name!r}")

sys.meta_path.insert(0, NoHypothesis())
sys.exit(pytest.main(sys.argv[1:]))
'''
    tests = '''
        import pytest
        import npulang.testing
        from npulang.testing import assert_close, check_kernel

        def test_plugin_and_helpers_work(npu_device):
            args = (np.arange(9, dtype=np.float32), np.zeros(9, np.float32), 9)
            check_kernel(double, (1,), args, lambda x, out, n: 2 * x, outputs="out_ptr", BLOCK=16)
            assert_close(np.float16([1, 2]), [1, 2])

        def test_strategies_say_hypothesis_is_missing():
            with pytest.raises(ModuleNotFoundError, match="hypothesis"):
                npulang.testing.shapes
    '''
    result = _pytest(tmp_path, tests, "-p", "no:hypothesispytest", python=["-c", blocker])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 passed" in result.stdout


@pytest.mark.npu_compiled
def test_npu_device_starts_the_test_with_a_cold_l2(request: pytest.FixtureRequest) -> None:
    x = np.zeros(1 << 20, np.float32)  # 4 MiB: bandwidth-bound, so L2 hits show in the cycles

    def cycles(**options) -> int:
        return double[(256,)](x, np.zeros_like(x), x.size, BLOCK=4096, timing_only=True, **options).cycles

    cold = cycles(l2="cold")
    assert cycles() < cold  # x is in L2 now
    request.getfixturevalue("npu_device")
    assert cycles() == cold


def test_our_own_session_runs_under_the_plugin() -> None:
    assert settings.get_current_profile_name() in ("npulang", "ci") and settings().deadline is None
