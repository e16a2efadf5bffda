"""The import graph of DESIGN.md §1: layers import one way, checked on every .py file with `ast`.

Between packages and between npulang's layers every import counts: module level, inside functions
(lazy), under `if TYPE_CHECKING`, and `importlib.import_module("...")` / `__import__("...")` with a
constant name. Inside npulang there is also no import circle, where only type-checking imports are
left out (they never run).
"""

from __future__ import annotations

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
        return rel.startswith("npulang/runtime/")
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
                    where = "npulang/runtime/" if target == "simulator" else "npulang/__init__.py"
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
        "npulang/runtime/__init__.py": "",
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
        "npulang/launch.py:1: imports simulator (npulang may import simulator only from npulang/runtime/)",
        "npulang/passes.py:2: imports simulator (npulang may import simulator only from npulang/runtime/)",
        "npulang/tune.py:1: imports autotune (npulang may import autotune only from npulang/__init__.py)",
        "tuning_db/__init__.py:1: imports isa (tuning_db may import nothing of ours)",
        "tuning_db/store.py:2: imports kernel_lib (nothing may import kernel_lib)",
    ]


# -- inside npulang ------------------------------------------------------------------------------

# Layers below the runtime, by module-name prefix (a prefix covers a module and a package alike:
# `npulang.ir` is the package npulang/ir/ and all its modules). None of them may import the runtime; the
# runtime may import all of them, the compiler and the simulator.
BELOW_RUNTIME = ("npulang.compiler", "npulang.frontend", "npulang.ir", "npulang.passes", "npulang.backend",
                 "npulang.language", "npulang.errors")
RUNTIME = "npulang.runtime"
TESTING = "npulang.testing"  # on top of the runtime: users' tests import it; nothing else in npulang does


def _in(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _type_checking_nodes(tree: ast.AST) -> set[int]:
    """ids of the import nodes under `if TYPE_CHECKING:` (never executed)."""
    out: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            out |= {id(n) for stmt in node.body for n in ast.walk(stmt)}
    return out


def module_imports(root: Path, path: Path, modules: set[str]) -> list[tuple[int, str, bool]]:
    """(line, imported module, type-checking only) for every import of a module in `modules`.

    `from a import b` imports `a.b` when that is a module, else `a`; relative imports are resolved.
    """
    tree = ast.parse(path.read_text())
    me = module_name(root, path)
    package = me if path.name == "__init__.py" else me.rpartition(".")[0]
    typing_only = _type_checking_nodes(tree)
    found: list[tuple[int, str, bool]] = []
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            names = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
        elif (isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant)
              and isinstance(node.args[0].value, str) and _is_dynamic_import(node.func)):
            names = [node.args[0].value]
        for name in dict.fromkeys(names):
            if name in modules:
                found.append((node.lineno, name, id(node) in typing_only))
    return found


def npulang_graph(root: Path) -> tuple[dict[str, str], dict[str, list[tuple[int, str, bool]]]]:
    """npulang's modules (name -> file) and each one's imports of the others."""
    files = {module_name(root, p): p for p in sorted((root / "npulang").rglob("*.py"))}
    modules = set(files)
    return ({m: p.relative_to(root).as_posix() for m, p in files.items()},
            {m: module_imports(root, p, modules) for m, p in files.items()})


def layer_violations(root: Path) -> list[str]:
    """Imports of the runtime from below it, and of npulang.testing from outside it, as `file:line: message`."""
    files, graph = npulang_graph(root)
    out = []
    for module, imports in graph.items():
        if any(_in(module, p) for p in BELOW_RUNTIME):
            out += [f"{files[module]}:{line}: {module} imports {target} (only the runtime and the face may)"
                    for line, target, _ in imports if _in(target, RUNTIME)]
        if not _in(module, TESTING):
            out += [f"{files[module]}:{line}: {module} imports {target} (nothing in npulang imports {TESTING})"
                    for line, target, _ in imports if _in(target, TESTING)]
    return out


def import_cycles(root: Path) -> list[list[str]]:
    """Every import circle inside npulang (type-checking-only imports left out), one per strongly
    connected component, as the modules of one cycle through it."""
    _, graph = npulang_graph(root)
    edges = {m: sorted({t for _, t, typing in imports if not typing and t != m}) for m, imports in graph.items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    components: list[list[str]] = []

    def visit(v: str) -> None:  # Tarjan's algorithm
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                components.append(component)

    for m in sorted(edges):
        if m not in index:
            visit(m)
    return [_cycle_through(sorted(c), edges) for c in components]


def _cycle_through(component: list[str], edges: dict[str, list[str]]) -> list[str]:
    """One cycle from the component's first module back to itself (breadth-first, shortest)."""
    start, inside = component[0], set(component)
    paths = {start: [start]}
    queue = [start]
    while queue:
        v = queue.pop(0)
        for w in edges[v]:
            if w == start:
                return paths[v] + [start]
            if w in inside and w not in paths:
                paths[w] = paths[v] + [w]
                queue.append(w)
    return component


def test_nothing_below_the_runtime_imports_it_and_npulang_has_no_import_circle() -> None:
    assert not layer_violations(ROOT), "\n".join(layer_violations(ROOT))
    cycles = import_cycles(ROOT)
    assert not cycles, "import circles:\n" + "\n".join(" -> ".join(c) for c in cycles)


def test_the_npulang_checks_catch_layer_breaks_and_circles(tmp_path: Path) -> None:
    files = {
        "npulang/__init__.py": "from npulang.runtime import jit\n",
        "npulang/runtime/__init__.py": "from npulang.runtime.jit import jit\n",
        "npulang/runtime/jit.py": "from npulang import compiler\nfrom . import launch\n",
        "npulang/runtime/launch.py": "def f():\n    from npulang.runtime import jit\n",  # lazy: still a circle
        "npulang/compiler.py": "from npulang.ir import core\n",
        "npulang/ir/__init__.py": "",
        "npulang/ir/core.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from npulang import compiler\n",
        "npulang/ir/printer.py": "import npulang.runtime.jit\n",
        "npulang/frontend/__init__.py": "",
        "npulang/frontend/a.py": "from .b import x\n",
        "npulang/frontend/b.py": "from npulang.frontend import a\n",
        "npulang/testing/__init__.py": "from npulang.runtime import jit\n",  # testing sits on the runtime
        "npulang/runtime/record.py": "from npulang.testing import check_kernel\n",
    }
    for rel, text in files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    assert layer_violations(tmp_path) == [
        "npulang/ir/printer.py:1: npulang.ir.printer imports npulang.runtime.jit (only the runtime and the face may)",
        "npulang/runtime/record.py:1: npulang.runtime.record imports npulang.testing (nothing in npulang imports "
        "npulang.testing)"]
    assert sorted(import_cycles(tmp_path)) == [
        ["npulang.frontend.a", "npulang.frontend.b", "npulang.frontend.a"],
        ["npulang.runtime.jit", "npulang.runtime.launch", "npulang.runtime.jit"],
    ]
