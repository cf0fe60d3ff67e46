"""Named fail points: deliberate crashes at stage boundaries, switched on only by tests.

``W365_FAILPOINTS`` names the points (comma-separated) where the run stops: ``raise`` (the
default) raises :class:`FailPointReached`; ``name=kill`` kills the process with SIGKILL, as a
power cut would. Unset, every call is a dictionary lookup and nothing else.
"""

from __future__ import annotations

import os
import signal

ENVIRONMENT_VARIABLE = "W365_FAILPOINTS"


class FailPointReached(RuntimeError):
    """A test asked the run to stop here."""


def failpoint(name: str, qualifier: str | None = None) -> None:
    """Stop here when the point is named, alone or as ``name:qualifier`` (e.g. a provider code)."""
    wanted = os.environ.get(ENVIRONMENT_VARIABLE)
    if not wanted:
        return
    names = {name} if qualifier is None else {name, f"{name}:{qualifier}"}
    for item in wanted.split(","):
        point, _, action = item.strip().partition("=")
        if point in names:
            if action == "kill":
                os.kill(os.getpid(), signal.SIGKILL)
            raise FailPointReached(f"fail point {name} reached")
