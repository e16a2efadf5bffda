"""The npulang pytest plugin, registered as the `pytest11` entry point `npulang` (no conftest needed).

- `--npu-interpret` re-runs the session interpreted: every launch that does not pass `interpret=`
  itself runs the IR interpreter (it sets `NPU_INTERPRET=1` for the session), `check_kernel` compares
  the interpreted run with the reference only, and tests marked `@pytest.mark.npu_compiled` (they
  need cycles or assembly) are skipped.
- Fixtures: `npu_device`, the simulated device launches run on, with L2 emptied before the test
  and the machine restored after it; `npu_interpret`, True under `--npu-interpret`.
- Hypothesis profiles (when Hypothesis is installed): `npulang`, loaded unless another profile was
  chosen, is Hypothesis' default without the 200 ms deadline (a first launch compiles the kernel), so
  failing examples are kept in the example database and replayed first, as usual; in CI (Hypothesis
  detects it from `CI` and similar variables) its `ci` profile stays: derandomized, no database,
  `print_blob`. `--hypothesis-profile=ci` selects the CI behaviour anywhere.

Nothing here imports Hypothesis at module level: a session without it loads the plugin unharmed.
"""

from __future__ import annotations

import os
from typing import Any, Iterator

import pytest

INTERPRET_ENV = "NPU_INTERPRET"  # read by every launch (npulang.runtime.jit)
_SAVED_ENV = pytest.StashKey[str | None]()


def pytest_addoption(parser: pytest.Parser) -> None:
    """Add `--npu-interpret` to pytest's options."""
    group = parser.getgroup("npulang")
    group.addoption("--npu-interpret", action="store_true", default=False,
                    help="run every npulang kernel launch in the IR interpreter instead of compiled on the "
                         "simulator; skip tests marked npu_compiled")


@pytest.hookimpl(tryfirst=True)  # before Hypothesis' own plugin loads --hypothesis-profile
def pytest_configure(config: pytest.Config) -> None:
    """Register the `npu_compiled` marker; under --npu-interpret set NPU_INTERPRET=1; load the Hypothesis profile."""
    config.addinivalue_line("markers", "npu_compiled: needs the compiled run (cycles, assembly); skipped under "
                                       "--npu-interpret")
    if config.getoption("--npu-interpret"):
        config.stash[_SAVED_ENV] = os.environ.get(INTERPRET_ENV)
        os.environ[INTERPRET_ENV] = "1"
    use_hypothesis_profiles()


def pytest_unconfigure(config: pytest.Config) -> None:
    """Restore NPU_INTERPRET as it was before the session."""
    if _SAVED_ENV in config.stash:
        saved = config.stash[_SAVED_ENV]
        if saved is None:
            os.environ.pop(INTERPRET_ENV, None)
        else:
            os.environ[INTERPRET_ENV] = saved


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under --npu-interpret, skip the tests marked `npu_compiled`."""
    if not config.getoption("--npu-interpret"):
        return
    skip = pytest.mark.skip(reason="needs the compiled run; this session is interpreted (--npu-interpret)")
    for item in items:
        if item.get_closest_marker("npu_compiled"):
            item.add_marker(skip)


@pytest.fixture
def npu_interpret(request: pytest.FixtureRequest) -> bool:
    """True when the session runs interpreted (`--npu-interpret`)."""
    return bool(request.config.getoption("--npu-interpret"))


@pytest.fixture
def npu_device() -> Iterator[Any]:
    """The simulated device of the current machine, L2 emptied: this test's first launch starts cold.

    Launches run on this device (one per machine, shared by the process), so cycles measured in the
    test do not depend on which tests ran before. A test that calls `npu.set_machine` gets the
    previous machine back afterwards.
    """
    from npulang.runtime import RUNTIME

    machine = RUNTIME.get_machine()
    device = RUNTIME.device(machine)
    device.flush_l2()
    yield device
    RUNTIME.set_machine(machine)


def use_hypothesis_profiles() -> None:
    """Register the `npulang` profile and load it if no other was chosen (a no-op without Hypothesis)."""
    try:
        from hypothesis import settings
    except ImportError:
        return
    settings.register_profile("npulang", settings.get_profile("default"), deadline=None)
    if settings.get_current_profile_name() == "default":
        settings.load_profile("npulang")
