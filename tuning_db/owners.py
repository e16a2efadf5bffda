"""Who holds a claim, and whether that process still lives.

A claim ("running" trial) records its owner's host, pid, the process's start time and a token of the
`TuningStore` object. On the owner's own host the process table decides: a claim whose process is gone,
a zombie (killed but not yet reaped), or a pid since reused by another process (another start time) is
stale. From another host a process cannot be seen, so there the claim's heartbeat decides.
"""

from __future__ import annotations

import os
import socket
import uuid
from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")


@dataclass(frozen=True)
class Owner:
    """The process holding a claim: host, pid, process start time and a random token (pids are reused)."""
    host: str
    pid: int
    start: str  # "" where the platform does not tell
    token: str

    @staticmethod
    def this_process() -> Owner:
        pid = os.getpid()
        return Owner(socket.gethostname(), pid, process_start(pid) or "", uuid.uuid4().hex)


def _stat_fields(pid: int) -> list[str] | None:
    """/proc/<pid>/stat after the command name (which may hold spaces), or None if there is none."""
    try:
        text = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    return text.rpartition(")")[2].split()


def process_start(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (field 22 of /proc/<pid>/stat)."""
    fields = _stat_fields(pid)
    return fields[19] if fields and len(fields) > 19 else None


def alive(host: str, pid: int, start: str) -> bool | None:
    """Whether the owner process runs; None when it is on another host and cannot be seen."""
    if host != socket.gethostname():
        return None
    if (PROC / "self" / "stat").exists():
        fields = _stat_fields(pid)
        if fields is None or fields[0] in ("Z", "X"):
            return False
        return not start or fields[19] == start
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's live process
    return True
