"""The one kernel cache: each specialisation's IR, and its compiled programs in memory and on disk.

A program's key (`ProgramKey`) is the specialisation key (kernel source and callees, the global
constants they read, constexprs, argument types), the launch options that change code
(`num_stages`, whether the grid runs as a persistent loop), the machine fingerprint and the
compiler's own source (`COMPILER_VERSION`), so keys go stale on their own. On disk a program is
assembly text; a corrupt or unreadable entry is recompiled, never trusted, and writes are atomic
so processes may share the directory.

Computing the specialisation key hashes the kernel's source, so a launch first asks the cache by
its cheap launch signature (kernel, argument types, constexprs, the current values of the global
constants and callees it reads, options, machine): an alias to the key the first launch with that
signature computed, so rebinding a global constant after a launch recompiles, as in interpret mode.

The cache is thread-safe: a tuner may compile from several threads; two threads missing the same key
may both compile it (the compiler is deterministic), and the first stored program is kept.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Hashable

import isa
from isa.asm import assemble, disassemble
from npulang import ir

_PACKAGES = ("npulang", "isa")


def _compiler_version() -> str:
    """Hash of the compiler's own sources: editing the compiler invalidates every cached kernel."""
    root = Path(__file__).resolve().parents[2]
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


@dataclass(frozen=True)
class ProgramKey:
    """Everything a compiled program depends on."""

    specialization: str  # KernelDef.specialization_key
    num_stages: int
    machine: str  # MachineSpec.fingerprint
    compiler: str = COMPILER_VERSION
    persistent: bool = False  # compiled as a per-core loop over the grid's programs

    def digest(self) -> str:
        """A stable hex name for the disk."""
        text = json.dumps([self.compiler, self.specialization, self.num_stages, self.machine, self.persistent])
        return hashlib.sha256(text.encode()).hexdigest()


class KernelCache:
    """IR by specialisation key (memory) and programs by `ProgramKey` (memory, then `<dir>/kernels/*.s`)."""

    def __init__(self, directory: Path | None = None, use_disk: bool | None = None) -> None:
        self.directory = directory
        self.use_disk = os.environ.get("NPU_CACHE", "1") != "0" if use_disk is None else use_disk
        self._ir: dict[str, ir.Function] = {}
        self._programs: dict[ProgramKey, isa.Program] = {}
        self._aliases: dict[Hashable, isa.Program] = {}
        self._lock = threading.Lock()

    def lookup(self, signature: Hashable) -> isa.Program | None:
        """The program a launch with this signature got before (the hot path: one dict lookup)."""
        return self._aliases.get(signature)

    def ir(self, key: str, build: Callable[[], ir.Function]) -> ir.Function:
        """The IR of one specialisation, built on a miss. Shared between callers: treat it as immutable."""
        fn = self._ir.get(key)
        if fn is None:
            fn = build()
            with self._lock:
                fn = self._ir.setdefault(key, fn)
        return fn

    def program(self, key: ProgramKey, build: Callable[[], isa.Program],
                signature: Hashable | None = None) -> isa.Program:
        """The program for `key`, from memory, disk or `build()`; `signature` is remembered as an alias."""
        program = self._programs.get(key)
        if program is None:
            program = self._load(key) if self.use_disk else None
            if program is None:
                program = build()
                if self.use_disk:
                    self._store(key, program)
            with self._lock:
                program = self._programs.setdefault(key, program)
        if signature is not None:
            with self._lock:
                self._aliases[signature] = program
        return program

    def _path(self, key: ProgramKey) -> Path:
        return (self.directory or cache_dir()) / "kernels" / f"{key.digest()}.s"

    def _load(self, key: ProgramKey) -> isa.Program | None:
        path = self._path(key)
        try:
            return assemble(path.read_text(), name=str(path))
        except (OSError, ValueError):
            return None  # missing or corrupt: recompile and overwrite

    def _store(self, key: ProgramKey, program: isa.Program) -> None:
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
        """Forget everything held in memory (the disk directory is left alone)."""
        with self._lock:
            self._ir.clear()
            self._programs.clear()
            self._aliases.clear()

