"""A run processed in partitions reports exactly what the same run processed whole (issue 7).

The realistic ~1 000-line export (every kind of bad row, duplicate line ids, skipped orders, a
customer waiting for its Partner Center mapping) goes through the real flow twice, night after
night (a dry run, a first night, a night with every customer mapped and a second file):
once read whole, once cut into partitions of a few hundred lines
(``partition_lines``). Every report of every night must be the same — summary, exceptions,
the mapping list, the D365 status updates and every workbook sheet — except the run id and the
database's own row numbers (``SUB-<line_pk>``). The counts are also checked against the
export's oracle (SPEC §5), and the database must hold each line and subscription once (R6).
"""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path

import openpyxl
import pandas as pd
import pytest
from sqlalchemy import create_engine, text

from tests.integration.test_realistic_exports import _differences
from w365etl.synthetic_orders import (
    ALL_MAPPED_REFERENCE_DIR, MORE_ORDERS, MORE_ORDERS_FILE, ORDERS, ORDERS_FILE, REFERENCE_DIR, RunSpec, comparable, generate_orders,
    write_export,
)

AS_OF = dt.date(2026, 11, 29)
LINES, SEED = 1_000, 2026
#: small enough to cut the export into several partitions, so that customers, orders and
#: duplicate line ids have to be kept together across them
PARTITION_LINES = 350
#: a dry run, the first night, and a night with every customer mapped and a second file (the
#: held orders come back as waiting lines; Existing lines add to the first night's subscriptions)
NIGHTS = [
    ("dry_run", (ORDERS_FILE,), REFERENCE_DIR, True),
    ("first", (ORDERS_FILE,), REFERENCE_DIR, False),
    ("mapped", (ORDERS_FILE, MORE_ORDERS_FILE), ALL_MAPPED_REFERENCE_DIR, False),
]

pytestmark = pytest.mark.usefixtures("prefect_server")


@pytest.fixture(scope="module")
def export(tmp_path_factory):
    generated = generate_orders(LINES, SEED)
    folder = tmp_path_factory.mktemp("export")
    write_export(generated, folder)
    return generated, folder


def _nights(folder: Path, out: Path, monkeypatch, db_url: str, partition_lines: int) -> dict[str, dict]:
    monkeypatch.setenv("W365_DB_URL", db_url)
    monkeypatch.setenv("W365_PROVIDERS__PARTNER_CENTER__ADAPTER", "record")
    monkeypatch.setenv("W365_PARTITION_LINES", str(partition_lines))
    from flows.provision_orders import provision_orders

    reports = {}
    for name, files, reference, dry_run in NIGHTS:
        result = provision_orders(files=[str(folder / item) for item in files], reference_dir=str(folder / reference),
                                  out_dir=str(out), as_of=AS_OF, dry_run=dry_run)
        reports[name] = _reports(Path(result["report_folder"]), has_database_ids=not dry_run)
    return reports


def _reports(folder: Path, has_database_ids: bool) -> dict:
    """Every report of a run, as comparable values (run id and database row numbers left out;
    a dry run's subscription numbers are the lines' places in the run, and are compared)."""
    summary = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
    run_id = summary.pop("run_id")
    timings = json.loads((folder / "timings.json").read_text(encoding="utf-8"))
    out: dict = {"summary": summary, "stages": set(timings["stage_seconds"]), "partitions": timings.get("partitions")}
    for name in ("exceptions.csv", "needs_provider_mapping.csv", "order_status_updates.csv"):
        if (folder / name).exists():
            frame = pd.read_csv(folder / name, dtype=str, keep_default_na=False)
            out[name] = frame.drop(columns=["run_id"], errors="ignore").to_dict("split")
    workbook = openpyxl.load_workbook(folder / "fulfilment_report.xlsx", read_only=True)
    for sheet in workbook.worksheets:
        out[f"sheet {sheet.title}"] = [
            tuple("SUB-<line>" if has_database_ids and isinstance(cell, str) and re.fullmatch(r"SUB-\d{8}", cell)
                  else "<run>" if cell == run_id else cell for cell in row)
            for row in sheet.iter_rows(values_only=True)]
    workbook.close()
    return out


