"""Test-only machinery for the crash matrix: real `w365etl run` processes, cheaply.

- ``PrefectServer``: one ``prefect server start`` for a test module; runs get ``PREFECT_API_URL``
  and skip Prefect's 8–12 s temporary server.
- ``SandboxProcess``: ``w365etl sandbox partner-center`` in a process of its own, so that what
  was bought outlives a run that is killed (as Microsoft's Partner Center outlives ours).
- ``RunLauncher``: a "zygote" process that imports the CLI, the flow and every module a run
  loads lazily (pandas, prefect, pandera schemas, matplotlib, openpyxl) once, then forks one child
  per ``w365etl run``. Each child is a real process of its own — its own memory, database
  connections, provider client and Prefect client, none opened before the fork — that runs the
  CLI entry point (``w365etl.cli.app``) with its own arguments, environment, working folder and
  log file, and ends with the CLI's exit status or, when killed, with ``-SIGKILL``. The
  launcher itself reaps its children, so a kill "after N seconds" can never hit a recycled pid.
  ``W365_CRASH_LAUNCHER=exec`` runs ``python -m w365etl.cli run`` instead (slower, same result).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def base_environment(**extra: str) -> dict[str, str]:
    """The test process's environment without any W365_… or PREFECT_API… setting."""
    environment = {name: value for name, value in os.environ.items()
                   if not name.startswith(("PREFECT_API", "W365_", "PYTEST_"))}
    environment |= {"PREFECT_SERVER_ANALYTICS_ENABLED": "false", "DO_NOT_TRACK": "1",
                    "PREFECT_TASKS_DEFAULT_NO_CACHE": "true", "PREFECT_LOGGING_LEVEL": "WARNING",
                    "PREFECT_UI_ENABLED": "false"}
    return environment | extra


def _stop_process(process: subprocess.Popen, timeout: float = 20) -> None:
    if process.poll() is None:
        try:
            os.killpg(process.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


def _copy_prefect_database(home: Path, environment: dict[str, str]) -> None:
    import shutil

    template = Path(sys.prefix) / ".prefect-template"
    if not (template / "prefect.db").is_file():
        building = Path(f"{template}.{os.getpid()}")
        building.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-m", "prefect", "server", "database", "upgrade", "-y"],
                       env=environment | {"PREFECT_HOME": str(building)}, check=True, capture_output=True, timeout=300)
        try:
            building.rename(template)  # atomic: a concurrent builder's template is as good
        except OSError:
            shutil.rmtree(building, ignore_errors=True)
    shutil.copyfile(template / "prefect.db", home / "prefect.db")


@dataclass
class PrefectServer:
    api_url: str
    process: subprocess.Popen

    @classmethod
    def start(cls, home: Path, timeout: float = 180) -> PrefectServer:
        """``prefect server start`` on a free port with its own ``PREFECT_HOME``; returned healthy.

        Building Prefect's database takes ~15 s: it is built once per virtualenv (a template
        beside it) and copied into ``home``; the server upgrades a stale copy itself."""
        from flows.serve import start_local_server

        environment = base_environment(PREFECT_HOME=str(home))
        _copy_prefect_database(home, environment)
        server = start_local_server(timeout_seconds=timeout, environment=environment, log_path=home / "server.log")
        return cls(f"{server.url}/api", server.process)

    def stop(self) -> None:
        _stop_process(self.process)


@dataclass
class SandboxProcess:
    """``w365etl sandbox partner-center --port 0 --reference REF`` as a process of its own."""

    url: str
    process: subprocess.Popen

    @classmethod
    def start(cls, reference: Path, log_path: Path, timeout: float = 60) -> SandboxProcess:
        command = [sys.executable, "-m", "w365etl.cli", "sandbox", "partner-center", "--port", "0",
                   "--reference", str(reference)]
        log = log_path.open("w")
        process = subprocess.Popen(command, env=base_environment(PYTHONUNBUFFERED="1"), stdout=log,
                                   stderr=subprocess.STDOUT, start_new_session=True, cwd=log_path.parent)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = log_path.read_text()
            if "listening on " in text:
                url = text.split("listening on ", 1)[1].split()[0]
                return cls(url, process)
            if process.poll() is not None:
                raise RuntimeError(f"the sandbox stopped at start: {text}")
            time.sleep(0.05)
        _stop_process(process)
        raise RuntimeError("the sandbox did not start")

    def subscriptions(self, tenant: str) -> list[dict]:
        """What the customer has, read through the sandbox's public API like anyone would."""
        request = urllib.request.Request(
            f"{self.url}/partner/oauth2/v2.0/token", method="POST",
            data=b"grant_type=client_credentials&client_id=test&client_secret=test",
            headers={"Content-Type": "application/x-www-form-urlencoded"})
        with urllib.request.urlopen(request, timeout=10) as answer:
            token = json.loads(answer.read())["access_token"]
        request = urllib.request.Request(f"{self.url}/v1/customers/{tenant}/subscriptions",
                                         headers={"Authorization": f"Bearer {token}"})
        with urllib.request.urlopen(request, timeout=10) as answer:
            return json.loads(answer.read())["items"]

    def stop(self) -> None:
        _stop_process(self.process)


@dataclass
class RunResult:
    returncode: int      # the CLI's exit status, or -9 when the process died by SIGKILL
    seconds: float
    log: str
    was_killed_by_timer: bool = False
    folder: Path | None = None   # the run's --out folder, when the caller sets one


