"""The inbox over five simulated nights: every file imported once, held orders released the
night their mapping arrives, nothing lost, each night's reports written."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import threading
from pathlib import Path

import pandas as pd
import pytest

from tests.support.exports import line, write_flat_csv, write_reference
from w365etl.adapters import inbox as inbox_folder

TENANT = "0b7f5c2e-1d6a-4c55-9c1e-5d2b8f3a9e01"
NIGHT = dt.date(2026, 11, 25)

pytestmark = pytest.mark.usefixtures("prefect_server")


@pytest.fixture
def night(db_url, tmp_path, monkeypatch):
    monkeypatch.setenv("W365_DB_URL", db_url)
    monkeypatch.setenv("W365_PROVIDERS__PARTNER_CENTER__ADAPTER", "record")
    from flows.provision_orders import provision_orders

    def _night(number: int, dry_run: bool = False):
        state = provision_orders(files=[], inbox_dir=str(tmp_path / "inbox"), out_dir=str(tmp_path / "out"),
                                 as_of=NIGHT + dt.timedelta(days=number), dry_run=dry_run, return_state=True)
        return state.result(raise_on_failure=False), state

    return _night


def names(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.rglob("*") if path.is_file()) if folder.is_dir() else []


def test_five_nights_of_inbox(night, tmp_path):
    inbox = tmp_path / "inbox"
    (inbox / "reference").mkdir(parents=True)
    write_reference(inbox / "reference", [("Contoso", TENANT)])
    first = write_flat_csv(inbox / "orders-monday.csv", [
        line("SO-1", "Contoso", "M365-BB-M", "10", "6.00", number=1),
        line("SO-2", "Fabrikam", "M365-BB-M", "3", "6.00", number=1),
        line("SO-2", "Fabrikam", "SUP-STD-M", "1", "99", number=2),
    ])
    keep = tmp_path / "monday-copy.csv"
    shutil.copy(first, keep)

    # night 1: a new file and the reference data; Fabrikam has no mapping yet
    summary, state = night(1)
    assert state.is_completed()
    assert summary["lines"]["provisioned"] == 1 and summary["lines"]["held"] == 2
    assert names(inbox / "archive") == ["orders-monday.csv", "products.csv", "provider_accounts.csv"]
    assert not (inbox / "orders-monday.csv").exists() and names(inbox / "reference") == []

    # a dry run over the inbox moves nothing
    shutil.copy(keep, inbox / "peek.csv")
    summary, _ = night(2, dry_run=True)
    assert (inbox / "peek.csv").exists() and summary["dry_run"] is True
    (inbox / "peek.csv").unlink()

    # night 2: a renamed copy of Monday's file (a duplicate) and a broken file
    shutil.copy(keep, inbox / "orders-monday (1).csv")
    (inbox / "broken.xlsx").write_bytes(b"not a workbook")
    summary, state = night(2)
    assert state.is_failed()  # a rejected file fails the flow run (the CLI exits 1)
    statuses = {Path(item["path"]).name: item["status"] for item in summary["files"]}
    assert statuses == {"orders-monday (1).csv": "duplicate", "broken.xlsx": "rejected"}
    assert summary["lines"]["reevaluated"] == 2 and summary["lines"]["held"] == 2
    assert names(inbox / "duplicates") == ["orders-monday (1).csv"]
    assert names(inbox / "rejected") == ["broken.xlsx", "broken.xlsx.error.txt"]
    assert "not" in (inbox / "rejected" / "broken.xlsx.error.txt").read_text().lower()

    # night 3: the mapping arrives (the onboarding team filled in needs_provider_mapping.csv)
    template = pd.read_csv(Path(summary["report_folder"]) / "needs_provider_mapping.csv", dtype=str)
    template["provider_customer_id"] = "9a9a9a9a-0000-4000-8000-000000000000"
    (inbox / "reference").mkdir(exist_ok=True)
    template.to_csv(inbox / "reference" / "provider_accounts.csv", index=False)
    summary, state = night(3)
    assert state.is_completed()
    assert summary["lines"]["provisioned"] == 2 and summary["lines"]["reevaluated"] == 2
    assert summary["orders"]["fulfilled"] == 1 and summary["customers_needing_provider_mapping"] == 0

    # night 4: a changed file is new: its one new line is provisioned, the old one recognised
    changed = pd.read_csv(keep, dtype=str).fillna("")
    changed = pd.concat([changed, pd.DataFrame([line("SO-3", "Contoso", "SUP-STD-M", "1", "99", number=1)])])
    write_flat_csv(inbox / "orders-monday.csv", changed.to_dict("records"))
    summary, state = night(4)
    assert state.is_completed()
    assert summary["lines"]["provisioned"] == 1 and summary["lines"]["already_provisioned"] == 3

    # night 5: nothing new — nothing to do, and reports are still written
    summary, state = night(5)
    assert state.is_completed() and summary["lines"]["input"] == 0
    assert len(list((tmp_path / "out").iterdir())) == 6  # one folder per run, the dry run included
    assert names(inbox / "processing") == []


# a claim that fails in its thread must fail the test, not pass with a warning
@pytest.mark.filterwarnings("error::pytest.PytestUnhandledThreadExceptionWarning")
def test_two_runs_at_once_never_take_the_same_file(tmp_path):
    for attempt in range(10):  # the race is in the first milliseconds of a claim: run it often
        inbox = tmp_path / f"inbox-{attempt}"
        inbox.mkdir()
        for number in range(40):
            (inbox / f"orders-{number:02}.csv").write_text(f"file {number}\n")
        batches = {}

        def take(run_id: str, inbox: Path = inbox, batches: dict = batches) -> None:
            batches[run_id] = inbox_folder.claim(inbox, run_id, is_dry_run=False)

        threads = [threading.Thread(target=take, args=(f"run-{index}",)) for index in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert set(batches) == {"run-0", "run-1"}  # both claims completed
        taken = [path.name for batch in batches.values() for path in batch.order_files]
        assert len(taken) == 40 and len(set(taken)) == 40


def test_a_claim_being_set_up_by_another_run_is_left_alone(tmp_path):
    """The window the threads above can only hit by chance, set up on purpose: another run has
    made its claim folder but not yet written its owner. Its claim is never given back (that
    crashed the other run, whose folder vanished under it); a dead run's claim still is."""
    inbox = tmp_path / "inbox"
    (inbox / "processing" / ".run-other.claiming").mkdir(parents=True)
    dead = inbox / "processing" / "run-dead"
    dead.mkdir()
    (dead / ".owner").write_text("999999999")  # no such process
    (dead / "left-behind.csv").write_text("file\n")

    batch = inbox_folder.claim(inbox, "run-new", is_dry_run=False)

    assert (inbox / "processing" / ".run-other.claiming").is_dir()
    assert [path.name for path in batch.order_files] == ["left-behind.csv"]
    assert (batch.claim_dir / ".owner").read_text() == str(os.getpid())
    assert not dead.exists()
