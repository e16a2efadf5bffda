"""Every public name of the packages' APIs has a docstring, and so does every public method and property of the
public classes. (Module-level public functions and classes in every module are ruff's D101/D103, in
pyproject.toml; this covers what users reach through the packages: methods included.)"""

from __future__ import annotations

import importlib
import inspect

import pytest

OURS = ("npulang", "kernel_lib", "autotune", "tuning_db", "isa", "simulator")
API = [*OURS, "npulang.testing", "npulang.profiler"]


def public_names(module) -> list[str]:
    """The module's `__all__`, else its attributes not starting with `_`."""
    return list(getattr(module, "__all__", None) or [n for n in vars(module) if not n.startswith("_")])


def undocumented(package: str) -> list[str]:
    """`package.name` (or `package.Class.member`) for every public function, class, method or property of ours
    without a docstring."""
    module = importlib.import_module(package)
    missing = []
    for name in public_names(module):
        obj = getattr(module, name)
        if not (inspect.isfunction(obj) or inspect.isclass(obj)) or obj.__module__.split(".")[0] not in OURS:
            continue
        if not (obj.__doc__ or "").strip():
            missing.append(f"{package}.{name}")
        if inspect.isclass(obj):
            for member, value in vars(obj).items():
                fn = value.fget if isinstance(value, property) else getattr(value, "__func__", value)
                if not member.startswith("_") and inspect.isfunction(fn) and not (fn.__doc__ or "").strip():
                    missing.append(f"{package}.{name}.{member} ({obj.__module__})")
    return missing


@pytest.mark.parametrize("package", API)
def test_public_api_is_documented(package: str):
    assert undocumented(package) == []


def test_the_check_sees_a_missing_docstring(monkeypatch: pytest.MonkeyPatch):
    import isa

    monkeypatch.setattr(isa.MachineSpec.buffer_bytes, "__doc__", None)
    assert undocumented("isa") == ["isa.MachineSpec.buffer_bytes (isa.spec)"]
