"""Storage adapter: the ``Store`` port on SQLAlchemy 2.0 (SQLite by default, PostgreSQL too).

Each public method is one transaction — a stage either lands whole or not at all. Writes are
bulk (``executemany`` of Core inserts/updates, upserts with ``ON CONFLICT``), never one ORM
round trip per line. Exactly-once rests on the unique constraints of ``tables.py``: inserts of
what a line creates use ``ON CONFLICT DO NOTHING`` on the line's key, so repeating a stage
after a crash converges instead of duplicating.

Concurrent runs on one database: from ``persist_plan`` until the run ends, a run holds a lock
on every customer (and order) it plans for — PostgreSQL: session advisory locks keyed on them;
SQLite: an exclusive lock on a ``<database>-runlock`` file beside the database (every run, since
SQLite writes one at a time anyway). A second run with any of those customers waits there, then
re-reads what its plan was built on (``_claim_lines``): a line another run provisioned in the
meantime becomes ``already_provisioned`` instead of being provisioned again; a line another run
stored becomes that stored line instead of a second one. Locks go with the session or the open
file, so a crashed run never leaves one behind, and its planned lines are taken over.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import sqlite3
import time
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy import Engine, create_engine, event, func, select, update
from sqlalchemy import bindparam, insert, inspect, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import ArgumentError, OperationalError, SQLAlchemyError

from w365etl.adapters import bulk_sql, migrations
from w365etl.adapters import tables as t
from w365etl.adapters.process_owners import describe_owner, is_gone, is_running_here, owner_record
from w365etl.amounts import decimals_to_text
from w365etl.domain import keys as line_keys
from w365etl.execute import REQUEST_SOURCE_COLUMNS
from w365etl.domain.outcomes import ALREADY_PROVISIONED, FAILED, HELD, PLANNED, PROVISIONED
from w365etl.failpoints import failpoint
from w365etl.history import INTERRUPTED, RunNotFound, RunNotMarked
from w365etl.reevaluation import PAYLOAD_COLUMNS, payloads
from w365etl.domain.subscriptions import CHARGE, CREATE, INCREASE
from w365etl.plan import Plan, StoredState, empty_state
from w365etl.reference import name_key
from w365etl.columns import is_in



class StoreUnavailable(Exception):
    """The database cannot be reached or opened (exit status 2: nothing was run)."""


def redact_url(url: str) -> str:
    try:
        return make_url(url).render_as_string(hide_password=True)
    except (ArgumentError, ValueError):  # ValueError: a port that is not a number
        return "<unparseable database URL>"


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Frame → list of dicts with None for NA (what DBAPI drivers accept)."""
    if frame.empty:
        return []
    cleaned = frame.astype(object).where(frame.notna(), None)
    return cleaned.to_dict("records")


def _driver_rows(connection: Connection, sql: str) -> list[tuple]:
    """A query's rows as the driver gives them (no per-value processing by SQLAlchemy)."""
    cursor = connection.connection.driver_connection.cursor()
    try:
        cursor.execute(sql)
        return cursor.fetchall()
    finally:
        cursor.close()


def _driver_frame(connection: Connection, sql: str, columns: list[str]) -> pd.DataFrame:
    """A query of text and integer columns read through the driver."""
    rows = _driver_rows(connection, sql)
    frame = _columns_frame(rows, columns)
    return frame.astype({name: "int64" for name in columns if name.endswith("_pk")}) if rows else frame


def _driver_integers(connection: Connection, sql: str, width: int) -> np.ndarray:
    """A query of integer columns (no NULLs) read through the driver as one int64 array."""
    rows = _driver_rows(connection, sql)
    return np.array(rows, dtype=np.int64).reshape(len(rows), width)


def _columns_frame(rows: Sequence, columns: list[str]) -> pd.DataFrame:
    """The driver's rows (tuples) → frame; ``from_records`` lays them out in one C pass (half
    the time of transposing them in Python first), inferring each column's type as before."""
    if not rows:
        return pd.DataFrame(columns=columns)
    return pd.DataFrame.from_records(rows, columns=columns)


#: what the plan reads of a customer's contracts (R4) and active subscriptions (R5)
_CONTRACT_COLUMNS = ("contract_pk", "contract_number", "contract_name", "customer_pk", "contract_type",
                     "contract_product_type", "billing_frequency", "currency_code", "status", "created_at")
_SUBSCRIPTION_COLUMNS = ("subscription_pk", "customer_pk", "contract_pk", "product_number", "provider_code",
                         "provisioning_unit", "quantity", "status", "provider_subscription_id", "created_at")


def _exact_text(values: pd.Series) -> pd.Series:
    """An exact-decimal column as the driver gave it (canonical text on SQLite, ``Decimal`` on
    PostgreSQL) as canonical text — what ``ExactDecimal`` reads back — converting each distinct
    value once."""
    distinct = values.dropna().drop_duplicates()
    converted = {value: t.canonical_decimal(value if isinstance(value, Decimal) else Decimal(str(value)))
                 for value in distinct}
    return values.map(converted).astype("string")


def _found_identifiers(hits: np.ndarray, keys: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray]:
    """The run's identifiers found stored (``line_pk``, stored ``level``, ``identifier``) from
    the lookup's integer rows (row number, then line and level rank per identifier level,
    -1 where not found), and the lines found for rows not settled by their strongest identifier."""
    row = hits[:, 0]
    present = keys.notna().to_numpy()[row]
    strongest = present.argmax(axis=1)  # the row's strongest identifier (every row here has one)
    settled = np.zeros(len(hits), dtype=bool)
    parts = []
    for i, name in enumerate(keys.columns):
        line_pk, rank = hits[:, 1 + 2 * i], hits[:, 2 + 2 * i]
        is_found = (line_pk >= 0) & (rank >= 0)  # a level this version does not know takes part in no match
        settled |= is_found & (rank == i) & (strongest == i)
        parts.append(pd.DataFrame({"line_pk": line_pk[is_found], "level": _levels(rank[is_found]),
                                   "identifier": keys[name].array.take(row[is_found])}))
    found = pd.concat(parts, ignore_index=True)
    unsettled = hits[~settled]
    open_lines = np.unique(unsettled[:, 1::2][unsettled[:, 1::2] >= 0]) if len(unsettled) else np.empty(0, dtype="int64")
    return found, open_lines


def _identifier_order(identifiers: pd.Series) -> np.ndarray:
    """Positions of ``identifiers`` in their byte order (SQLite's order for text), missing
    ones last — sorted in Arrow, in a tenth of the time SQLite's ``ORDER BY`` takes."""
    text = pa.array(identifiers.astype("string").array, type=pa.large_string(), from_pandas=True)
    if isinstance(text, pa.ChunkedArray):
        text = text.combine_chunks()
    return pc.sort_indices(text).to_numpy().astype("int64")  # missing ones last


def _levels(ranks: np.ndarray) -> pd.Categorical:
    """Identifier levels from their ranks (every rank a known one), as categories: the matcher
    reads their ranks back from the codes."""
    return pd.Categorical.from_codes(ranks, categories=list(line_keys.LEVELS))


#: what a row's digest leaves out: who last saw it, and the digest itself
_UNDIGESTED = ("last_run_id", "updated_at", "payload", "row_digest")
_MIX = np.uint64(0x9E3779B97F4A7C15)


def _row_digests(lines: pd.DataFrame, rows: pd.DataFrame, held_payloads: pd.Series) -> pd.Series:
    """A 64-bit digest of what each held, skipped or rejected line's row holds apart from who
    last saw it — its columns, and for a held line its payload (``held_payloads``, by the
    lines' index); NA for planned and already provisioned lines (a provider's answer, or
    nothing, is written to them).

    Values are hashed as text (``pandas.util.hash_pandas_object``, fixed key), so a digest is
    the same in every run for the same values. A digest that differs for the same values (a
    pandas upgrade, a payload written differently by a new version) only costs a rewrite;
    equal digests for different values would need a 64-bit collision."""
    digest = pd.Series(pd.NA, index=lines.index, dtype="Int64")
    waiting = ~lines["bucket"].isin([PLANNED, ALREADY_PROVISIONED])
    if not waiting.any():
        return digest
    columns = rows.loc[waiting, [name for name in rows.columns if name not in _UNDIGESTED]].astype("string")
    hashed = pd.util.hash_pandas_object(columns, index=False).to_numpy().copy()
    held = (lines.loc[waiting, "bucket"] == HELD).to_numpy()
    if held.any():
        content = held_payloads.reindex(lines.index[waiting][held]).astype("string")
        with np.errstate(over="ignore"):  # wrapping 64-bit arithmetic is the point
            hashed[held] = hashed[held] * _MIX ^ pd.util.hash_pandas_object(content, index=False).to_numpy()
    digest.loc[waiting] = hashed.view("int64")
    return digest


