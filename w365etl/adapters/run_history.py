"""Run history (nightly operation, item 5): what past runs left in the database, as frames.

The only SQL behind ``w365etl runs`` and ``w365etl report``. Every read is one bulk query
(joins in the database, never a query per row): one for the list of runs; for one run, one per
table its reports come from — its line outcomes (with each line's stored plan, customer,
product, contract, order and the run that fulfilled the order), the billing contracts it
created or used, the subscriptions, subscription changes and one-time charges it created, its
exceptions. Turning these into reports is ``w365etl.history``'s job (pure).

Reading never creates anything: no schema, and no SQLite file where there is none.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
from sqlalchemy import Boolean, Engine, String, create_engine, event, inspect, literal, or_, select, union_all
from sqlalchemy.engine import Connection
from sqlalchemy.exc import ArgumentError, OperationalError, SQLAlchemyError
from sqlalchemy.orm import aliased

from w365etl.adapters import tables as t
from w365etl.adapters.process_owners import describe_owner, is_gone
from w365etl.adapters.store_sql import StoreUnavailable, redact_url, sqlite_file_missing
from w365etl.domain.outcomes import ALREADY_PROVISIONED, PROVISIONED
from w365etl.history import INTERRUPTED, RunNotFound, RunRecords
from w365etl.report.build import EXCEPTION_COLUMNS

__all__ = ["RunHistory", "RunNotFound", "StoreUnavailable"]

RUN_COLUMNS = ["run_id", "started_at", "finished_at", "as_of_date", "status", "summary_json"]


class RunHistory:
    """Read-only access to the runs a database holds."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine: Engine | None = None
        self._has_schema = False
        self._has_owner: bool | None = None
        if sqlite_file_missing(url):
            return  # no database yet: no runs (and do not create the file by looking)
        try:
            self.engine = create_engine(url, future=True)
        except (ArgumentError, ImportError, ValueError) as error:  # ValueError: a port that is not a number
            raise StoreUnavailable(f"database URL {redact_url(url)} is not usable: {error}") from None
        if self.engine.dialect.name == "sqlite":
            @event.listens_for(self.engine, "connect")
            def _on_connect(dbapi_connection, _record):  # pragma: no cover - driver hook
                cursor = dbapi_connection.cursor()
                cursor.execute("PRAGMA busy_timeout=60000")
                cursor.close()
        try:
            self._has_schema = inspect(self.engine).has_table(t.Run.__tablename__)
        except (OperationalError, SQLAlchemyError) as error:
            reason = str(getattr(error, "orig", error)).strip().splitlines()[0]
            raise StoreUnavailable(f"database {redact_url(url)} is unreachable: {reason}") from None

    def dispose(self) -> None:
        if self.engine is not None:
            self.engine.dispose()

    # ------------------------------------------------------------------ helpers
    def _connect(self) -> Connection:
        assert self.engine is not None
        connection = self.engine.connect()
        if self.engine.dialect.name == "postgresql":
            # one snapshot for all of a report's queries
            connection = connection.execution_options(isolation_level="REPEATABLE READ")
        return connection

    @staticmethod
    def _frame(connection: Connection, statement) -> pd.DataFrame:
        result = connection.execute(statement)
        return pd.DataFrame(result.fetchall(), columns=list(result.keys()))

    # ------------------------------------------------------------------ runs
    def list_runs(self, limit: int | None = None) -> pd.DataFrame:
        """Runs newest first: ``run_id``, ``started_at``, ``finished_at``, ``as_of_date``,
        ``status``, ``summary_json`` (NA until the run finished), and ``started_by`` (who
        started it, ``process_owners.describe_owner``) where the schema records it (0003)."""
        if self.engine is None or not self._has_schema:
            return pd.DataFrame(columns=RUN_COLUMNS)
        statement = self._runs_select().order_by(t.Run.started_at.desc(), t.Run.run_id.desc())
        if limit is not None:
            statement = statement.limit(limit)
        with self._connect() as connection:
            runs = self._frame(connection, statement)
        if "owner" in runs.columns:
            owners = runs.pop("owner")
            runs["status"] = [_shown_status(status, owner) for status, owner in zip(runs["status"], owners)]
            runs["started_by"] = [describe_owner(owner) for owner in owners]
        return runs

    def _runs_select(self):
        """The runs' columns, with ``owner`` where the schema has it (revision 0003): this
        read-only view may be given an older database (PostgreSQL is upgraded by hand)."""
        if self._has_owner is None:
            self._has_owner = "owner" in [column["name"] for column in inspect(self.engine).get_columns(t.Run.__tablename__)]
        return select(*[getattr(t.Run, name) for name in RUN_COLUMNS], *([t.Run.owner] if self._has_owner else []))

    def load_run(self, run_id: str) -> RunRecords:
        """Everything the reports of ``run_id`` are rebuilt from; ``RunNotFound`` if unknown."""
        if self.engine is None or not self._has_schema:
            raise RunNotFound(run_id)
        with self._connect() as connection:
            found = connection.execute(self._runs_select().where(t.Run.run_id == run_id)).mappings().first()
            if found is None:
                raise RunNotFound(run_id)
            run = dict(found)
            run["status"] = _shown_status(run["status"], run.pop("owner", None))
            return RunRecords(
                run=run,
                lines=self._frame(connection, _lines_of(run_id)),
                contracts=self._frame(connection, _contracts_of(run_id)),
                subscriptions=self._frame(connection, _subscriptions_of(run_id)),
                subscription_changes=self._frame(connection, _changes_of(run_id)),
                one_time_charges=self._frame(connection, _charges_of(run_id)),
                exceptions=self._frame(connection, _exceptions_of(run_id)),
            )


