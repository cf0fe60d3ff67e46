"""Run timing (``timings.json``): seconds per stage, a stage run twice adds up."""

from __future__ import annotations

import json
import time

from w365etl.timing import StageClock


def test_stages_are_kept_in_order_and_a_repeated_stage_adds_up(tmp_path):
    clock = StageClock()
    with clock.stage("plan"):
        time.sleep(0.02)
    with clock.stage("persist-plan"):
        pass
    with clock.stage("plan"):
        time.sleep(0.02)
    written = json.loads(clock.write(tmp_path / "run").read_text(encoding="utf-8"))
    assert list(written["stage_seconds"]) == ["plan", "persist-plan"]
    assert written["stage_seconds"]["plan"] >= 0.04
    assert written["total_seconds"] >= sum(written["stage_seconds"].values())


def test_a_stage_that_raises_is_still_timed():
    clock = StageClock()
    try:
        with clock.stage("provision"):
            raise RuntimeError("provider down")
    except RuntimeError:
        pass
    assert "provision" in clock.seconds


def test_peak_memory_is_recorded_per_stage_and_never_falls():
    clock = StageClock()
    with clock.stage("read-orders"):
        ballast = bytearray(64 * 1024 * 1024)  # 64 MB touched: the peak must rise by about that much
        ballast[::4096] = b"x" * len(ballast[::4096])
    del ballast
    with clock.stage("plan"):
        pass
    peaks = clock.as_dict()["peak_rss_mb_after_stage"]
    assert list(peaks) == ["read-orders", "plan"]
    assert peaks["read-orders"] >= 64
    assert peaks["plan"] >= peaks["read-orders"]  # a peak, not the current size


def test_the_cli_uses_the_system_memory_pool_unless_told_otherwise(monkeypatch):
    import pyarrow as pa

    from w365etl.cli import use_system_memory_pool

    before = pa.default_memory_pool()
    try:
        monkeypatch.delenv("ARROW_DEFAULT_MEMORY_POOL", raising=False)
        assert use_system_memory_pool() == "system"
        pa.set_memory_pool(pa.jemalloc_memory_pool() if "jemalloc" in pa.supported_memory_backends()
                           else pa.mimalloc_memory_pool())
        chosen = pa.default_memory_pool().backend_name
        monkeypatch.setenv("ARROW_DEFAULT_MEMORY_POOL", chosen)
        assert use_system_memory_pool() == chosen  # an operator's choice is kept
    finally:
        pa.set_memory_pool(before)