def _holds_already(lines: pd.DataFrame, digests: pd.Series) -> pd.Series:
    """Stored lines whose row holds exactly what this run would write (status and digest as
    read by load-state, which is current); False where unknown."""
    if "stored_row_digest" not in lines.columns:
        return pd.Series(False, index=lines.index)
    same = (lines["stored_status"] == lines["bucket"]) & (lines["stored_row_digest"] == digests)
    return same.fillna(False).astype(bool)


def create_store_engine(url: str) -> Engine:
    """The engine every store, upgrade and test uses. SQLite gets foreign keys, WAL, a busy
    timeout and ``BEGIN IMMEDIATE`` transactions (so its DDL is transactional too and two runs
    serialise their stages); ``StoreUnavailable`` for a URL that cannot be used."""
    try:
        engine = create_engine(url, future=True)
    except (ArgumentError, ImportError, ValueError) as error:  # ValueError: a port that is not a number
        raise StoreUnavailable(f"database URL {redact_url(url)} is not usable: {error}") from None
    if engine.dialect.name == "sqlite":
        try:
            _prepare_sqlite(engine)
        except OSError as error:  # its folder cannot be made (a file in the way, no permission)
            engine.dispose()
            raise StoreUnavailable(f"database {redact_url(url)}: its folder cannot be created ({error.strerror})") from None
    return engine


def _prepare_sqlite(engine: Engine) -> None:
    database = engine.url.database
    if database and database != ":memory:":
        Path(database).parent.mkdir(parents=True, exist_ok=True)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):  # pragma: no cover - driver hook
        # the sqlite3 module's own transaction handling would defer BEGIN; we issue it
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA busy_timeout=60000")
        cursor.execute("PRAGMA foreign_keys=ON")
        _enable_wal(cursor)
        # SQLite's default page cache is 2 MB: a run of a million lines inserts several million
        # index entries in random key order, which then costs a disk read per entry
        cursor.execute("PRAGMA cache_size=-262144")
        cursor.execute("PRAGMA temp_store=MEMORY")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection):  # pragma: no cover - driver hook
        # a write lock from the first statement: two runs serialise their stages
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def _enable_wal(cursor, seconds: float = 60.0) -> None:
    """WAL is a property of the file, set by whichever connection comes first. ``PRAGMA
    journal_mode`` does not wait on the busy timeout: two processes opening a new database at
    once (two runs started together, two upgrades) can find it locked while the other switches
    it, so this retries for as long as the busy timeout would wait (measured before: 16 of 150
    twin upgrades of a new file failed at once on a loaded 2-core machine)."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def upgrade_schema(url: str, revision: str = "head") -> tuple[migrations.SchemaStatus, migrations.SchemaStatus]:
    """``w365etl db upgrade``: the schema at ``revision``; the status before and after.
    ``StoreUnavailable`` when the database cannot be reached or upgraded automatically."""
    engine = create_store_engine(url)
    try:
        return migrations.upgrade(engine, revision)
    except migrations.SchemaError as error:
        raise StoreUnavailable(f"database {redact_url(url)}: {error}") from None
    except SQLAlchemyError as error:
        reason = str(getattr(error, "orig", error)).strip().splitlines()[0]
        raise StoreUnavailable(f"database {redact_url(url)} is unreachable: {reason}") from None
    finally:
        engine.dispose()


def schema_status(url: str) -> migrations.SchemaStatus:
    """``w365etl db current``: where the database's schema stands (changes nothing)."""
    engine = create_store_engine(url)
    try:
        with engine.connect() as connection:
            return migrations.schema_status(connection)
    except SQLAlchemyError as error:
        reason = str(getattr(error, "orig", error)).strip().splitlines()[0]
        raise StoreUnavailable(f"database {redact_url(url)} is unreachable: {reason}") from None
    finally:
        engine.dispose()


def _usable(status: migrations.SchemaStatus, *, may_be_empty: bool) -> bool:
    if status.is_current or (may_be_empty and status.is_empty):
        return True
    # read-only use (dry run) of a database built before migrations: the initial revision's shape
    return may_be_empty and status.is_legacy and status.head == migrations.INITIAL_REVISION


def schema_not_ready_message(url: str, status: migrations.SchemaStatus) -> str:
    """What a run on a database whose schema is not at head says (exit 2)."""
    where = f"database {redact_url(url)}"
    if status.is_ahead:
        return (f"{where} has schema {status.describe()}: it was upgraded by a newer w365etl; "
                "install that version to use it")
    return (f"{where} is not ready for this version of w365etl (schema: {status.describe()}; "
            f"needed: {status.head}). Run `w365etl db upgrade` with the same --db or W365_DB_URL "
            "to create or upgrade it: runs never create or alter a PostgreSQL schema themselves")


#: how long a run waits for another run on the same customers before giving up (exit 2)
RUN_LOCK_TIMEOUT_SECONDS = 3600
#: PostgreSQL advisory lock spaces (the two-int4 form): one run-wide, one per customer/order key
_LOCK_SPACE_RUNS = 0x7733_0001
_LOCK_SPACE_KEYS = 0x7733_0002
#: a run needing more keyed locks than this takes the run-wide lock exclusively instead
_MAX_KEYED_LOCKS = 512


def lock_keys(lines: pd.DataFrame) -> list[int]:
    """The int4 lock keys of a plan's customers (name and CRM id) and orders, sorted.

    Two runs that could plan the same line share at least one key: the line's order number, or
    its customer. Collisions of the 32-bit hash only make two runs wait for each other.
    """
    names = []
    for column, prefix in (("customer_name_key", "customer:"), ("customer_id", "customer-id:"),
                           ("order_number", "order:")):
        if column in lines.columns:
            names += [prefix + str(value) for value in lines[column].dropna().drop_duplicates()]
    return sorted({int.from_bytes(hashlib.blake2b(name.encode("utf-8"), digest_size=4).digest(), "big", signed=True)
                   for name in names})


class _PostgresRunLock:
    """Session advisory locks on a connection of their own, held until ``release``.

    Every key is taken in ascending order after a shared run-wide lock, and never more later,
    so two runs cannot deadlock; a big run takes the run-wide lock exclusively.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.connection: Connection | None = None

    def acquire(self, keys: list[int]) -> None:
        connection = self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        self.connection = connection
        connection.execute(text(f"SET lock_timeout = {int(RUN_LOCK_TIMEOUT_SECONDS * 1000)}"))
        if len(keys) > _MAX_KEYED_LOCKS:
            connection.execute(text("SELECT pg_advisory_lock(:space, 0)"), {"space": _LOCK_SPACE_RUNS})
            return
        connection.execute(text("SELECT pg_advisory_lock_shared(:space, 0)"), {"space": _LOCK_SPACE_RUNS})
        for key in keys:
            connection.execute(text("SELECT pg_advisory_lock(:space, :key)"), {"space": _LOCK_SPACE_KEYS, "key": key})

    def release(self) -> None:
        connection, self.connection = self.connection, None
        if connection is None:
            return
        try:
            connection.execute(text("SELECT pg_advisory_unlock_all()"))
        except SQLAlchemyError:  # the session is gone, and its locks with it
            pass
        finally:
            connection.close()


class _FileRunLock:
    """An exclusive ``flock`` on ``<database>-runlock``, held until ``release`` (SQLite)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.handle = None

    def acquire(self, keys: list[int]) -> None:
        import fcntl

        handle = self.path.open("a+b")
        deadline = time.monotonic() + RUN_LOCK_TIMEOUT_SECONDS
        while True:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    handle.close()
                    raise TimeoutError from None
                time.sleep(0.05)
        self.handle = handle

    def release(self) -> None:
        handle, self.handle = self.handle, None
        if handle is not None:
            handle.close()  # closing the file releases the flock


class _NoRunLock:
    """In-memory SQLite, or a platform without ``flock``: one process, nothing to share."""

    def acquire(self, keys: list[int]) -> None:
        return

    def release(self) -> None:
        return


#: lines written per slice by persist_plan (bounds the rows held as driver values at once)
STORE_SLICE_LINES = 200_000