def _shown_status(status: str, owner: object) -> str:
    """A run's status as a person should see it: one still ``running`` whose process is gone
    from this machine is ``interrupted`` (the next run records it so)."""
    return INTERRUPTED if status == "running" and is_gone(owner) else status


# ---------------------------------------------------------------------- statements
def _lines_of(run_id: str) -> Any:
    """One row per line the run decided: this run's bucket and reason, the line's stored plan
    (its latest state), its customer, product, contract and order, and when the order was
    fulfilled (the fulfilling run's start, to tell "by this run or before" from "later").

    ``recorded`` is true for the run's ``line_outcomes`` rows. For runs whose outcomes miss
    lines (runs that recorded only their planned lines), two stand-ins follow, marked
    ``recorded`` false and used only when the outcomes are incomplete: lines this run was
    the last to plan (bucket = their stored status), and provisioned lines of orders this run
    was the last to see (``already_provisioned``).
    """
    o, line = t.LineOutcome, t.Line
    in_run = select(o.line_pk).where(o.run_id == run_id)
    recorded = _line_select(o.bucket, o.reason_code, True).select_from(o).join(line, line.line_pk == o.line_pk)
    recorded = _line_joins(recorded).where(o.run_id == run_id)
    last_planned = _line_joins(_line_select(line.status, line.status_reason, False).select_from(line)).where(
        line.last_run_id == run_id, line.line_pk.not_in(in_run))
    seen_orders = select(t.Order.order_number).where(t.Order.last_run_id == run_id)
    bought_before = _line_joins(
        _line_select(literal(ALREADY_PROVISIONED, String), literal(None, String), False).select_from(line)).where(
        line.order_number.in_(seen_orders), line.status == PROVISIONED,
        or_(line.provisioned_run_id.is_(None), line.provisioned_run_id != run_id),
        or_(line.last_run_id.is_(None), line.last_run_id != run_id), line.line_pk.not_in(in_run))
    return union_all(recorded, last_planned, bought_before)


def _line_select(bucket, reason, is_recorded: bool) -> Any:
    line = t.Line
    return select(
        line.line_pk, bucket.label("bucket"), reason.label("reason_code"),
        literal(is_recorded, Boolean).label("recorded"),
        line.line_key, line.order_number, line.customer_pk, line.last_run_id, line.action,
        line.contract_pk, t.BillingContract.contract_number, line.provider_code, line.provider_customer_id,
        line.product_number, t.Product.product_name, line.provider_sku, line.quantity, line.price_per_unit,
        line.extended_amount, line.provisioning_unit, line.term_duration, line.billing_frequency,
        line.provider_subscription_id,
        t.Customer.customer_name, t.Customer.crm_customer_id,
        t.Order.order_id, t.Order.currency_code, t.Order.is_fulfilled, t.Order.fulfilled_date,
        t.Order.fulfilled_run_id, _FULFILLING.started_at.label("fulfilled_run_started_at"),
    )


_FULFILLING = aliased(t.Run, name="fulfilling_run")


