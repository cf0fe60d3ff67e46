"""Fail points (reliability harness of every step): the registry matches the code, and a named
point stops the run — raising, or with a real SIGKILL — only when the test names it."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from w365etl.failpoints import ENVIRONMENT_VARIABLE, FAILPOINTS, PER_PROVIDER, FailPointReached, failpoint

ROOT = Path(__file__).resolve().parents[2]
CALL = re.compile(r"""\bfailpoint\(\s*["']([a-z_]+)["']""")


def called_points() -> dict[str, list[str]]:
    """Every ``failpoint("name", …)`` call in the shipped code (w365etl/ and flows/), by name."""
    found: dict[str, list[str]] = {}
    for folder in ("w365etl", "flows"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            if path.name == "failpoints.py":
                continue
            for name in CALL.findall(path.read_text(encoding="utf-8")):
                found.setdefault(name, []).append(str(path.relative_to(ROOT)))
    return found


def test_every_registered_point_is_called_in_the_code_and_every_call_is_registered():
    called = called_points()
    assert sorted(set(FAILPOINTS) - set(called)) == []
    assert sorted(set(called) - set(FAILPOINTS)) == []
    assert len(FAILPOINTS) == len(set(FAILPOINTS))
    assert PER_PROVIDER <= set(FAILPOINTS)


def test_unset_or_other_names_do_nothing(monkeypatch):
    monkeypatch.delenv(ENVIRONMENT_VARIABLE, raising=False)
    failpoint("after_plan_stored")
    monkeypatch.setenv(ENVIRONMENT_VARIABLE, "after_fulfilment,after_provider_call:manual")
    failpoint("after_plan_stored")
    failpoint("after_provider_call", "partner_center")  # another provider's batch


def test_a_named_point_raises_alone_or_with_its_qualifier(monkeypatch):
    monkeypatch.setenv(ENVIRONMENT_VARIABLE, "before_fulfilment, after_provider_call:manual")
    with pytest.raises(FailPointReached, match="before_fulfilment"):
        failpoint("before_fulfilment")
    with pytest.raises(FailPointReached, match="after_provider_call"):
        failpoint("after_provider_call", "manual")
    monkeypatch.setenv(ENVIRONMENT_VARIABLE, "after_provider_call")
    with pytest.raises(FailPointReached):
        failpoint("after_provider_call", "partner_center")  # unqualified: every provider


def test_kill_mode_ends_the_process_with_a_real_sigkill():
    code = "from w365etl.failpoints import failpoint; failpoint('after_plan_stored'); print('survived')"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=ROOT,
                          env={"PATH": "/usr/bin:/bin", ENVIRONMENT_VARIABLE: "after_plan_stored=kill"})
    assert done.returncode == -signal.SIGKILL
    assert "survived" not in done.stdout