class SqlStore:
    """The ``Store`` port over a SQLAlchemy engine."""

    def __init__(self, url: str, *, create_schema: bool = True) -> None:
        """Open the database and make sure its schema is the one this code expects (head).

        ``create_schema`` means "may upgrade": the embedded **SQLite** database is created or
        upgraded by running the migrations (never ``create_all``). A **PostgreSQL** database is
        never created or altered here, whatever ``create_schema`` says — only ``w365etl db
        upgrade`` (``migrations.upgrade``) does that, explicitly; a run on an empty or out-of-date
        one raises ``StoreUnavailable`` (exit 2) saying so. With ``create_schema=False`` (a dry
        run) nothing is written: an empty database is accepted (``has_schema()`` is then False),
        an out-of-date one is refused.
        """
        self.url = url
        self.engine: Engine = create_store_engine(url)
        try:
            with self.engine.connect() as connection:
                status = migrations.schema_status(connection)
            if not status.is_current and create_schema and self.dialect == "sqlite":
                _, status = migrations.upgrade(self.engine)
        except migrations.SchemaError as error:
            self.engine.dispose()
            raise StoreUnavailable(f"database {redact_url(url)}: {error}") from None
        except (OperationalError, SQLAlchemyError) as error:
            self.engine.dispose()
            reason = str(getattr(error, "orig", error)).strip().splitlines()[0]
            raise StoreUnavailable(f"database {redact_url(url)} is unreachable: {reason}") from None
        if not _usable(status, may_be_empty=not create_schema):
            self.engine.dispose()
            raise StoreUnavailable(schema_not_ready_message(url, status))
        self._run_lock = self._new_run_lock()
        self._holds_run_lock = False
        self._holds_whole_run = False
        #: what ``load_state`` read about this run's lines, and the runs table as it was then
        self._loaded_lines: tuple[tuple | None, pd.DataFrame, pd.DataFrame] | None = None
        #: the stored identifiers the plan was checked against when it was stored
        self._claimed_identifiers: pd.DataFrame | None = None
        #: the run this store started (a partitioned run loads state again for each partition)
        self._started_run_id: str | None = None

    def _new_run_lock(self):
        if self.dialect == "postgresql":
            return _PostgresRunLock(self.engine)
        database = self.engine.url.database
        try:
            import fcntl  # noqa: F401 - POSIX only
        except ImportError:  # pragma: no cover - Windows
            return _NoRunLock()
        if self.dialect == "sqlite" and database and database != ":memory:":
            return _FileRunLock(Path(f"{database}-runlock"))
        return _NoRunLock()

    def lock_run(self) -> None:
        """Hold the run-wide lock exclusively until the run ends: a run processed in partitions
        takes it before its first partition and keeps it to the last (``lock_customers`` then
        leaves it as it is), so no other run works between its partitions."""
        self._lock(list(range(_MAX_KEYED_LOCKS + 1)))  # more keys than are locked one by one: exclusive
        self._holds_whole_run = True

    def lock_customers(self, lines: pd.DataFrame) -> None:
        """Hold the locks of these lines' customers and orders until the run ends (waits for any
        other run holding one of them). Taken once per run: a second call starts over."""
        if self._holds_whole_run:
            return
        self._lock(lock_keys(lines))

    def _lock(self, keys: list[int]) -> None:
        self.release_customers()
        try:
            self._run_lock.acquire(keys)
        except (TimeoutError, OperationalError) as error:
            self._run_lock.release()
            # PostgreSQL's lock_timeout is SQLSTATE 55P03 (lock_not_available)
            if isinstance(error, TimeoutError) or getattr(getattr(error, "orig", None), "sqlstate", None) == "55P03":
                raise StoreUnavailable(
                    f"another w365etl run on database {redact_url(self.url)} has been provisioning some of the same "
                    f"customers for over {RUN_LOCK_TIMEOUT_SECONDS // 60} minutes; this run stopped before "
                    "provisioning anything — run it again when that run has finished") from None
            reason = str(getattr(error, "orig", error)).strip().splitlines()[0]
            raise StoreUnavailable(f"database {redact_url(self.url)} is unreachable: {reason}") from None
        self._holds_run_lock = True

    def release_customers(self) -> None:
        self._holds_whole_run = False
        if self._holds_run_lock:
            self._holds_run_lock = False
            self._run_lock.release()

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def has_schema(self) -> bool:
        return inspect(self.engine).has_table("runs")

    def _insert(self, table):
        return (postgresql.insert if self.dialect == "postgresql" else sqlite.insert)(table)

    def dispose(self) -> None:
        self.release_customers()
        self.engine.dispose()

    # ------------------------------------------------------------------ reading
    def _frame(self, connection: Connection, statement) -> pd.DataFrame:
        result = connection.execute(statement)
        return _columns_frame(result.fetchall(), list(result.keys()))

    def load_state(self, lines: pd.DataFrame) -> StoredState:
        """What the plan needs, limited to this run's identifiers and customers."""
        base = empty_state()
        with self.engine.begin() as connection:
            products = self._frame(connection, select(*[c for c in t.Product.__table__.c if c.name != "updated_at"]))
            accounts = self._frame(connection, select(
                t.ProviderAccount.customer_name, t.ProviderAccount.crm_customer_id.label("customer_id"),
                t.ProviderAccount.provider_code, t.ProviderAccount.provider_customer_id))
            customers = self._frame(connection, select(
                t.Customer.customer_pk, t.Customer.crm_customer_id, t.Customer.customer_name, t.Customer.name_key))
            # this run's own row is no other run's writing (its later partitions load state too)
            marker = self._other_runs_marker(connection, self._started_run_id)
            identifiers, stored_lines = self._matching_identifiers(connection, lines, with_lines=True)
            self._loaded_lines = (marker, identifiers, stored_lines)
            candidates = _candidate_customers(customers, lines)
            contracts = self._customer_rows(connection, "billing_contracts", _CONTRACT_COLUMNS, candidates)
            subscriptions = self._customer_rows(connection, "subscriptions", _SUBSCRIPTION_COLUMNS, candidates,
                                                where_sql="x.status = 'Active'")
        products = products if not products.empty else base.products
        if not products.empty:
            products = products.astype({"is_recurring": bool, "min_quantity": "Int64", "max_quantity": "Int64"})
        return StoredState(
            products=products,
            provider_accounts=accounts if not accounts.empty else base.provider_accounts,
            customers=customers if not customers.empty else base.customers,
            lines=stored_lines if not stored_lines.empty else base.lines,
            line_identifiers=identifiers if not identifiers.empty else base.line_identifiers,
            contracts=contracts if not contracts.empty else base.contracts,
            subscriptions=subscriptions if not subscriptions.empty else base.subscriptions,
        )

    def _other_runs_marker(self, connection: Connection, run_id: str | None) -> tuple | None:
        """What tells whether another run may have written lines since: how many runs exist and
        the last one finished — or None when another run is still running and could be writing
        at any moment (one killed while running counts until a run's start marks it
        ``interrupted``: its owner may be on another machine)."""
        others = t.Run.run_id != run_id if run_id is not None else t.Run.run_id.is_not(None)
        running = connection.execute(select(func.count()).select_from(t.Run).where(
            others, t.Run.status == "running")).scalar_one()
        if running:
            return None
        return tuple(connection.execute(select(func.count(), func.max(t.Run.finished_at)).where(others)).one())

    def _select_in(self, connection: Connection, statement, column, values: Sequence) -> pd.DataFrame:
        parts = [self._frame(connection, statement.where(column.in_(values[start:start + 5000])))
                 for start in range(0, len(values), 5000)]
        parts = [part for part in parts if not part.empty]
        if not parts:
            return pd.DataFrame(columns=[column.name for column in statement.selected_columns])
        return pd.concat(parts, ignore_index=True)

    def _customer_rows(self, connection: Connection, table: str, columns: tuple[str, ...],
                       customer_pks: list[int] | None, *, where_sql: str = "") -> pd.DataFrame:
        """``columns`` of ``table``'s rows (aliased ``x``) of these customers (``None``: of every
        customer), read through the driver: a partition's hundred thousand subscriptions cost
        no per-value processing by SQLAlchemy (timestamps and exact decimals are converted
        here, a column at a time). The customers go to a temporary table, not ``IN`` lists."""
        where = [where_sql] if where_sql else []
        source = f"{table} x"
        if customer_pks is not None:
            keys = bulk_sql.temporary_table(connection, "tmp_read_customers", pd.DataFrame(
                {"customer_pk": np.unique(np.asarray(customer_pks, dtype="int64"))}))
            # CROSS JOIN: SQLite starts from the few chosen customers and looks each one's rows up
            # by the customer index (it takes the join order as written)
            source = f"tmp_read_customers k CROSS JOIN {table} x"
            where.append("x.customer_pk = k.customer_pk")
        sql = f"SELECT {', '.join('x.' + name for name in columns)} FROM {source}"
        if where:
            sql += " WHERE " + " AND ".join(where)
        frame = _driver_frame(connection, sql, list(columns))
        if customer_pks is not None:
            keys.drop(connection)
        if "created_at" in frame.columns:  # only its order matters (R4/R5: the oldest first); stored in UTC
            frame["created_at"] = pd.to_datetime(frame["created_at"], utc=True, format="ISO8601")
        for name in ("quantity",):
            if name in frame.columns:
                frame[name] = _exact_text(frame[name])
        return frame

    def _matching_identifiers(self, connection: Connection, lines: pd.DataFrame, *, with_lines: bool = False):
        """What R6 needs to match this run's rows to stored lines: the stored identifiers this
        run has (``line_pk``, ``level``, ``identifier``) and, for the lines that could still be
        ruled out by a stronger identifier, every level they have (``identifier`` NA); with
        ``with_lines`` also the candidate lines' ``line_pk``, ``status``, ``content_signature``.

        The run's rows go to a temporary table (row number and its three identifiers, no text
        index); per level, their identifiers are taken in key order and looked up by the stored
        key from the run's side, returning integers only: per row, the line and level each of
        its identifiers is stored under. The text of a found identifier is the run's own.

        A row found under its strongest identifier is settled — the strongest identifier both
        sides have is that one, and no other stored line can beat it (one identifier names one
        line) — so the levels of its line are not read. Only the lines found for rows that are
        not settled (an export that lost its GUIDs, a line renumbered…) have all their levels
        read, so ``keys.match_stored_lines`` decides them exactly as on the whole table. On an
        identical re-run every row is settled: one key lookup per identifier, no second query.
        """
        no_lines = pd.DataFrame({"line_pk": pd.Series(dtype="int64"), "status": pd.Series(dtype="string"),
                                 "content_signature": pd.Series(dtype="string"), "row_digest": pd.Series(dtype="Int64")})
        key_columns = [f"key_{level}" for level in line_keys.LEVELS]
        # a database that has stored no line yet (a first run) has nothing to match
        if (lines.empty or not lines[key_columns].notna().to_numpy().any()
                or connection.exec_driver_sql("SELECT 1 FROM line_identifiers LIMIT 1").first() is None):
            return (pd.DataFrame(), no_lines) if with_lines else pd.DataFrame()
        keys = lines[key_columns].reset_index(drop=True)
        # the rows in the order of their strongest level's identifiers (sorted in Arrow; the
        # table unkeyed keeps that order), so that level is probed straight from it; the other
        # levels are copied out in their own order (one executemany of the rows costs less than
        # one per level: the driver's cost is per row)
        by_first = _identifier_order(keys[key_columns[0]])
        run_rows = bulk_sql.temporary_table(connection, "tmp_run_rows", pd.DataFrame(
            {"row_number": by_first, **{name: keys[name].take(by_first).array for name in key_columns}}),
            is_keyed=False)
        if self.dialect == "postgresql":  # a fresh temporary table has no statistics: plan the joins on real ones
            connection.exec_driver_sql("ANALYZE tmp_run_rows")
        ranks = " ".join(f"WHEN '{level}' THEN {rank}" for rank, level in enumerate(line_keys.LEVELS))
        # per row: the line and level each of its identifiers is stored under (-1: not stored)
        hits = np.full((len(keys), 1 + 2 * len(key_columns)), -1, dtype=np.int64)
        hits[:, 0] = np.arange(len(keys))
        for i, name in enumerate(key_columns):
            # the level's identifiers in key order, so the lookups walk the stored key index in
            # order instead of at random (2.5× faster on a partition of a big table); CROSS JOIN
            # keeps them outer on SQLite (it joins in the order written): a key lookup each,
            # never a scan of the stored identifiers
            source = f"(SELECT row_number, {name} AS identifier FROM tmp_run_rows WHERE {name} IS NOT NULL)"
            if i > 0:
                connection.exec_driver_sql("DROP TABLE IF EXISTS tmp_probe")
                connection.exec_driver_sql(f"CREATE TEMPORARY TABLE tmp_probe AS SELECT row_number, {name} AS identifier "
                                           f"FROM tmp_run_rows WHERE {name} IS NOT NULL ORDER BY {name}")
                if self.dialect == "postgresql":
                    connection.exec_driver_sql("ANALYZE tmp_probe")
                source = "tmp_probe"
            found = _driver_integers(connection, (
                f"SELECT p.row_number, s.line_pk, coalesce(CASE s.level {ranks} END, -1) "
                f"FROM {source} p CROSS JOIN line_identifiers s WHERE s.identifier = p.identifier"), 3)
            hits[found[:, 0], 1 + 2 * i] = found[:, 1]
            hits[found[:, 0], 2 + 2 * i] = found[:, 2]
        connection.exec_driver_sql("DROP TABLE IF EXISTS tmp_probe")
        run_rows.drop(connection)
        hits = hits[(hits[:, 1::2] >= 0).any(axis=1)]
        found, open_lines = _found_identifiers(hits, keys)
        if found.empty:
            return (found, no_lines) if with_lines else found
        line_pks = np.unique(found["line_pk"].to_numpy(dtype="int64"))
        open_lines = np.intersect1d(open_lines, line_pks, assume_unique=True)  # found at a known level
        if len(open_lines):
            opened = bulk_sql.temporary_table(connection, "tmp_open_lines", pd.DataFrame({"line_pk": open_lines}))
            if self.dialect == "postgresql":
                connection.exec_driver_sql("ANALYZE tmp_open_lines")
            levels = _driver_integers(connection, (
                f"SELECT DISTINCT s.line_pk, coalesce(CASE s.level {ranks} END, -1) FROM tmp_open_lines m "
                "CROSS JOIN line_identifiers s WHERE s.line_pk = m.line_pk"), 2)
            opened.drop(connection)
            levels = levels[levels[:, 1] >= 0]  # a level this version does not know takes part in no match
            found = pd.concat([found, pd.DataFrame({
                "line_pk": levels[:, 0],
                "level": _levels(levels[:, 1]),
                "identifier": pd.array([pd.NA] * len(levels), dtype="string"),
            })], ignore_index=True)
        if not with_lines:
            return found
        stored = self._stored_lines(connection, line_pks)
        return found, stored if not stored.empty else no_lines

    def _stored_lines(self, connection: Connection, line_pks: np.ndarray) -> pd.DataFrame:
        """``line_pk``, ``status``, ``content_signature``, ``row_digest`` of these stored lines."""
        matched = bulk_sql.temporary_table(connection, "tmp_matched_lines", pd.DataFrame({"line_pk": line_pks}))
        if self.dialect == "postgresql":
            connection.exec_driver_sql("ANALYZE tmp_matched_lines")
        # the digest comes as text: a column of 64-bit integers with NULLs would pass through
        # float64 in a frame and lose its low bits; Arrow parses the text exactly
        stored = _driver_frame(connection, "SELECT l.line_pk, l.status, l.content_signature, "
                               "CAST(l.row_digest AS TEXT) FROM tmp_matched_lines m CROSS JOIN lines l "
                               "WHERE l.line_pk = m.line_pk", ["line_pk", "status", "content_signature", "row_digest"])
        matched.drop(connection)
        if not stored.empty:
            stored["row_digest"] = pd.Series(pa.array(stored["row_digest"], type=pa.string(), from_pandas=True)
                                             .cast(pa.int64()).to_pandas(types_mapper={pa.int64(): pd.Int64Dtype()}.get),
                                             index=stored.index)
        return stored

    def imported_files(self, sha256s: list[str]) -> dict[str, str | None]:
        """sha256 → layout of the files among these that a completed run already imported."""
        if not sha256s:
            return {}
        statement = (select(t.SourceFile.sha256, t.SourceFile.layout)
                     .join(t.Run, t.Run.run_id == t.SourceFile.run_id)
                     .where(t.SourceFile.status == "read", t.Run.status == "completed",
                            t.SourceFile.sha256.in_(sha256s)))
        with self.engine.begin() as connection:
            return dict(connection.execute(statement).all())

    def stored_customers(self) -> pd.DataFrame:
        """Every stored customer's CRM id and name (a partitioned run ties the two)."""
        with self.engine.begin() as connection:
            return self._frame(connection, select(t.Customer.crm_customer_id, t.Customer.customer_name))

    def waiting_lines(self) -> pd.DataFrame:
        """Lines waiting for a cause outside the data to go away: held for a provider mapping,
        or failed at the provider — of orders with no rejected line (R2: those wait for a new
        export). Columns ``line_pk``, ``order_number``, ``payload``."""
        rejected_orders = select(t.Line.order_number).where(t.Line.status == "rejected", t.Line.order_number.is_not(None))
        statement = (
            select(t.Line.line_pk, t.Line.order_number, t.Line.payload)
            .where(t.Line.payload.is_not(None),
                   ((t.Line.status == HELD) & t.Line.status_reason.in_(["NEEDS_PROVIDER_MAPPING", "PROVIDER_MAPPING_INVALID"]))
                   | (t.Line.status == FAILED),
                   t.Line.order_number.not_in(rejected_orders))
            .order_by(t.Line.line_pk)
        )
        with self.engine.begin() as connection:
            return self._frame(connection, statement)

    # ------------------------------------------------------------------ reference data
    def upsert_reference(self, products: pd.DataFrame | None, provider_accounts: pd.DataFrame | None) -> None:
        """SPEC §2.2: loading is an upsert; a mapping added later releases held orders."""
        now = t.utc_now()
        with self.engine.begin() as connection:
            if products is not None and not products.empty:
                rows = _records(products.assign(updated_at=now))
                statement = self._insert(t.Product)
                statement = statement.on_conflict_do_update(
                    index_elements=["product_number"],
                    set_={column: statement.excluded[column] for column in products.columns if column != "product_number"}
                    | {"updated_at": statement.excluded.updated_at},
                )
                connection.execute(statement, rows)
            if provider_accounts is not None and not provider_accounts.empty:
                accounts = provider_accounts.assign(
                    name_key=name_key(provider_accounts["customer_name"]),
                    crm_customer_id=provider_accounts["customer_id"],
                ).drop(columns=["customer_id"])
                with_id = accounts[accounts["crm_customer_id"].notna()]
                name_only = accounts[accounts["crm_customer_id"].isna()]
                table = t.ProviderAccount.__table__
                if not with_id.empty:
                    connection.execute(table.delete().where(
                        t.ProviderAccount.crm_customer_id == bindparam("b_id"),
                        t.ProviderAccount.provider_code == bindparam("b_provider")),
                        [{"b_id": row.crm_customer_id, "b_provider": row.provider_code}
                         for row in with_id[["crm_customer_id", "provider_code"]].drop_duplicates().itertuples()])
                if not name_only.empty:
                    connection.execute(table.delete().where(
                        t.ProviderAccount.crm_customer_id.is_(None),
                        t.ProviderAccount.name_key == bindparam("b_name"),
                        t.ProviderAccount.provider_code == bindparam("b_provider")),
                        [{"b_name": row.name_key, "b_provider": row.provider_code}
                         for row in name_only[["name_key", "provider_code"]].drop_duplicates().itertuples()])
                connection.execute(insert(table), _records(accounts.drop_duplicates().assign(updated_at=now)))

    # ------------------------------------------------------------------ runs
    def start_run(self, run_id: str, as_of: dt.date) -> None:
        """Record the run as ``running``, with its owner (this process); first, mark the runs
        that were killed while running ``interrupted`` (``_mark_interrupted_runs``)."""
        with self.engine.begin() as connection:
            self._mark_interrupted_runs(connection)
            connection.execute(insert(t.Run), [{"run_id": run_id, "started_at": t.utc_now(), "as_of_date": as_of,
                                                "status": "running", "owner": owner_record()}])
        self._started_run_id = run_id

    @staticmethod
    def _mark_interrupted_runs(connection: Connection) -> None:
        """Mark ``interrupted`` every run still recorded ``running`` whose process is gone (it was
        killed: out of memory, a reboot, ``kill -9``). Only a run owned by
        this machine, boot and process namespace can be known gone (``process_owners``); a run
        of another machine, or one recorded before schema revision 0003, is left as it is.

        Why it matters beyond ``w365etl runs``: while any other run is ``running``, a run cannot
        trust what it read before taking its locks and re-checks every line it stores."""
        running = connection.execute(select(t.Run.run_id, t.Run.owner).where(
            t.Run.status == "running", t.Run.owner.is_not(None))).all()
        gone = [run_id for run_id, owner in running if is_gone(owner)]  # a few rows at most
        if gone:
            connection.execute(update(t.Run.__table__).where(t.Run.run_id.in_(gone), t.Run.status == "running")
                               .values(status=INTERRUPTED, finished_at=t.utc_now()))

    def mark_run_interrupted(self, run_id: str, *, is_forced: bool = False) -> str:
        """An operator's word that a run recorded ``running`` has stopped (``w365etl
        mark-interrupted``): it becomes ``interrupted``, as a run found killed does. Returns who
        had started it.

        Runs mark the killed runs of their own machine themselves; what is left ``running`` for
        ever is a run killed in another container or on another machine, or one started before
        schema revision 0003 — and while it is, every later run re-checks each line it stores.
        Without ``is_forced`` only a run whose process is known gone is marked; a run whose
        process is alive on this machine is never marked. Raises ``RunNotFound``, or
        ``RunNotMarked`` saying why."""
        with self.engine.begin() as connection:
            found = connection.execute(select(t.Run.status, t.Run.owner).where(t.Run.run_id == run_id)).first()
            if found is None:
                raise RunNotFound(run_id)
            status, owner = found
            started_by = describe_owner(owner)
            if status != "running":
                raise RunNotMarked(f"run {run_id} is {status}, not running: nothing to mark")
            if is_running_here(owner):
                raise RunNotMarked(f"run {run_id} is still running ({started_by}); it is not marked "
                                   "while its process is alive — stop it first if it must stop")
            if not is_gone(owner) and not is_forced:
                raise RunNotMarked(f"run {run_id} was started by {started_by}, which cannot be checked from "
                                   "here; if you know it has stopped (its machine or container is gone), "
                                   "run this again with --force")
            marked = connection.execute(update(t.Run.__table__).where(t.Run.run_id == run_id, t.Run.status == "running")
                                        .values(status=INTERRUPTED, finished_at=t.utc_now())).rowcount
            if not marked:  # it ended between the read and the update (PostgreSQL reads committed rows)
                raise RunNotMarked(f"run {run_id} ended meanwhile: nothing to mark")
        return started_by

    def persist_plan(self, run_id: str, plan: Plan) -> pd.DataFrame:
        """Stage 'plan': customers, contracts, orders, lines and identifiers in one transaction.

        Returns every line of the plan with its ``line_pk`` (the planned ones carry everything a
        provider needs), and with ``bucket`` and ``is_new_contract`` as stored: a planned line
        that another run provisioned since this run's plan was made comes back
        ``already_provisioned`` (provision only the lines still ``planned``), and a contract
        another run created comes back as not new.

        Concurrency: first the run's customers and orders are locked until the run ends
        (``lock_customers``), then, inside the transaction, the plan is checked against what is
        stored now (``_claim_lines``) — so of two runs planning the same line, exactly one
        provisions it.
        """
        self.lock_customers(plan.lines)
        with self.engine.begin() as connection:
            lines = self._claim_lines(connection, run_id, plan.lines)
            customer_pks = self._upsert_customers(connection, lines)
            lines = lines.assign(customer_pk=lines["customer_key"].map(customer_pks).astype("Int64"))
            still_new = lines.loc[(lines["bucket"] == PLANNED) & lines["is_new_contract"].astype(bool), "contract_number"]
            new_contracts = plan.new_contracts[is_in(plan.new_contracts["contract_number"], still_new)]
            contract_pks = self._insert_contracts(connection, run_id, new_contracts, customer_pks)
            lines = lines.assign(contract_pk=lines["contract_number"].map(contract_pks).astype("Int64"))
            lines = self._mark_contracts_created_elsewhere(connection, run_id, lines)
            self._upsert_orders(connection, run_id, lines)
            lines = self._store_lines(connection, run_id, lines)
            self._store_identifiers(connection, lines)
        # what the next stages need, not a second copy of the whole plan (a million-line run)
        return lines[list(dict.fromkeys(["bucket", "bucket_reason", "is_new_contract", *REQUEST_SOURCE_COLUMNS]))]

    def _claim_lines(self, connection: Connection, run_id: str, lines: pd.DataFrame) -> pd.DataFrame:
        """The plan against what is stored *now* (under the run's locks, in its transaction).

        The plan was made from the state read before the locks were taken; another run may
        have stored or provisioned some of the same lines since. Each line is matched again
        (R6, same rule as the plan): it is stored under the line found now — never as a second
        row of the same line — and a planned line found provisioned is ``already_provisioned``.
        A line another run left ``planned`` is taken over: that run has ended (it held the
        locks), so it crashed before recording what the provider did, and provisioning the same
        ``line_pk`` again converges (subscriptions and charges are unique per line; automatic
        providers reconcile through their submission journal).
        """
        loaded, self._loaded_lines = self._loaded_lines, None  # read for this plan only (a partition's lines)
        is_current = loaded is not None and loaded[0] is not None and loaded[0] == self._other_runs_marker(connection, run_id)
        if is_current:
            # no other run has written since load_state read these lines: what it read is
            # current, and the plan matched its lines against exactly that
            _, found, statuses = loaded
        else:
            found = self._matching_identifiers(connection, lines)
            statuses = None
        self._claimed_identifiers = found
        if found.empty:
            return lines
        current = lines["stored_line_pk"] if is_current else line_keys.match_stored_lines(lines, found)
        if statuses is None:
            matched = current.dropna().astype("int64").drop_duplicates().tolist()
            statuses = self._select_in(connection, select(t.Line.line_pk, t.Line.status), t.Line.line_pk, matched)
        by_pk = statuses.set_index("line_pk")
        status = current.map(by_pk["status"]).astype("string")
        taken = (lines["bucket"] == PLANNED) & (status == PROVISIONED).fillna(False)
        lines = lines.assign(stored_line_pk=current.where(current.notna(), lines["stored_line_pk"]).astype("Int64"))
        if is_current and "row_digest" in by_pk.columns:  # what the row holds now: it may be left as it is
            lines = lines.assign(stored_status=status, stored_row_digest=current.map(by_pk["row_digest"]).astype("Int64"))
        if taken.any():
            lines.loc[taken, "bucket"] = ALREADY_PROVISIONED
            lines.loc[taken, "bucket_reason"] = pd.NA
        return lines

    def _mark_contracts_created_elsewhere(self, connection: Connection, run_id: str, lines: pd.DataFrame) -> pd.DataFrame:
        """A contract planned as new that another run created meanwhile is reused, not created."""
        new = lines["is_new_contract"].astype(bool) & lines["contract_pk"].notna()
        if not new.any():
            return lines
        pks = lines.loc[new, "contract_pk"].astype("int64").drop_duplicates().tolist()
        creators = self._select_in(connection, select(t.BillingContract.contract_pk, t.BillingContract.created_run_id),
                                   t.BillingContract.contract_pk, pks)
        created_by = lines["contract_pk"].map(creators.set_index("contract_pk")["created_run_id"])
        elsewhere = new & (created_by != run_id).fillna(False)
        if elsewhere.any():
            lines = lines.assign(is_new_contract=lines["is_new_contract"].astype(bool) & ~elsewhere)
        return lines

    def _upsert_customers(self, connection: Connection, lines: pd.DataFrame) -> dict[str, int]:
        keyed = lines.dropna(subset=["customer_key"])
        pks: dict[str, int] = {}
        stored = keyed[keyed["customer_key"].str.startswith("pk:")]
        for key in stored["customer_key"].drop_duplicates():
            pks[key] = int(key[3:])
        # an account first known by name may now come with its CRM id: remember it
        learned = stored[stored["customer_id"].notna()].drop_duplicates("customer_key")
        if not learned.empty:
            connection.execute(
                update(t.Customer.__table__).where(t.Customer.customer_pk == bindparam("b_pk"),
                                                   t.Customer.crm_customer_id.is_(None)).values(crm_customer_id=bindparam("b_id")),
                [{"b_pk": int(row.customer_key[3:]), "b_id": row.customer_id} for row in learned.itertuples()],
            )
        new = keyed[keyed["customer_key"].str.startswith("new:")].sort_values("line_index")
        new = new.assign(crm=new.groupby("customer_key")["customer_id"].transform("first")).drop_duplicates("customer_key")
        if not new.empty:
            rows = [{"crm_customer_id": (None if pd.isna(row.crm) else row.crm), "customer_name": row.customer_name,
                     "name_key": row.customer_name_key} for row in new.itertuples()]
            with_id = [row for row in rows if row["crm_customer_id"] is not None]
            without_id = [row for row in rows if row["crm_customer_id"] is None]
            if with_id:
                connection.execute(self._insert(t.Customer).on_conflict_do_nothing(index_elements=["crm_customer_id"]), with_id)
                found = connection.execute(select(t.Customer.crm_customer_id, t.Customer.customer_pk).where(
                    t.Customer.crm_customer_id.in_([row["crm_customer_id"] for row in with_id]))).all()
                by_id = dict(found)
                for row in new.itertuples():
                    if not pd.isna(row.crm):
                        pks[row.customer_key] = by_id[row.crm]
            if without_id:
                # under the run's locks: an account of this name that another run stored since
                # the plan was made is the same account (as the plan would have found it)
                bare = new[new["crm"].isna()]
                stored_now = dict(connection.execute(
                    select(t.Customer.name_key, func.min(t.Customer.customer_pk))
                    .where(t.Customer.name_key.in_(bare["customer_name_key"].dropna().drop_duplicates().tolist()))
                    .group_by(t.Customer.name_key)).all())
                known = is_in(bare["customer_name_key"], stored_now.keys())
                pks.update(zip(bare.loc[known, "customer_key"], bare.loc[known, "customer_name_key"].map(stored_now)))
                missing = [row for row, is_known in zip(without_id, known) if not is_known]
                if missing:
                    result = connection.execute(
                        insert(t.Customer).returning(t.Customer.customer_pk, sort_by_parameter_order=True), missing)
                    pks.update(zip(bare.loc[~known, "customer_key"], result.scalars().all()))
        return pks

    def _insert_contracts(self, connection: Connection, run_id: str, new_contracts: pd.DataFrame,
                          customer_pks: dict[str, int]) -> dict[str, int]:
        if not new_contracts.empty:
            rows = new_contracts.assign(
                customer_pk=new_contracts["customer_key"].map(customer_pks), created_run_id=run_id,
                status="Active", created_at=t.utc_now(),
            ).drop(columns=["customer_key", "customer_name"])
            bulk_sql.insert_frame(connection, t.BillingContract.__table__, rows, conflict_columns=["contract_number"])
        found = connection.execute(select(t.BillingContract.contract_number, t.BillingContract.contract_pk)).all()
        return dict(found)

    def _upsert_orders(self, connection: Connection, run_id: str, lines: pd.DataFrame) -> None:
        columns = lines[["line_index", "order_number", "order_id", "customer_pk", "currency_code"]]  # not all 90
        orders = columns.dropna(subset=["order_number"]).sort_values("line_index").drop_duplicates("order_number")
        if orders.empty:
            return
        rows = pd.DataFrame({
            "order_number": orders["order_number"], "order_id": orders["order_id"],
            "customer_pk": orders["customer_pk"], "currency_code": orders["currency_code"],
            "is_fulfilled": False, "last_run_id": run_id,
        })
        bulk_sql.insert_frame(connection, t.Order.__table__, rows, conflict_columns=["order_number"], update_sql=(
            "order_id = coalesce(excluded.order_id, orders.order_id), "
            "customer_pk = coalesce(excluded.customer_pk, orders.customer_pk), last_run_id = excluded.last_run_id"))

    def _store_lines(self, connection: Connection, run_id: str, lines: pd.DataFrame) -> pd.DataFrame:
        stored_pk = lines["stored_line_pk"]
        # never touch a line already provisioned: R6 keeps its first, provisioned content
        keep = lines["bucket"] == ALREADY_PROVISIONED
        updating = stored_pk.notna() & ~keep
        new = stored_pk.isna()
        line_pk = stored_pk.copy()
        if new.any():
            line_pk.loc[new] = bulk_sql.reserve_primary_keys(connection, t.Line.__table__, int(new.sum()))
        now = t.utc_now()
        # a slice at a time: the rows as stored (24 text columns, a payload per held line) exist
        # for one slice only, not for a million lines at once
        for start in range(0, len(lines), STORE_SLICE_LINES):
            part = slice(start, start + STORE_SLICE_LINES)
            chunk = lines.iloc[part]
            # a held line comes back by itself, so its row keeps its content; a planned one
            # only if the provider refuses it (record_results then stores its content)
            held_payloads = payloads(chunk.loc[chunk["bucket"] == HELD, list(PAYLOAD_COLUMNS)])
            values = self._line_rows(run_id, chunk, now, held_payloads)
            is_new, is_updating = new.iloc[part], updating.iloc[part]
            # a held, skipped or rejected line whose row already holds exactly these values
            # (same status, same digest; load-state's read is current) is only marked seen by
            # this run: an identical re-run rewrites neither its row nor its payload
            is_seen = is_updating & _holds_already(chunk, values["row_digest"])
            values["payload"] = held_payloads.reindex(chunk.index)
            if is_new.any():
                bulk_sql.insert_frame(connection, t.Line.__table__,
                                      values[is_new].assign(line_pk=line_pk.iloc[part][is_new].astype("int64")))
            rewritten = is_updating & ~is_seen
            if rewritten.any():
                bulk_sql.update_frame(connection, t.Line.__table__,
                                      values[rewritten].assign(line_pk=stored_pk.iloc[part][rewritten].astype("int64")),
                                      key="line_pk", where_sql=f"status <> '{PROVISIONED}'")
            if is_seen.any():
                bulk_sql.update_frame(connection, t.Line.__table__, pd.DataFrame({
                    "last_run_id": run_id, "updated_at": now,
                    "line_pk": stored_pk.iloc[part][is_seen].astype("int64")}),
                    key="line_pk", where_sql=f"status <> '{PROVISIONED}'")
        return lines.assign(line_pk=line_pk.astype("Int64"))

    @staticmethod
    def _line_rows(run_id: str, lines: pd.DataFrame, now, held_payloads: pd.Series) -> pd.DataFrame:
        """The ``lines`` table's columns for these plan lines (the payload is added by the caller)
        and each row's ``row_digest`` (a held line's digest covers its payload)."""
        rows = pd.DataFrame({
            "line_key": lines["line_key"],
            "order_number": lines["order_number"],
            "customer_pk": lines["customer_pk"],
            "status": lines["bucket"],
            "status_reason": lines["bucket_reason"],
            "content_signature": lines["content_signature"],
            "last_run_id": run_id,
            "action": lines["action"].where(lines["bucket"] == PLANNED),
            "contract_pk": lines["contract_pk"].where(lines["bucket"] == PLANNED),
            "target_subscription_pk": lines["target_subscription_pk"],
            "provider_code": lines["effective_provider_code"],
            "provider_customer_id": lines["provider_customer_id"],
            "product_number": lines["catalog_product_number"],
            "quantity": decimals_to_text(lines["quantity"]),
            "price_per_unit": decimals_to_text(lines["price_per_unit"]),
            "extended_amount": decimals_to_text(lines["extended_amount"]),
            "provisioning_unit": lines["effective_provisioning_unit"],
            "term_duration": lines["effective_term_duration"],
            "billing_frequency": lines["effective_billing_frequency"],
            "provider_sku": lines["catalog_provider_sku"],
            "updated_at": now,
        }, index=lines.index)
        return rows.assign(row_digest=_row_digests(lines, rows, held_payloads))

    def _store_identifiers(self, connection: Connection, lines: pd.DataFrame) -> None:
        levels = ("guid", "number", "content")
        known = self._claimed_identifiers
        is_known = np.zeros((len(levels), len(lines)), dtype=bool)
        if known is not None and not known.empty:  # a re-run re-sends none of the identifiers it matched
            stacked = pd.concat([lines[f"key_{level}"] for level in levels], ignore_index=True)
            is_known = is_in(stacked, known["identifier"].dropna()).to_numpy().reshape(len(levels), len(lines))
        parts = []
        for i, level in enumerate(levels):
            column = lines[f"key_{level}"]
            present = column.notna() & ~is_known[i]
            parts.append(pd.DataFrame({"identifier": column[present], "line_pk": lines.loc[present, "line_pk"],
                                       "level": level}))
        # the known ones left out first: an identical re-run has nothing left to deduplicate
        identifiers = pd.concat(parts, ignore_index=True).drop_duplicates("identifier")
        # in key order: the key index then grows by appending (about twice as fast as random order)
        identifiers = identifiers.sort_values("identifier", ignore_index=True)
        bulk_sql.insert_frame(connection, t.LineIdentifier.__table__, identifiers, conflict_columns=["identifier"])

    def record_results(self, run_id: str, requests: pd.DataFrame, results: pd.DataFrame, as_of: dt.date,
                       payloads: pd.Series | None = None) -> None:
        """Stage 'execute': what the provider did, with the line marked done, in one transaction
        (a refused line keeps its content, ``payloads`` by ``line_pk``, to come back next run)."""
        done = requests.merge(results, on="line_pk", how="left", suffixes=("", "_result"))
        done["is_success"] = done["is_success"].fillna(False).astype(bool)
        ok = done[done["is_success"]]
        with self.engine.begin() as connection:
            creates = ok[ok["action"] == CREATE]
            if not creates.empty:
                rows = pd.DataFrame({
                    "subscription_number": "SUB-" + creates["line_pk"].astype("int64").astype("string").str.zfill(8),
                    "customer_pk": creates["customer_pk"], "contract_pk": creates["contract_pk"],
                    "product_number": creates["product_number"], "provider_code": creates["provider_code"],
                    "provider_subscription_id": creates["provider_subscription_id_result"],
                    "quantity": creates["quantity"], "price_per_unit": creates["price_per_unit"],
                    "provisioning_unit": creates["provisioning_unit"], "term_duration": creates["term_duration"],
                    "start_date": as_of, "status": "Active", "source_line_pk": creates["line_pk"],
                    "created_run_id": run_id, "created_at": t.utc_now(),
                })
                bulk_sql.insert_frame(connection, t.Subscription.__table__, rows, conflict_columns=["source_line_pk"])
            increases = ok[ok["action"] == INCREASE]
            if not increases.empty:
                self._apply_increases(connection, run_id, increases)
            charges = ok[ok["action"] == CHARGE]
            if not charges.empty:
                rows = pd.DataFrame({
                    "charge_number": "OTC-" + charges["line_pk"].astype("int64").astype("string").str.zfill(8),
                    "customer_pk": charges["customer_pk"], "contract_pk": charges["contract_pk"],
                    "product_number": charges["product_number"], "provider_code": charges["provider_code"],
                    "quantity": charges["quantity"], "price_per_unit": charges["price_per_unit"],
                    "extended_amount": charges["extended_amount"], "charge_date": as_of,
                    "source_line_pk": charges["line_pk"], "run_id": run_id,
                })
                bulk_sql.insert_frame(connection, t.OneTimeCharge.__table__, rows, conflict_columns=["source_line_pk"])
            status = pd.DataFrame({
                "line_pk": done["line_pk"].astype("int64"),
                "status": done["is_success"].map({True: PROVISIONED, False: FAILED}),
                "status_reason": pd.Series("PROVIDER_ERROR", index=done.index).where(~done["is_success"]),
                "provisioned_run_id": pd.Series(run_id, index=done.index).where(done["is_success"]),
                "provider_subscription_id": done["provider_subscription_id_result"].fillna(done["provider_subscription_id"]),
                "error_code": done["error_code"], "error_message": done["error_message"],
                "payload": (done["line_pk"].astype("int64").map(payloads) if payloads is not None
                            else pd.Series(pd.NA, index=done.index, dtype="string")).where(~done["is_success"]),
                "updated_at": t.utc_now(),
            })
            failpoint("before_marking_lines_done", requests["provider_code"].iloc[0] if len(requests) else None)
            # a plain "done" (nothing per line to keep) is one set-based update for all such lines
            plain = (done["is_success"] & status["provider_subscription_id"].isna() & status["error_code"].isna()
                     & status["error_message"].isna())
            for part in (status[plain], status[~plain]):
                bulk_sql.update_frame(connection, t.Line.__table__, part, key="line_pk", where_sql=f"status = '{PLANNED}'")

    def _apply_increases(self, connection: Connection, run_id: str, increases: pd.DataFrame) -> None:
        """R5 Existing: add each line's quantity once (a change row per line, unique per line)."""
        statement = self._insert(t.SubscriptionChange).on_conflict_do_nothing(index_elements=["line_pk"])
        targets = increases["target_subscription_pk"].astype("int64").drop_duplicates().tolist()
        current = dict(connection.execute(select(t.Subscription.subscription_pk, t.Subscription.quantity).where(
            t.Subscription.subscription_pk.in_(targets)).with_for_update()).all())
        already = set(connection.execute(select(t.SubscriptionChange.line_pk).where(
            t.SubscriptionChange.line_pk.in_(increases["line_pk"].astype("int64").tolist()))).scalars())
        running = {pk: Decimal(value) for pk, value in current.items()}
        changes = []
        # one Decimal addition per increased subscription line: these are few, and exactness
        # matters more than vectorising a handful of sums
        for row in increases.sort_values("line_pk").itertuples():
            if int(row.line_pk) in already:
                continue
            target = int(row.target_subscription_pk)
            before = running[target]
            after = before + Decimal(str(row.quantity))
            running[target] = after
            changes.append({"subscription_pk": target, "line_pk": int(row.line_pk), "quantity_before": before,
                            "quantity_after": after, "run_id": run_id, "created_at": t.utc_now()})
        if changes:
            connection.execute(statement, changes)
            connection.execute(
                update(t.Subscription.__table__).where(t.Subscription.subscription_pk == bindparam("b_pk"))
                .values(quantity=bindparam("quantity")),
                [{"b_pk": pk, "quantity": running[pk]} for pk in {change["subscription_pk"] for change in changes}],
            )

    def mark_orders_fulfilled(self, run_id: str, orders: pd.DataFrame, as_of: dt.date) -> pd.DataFrame:
        """R7: orders whose lines are all provisioned become Fulfilled / Complete.

        Returns ``order_number``, ``order_id``, ``fulfilled_date`` of every order due in
        ``order_status_updates.csv`` (newly fulfilled and fulfilled before).

        An order fulfilled now (``is_fulfilled_now``: a line of it was provisioned in this run)
        is dated this run even when an earlier run fulfilled it before a line was added — the
        csv for D365 and the report then say the same date; an order ``already_fulfilled``
        keeps its date. The run that first fulfilled it stays ``fulfilled_run_id`` (the history
        of that run still shows the order fulfilled by it), and a date never moves back (a run
        given an earlier ``--as-of``).
        """
        numbers = orders["order_number"].dropna().drop_duplicates().tolist()
        now = orders.loc[orders["is_fulfilled_now"].astype(bool), "order_number"].dropna().drop_duplicates().tolist()
        with self.engine.begin() as connection:
            for start in range(0, len(numbers), 5000):
                connection.execute(
                    update(t.Order.__table__).where(t.Order.order_number.in_(numbers[start:start + 5000]),
                                                    t.Order.is_fulfilled.is_(False))
                    .values(is_fulfilled=True, fulfilled_date=as_of, fulfilled_run_id=run_id))
            for start in range(0, len(now), 5000):
                connection.execute(
                    update(t.Order.__table__).where(t.Order.order_number.in_(now[start:start + 5000]),
                                                    t.Order.is_fulfilled.is_(True), t.Order.fulfilled_date < as_of)
                    .values(fulfilled_date=as_of))
            found = self._orders_read(connection, numbers)
        return found

    def _orders_read(self, connection: Connection, numbers: list[str]) -> pd.DataFrame:
        """``order_number``, ``order_id``, ``fulfilled_date`` of these stored orders, read through
        the driver by a join on a temporary table (a partition's hundred thousand orders: no
        ``IN`` lists, no per-row processing by SQLAlchemy); dates converted once per distinct
        value, to the ``datetime.date`` SQLAlchemy would give."""
        columns = ["order_number", "order_id", "fulfilled_date"]
        if not numbers:
            return pd.DataFrame(columns=columns)
        keys = bulk_sql.temporary_table(connection, "tmp_read_orders", pd.DataFrame({"order_number": numbers}))
        frame = _driver_frame(connection, "SELECT o.order_number, o.order_id, o.fulfilled_date FROM tmp_read_orders k "
                              "CROSS JOIN orders o WHERE o.order_number = k.order_number", columns)
        keys.drop(connection)
        if frame.empty:
            return pd.DataFrame(columns=columns)
        dates = frame["fulfilled_date"]
        distinct = dates.dropna().drop_duplicates()
        frame["fulfilled_date"] = dates.map({value: value if isinstance(value, dt.date) else dt.date.fromisoformat(value)
                                             for value in distinct}).astype(object)
        return frame

    def finish_run(self, run_id: str, summary: dict, files: list[dict], exceptions: pd.DataFrame,
                   outcomes: pd.DataFrame) -> None:
        with self.engine.begin() as connection:
            if files:
                connection.execute(insert(t.SourceFile), [
                    {"run_id": run_id, "path": item["path"], "sha256": item["sha256"], "layout": item.get("layout"),
                     "dialect": item.get("dialect"), "rows": int(item.get("rows") or 0), "status": item["status"],
                     "error": item.get("error")} for item in files])
            if not exceptions.empty:
                rows = exceptions.drop(columns=[c for c in exceptions.columns if c not in t.ExceptionRecord.__table__.c])
                bulk_sql.insert_frame(connection, t.ExceptionRecord.__table__, rows.assign(run_id=run_id))
            self._insert_outcomes(connection, run_id, outcomes)
            connection.execute(update(t.Run.__table__).where(t.Run.run_id == run_id).values(
                status="completed", finished_at=t.utc_now(), summary_json=json.dumps(summary, default=str)))
        self._started_run_id = None  # from now on it is another run's row (a store can serve the next night)
        self.release_customers()  # the run's writes are done: other runs may take its customers

    def fail_run(self, run_id: str, message: str) -> None:
        """A run that stopped after it stored some of its work: ``failed``, with why (what it
        stored stays, and a re-run finds it: R6)."""
        with self.engine.begin() as connection:
            connection.execute(update(t.Run.__table__).where(t.Run.run_id == run_id).values(
                status="failed", finished_at=t.utc_now(), summary_json=json.dumps({"error": message})))
        self._started_run_id = None
        self.release_customers()

    def record_outcomes(self, run_id: str, outcomes: pd.DataFrame) -> None:
        with self.engine.begin() as connection:
            self._insert_outcomes(connection, run_id, outcomes)

    @staticmethod
    def _insert_outcomes(connection: Connection, run_id: str, outcomes: pd.DataFrame) -> None:
        if not outcomes.empty:
            rows = outcomes.dropna(subset=["line_pk"]).drop_duplicates("line_pk").assign(run_id=run_id)
            # in key order: the (run, line) key index then grows by appending, not by random inserts
            rows = rows.sort_values("line_pk", kind="stable")
            bulk_sql.insert_frame(connection, t.LineOutcome.__table__, rows[["run_id", "line_pk", "bucket", "reason_code"]])


