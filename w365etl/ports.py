"""Ports: the small interfaces the core needs from the outside world.

The core (plan, execute, report building) talks only to these Protocols; adapters implement
them (SQLAlchemy storage, provider clients, report writers) and tests use fakes that subclass
them.
"""

from __future__ import annotations

import datetime as dt
from typing import Protocol

import pandas as pd

from w365etl.plan import Plan, StoredState

#: Columns of the frame a provider receives (one row per line to provision).
PROVISION_REQUEST_COLUMNS = [
    "line_pk", "line_key", "action", "customer_name", "provider_customer_id", "product_number",
    "provider_sku", "quantity", "quantity_after", "provider_subscription_id", "term_duration",
    "billing_frequency", "provisioning_unit",
]
#: Columns a provider returns (one row per request row).
PROVISION_RESULT_COLUMNS = [
    "line_pk", "is_success", "provider_subscription_id", "provider_order_id", "error_code", "error_message",
]


class Provider(Protocol):
    """A place subscriptions are provisioned: Partner Center, a manual queue, a fake."""

    code: str
    kind: str  # "automatic" | "manual"
    adapter_name: str  # "live" | "sandbox" | "record" | "manual" | "fake"

    def provision(self, requests: pd.DataFrame) -> pd.DataFrame:
        """Provision every request row; return one result row per request (never raise for a
        refused line: a refusal is a result with ``is_success`` False and the provider's code
        and message)."""
        ...

    def verify_accounts(self, provider_customer_ids: list[str]) -> set[str]:
        """The accounts this provider does not know (R3: their orders are held)."""
        ...

    def close(self) -> None:
        """Release connections, threads or servers the adapter holds."""
        ...


class SubmissionJournal(Protocol):
    """Where an automatic provider adapter writes what it is about to do, before doing it."""

    def start(self, provider_customer_id: str, request_id: str, friendly_names: list[str]) -> None: ...

    def update(self, request_id: str, *, status: str, cart_id: str | None = None,
               order_ids: list[str] | None = None) -> None: ...

    def open_submissions(self, provider_customer_id: str) -> list[dict]: ...


class Store(Protocol):
    """Storage of runs, reference data and everything provisioned (one transaction per call)."""

    def load_state(self, lines: pd.DataFrame) -> StoredState: ...

    def upsert_reference(self, products: pd.DataFrame | None, provider_accounts: pd.DataFrame | None) -> None: ...

    def start_run(self, run_id: str, as_of: dt.date) -> None: ...

    def persist_plan(self, run_id: str, plan: Plan) -> pd.DataFrame:
        """Store lines, identifiers, customers, orders and new contracts; return the plan's
        lines with their ``line_pk``."""
        ...

    def record_results(self, run_id: str, requests: pd.DataFrame, results: pd.DataFrame, as_of: dt.date,
                       payloads: pd.Series | None = None) -> None:
        """What the provider did, the lines marked done — and, for a line it refused, the
        line's content (``payloads``, by ``line_pk``) so that a later run retries it without its file."""
        ...

    def mark_orders_fulfilled(self, run_id: str, orders: pd.DataFrame, as_of: dt.date) -> pd.DataFrame: ...

    def stored_customers(self) -> pd.DataFrame:
        """``crm_customer_id`` and ``customer_name`` of every stored customer."""
        ...

    def record_outcomes(self, run_id: str, outcomes: pd.DataFrame) -> None:
        """Each stored line's final bucket in this run (``line_pk``, ``bucket``, ``reason_code``);
        a run processed in partitions records them partition by partition."""
        ...

    def finish_run(self, run_id: str, summary: dict, files: list[dict], exceptions: pd.DataFrame,
                   outcomes: pd.DataFrame) -> None: ...

