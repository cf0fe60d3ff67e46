"""Process owners for the tests of recovery after a kill (``w365etl.adapters.process_owners``)."""

from __future__ import annotations

import subprocess
import sys


def ended_pid() -> str:
    """The process number of a process of this machine that has ended."""
    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                              text=True, check=True)
    return finished.stdout.strip()

