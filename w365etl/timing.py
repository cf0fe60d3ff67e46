"""Run timing: how long each stage of a run took (read by `make bench` and by operators).

The flow wraps every stage in :meth:`StageClock.stage`; the run writes the figures to
``timings.json`` in its report folder, beside ``summary.json``, so a slow night can be
explained without a profiler. It also records the process's peak memory (RSS) as each stage
ended, so the stage that raised the peak is the first whose figure jumps.
"""

from __future__ import annotations

import json
import resource
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator


class StageClock:
    """Wall-clock seconds per named stage, in the order the stages ran (a stage run twice adds up)."""

    def __init__(self) -> None:
        self._started = time.perf_counter()
        self.seconds: dict[str, float] = {}
        self.peak_rss_mb: dict[str, float] = {}
        self.notes: dict[str, object] = {}

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - started
            self.peak_rss_mb[name] = peak_rss_mb()

    def note(self, name: str, value: object) -> None:
        """A fact about the run beside its timings (e.g. how many partitions it was cut into)."""
        self.notes[name] = value

    def as_dict(self) -> dict:
        return {"total_seconds": round(time.perf_counter() - self._started, 3),
                "stage_seconds": {name: round(value, 3) for name, value in self.seconds.items()},
                "peak_rss_mb_after_stage": {name: round(value, 1) for name, value in self.peak_rss_mb.items()},
                **self.notes}

    def write(self, folder: Path) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / "timings.json"
        path.write_text(json.dumps(self.as_dict(), indent=2) + "\n", encoding="utf-8")
        return path


def peak_rss_mb() -> float:
    """The process's peak resident memory so far, in MB (``ru_maxrss`` is KB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024
