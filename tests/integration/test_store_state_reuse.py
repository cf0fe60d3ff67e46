"""What load-state read is reused when the plan is stored — and read again when it may be stale.

R6 (exactly once): before a plan is stored, its lines are matched against the stored ones under
the run's locks. When no other run has written since load-state, what load-state read is
current and is not read again (a partitioned run's later partitions, and a store serving the
next night); when another run may have written, the lines are matched again.
"""

from __future__ import annotations

import datetime as dt

from flows import provision_orders as stages
from tests.conftest import SAMPLE_DATA
from tests.support.processes import ended_pid
from tests.support.stages import run_stages
from w365etl.adapters import tables as t
from w365etl.adapters.store_sql import SqlStore
from w365etl.reference import read_reference_dir
from w365etl.settings import Settings

AS_OF = dt.date(2026, 11, 29)
FILES = [SAMPLE_DATA / "dataverse_salesorders.csv", SAMPLE_DATA / "dataverse_salesorderdetails.csv"]


class CountingStore(SqlStore):
    """The real store, counting how often it reads the stored lines matching a run's lines."""

    reads = 0

    def _matching_identifiers(self, connection, lines, *, with_lines=False):
        self.reads += 1
        return super()._matching_identifiers(connection, lines, with_lines=with_lines)


def _settings(url: str) -> Settings:
    return Settings(db_url=url, providers={"partner_center": {"adapter": "record"}, "manual": {"adapter": "manual"}})


def _plan_and_store(store: CountingStore, settings: Settings, run_id: str, *, between=None):
    """load-state → plan → persist for a later partition of ``run_id`` (already started)."""
    ingest, line_issues = stages.read_orders.fn(FILES, settings)
    lines = stages.add_waiting_lines.fn(store, ingest.lines)
    state = stages.load_state.fn(store, lines, None, False)
    plan = stages.make_plan.fn(lines, line_issues, state, settings, AS_OF)
    if between is not None:
        between()
    return stages.persist_plan.fn(store, run_id, plan, is_first=False)


def test_the_next_night_on_the_same_store_reads_its_stored_lines_once(tmp_path):
    url = f"sqlite:///{tmp_path / 'reuse.sqlite'}"
    store = CountingStore(url)
    try:
        run_stages(store, _settings(url), FILES, run_id="night-1", as_of=AS_OF,
                   reference=read_reference_dir(SAMPLE_DATA / "reference"))
        store.reads = 0
        summary = run_stages(store, _settings(url), FILES, run_id="night-2", as_of=AS_OF)
    finally:
        store.dispose()
    assert summary["lines"]["already_provisioned"] > 0  # an identical re-run: every line matched
    assert store.reads == 1  # load-state's read was current when the plan was stored


def test_a_later_partition_reuses_load_state_unless_another_run_has_written(tmp_path):
    url = f"sqlite:///{tmp_path / 'partitions.sqlite'}"
    settings = _settings(url)
    store = CountingStore(url)
    try:
        run_stages(store, settings, FILES, run_id="night-1", as_of=AS_OF,
                   reference=read_reference_dir(SAMPLE_DATA / "reference"))
        store.start_run("night-2", AS_OF)  # as its first partition did; the run is now `running`
        store.reads = 0
        quiet = _plan_and_store(store, settings, "night-2")
        assert store.reads == 1  # the run's own `running` row is not another run's writing

        def another_run_starts():
            with store.engine.begin() as connection:
                connection.execute(t.Run.__table__.insert().values(
                    run_id="other", started_at=t.utc_now(), as_of_date=AS_OF, status="running"))

        store.reads = 0
        busy = _plan_and_store(store, settings, "night-2", between=another_run_starts)
        assert store.reads == 2  # it may have written: matched again before storing
    finally:
        store.dispose()
    # either way every line is the stored line it was, and none is provisioned twice (R6)
    for persisted in (quiet, busy):
        assert persisted["line_pk"].notna().all()
        assert set(persisted["bucket"]) >= {"already_provisioned"} and "planned" not in set(persisted["bucket"])


def _insert_running(store: SqlStore, owners: dict) -> None:
    with store.engine.begin() as connection:
        connection.execute(t.Run.__table__.insert(), [
            {"run_id": run_id, "started_at": t.utc_now(), "as_of_date": AS_OF, "status": "running", "owner": owner}
            for run_id, owner in owners.items()])


def _statuses(store: SqlStore) -> dict:
    with store.engine.connect() as connection:
        return {run_id: (status, finished_at) for run_id, status, finished_at in connection.execute(
            t.Run.__table__.select().with_only_columns(t.Run.run_id, t.Run.status, t.Run.finished_at))}


def test_a_killed_run_is_marked_interrupted_by_the_next_run_and_no_longer_makes_runs_read_twice(tmp_path):
    """A killed run's row stays ``running``; while it does, every later run must assume it may
    be writing and matches its lines again before storing them. A run recorded with its owner
    is marked ``interrupted`` by the next run (its process is gone from this machine); one
    recorded without (before schema revision 0003) cannot be, and keeps costing the second read."""
    from w365etl.adapters.process_owners import owner_record

    *space, _ = owner_record().split()
    reads = {}
    for case, owner in (("with owner", "\n".join([*space, ended_pid()])), ("without owner", None)):
        url = f"sqlite:///{tmp_path / case.replace(' ', '-')}.sqlite"
        store = CountingStore(url)
        try:
            _insert_running(store, {"killed": owner})
            run_stages(store, _settings(url), FILES, run_id="night-1", as_of=AS_OF,
                       reference=read_reference_dir(SAMPLE_DATA / "reference"))
            store.reads = 0
            run_stages(store, _settings(url), FILES, run_id="night-2", as_of=AS_OF)
            reads[case] = store.reads
            statuses = _statuses(store)
        finally:
            store.dispose()
        if owner is not None:
            assert statuses["killed"][0] == "interrupted" and statuses["killed"][1] is not None
        else:
            assert statuses["killed"] == ("running", None)
        assert statuses["night-1"][0] == statuses["night-2"][0] == "completed"
    assert reads == {"with owner": 1, "without owner": 2}


def test_a_run_not_known_to_be_gone_stays_running(tmp_path):
    """Only an owner of this machine, boot and process namespace whose process has ended is gone:
    a run still going, one of another machine or container (its process number means another
    process there) and one recorded before owners were stay ``running``."""
    import os

    from w365etl.adapters.process_owners import owner_record

    *space, _ = owner_record().split()
    ended = ended_pid()
    owners = {
        "going": "\n".join([*space, str(os.getpid())]),
        "other-machine": "\n".join(["another-host", *space[1:], ended]),
        "other-container": "\n".join([*space[:2], "pid:[1]", ended]),
        "not-a-record": "garbage",
        "before-owners": None,
        "killed": "\n".join([*space, ended]),
    }
    store = SqlStore(f"sqlite:///{tmp_path / 'owners.sqlite'}")
    try:
        _insert_running(store, owners)
        store.start_run("night-1", AS_OF)
        statuses = {run_id: status for run_id, (status, _) in _statuses(store).items()}
    finally:
        store.dispose()
    assert statuses == {**dict.fromkeys(owners, "running"), "killed": "interrupted", "night-1": "running"}