def _candidate_customers(customers: pd.DataFrame, lines: pd.DataFrame) -> list[int] | None:
    """The stored customers these lines can resolve to (same CRM id or same name key: the only
    ways ``mapping.resolve_customers`` names a stored account), or None when that is most of
    them (then reading every contract and subscription is cheaper than asking for some)."""
    if customers.empty or "customer_name" not in lines.columns:
        return None
    ids = lines["customer_id"].dropna().astype("string").drop_duplicates()
    names = name_key(lines["customer_name"].dropna().drop_duplicates())
    chosen = customers[is_in(customers["crm_customer_id"].astype("string"), ids)
                       | is_in(customers["name_key"].astype("string"), names)]
    if len(chosen) > max(len(customers) // 2, 5_000):
        return None
    return chosen["customer_pk"].astype("int64").tolist()


class SqlSubmissionJournal:
    """The ``SubmissionJournal`` port: each call commits at once, before the provider call it
    precedes, so that a crash right after still leaves the trace a retry needs."""

    def __init__(self, store: SqlStore, provider_code: str, run_id: str) -> None:
        self.store = store
        self.provider_code = provider_code
        self.run_id = run_id

    def start(self, provider_customer_id: str, request_id: str, friendly_names: list[str]) -> None:
        with self.store.engine.begin() as connection:
            connection.execute(insert(t.ProviderSubmission), [{
                "provider_code": self.provider_code, "provider_customer_id": provider_customer_id,
                "request_id": request_id, "friendly_names": json.dumps(sorted(friendly_names)),
                "status": "started", "run_id": self.run_id}])

    def update(self, request_id: str, *, status: str, cart_id: str | None = None,
               order_ids: list[str] | None = None) -> None:
        values: dict[str, Any] = {"status": status, "updated_at": t.utc_now()}
        if cart_id is not None:
            values["cart_id"] = cart_id
        if order_ids is not None:
            values["order_ids"] = json.dumps(order_ids)
        with self.store.engine.begin() as connection:
            connection.execute(update(t.ProviderSubmission.__table__)
                               .where(t.ProviderSubmission.request_id == request_id).values(values))

    def open_submissions(self, provider_customer_id: str) -> list[dict[str, Any]]:
        """Submissions of this customer that never reached a definitive end, oldest first."""
        with self.store.engine.begin() as connection:
            rows = connection.execute(
                select(t.ProviderSubmission.request_id, t.ProviderSubmission.cart_id,
                       t.ProviderSubmission.order_ids, t.ProviderSubmission.friendly_names,
                       t.ProviderSubmission.status)
                .where(t.ProviderSubmission.provider_code == self.provider_code,
                       t.ProviderSubmission.provider_customer_id == provider_customer_id,
                       t.ProviderSubmission.status.not_in(["completed", "failed"]))
                .order_by(t.ProviderSubmission.submission_pk)).mappings().all()
        return [dict(row) | {"friendly_names": json.loads(row["friendly_names"]),
                             "order_ids": json.loads(row["order_ids"]) if row["order_ids"] else []}
                for row in rows]


def sqlite_file_missing(url: str) -> bool:
    """A dry run must not create the embedded database: is the SQLite file still absent?"""
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        return False
    if parsed.get_backend_name() != "sqlite":
        return False
    database = parsed.database
    return bool(database) and database != ":memory:" and not Path(database).exists()