@pytest.fixture(scope="module")
def read_whole(export, tmp_path_factory):
    """The nights processed whole, on SQLite: what every partitioned run must reproduce."""
    _, folder = export
    work = tmp_path_factory.mktemp("whole")
    url = f"sqlite:///{work / 'whole.sqlite'}"
    with pytest.MonkeyPatch.context() as monkeypatch:
        return _nights(folder, work / "out", monkeypatch, url, 10**9), _stored(url)


def _stored(db_url: str) -> dict:
    """What the database holds after the nights, without its own row numbers."""
    engine = create_engine(db_url)
    with engine.connect() as connection:
        def scalar(query: str) -> int:
            return connection.execute(text(query)).scalar_one()

        stored = {
            "identifiers shared by two lines": scalar(
                "SELECT count(*) FROM (SELECT identifier FROM line_identifiers GROUP BY identifier "
                "HAVING count(DISTINCT line_pk) > 1) AS shared"),
            "runs": sorted(connection.execute(text("SELECT status, count(*) FROM runs GROUP BY status")).all()),
            "outcomes per night": [row[0] for row in connection.execute(text(
                "SELECT count(o.line_pk) FROM runs r LEFT JOIN line_outcomes o ON o.run_id = r.run_id "
                "GROUP BY r.run_id, r.started_at ORDER BY r.started_at")).all()],
            "outcomes by bucket": sorted(connection.execute(text(
                "SELECT bucket, count(*) FROM line_outcomes GROUP BY bucket")).all()),
            "lines by status": sorted(connection.execute(text(
                "SELECT status, count(*) FROM lines GROUP BY status")).all()),
            "subscriptions": scalar("SELECT count(*) FROM subscriptions"),
            "subscription changes": scalar("SELECT count(*) FROM subscription_changes"),
            "one-time charges": scalar("SELECT count(*) FROM one_time_charges"),
            "billing contracts": sorted(row[0] for row in connection.execute(text(
                "SELECT contract_number FROM billing_contracts")).all()),
            "customers": scalar("SELECT count(*) FROM customers"),
            "fulfilled orders": scalar("SELECT count(*) FROM orders WHERE is_fulfilled"),
        }
    engine.dispose()
    return stored


def test_a_partitioned_run_reports_what_the_whole_run_reports(export, read_whole, db_url, tmp_path, monkeypatch):
    generated, folder = export
    whole_reports, whole_stored = read_whole
    cut = _nights(folder, tmp_path / "out", monkeypatch, db_url, PARTITION_LINES)

    for name, *_ in NIGHTS:
        assert cut[name]["partitions"] >= 2, name                      # it was cut into partitions
        assert whole_reports[name]["partitions"] is None, name         # and this was read whole
        whole = {key: value for key, value in whole_reports[name].items() if key not in ("stages", "partitions")}
        parts = {key: value for key, value in cut[name].items() if key not in ("stages", "partitions")}
        assert parts.keys() == whole.keys(), name
        for key in whole:
            assert parts[key] == whole[key], f"{name}: {key} differs"
    # and both are what the SPEC implies for this export
    mapped = RunSpec(files=(ORDERS, MORE_ORDERS), all_mapped=True)
    expected = dict(zip(["dry_run", "first", "mapped"],
                        generated.expected(RunSpec(dry_run=True), RunSpec(), mapped), strict=True))
    for name, *_ in NIGHTS:
        assert _differences(expected[name], comparable(cut[name]["summary"])) == {}, name

    # the database holds the same, each line and identifier once (R6), one run per real night
    stored = _stored(db_url)
    assert stored == whole_stored
    assert stored["identifiers shared by two lines"] == 0
    assert stored["runs"] == [("completed", 2)]
    assert min(stored["outcomes per night"]) > 0
