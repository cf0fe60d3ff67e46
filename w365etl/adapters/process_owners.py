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


def _parsed(record: object) -> tuple[list[str], int] | None:
    """(process space, process number) of an owner record; None for anything unreadable."""
    if not isinstance(record, str):
        return None
    *space, pid = record.split() or [""]
    if not (pid.isascii() and pid.isdigit()):
        return None
    try:
        return space, int(pid)
    except ValueError:  # more digits than int() converts: no process has that number
        return None


def _here_state(record: object) -> bool | None:
    """For an owner of this process space: is its process running? None for any other owner."""
    here, parsed = process_space(), _parsed(record)
    if here is None or parsed is None or parsed[0] != here:
        return None
    try:
        return is_running(parsed[1])
    except (OverflowError, ValueError, OSError):  # a number no process can have
        return None


def is_gone(record: object) -> bool:
    """True only when ``record`` names a process of this process space that no longer exists;
    False for anything else — NULL or NaN, an owner of elsewhere, a record it cannot read. Never
    raises: a stray or hand-edited record must not stop a run from starting."""
    return _here_state(record) is False


def is_running_here(record: object) -> bool:
    """True only when ``record`` names a process of this process space that still exists."""
    return _here_state(record) is True


def describe_owner(record: object) -> str:
    """Who started a run, as an operator reads it: ``process 4242 on host-a``."""
    parsed = _parsed(record)
    if parsed is None:
        if record is None or isinstance(record, float):  # NULL, as pandas may hand it over
            return "a process that was not recorded (a run started before schema revision 0003)"
        return "an owner whose record cannot be read"
    space, pid = parsed
    return f"process {pid} on {space[0]}" if space else f"process {pid}"
