"""Who started a run or a spill folder, and whether that process is gone (recovery after a kill).

A run that is killed — out of memory, a reboot, ``kill -9`` — cannot record that it stopped.
What it leaves behind (its ``runs`` row still ``running``, its spill folder) is recognised by
the owner record it wrote when it started: the machine's name, its boot and its process
namespace (two containers can share a host name, each with its own process numbers), then the
process number. Only an owner in this very process space whose process number no longer exists
is known to be gone. Any other — another machine, boot or container, a platform where this
cannot be told — is left alone: a run that may still be going is never declared dead.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path


def process_space() -> list[str] | None:
    """Machine name, boot id and process-namespace id: where a process number means one
    process (None where these cannot be read)."""
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text(encoding="ascii").strip()
        namespace = os.readlink("/proc/self/ns/pid")
    except OSError:
        return None
    return [socket.gethostname(), boot, namespace]


def owner_record() -> str:
    """This process's owner record: its process space, then its process number, one per line."""
    return "\n".join([*(process_space() or [socket.gethostname()]), str(os.getpid())]) + "\n"


def is_running(pid: int) -> bool:
    # signal 0 checks that the process exists without touching it (POSIX only: on Windows
    # os.kill would end it — and process_space has already returned None there)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: running
        return True
    return True


def is_gone(record: object) -> bool:
    """True only when ``record`` names a process of this process space that no longer exists;
    False for anything else — NULL or NaN, an owner of elsewhere, a record it cannot read. Never
    raises: a stray or hand-edited record must not stop a run from starting."""
    here = process_space()
    if not isinstance(record, str) or here is None:
        return False
    *space, pid = record.split() or [""]
    if space != here or not (pid.isascii() and pid.isdigit()):
        return False
    try:
        return not is_running(int(pid))
    except (OverflowError, ValueError, OSError):  # a number no process can have
        return False
