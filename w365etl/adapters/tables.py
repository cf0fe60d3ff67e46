"""The database schema (SQLAlchemy 2.0 typed ORM): what a run leaves behind.

Unique constraints carry the exactly-once guarantees: a line identifier (R6) belongs to one
line; a line creates at most one subscription, one subscription change and one one-time charge;
contract numbers are deterministic per contract key (R4), so two runs converge on one contract.
Money and quantities are exact: NUMERIC on PostgreSQL, text on SQLite (never REAL).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from sqlalchemy import (
    BigInteger, Boolean, Date, DateTime, ForeignKey, Index, Integer, Numeric, String, Text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator


class ExactDecimal(TypeDecorator[str]):
    """An exact decimal: NUMERIC on PostgreSQL, canonical text on SQLite; read back as text.

    Frames turn the text into Arrow decimals in one vectorised cast, so no ``Decimal``
    object columns and no floats appear anywhere between the file and the database.
    """

    impl = String(48)
    cache_ok = True

    def load_dialect_impl(self, dialect):
        if dialect.name == "postgresql":
            return dialect.type_descriptor(Numeric(38, 10))
        return dialect.type_descriptor(String(48))

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        number = value if isinstance(value, Decimal) else Decimal(str(value))
        if dialect.name == "postgresql":
            return number
        return canonical_decimal(number)

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        return canonical_decimal(value if isinstance(value, Decimal) else Decimal(str(value)))


def canonical_decimal(number: Decimal) -> str:
    text = format(number, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


class Base(DeclarativeBase):
    pass


class Run(Base):
    __tablename__ = "runs"
    run_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    started_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    as_of_date: Mapped[dt.date] = mapped_column(Date)
    #: running, completed, failed — or interrupted: its process was found gone while running
    status: Mapped[str] = mapped_column(String(20))
    summary_json: Mapped[str | None] = mapped_column(Text)
    #: the process that runs it (``process_owners.owner_record``): a later run that finds it
    #: gone marks the run ``interrupted`` (NULL before schema revision 0003: never marked)
    owner: Mapped[str | None] = mapped_column(Text)


class SourceFile(Base):
    __tablename__ = "files"
    file_pk: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.run_id"))
    path: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    layout: Mapped[str | None] = mapped_column(String(20))
    dialect: Mapped[str | None] = mapped_column(String(20))
    rows: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(20))
    error: Mapped[str | None] = mapped_column(Text)


class Product(Base):
    __tablename__ = "products"
    product_number: Mapped[str] = mapped_column(String(100), primary_key=True)
    product_name: Mapped[str] = mapped_column(String(400))
    product_type: Mapped[str] = mapped_column(String(40))
    provider_code: Mapped[str] = mapped_column(String(60))
    provider_sku: Mapped[str | None] = mapped_column(String(200))
    is_recurring: Mapped[bool] = mapped_column(Boolean)
    billing_frequency: Mapped[str | None] = mapped_column(String(20))
    provisioning_unit: Mapped[str | None] = mapped_column(String(20))
    term_duration: Mapped[str | None] = mapped_column(String(10))
    min_quantity: Mapped[int | None] = mapped_column(Integer)
    max_quantity: Mapped[int | None] = mapped_column(Integer)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utc_now)


class ProviderAccount(Base):
    """R3 mappings. With a CRM id the key is (provider, id); without, (provider, name), and a
    later file replaces every name-only row of that name (so two rows = an ambiguous name)."""

    __tablename__ = "provider_accounts"
    account_pk: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    provider_code: Mapped[str] = mapped_column(String(60))
    crm_customer_id: Mapped[str | None] = mapped_column(String(64))
    customer_name: Mapped[str] = mapped_column(String(400))
    name_key: Mapped[str] = mapped_column(String(400))
    provider_customer_id: Mapped[str] = mapped_column(String(200))
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utc_now)
    __table_args__ = (Index("ix_provider_accounts_name", "provider_code", "name_key"),)


class Customer(Base):
    __tablename__ = "customers"
    customer_pk: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    crm_customer_id: Mapped[str | None] = mapped_column(String(64), unique=True)
    customer_name: Mapped[str] = mapped_column(String(400))
    name_key: Mapped[str] = mapped_column(String(400), index=True)


class Order(Base):
    __tablename__ = "orders"
    order_pk: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    order_number: Mapped[str] = mapped_column(String(200), unique=True)
    order_id: Mapped[str | None] = mapped_column(String(64))
    customer_pk: Mapped[int | None] = mapped_column(ForeignKey("customers.customer_pk"))
    currency_code: Mapped[str | None] = mapped_column(String(3))
    is_fulfilled: Mapped[bool] = mapped_column(Boolean, default=False)
    fulfilled_date: Mapped[dt.date | None] = mapped_column(Date)
    fulfilled_run_id: Mapped[str | None] = mapped_column(String(40))
    last_run_id: Mapped[str | None] = mapped_column(String(40))


class Line(Base):
    """Every order line ever seen, with its latest outcome and, when planned, its plan."""

    __tablename__ = "lines"
    line_pk: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    line_key: Mapped[str] = mapped_column(Text)
    order_number: Mapped[str | None] = mapped_column(String(200), index=True)
    customer_pk: Mapped[int | None] = mapped_column(ForeignKey("customers.customer_pk"))
    status: Mapped[str] = mapped_column(String(30), index=True)
    status_reason: Mapped[str | None] = mapped_column(String(60))
    content_signature: Mapped[str] = mapped_column(Text)
    last_run_id: Mapped[str | None] = mapped_column(String(40), index=True)
    provisioned_run_id: Mapped[str | None] = mapped_column(String(40))
    action: Mapped[str | None] = mapped_column(String(40))
    contract_pk: Mapped[int | None] = mapped_column(ForeignKey("billing_contracts.contract_pk"))
    target_subscription_pk: Mapped[int | None] = mapped_column(Integer)
    provider_code: Mapped[str | None] = mapped_column(String(60))
    provider_customer_id: Mapped[str | None] = mapped_column(String(200))
    product_number: Mapped[str | None] = mapped_column(String(100))
    quantity: Mapped[str | None] = mapped_column(ExactDecimal())
    price_per_unit: Mapped[str | None] = mapped_column(ExactDecimal())
    extended_amount: Mapped[str | None] = mapped_column(ExactDecimal())
    provisioning_unit: Mapped[str | None] = mapped_column(String(20))
    term_duration: Mapped[str | None] = mapped_column(String(10))
    billing_frequency: Mapped[str | None] = mapped_column(String(20))
    provider_sku: Mapped[str | None] = mapped_column(String(200))
    provider_subscription_id: Mapped[str | None] = mapped_column(String(200))
    error_code: Mapped[str | None] = mapped_column(String(200))
    error_message: Mapped[str | None] = mapped_column(Text)
    payload: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utc_now)
    #: digest of the row's values apart from who last saw it (held/skipped/rejected lines; NULL
    #: = unknown): an identical re-run marks such a line seen instead of rewriting it
    row_digest: Mapped[int | None] = mapped_column(BigInteger)


class LineIdentifier(Base):
    """R6: every identifier a line was seen with; one identifier names one line."""

    __tablename__ = "line_identifiers"
    identifier: Mapped[str] = mapped_column(Text, primary_key=True)
    line_pk: Mapped[int] = mapped_column(ForeignKey("lines.line_pk"), index=True)
    level: Mapped[str] = mapped_column(String(10))


class LineOutcome(Base):
    """The bucket each line ended in, per run (run history and re-reports)."""

    __tablename__ = "line_outcomes"
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.run_id"), primary_key=True)
    line_pk: Mapped[int] = mapped_column(ForeignKey("lines.line_pk"), primary_key=True)
    bucket: Mapped[str] = mapped_column(String(30))
    reason_code: Mapped[str | None] = mapped_column(String(60))


class BillingContract(Base):
    __tablename__ = "billing_contracts"
    contract_pk: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    contract_number: Mapped[str] = mapped_column(String(40), unique=True)
    contract_name: Mapped[str] = mapped_column(String(600))
    customer_pk: Mapped[int] = mapped_column(ForeignKey("customers.customer_pk"), index=True)
    contract_type: Mapped[str] = mapped_column(String(20))
    contract_product_type: Mapped[str] = mapped_column(String(40))
    billing_frequency: Mapped[str | None] = mapped_column(String(20))
    currency_code: Mapped[str] = mapped_column(String(3))
    start_date: Mapped[dt.date] = mapped_column(Date)
    end_date: Mapped[dt.date] = mapped_column(Date)
    payment_terms: Mapped[str] = mapped_column(String(40))
    process_refunds: Mapped[str] = mapped_column(String(40))
    status: Mapped[str] = mapped_column(String(20), default="Active")
    created_run_id: Mapped[str] = mapped_column(String(40))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utc_now)


class Subscription(Base):
    __tablename__ = "subscriptions"
    subscription_pk: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    subscription_number: Mapped[str] = mapped_column(String(40), unique=True)
    customer_pk: Mapped[int] = mapped_column(ForeignKey("customers.customer_pk"), index=True)
    contract_pk: Mapped[int] = mapped_column(ForeignKey("billing_contracts.contract_pk"))
    product_number: Mapped[str] = mapped_column(String(100))
    provider_code: Mapped[str] = mapped_column(String(60))
    provider_subscription_id: Mapped[str | None] = mapped_column(String(200))
    quantity: Mapped[str] = mapped_column(ExactDecimal())
    price_per_unit: Mapped[str | None] = mapped_column(ExactDecimal())
    provisioning_unit: Mapped[str | None] = mapped_column(String(20))
    term_duration: Mapped[str | None] = mapped_column(String(10))
    start_date: Mapped[dt.date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(20), default="Active")
    source_line_pk: Mapped[int] = mapped_column(ForeignKey("lines.line_pk"), unique=True)
    created_run_id: Mapped[str] = mapped_column(String(40))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utc_now)


class SubscriptionChange(Base):
    __tablename__ = "subscription_changes"
    change_pk: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    subscription_pk: Mapped[int] = mapped_column(ForeignKey("subscriptions.subscription_pk"), index=True)
    line_pk: Mapped[int] = mapped_column(ForeignKey("lines.line_pk"), unique=True)
    quantity_before: Mapped[str] = mapped_column(ExactDecimal())
    quantity_after: Mapped[str] = mapped_column(ExactDecimal())
    run_id: Mapped[str] = mapped_column(String(40))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utc_now)


class OneTimeCharge(Base):
    __tablename__ = "one_time_charges"
    charge_pk: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    charge_number: Mapped[str] = mapped_column(String(40), unique=True)
    customer_pk: Mapped[int] = mapped_column(ForeignKey("customers.customer_pk"), index=True)
    contract_pk: Mapped[int] = mapped_column(ForeignKey("billing_contracts.contract_pk"))
    product_number: Mapped[str] = mapped_column(String(100))
    provider_code: Mapped[str] = mapped_column(String(60))
    quantity: Mapped[str] = mapped_column(ExactDecimal())
    price_per_unit: Mapped[str | None] = mapped_column(ExactDecimal())
    extended_amount: Mapped[str | None] = mapped_column(ExactDecimal())
    charge_date: Mapped[dt.date] = mapped_column(Date)
    source_line_pk: Mapped[int] = mapped_column(ForeignKey("lines.line_pk"), unique=True)
    run_id: Mapped[str] = mapped_column(String(40))


class ProviderSubmission(Base):
    """The journal of purchases at an automatic provider, written before every side effect.

    A crashed or retried run finds here the request id and cart it used and reconciles with
    the provider (by ``friendlyName``) before it ever creates a new cart.
    """

    __tablename__ = "provider_submissions"
    submission_pk: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    provider_code: Mapped[str] = mapped_column(String(60))
    provider_customer_id: Mapped[str] = mapped_column(String(200), index=True)
    request_id: Mapped[str] = mapped_column(String(64), unique=True)
    cart_id: Mapped[str | None] = mapped_column(String(200))
    order_ids: Mapped[str | None] = mapped_column(Text)
    friendly_names: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(20))
    run_id: Mapped[str] = mapped_column(String(40))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utc_now)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utc_now)


class ExceptionRecord(Base):
    __tablename__ = "exceptions"
    exception_pk: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.run_id"), index=True)
    severity: Mapped[str] = mapped_column(String(10))
    reason_code: Mapped[str] = mapped_column(String(60))
    file: Mapped[str | None] = mapped_column(Text)
    row: Mapped[int | None] = mapped_column(Integer)
    sheet: Mapped[str | None] = mapped_column(String(200))
    order_number: Mapped[str | None] = mapped_column(String(200))
    line_key: Mapped[str | None] = mapped_column(Text)
    customer_name: Mapped[str | None] = mapped_column(String(400))
    column: Mapped[str | None] = mapped_column(String(400))
    value: Mapped[str | None] = mapped_column(Text)
    message: Mapped[str] = mapped_column(Text)
    suggested_action: Mapped[str | None] = mapped_column(Text)

