"""``w365etl serve``: the provision-orders flow on a nightly schedule over the inbox.

Prefect's temporary server runs no schedules ("Cannot schedule flows on an ephemeral server"),
so when no ``PREFECT_API_URL`` is configured this starts a real local Prefect server (its UI on
127.0.0.1), waits until it is healthy, serves the flow against it and stops it on exit. With
``PREFECT_API_URL`` set it uses that server. The cron expression and time zone are checked
first (``check_schedule``, Prefect's own rules): a bad one stops before any server starts.
Import this module only after the environment is prepared: prefect reads its settings when
first imported.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path


class ScheduleError(ValueError):
    """A cron expression or time zone Prefect's ``Cron`` schedule refuses; ``field`` says which
    (``cron`` or ``timezone``)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def check_schedule(cron: str, timezone: str) -> None:
    """Raise ``ScheduleError`` for what ``Cron(cron, timezone=timezone)`` would refuse — only
    once the flow is served, after a local Prefect server was started for it. The schedule's own
    model checks it, so what passes here is what Prefect accepts."""
    from prefect.client.schemas.schedules import CronSchedule
    from pydantic import ValidationError

    try:
        CronSchedule(cron=cron, timezone=timezone)
    except ValidationError as error:
        first = error.errors()[0]
        field = str(first["loc"][0]) if first.get("loc") else "cron"
        # pydantic prefixes a validator's message with "Value error, "; Prefect's own words follow
        raise ScheduleError(field, str(first["msg"]).removeprefix("Value error, ")) from None


@dataclass
class LocalServer:
    url: str
    process: subprocess.Popen

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_local_server(*, port: int | None = None, timeout_seconds: float = 180,
                       environment: dict[str, str] | None = None, log_path: Path | None = None) -> LocalServer:
    """``prefect server start`` on 127.0.0.1, returned once ``/api/health`` answers.

    ``environment`` replaces this process's (a test gives the server its own ``PREFECT_HOME``);
    ``log_path`` keeps the server's output, which a failed start then quotes."""
    port = port or _free_port()
    environment = dict(os.environ if environment is None else environment,
                       PREFECT_UI_ENABLED="true", PREFECT_SERVER_ANALYTICS_ENABLED="false")
    environment.pop("PREFECT_API_URL", None)
    log = log_path.open("w") if log_path is not None else subprocess.DEVNULL
    try:
        process = subprocess.Popen(
            [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(port)],
            env=environment, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            cwd=log_path.parent if log_path is not None else None,
        )
    finally:
        if log_path is not None:
            log.close()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout_seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            said = f": {log_path.read_text(errors='replace')[-2000:]}" if log_path is not None else ""
            raise RuntimeError(f"the local Prefect server stopped at start (exit {process.returncode}){said}")
        try:
            with urllib.request.urlopen(f"{url}/api/health", timeout=2) as answer:
                if answer.status == 200:
                    return LocalServer(url, process)
        except OSError:
            time.sleep(0.5)
    LocalServer(url, process).stop()
    raise RuntimeError(f"the local Prefect server did not become healthy within {timeout_seconds:.0f} s")


def serve_nightly(*, cron: str, timezone: str, inbox_dir: str, config_file: str | None, out_dir: str | None,
                  on_ready=print) -> None:
    """Serve the flow until SIGTERM or Ctrl-C; starts (and stops) a local server if needed.
    A schedule Prefect would refuse raises ``ScheduleError`` before anything starts."""
    check_schedule(cron, timezone)
    server = None
    if not os.environ.get("PREFECT_API_URL"):
        server = start_local_server()
        os.environ["PREFECT_API_URL"] = f"{server.url}/api"
        on_ready(f"started a local Prefect server: {server.url} (UI on 127.0.0.1)")

    stopping, stopped = threading.Event(), threading.Event()

    def _stop(_signum, _frame):
        stopping.set()
        raise KeyboardInterrupt

    def _insist() -> None:
        # a KeyboardInterrupt that lands in a weakref callback or a __del__ is swallowed
        # ("Exception ignored in …") and serve() would go on: interrupt again until it ends
        stopping.wait()
        import _thread

        while not stopped.wait(5):
            _thread.interrupt_main(signal.SIGTERM)  # SIGINT may be ignored (started in the background)

    signal.signal(signal.SIGTERM, _stop)
    threading.Thread(target=_insist, name="w365etl-stop", daemon=True).start()
    try:
        from prefect.schedules import Cron

        from flows.provision_orders import provision_orders

        on_ready(f"serving provision-orders/nightly on '{cron}' ({timezone}) over {inbox_dir}")
        provision_orders.serve(
            name="nightly",
            schedules=[Cron(cron, timezone=timezone)],
            parameters={"files": [], "inbox_dir": inbox_dir, "config_file": config_file, "out_dir": out_dir},
            print_starting_message=False,
        )
    except KeyboardInterrupt:
        pass
    finally:
        stopped.set()
        if server is not None:
            server.stop()
            on_ready("stopped the local Prefect server")
