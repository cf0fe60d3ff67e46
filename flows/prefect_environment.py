"""Prefect settings for an offline, clean first run; applied before prefect is imported.

Measured on 2-core machines: the temporary server's telemetry job logs "database is locked"
and "Failed to send telemetry" offline, and a cold start can pass Prefect's default 20 s
start-up timeout. A user's own PREFECT_* settings always win (``setdefault``).
"""

from __future__ import annotations

import os

DEFAULTS = {
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "DO_NOT_TRACK": "1",
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",
    "PREFECT_TASKS_DEFAULT_NO_CACHE": "true",
    "PREFECT_LOGGING_LEVEL": "WARNING",
    "PREFECT_UI_ENABLED": "false",
}


def configure_prefect_environment() -> None:
    for name, value in DEFAULTS.items():
        os.environ.setdefault(name, value)
