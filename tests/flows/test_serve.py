"""`w365etl serve` starts a local Prefect server, registers its schedule, and stops cleanly."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request


def _read_until(process: subprocess.Popen, pattern: str, timeout: float = 240) -> list[str]:
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            if process.poll() is not None:
                break
            continue
        seen.append(line.rstrip())
        if re.search(pattern, line):
            return seen
    raise AssertionError(f"'{pattern}' never appeared; output: {seen}")


def test_serve_registers_the_nightly_schedule_and_stops_cleanly(tmp_path):
    environment = {key: value for key, value in os.environ.items() if key != "PREFECT_API_URL"}
    environment["PREFECT_HOME"] = str(tmp_path / "prefect-home")  # a server of its own, empty
    process = subprocess.Popen(
        [sys.executable, "-m", "w365etl.cli", "serve", "--cron", "30 1 * * *", "--timezone", "Europe/London",
         "--inbox", str(tmp_path / "inbox")],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=tmp_path, env=environment,
    )
    try:
        output = _read_until(process, r"serving provision-orders/nightly")
        url = re.search(r"http://127\.0\.0\.1:\d+", output[0]).group(0)
        deployments = []
        for _ in range(60):  # the runner registers the deployment just after it says so
            request = urllib.request.Request(f"{url}/api/deployments/filter", data=b"{}", method="POST",
                                             headers={"Content-Type": "application/json"})
            with urllib.request.urlopen(request, timeout=10) as answer:
                deployments = json.loads(answer.read())
            if deployments and deployments[0].get("schedules"):
                break
            time.sleep(1)
        assert [deployment["name"] for deployment in deployments] == ["nightly"]
        schedule = deployments[0]["schedules"][0]["schedule"]
        assert schedule["cron"] == "30 1 * * *" and schedule["timezone"] == "Europe/London"
        assert deployments[0]["parameters"]["inbox_dir"] == str((tmp_path / "inbox").resolve())
    finally:
        process.send_signal(signal.SIGTERM)
        remaining = process.communicate(timeout=120)[0]
    assert process.returncode == 0, remaining
    assert "stopped the local Prefect server" in remaining
    try:
        urllib.request.urlopen(f"{url}/api/health", timeout=3)
        raise AssertionError("the local Prefect server is still running")
    except OSError:
        pass
