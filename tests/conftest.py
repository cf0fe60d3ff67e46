"""Shared fixtures: databases (SQLite always; PostgreSQL for real) and Prefect's test server.

PostgreSQL: the server named by ``W365_TEST_PG_URL`` (default the one these machines run at
127.0.0.1:5432), with a fresh database per test session. Where no server answers, a throwaway
one is started with ``initdb``/``pg_ctl`` when the binaries exist; else the PostgreSQL tests
skip with a visible reason — except under ``CI=true``, where a missing server fails the run.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from pathlib import Path

import pytest

from flows.prefect_environment import configure_prefect_environment

configure_prefect_environment()

DEFAULT_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
PROJECT_ROOT = Path(__file__).resolve().parent.parent
SAMPLE_DATA = PROJECT_ROOT / "sample_data"


def _server_answers(url: str) -> bool:
    from sqlalchemy import create_engine, text

    try:
        engine = create_engine(url, connect_args={"connect_timeout": 3})
        with engine.connect() as connection:
            connection.execute(text("select 1"))
        engine.dispose()
        return True
    except Exception:  # noqa: BLE001 - any failure means "no server here"
        return False


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _start_throwaway_server() -> tuple[str, callable] | None:
    """initdb + pg_ctl in a temp dir (as the postgres user when running as root)."""
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb")) or ([shutil.which("initdb")] if shutil.which("initdb") else [])
    if not candidates:
        return None
    bin_dir = Path(candidates[-1]).parent
    data_dir = Path(tempfile.mkdtemp(prefix="w365etl-pg-"))
    port = _free_port()
    prefix: list[str] = []
    if os.geteuid() == 0:
        shutil.chown(data_dir, "postgres", "postgres")
        prefix = ["runuser", "-u", "postgres", "--"]
    subprocess.run(prefix + [str(bin_dir / "initdb"), "-D", str(data_dir / "db"), "-A", "trust", "-U", "postgres"],
                   check=True, capture_output=True)
    subprocess.run(prefix + [str(bin_dir / "pg_ctl"), "-D", str(data_dir / "db"), "-o",
                             f"-p {port} -k {data_dir} -c listen_addresses=127.0.0.1", "-w", "start",
                             "-l", str(data_dir / "log")], check=True, capture_output=True)

    def stop() -> None:
        subprocess.run(prefix + [str(bin_dir / "pg_ctl"), "-D", str(data_dir / "db"), "-m", "fast", "stop"],
                       capture_output=True)
        shutil.rmtree(data_dir, ignore_errors=True)

    return f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres", stop


@pytest.fixture(scope="session")
def pg_server_url() -> str:
    url = os.environ.get("W365_TEST_PG_URL", DEFAULT_PG_URL)
    stop = None
    if not _server_answers(url):
        started = None
        try:
            started = _start_throwaway_server()
        except (subprocess.CalledProcessError, OSError) as error:
            reason = f"no PostgreSQL at {url} and a throwaway server failed to start: {error}"
            if os.environ.get("CI") == "true":
                pytest.fail(reason)
            pytest.skip(reason)
        if started is None:
            reason = f"no PostgreSQL at {url} and no initdb/pg_ctl binaries to start one"
            if os.environ.get("CI") == "true":
                pytest.fail(reason)
            pytest.skip(reason)
        url, stop = started
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    name = f"w365etl_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    test_url = make_url(url).set(database=name).render_as_string(hide_password=False)
    yield test_url
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()
    if stop is not None:
        stop()


def _reset_postgres(url: str, *, upgrade: bool = True) -> None:
    """Drop every table (the migration history too) and, unless told not to, build the
    schema again with the migrations — as `w365etl db upgrade` does: runs never create a
    PostgreSQL schema themselves."""
    from sqlalchemy import text

    from w365etl.adapters import migrations
    from w365etl.adapters.store_sql import create_store_engine
    from w365etl.adapters.tables import Base

    engine = create_store_engine(url)
    with engine.begin() as connection:
        Base.metadata.drop_all(connection)
        connection.execute(text(f"DROP TABLE IF EXISTS {migrations.VERSION_TABLE}"))
    if upgrade:
        migrations.upgrade(engine)
    engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request, tmp_path) -> str:
    """A fresh database of each backend with no data: SQLite with no file yet (the first run
    creates and upgrades it); PostgreSQL upgraded to head (`w365etl db upgrade`)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'w365etl.sqlite'}"
    url = request.getfixturevalue("pg_server_url")
    _reset_postgres(url)
    return url


@pytest.fixture(scope="session")
def prefect_server():
    """Prefect's temporary server, once per test session (it takes ~15 s to build)."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=180):
        yield


@pytest.fixture
def sample_data() -> Path:
    return SAMPLE_DATA