ZYGOTE_WARM_UP = (
    "w365etl.cli", "flows.provision_orders", "flows.wiring", "w365etl.adapters.providers.partner_center",
    "w365etl.adapters.partner_center", "w365etl.sandbox.partner_center", "w365etl.adapters.reports_html",
    "w365etl.adapters.reports_xlsx", "w365etl.adapters.migrations", "openpyxl", "matplotlib.figure",
    "matplotlib.backends.backend_agg", "httpx",
    # what a flow run would import on first use (measured: ~0.5 s per run otherwise)
    "prefect.flow_engine", "prefect.task_engine", "prefect.concurrency", "prefect._internal.control_listener",
    "fastapi", "starlette.applications", "graphviz", "opentelemetry.metrics", "anyio._backends._asyncio",
    "PIL.PngImagePlugin", "sqlite3", "pandas.io.formats.csvs", "openpyxl.packaging.extended", "pydantic.color",
)


class RunLauncher:
    """Starts `w365etl run` processes (see the module docstring); one run at a time."""

    def __init__(self, environment: dict[str, str], *, warm_up_reference: Path | None = None,
                 warm_up_orders: Path | None = None) -> None:
        self.environment = environment
        self.mode = os.environ.get("W365_CRASH_LAUNCHER", "fork")
        self.zygote: subprocess.Popen | None = None
        if self.mode == "fork":
            arguments = [str(path) for path in (warm_up_reference, warm_up_orders) if path is not None]
            self.zygote = subprocess.Popen(
                [sys.executable, "-m", "tests.support.crash_runs", *arguments], env=environment, cwd=PROJECT_ROOT,
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, start_new_session=True)
            ready = self.zygote.stdout.readline()
            if ready.strip() != "ready":
                raise RuntimeError(f"the run launcher did not start: {ready!r}")

    def run(self, arguments: list[str], *, cwd: Path, log_path: Path, environment: dict[str, str],
            kill_after: float | None = None, timeout: float = 600) -> RunResult:
        """``w365etl ARGUMENTS`` in ``cwd`` with ``environment`` added; SIGKILLed after
        ``kill_after`` seconds if still running."""
        started = time.monotonic()
        if self.zygote is not None:
            request = {"arguments": arguments, "cwd": str(cwd), "log": str(log_path), "environment": environment,
                       "kill_after": kill_after, "timeout": timeout}
            self.zygote.stdin.write(json.dumps(request) + "\n")
            self.zygote.stdin.flush()
            answer = self.zygote.stdout.readline()
            if not answer:
                raise RuntimeError("the run launcher died")
            outcome = json.loads(answer)
            returncode, by_timer = outcome["returncode"], outcome["killed_by_timer"]
        else:
            with log_path.open("w") as log:
                process = subprocess.Popen([sys.executable, "-m", "w365etl.cli", *arguments], cwd=cwd,
                                           env=self.environment | environment, stdout=log, stderr=subprocess.STDOUT,
                                           start_new_session=True)
            by_timer = False
            try:
                returncode = process.wait(timeout=kill_after if kill_after is not None else timeout)
            except subprocess.TimeoutExpired:
                if kill_after is None:
                    raise
                process.send_signal(signal.SIGKILL)
                returncode, by_timer = process.wait(timeout=30), True
        return RunResult(returncode, time.monotonic() - started, log_path.read_text(errors="replace"), by_timer)

    def close(self) -> None:
        if self.zygote is not None:
            self.zygote.stdin.close()
            try:
                self.zygote.wait(timeout=20)
            except subprocess.TimeoutExpired:
                _stop_process(self.zygote)


# ---------------------------------------------------------------------------------- the zygote
def _warm_up(arguments: list[str]) -> None:
    """Import and prime everything a run would otherwise load on first use (no thread, no
    connection, no Prefect client is created here: the children must not share any)."""
    import importlib
    import threading

    from flows.prefect_environment import configure_prefect_environment

    configure_prefect_environment()
    for name in ZYGOTE_WARM_UP:
        try:
            importlib.import_module(name)
        except ImportError:  # a later library version may move it: only speed is lost
            pass
    from w365etl.adapters.order_files import read_order_files
    from w365etl.reference import read_reference_dir

    if arguments:
        read_reference_dir(Path(arguments[0]))  # builds and caches the pandera schemas
    if len(arguments) > 1:
        read_order_files([Path(arguments[1])], number_locale="en-US", date_order="MDY")
    assert threading.active_count() == 1, threading.enumerate()


def _child(request: dict) -> None:
    """In the forked child: become the `w365etl …` process the request describes."""
    code = 70
    try:
        os.setsid()
        log = os.open(request["log"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.dup2(log, 1)
        os.dup2(log, 2)
        os.chdir(request["cwd"])
        os.environ.update(request["environment"])
        from w365etl.cli import app

        try:
            app(request["arguments"], prog_name="w365etl")
            code = 0
        except SystemExit as stop:
            code = stop.code if isinstance(stop.code, int) else (0 if stop.code is None else 1)
    except BaseException:  # noqa: BLE001 - whatever happens, the child must not return to the loop
        import traceback

        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def _serve(arguments: list[str]) -> None:
    _warm_up(arguments)
    protocol = sys.stdout
    protocol.write("ready\n")
    protocol.flush()
    for text in sys.stdin:
        request = json.loads(text)
        protocol.flush()
        pid = os.fork()
        if pid == 0:
            _child(request)
        started = time.monotonic()
        deadline = started + (request["kill_after"] if request["kill_after"] is not None else request["timeout"])
        killed_by_timer = False
        while True:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                break
            if time.monotonic() >= deadline and not killed_by_timer:
                os.kill(pid, signal.SIGKILL)
                killed_by_timer = True
            time.sleep(0.005)
        protocol.write(json.dumps({"returncode": os.waitstatus_to_exitcode(status),
                                   "killed_by_timer": killed_by_timer}) + "\n")
        protocol.flush()


if __name__ == "__main__":
    _serve(sys.argv[1:])