def _line_joins(statement) -> Any:
    line = t.Line
    return (
        statement
        .outerjoin(t.Customer, t.Customer.customer_pk == line.customer_pk)
        .outerjoin(t.Product, t.Product.product_number == line.product_number)
        .outerjoin(t.BillingContract, t.BillingContract.contract_pk == line.contract_pk)
        .outerjoin(t.Order, t.Order.order_number == line.order_number)
        .outerjoin(_FULFILLING, _FULFILLING.run_id == t.Order.fulfilled_run_id)
    )


def _contracts_of(run_id: str) -> Any:
    """Contracts the run created, and those its provisioned lines were booked on."""
    contract, o, line = t.BillingContract, t.LineOutcome, t.Line
    used = (select(line.contract_pk).join(o, o.line_pk == line.line_pk)
            .where(o.run_id == run_id, o.bucket == PROVISIONED, line.contract_pk.is_not(None)))
    return (
        select(contract.contract_pk, contract.contract_number, contract.contract_name, t.Customer.customer_name,
               contract.contract_type, contract.contract_product_type, contract.billing_frequency,
               contract.currency_code, contract.start_date, contract.end_date, contract.payment_terms,
               contract.process_refunds, contract.created_run_id)
        .outerjoin(t.Customer, t.Customer.customer_pk == contract.customer_pk)
        .where(or_(contract.created_run_id == run_id, contract.contract_pk.in_(used)))
        .order_by(contract.contract_pk)
    )


def _subscriptions_of(run_id: str) -> Any:
    """Subscriptions the run created, with the quantity and price of the line that bought them."""
    sub, line = t.Subscription, t.Line
    return (
        select(sub.subscription_number, t.Customer.customer_name, line.order_number, line.line_key,
               t.BillingContract.contract_number, sub.product_number, t.Product.product_name, sub.provider_code,
               sub.provider_subscription_id, line.quantity, line.price_per_unit, sub.provisioning_unit,
               sub.term_duration, sub.start_date)
        .select_from(sub)
        .join(line, line.line_pk == sub.source_line_pk)
        .outerjoin(t.Customer, t.Customer.customer_pk == sub.customer_pk)
        .outerjoin(t.BillingContract, t.BillingContract.contract_pk == sub.contract_pk)
        .outerjoin(t.Product, t.Product.product_number == sub.product_number)
        .where(sub.created_run_id == run_id)
        .order_by(sub.source_line_pk)
    )


def _changes_of(run_id: str) -> Any:
    """Quantity increases (R5 Existing) the run made."""
    change, sub, line = t.SubscriptionChange, t.Subscription, t.Line
    return (
        select(sub.subscription_number, t.Customer.customer_name, line.order_number, line.line_key,
               t.BillingContract.contract_number, sub.product_number, t.Product.product_name, sub.provider_code,
               sub.provider_subscription_id, line.quantity, change.quantity_before, change.quantity_after,
               line.price_per_unit, sub.provisioning_unit, sub.term_duration)
        .select_from(change)
        .join(sub, sub.subscription_pk == change.subscription_pk)
        .join(line, line.line_pk == change.line_pk)
        .outerjoin(t.Customer, t.Customer.customer_pk == sub.customer_pk)
        .outerjoin(t.BillingContract, t.BillingContract.contract_pk == sub.contract_pk)
        .outerjoin(t.Product, t.Product.product_number == sub.product_number)
        .where(change.run_id == run_id)
        .order_by(change.line_pk)
    )


def _charges_of(run_id: str) -> Any:
    charge, line = t.OneTimeCharge, t.Line
    return (
        select(charge.charge_number, t.Customer.customer_name, line.order_number, line.line_key,
               t.BillingContract.contract_number, charge.product_number, t.Product.product_name,
               charge.provider_code, charge.quantity, charge.price_per_unit, charge.extended_amount,
               charge.charge_date)
        .select_from(charge)
        .join(line, line.line_pk == charge.source_line_pk)
        .outerjoin(t.Customer, t.Customer.customer_pk == charge.customer_pk)
        .outerjoin(t.BillingContract, t.BillingContract.contract_pk == charge.contract_pk)
        .outerjoin(t.Product, t.Product.product_number == charge.product_number)
        .where(charge.run_id == run_id)
        .order_by(charge.source_line_pk)
    )


def _exceptions_of(run_id: str) -> Any:
    """The run's exception rows in the order the run wrote them (SPEC §5 column order)."""
    record = t.ExceptionRecord
    return (select(*[getattr(record, name) for name in EXCEPTION_COLUMNS])
            .where(record.run_id == run_id).order_by(record.exception_pk))
