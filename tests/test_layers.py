"""The import graph of DESIGN.md §1: layers import one way, checked on every .py file with `ast`.

Every import counts: module level, inside functions (lazy), under `if TYPE_CHECKING`, and
`importlib.import_module("...")` / `__import__("...")` with a constant name.
"""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("isa", "simulator", "npulang", "tuning_db", "autotune", "kernel_lib")

# What each package may import of ours, besides itself.
ALLOWED: dict[str, set[str]] = {
    "isa": set(),
    "simulator": {"isa"},
    "npulang": {"isa", "simulator", "autotune"},  # simulator and autotune only from some files, below
    "tuning_db": set(),
    "autotune": {"npulang", "tuning_db", "isa"},
    "kernel_lib": {"npulang", "autotune", "tuning_db", "isa"},
}


def _npulang_file_may_import(rel: str, target: str) -> bool:
    """The per-file exceptions inside npulang: its launch layer runs the simulator, its face re-exports
    the tuner's decorator (`@npu.autotune`, as `@triton.autotune`)."""
    if target == "simulator":
        return "launch" in rel or rel.startswith("npulang/runtime/")
    if target == "autotune":
        return rel == "npulang/__init__.py"
    return True


def imported_packages(source: str) -> list[tuple[int, str]]:
    """(line, top-level package) for every absolute import in a module, wherever it appears."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name.split(".")[0]) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module.split(".")[0]))
        elif (isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant)
              and isinstance(node.args[0].value, str) and _is_dynamic_import(node.func)):
            found.append((node.lineno, node.args[0].value.split(".")[0]))
    return found


def _is_dynamic_import(func: ast.expr) -> bool:
    if isinstance(func, ast.Name):
        return func.id in ("__import__", "import_module")
    return isinstance(func, ast.Attribute) and func.attr == "import_module"


def violations(root: Path) -> list[str]:
    """Every forbidden import under `root`, as `file:line: message`."""
    out: list[str] = []
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            rel = path.relative_to(root).as_posix()
            for line, target in imported_packages(path.read_text()):
                if target not in PACKAGES or target == package:
                    continue
                if target == "kernel_lib":
                    out.append(f"{rel}:{line}: imports kernel_lib (nothing may import kernel_lib)")
                elif target not in ALLOWED[package]:
                    allowed = ", ".join(sorted(ALLOWED[package])) or "nothing of ours"
                    out.append(f"{rel}:{line}: imports {target} ({package} may import {allowed})")
                elif package == "npulang" and not _npulang_file_may_import(rel, target):
                    where = "its launch module" if target == "simulator" else "npulang/__init__.py"
                    out.append(f"{rel}:{line}: imports {target} (npulang may import {target} only from {where})")
    return out


def test_the_project_follows_the_import_graph() -> None:
    assert all((ROOT / p / "__init__.py").exists() for p in PACKAGES)
    problems = violations(ROOT)
    assert not problems, "forbidden imports:\n" + "\n".join(problems)


def test_the_checker_catches_every_kind_of_forbidden_import(tmp_path: Path) -> None:
    files = {
        "isa/__init__.py": "import numpy\nfrom isa import spec\nfrom . import dtypes\n",
        "isa/bad.py": "def f():\n    import simulator.core\n",
        "simulator/__init__.py": "from isa import Program\nif False:\n    from npulang.ir import Op\n",
        "npulang/__init__.py": "from autotune import autotune\n",
        "npulang/launch.py": "import simulator\n",
        "npulang/runtime/run.py": "from simulator import run\n",
        "npulang/passes.py": "import importlib\nsim = importlib.import_module('simulator.core')\n",
        "npulang/tune.py": "from autotune import search\n",
        "tuning_db/__init__.py": "__import__('isa')\n",
        "autotune/__init__.py": "import npulang, tuning_db, isa\n",
        "kernel_lib/__init__.py": "import npulang, autotune, tuning_db, isa\nimport kernel_lib.gemm\n",
        "kernel_lib/gemm.py": "",
        "tuning_db/store.py": "def g():\n    from kernel_lib import gemm\n",
    }
    for rel, text in files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    assert violations(tmp_path) == [
        "isa/bad.py:2: imports simulator (isa may import nothing of ours)",
        "simulator/__init__.py:3: imports npulang (simulator may import isa)",
        "npulang/passes.py:2: imports simulator (npulang may import simulator only from its launch module)",
        "npulang/tune.py:1: imports autotune (npulang may import autotune only from npulang/__init__.py)",
        "tuning_db/__init__.py:1: imports isa (tuning_db may import nothing of ours)",
        "tuning_db/store.py:2: imports kernel_lib (nothing may import kernel_lib)",
    ]
