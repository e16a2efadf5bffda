"""The compiled-kernel cache: in memory, and on disk as assembly text so it survives the process.

Keys go stale on their own: they hash the kernel source and its callees, constexprs, argument dtypes,
`num_stages`, the machine fingerprint and the compiler's own source (`COMPILER_VERSION`). A corrupt or
unreadable entry is recompiled, never trusted; writes are atomic so processes may share the directory.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Callable

import isa
from isa.asm import assemble, disassemble

_PACKAGES = ("npulang", "isa")


def _compiler_version() -> str:
    """Hash of the compiler's own sources: editing the compiler invalidates every cached kernel."""
    root = Path(__file__).resolve().parent.parent
    h = hashlib.sha256()
    for pkg in _PACKAGES:
        for path in sorted((root / pkg).rglob("*.py")) + sorted((root / pkg).rglob("*.toml")):
            h.update(path.relative_to(root).as_posix().encode())
            h.update(path.read_bytes())
    return h.hexdigest()[:16]


COMPILER_VERSION = _compiler_version()


def cache_dir() -> Path:
    """`$NPU_CACHE_DIR`, else `$XDG_CACHE_HOME/npulang`, else `~/.cache/npulang`."""
    if env := os.environ.get("NPU_CACHE_DIR"):
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "npulang"


def make_key(*parts: Any) -> str:
    """A stable hex key from JSON-serialisable parts plus the compiler version."""
    text = json.dumps([COMPILER_VERSION, *parts], sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


class KernelCache:
    """Compiled programs by key: a dict in front of a directory of `<key>.s` assembly files."""

    def __init__(self, directory: Path | None = None, use_disk: bool = True) -> None:
        self.directory = directory
        self.use_disk = use_disk and os.environ.get("NPU_CACHE", "1") != "0"
        self.memory: dict[str, isa.Program] = {}

    def _path(self, key: str) -> Path:
        return (self.directory or cache_dir()) / "kernels" / f"{key}.s"

    def get_or_compile(self, key: str, compile_fn: Callable[[], isa.Program]) -> isa.Program:
        """The cached program for `key`, compiling (and storing) it on a miss."""
        program = self.memory.get(key)
        if program is not None:
            return program
        program = self._load(key) if self.use_disk else None
        if program is None:
            program = compile_fn()
            if self.use_disk:
                self._store(key, program)
        self.memory[key] = program
        return program

    def _load(self, key: str) -> isa.Program | None:
        try:
            return assemble(self._path(key).read_text(), name=str(self._path(key)))
        except (OSError, ValueError):
            return None  # missing or corrupt: recompile and overwrite

    def _store(self, key: str, program: isa.Program) -> None:
        path = self._path(key)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
            with os.fdopen(fd, "w") as f:
                f.write(disassemble(program))
            os.replace(tmp, path)
        except OSError:
            pass  # a read-only or full cache directory only costs a recompile next time

    def clear(self) -> None:
        self.memory.clear()


KERNELS = KernelCache()
