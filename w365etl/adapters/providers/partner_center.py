"""The Partner Center provider: buys each customer's lines once, whatever the network does.

Per customer and run: one cart holding all that customer's new lines; the submission (request
id, then cart id, then order ids) is journalled before every side-effecting call; checkout is
retried only on the journalled cart; after any unclear answer (timeout, dropped connection, a
5xx on a write) the adapter reconciles through the subscriptions that carry our
``friendlyName`` before it ever creates a new cart. "Existing" lines set the new absolute
quantity (read–modify–write on the etag), so repeating one cannot add twice.

``friendlyName`` is ``w365:<line_pk> <line key>``: the stored line's id is stable across
exports (R6 matched it), so a re-run recognises a purchase even when the export it comes from
no longer carries the line's GUID.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Callable
from typing import Any

import pandas as pd

from w365etl.adapters.partner_center import (
    AmbiguousWrite, CatalogItemUnavailable, Conflict, CustomerNotFound, NoResellerRelationship,
    PartnerCenterClient, PartnerCenterError, QuantityOutOfRange, Throttled, TransientError, ValidationFailed,
    run_per_customer,
)
from w365etl.domain.subscriptions import INCREASE
from w365etl.failpoints import failpoint
from w365etl.ports import PROVISION_RESULT_COLUMNS, SubmissionJournal

log = logging.getLogger(__name__)
_OURS = re.compile(r"^w365:(\d+)(?:\s|$)")
_UNCLEAR = (AmbiguousWrite, TransientError, Throttled, Conflict)
_BUSINESS = (CatalogItemUnavailable, QuantityOutOfRange, ValidationFailed, CustomerNotFound, NoResellerRelationship)
_BILLING_CYCLES = {"Monthly": "monthly", "Quarterly": "monthly", "Annually": "annual", "Triennial": "triennial"}


def friendly_name(line_pk: int, line_key: str) -> str:
    return f"w365:{line_pk} {line_key}"[:64]


def line_pk_of(name: str | None) -> int | None:
    match = _OURS.match(name or "")
    return int(match.group(1)) if match else None


class PartnerCenterProvider:
    """The ``Provider`` port on Microsoft Partner Center (adapter ``live`` or ``sandbox``)."""

    kind = "automatic"

    def __init__(self, code: str, adapter_name: str, client: PartnerCenterClient, journal: SubmissionJournal, *,
                 max_workers: int = 4, max_rounds: int = 12, order_poll_seconds: float = 0.5,
                 on_close: Callable[[], None] | None = None,
                 before_provision: Callable[[pd.DataFrame], object] | None = None) -> None:
        self.code = code
        self.adapter_name = adapter_name
        self.client = client
        self.journal = journal
        self.max_workers = max_workers
        self.max_rounds = max_rounds
        self.order_poll_seconds = order_poll_seconds
        self._on_close = on_close
        # told every batch before it is sent (a sandbox started for the run learns from it the
        # subscriptions the batch increases; see flows/wiring.py)
        self._before_provision = before_provision

    def close(self) -> None:
        self.client.close()
        if self._on_close is not None:
            self._on_close()

    # ------------------------------------------------------------------ R3
    def verify_accounts(self, provider_customer_ids: list[str]) -> set[str]:
        """Accounts Partner Center does not know, or where we are not the customer's reseller."""
        def check(tenant: str) -> bool:
            try:
                self.client.get_customer(tenant)
                return True
            except (CustomerNotFound, NoResellerRelationship):
                return False

        outcomes = run_per_customer(check, provider_customer_ids, max_workers=self.max_workers)
        # an account that could not be checked (network) is not declared invalid: its lines
        # then fail at the provider and are retried, rather than wrongly waiting for a mapping
        return {tenant for tenant, known in outcomes.items() if known is False}

    # ------------------------------------------------------------------ provisioning
    def provision(self, requests: pd.DataFrame) -> pd.DataFrame:
        if self._before_provision is not None:
            self._before_provision(requests)
        customers = {tenant: rows for tenant, rows in requests.groupby("provider_customer_id", sort=True)}
        outcomes = run_per_customer(lambda tenant: self._provision_customer(tenant, customers[tenant]),
                                    list(customers), max_workers=self.max_workers)
        rows: list[dict[str, Any]] = []
        for tenant, outcome in outcomes.items():
            if isinstance(outcome, BaseException):  # one customer's trouble never blocks the others
                code, message = _error_of(outcome)
                rows.extend(_failure(pk, code, message) for pk in customers[tenant]["line_pk"])
            else:
                rows.extend(outcome)
        if not rows:
            return pd.DataFrame(columns=PROVISION_RESULT_COLUMNS)
        return pd.DataFrame(rows, columns=PROVISION_RESULT_COLUMNS)

    def _provision_customer(self, tenant: str, rows: pd.DataFrame) -> list[dict[str, Any]]:
        results: list[dict[str, Any]] = []
        increases = rows[rows["action"] == INCREASE]
        purchases = rows[rows["action"] != INCREASE]
        if not purchases.empty:
            results.extend(self._buy(tenant, purchases))
        for row in increases.itertuples():
            results.append(self._increase(tenant, row))
        return results

    def _cart_item(self, row) -> dict[str, Any]:
        term = row.term_duration if isinstance(row.term_duration, str) else "P1M"
        cycle = _BILLING_CYCLES.get(row.billing_frequency if isinstance(row.billing_frequency, str) else "", "monthly")
        return {
            "catalogItemId": self.client.resolve_catalog_item(row.provider_sku, term, cycle),
            "quantity": int(float(row.quantity)),
            "termDuration": term,
            "billingCycle": cycle,
            "friendlyName": friendly_name(int(row.line_pk), str(row.line_key)),
        }

    def _buy(self, tenant: str, rows: pd.DataFrame) -> list[dict[str, Any]]:
        """One cart for the customer's new lines; reconcile before every new cart."""
        wanted: dict[int, dict[str, Any]] = {}
        failed: dict[int, tuple[str, str]] = {}
        for row in rows.itertuples():
            try:
                wanted[int(row.line_pk)] = self._cart_item(row)
            except _BUSINESS as error:
                failed[int(row.line_pk)] = _error_of(error)
        bought: dict[int, str] = {}
        pending = self._open_cart(tenant, wanted)
        for _ in range(self.max_rounds):
            try:
                bought = self._bought(tenant)
                missing = [pk for pk in wanted if pk not in bought and pk not in failed]
                if not missing:
                    break
                if pending is None:
                    pending = self._new_cart(tenant, {pk: wanted[pk] for pk in missing})
                request_id, cart_id = pending
                result = self.client.checkout(tenant, cart_id, request_id=str(uuid.uuid4()))
                failpoint("after_checkout", self.code)
                order_ids = [order.get("id") for order in result.get("orders") or [] if order.get("id")]
                self.journal.update(request_id, status="checked_out", order_ids=order_ids)
                for problem in result.get("orderErrors") or []:
                    log.warning("Partner Center order error for %s: %s", tenant, problem)
                self._await_orders(tenant, order_ids)
                self.journal.update(request_id, status="completed")
                pending = None
            except _BUSINESS as error:
                # the cart as a whole was refused: buy line by line to find the one at fault
                if pending is not None:
                    self.journal.update(pending[0], status="failed")
                    pending = None
                missing = [pk for pk in wanted if pk not in bought and pk not in failed]
                if len(missing) == 1:
                    failed[missing[0]] = _error_of(error)
                else:
                    for pk in missing:
                        outcome = self._buy_alone(tenant, pk, wanted[pk])
                        if outcome is not None:
                            failed[pk] = outcome
            except _UNCLEAR as error:
                log.info("unclear answer from Partner Center for %s (%s); reconciling", tenant, type(error).__name__)
                continue
        bought = self._bought_quietly(tenant, bought)
        self._close_confirmed_submissions(tenant, bought)
        results = []
        for pk in [int(value) for value in rows["line_pk"]]:
            if pk in bought:
                results.append(_success(pk, bought[pk]))
            else:
                code, message = failed.get(pk, ("UNCONFIRMED", "Partner Center did not confirm the purchase; "
                                                "it is reconciled on the next run"))
                results.append(_failure(pk, code, message))
        return results

    def _buy_alone(self, tenant: str, pk: int, item: dict[str, Any]) -> tuple[str, str] | None:
        try:
            request_id, cart_id = self._new_cart(tenant, {pk: item})
            result = self.client.checkout(tenant, cart_id, request_id=str(uuid.uuid4()))
            failpoint("after_checkout", self.code)
            order_ids = [order.get("id") for order in result.get("orders") or [] if order.get("id")]
            self.journal.update(request_id, status="checked_out", order_ids=order_ids)
            self._await_orders(tenant, order_ids)
            self.journal.update(request_id, status="completed")
            return None
        except _BUSINESS as error:
            return _error_of(error)
        except _UNCLEAR:
            return None  # the next reconciliation decides

    def _close_confirmed_submissions(self, tenant: str, bought: dict[int, str]) -> None:
        """Submissions left open (a run killed between its journal and its provider's answer,
        or a cart whose lines reconciliation found bought) are closed once every line they
        carry is at the provider: else each later run would read them and poll their orders
        again, forever."""
        try:
            for submission in self.journal.open_submissions(tenant):
                pks = [line_pk_of(name) for name in submission["friendly_names"]]
                if pks and all(pk is not None and pk in bought for pk in pks):
                    self.journal.update(submission["request_id"], status="completed")
        except Exception:  # noqa: BLE001 - bookkeeping: it must never turn bought lines into failed ones
            log.warning("could not close the submissions of %s in the journal", tenant, exc_info=True)

    def _new_cart(self, tenant: str, items: dict[int, dict[str, Any]]) -> tuple[str, str]:
        """Journal the request id first; re-send it until the creation is answered (never a
        second cart for one request id)."""
        request_id = str(uuid.uuid4())
        self.journal.start(tenant, request_id, [item["friendlyName"] for item in items.values()])
        for attempt in range(self.max_rounds):
            try:
                cart = self.client.create_cart(tenant, list(items.values()), request_id=request_id)
                self.journal.update(request_id, status="cart_created", cart_id=cart["id"])
                failpoint("after_cart_created", self.code)
                return request_id, cart["id"]
            except _UNCLEAR:
                time.sleep(min(0.1 * 2**attempt, 2.0))
            except _BUSINESS:
                self.journal.update(request_id, status="failed")
                raise
        raise TransientError("503", "Partner Center did not answer the cart creation", 503)

    def _open_cart(self, tenant: str, wanted: dict[int, dict[str, Any]]) -> tuple[str, str] | None:
        """A cart an earlier, interrupted run created for exactly these lines: check it out
        again rather than buy them in a new cart."""
        names = sorted(item["friendlyName"] for item in wanted.values())
        for submission in self.journal.open_submissions(tenant):
            if submission["cart_id"] and submission["friendly_names"] == names:
                return submission["request_id"], submission["cart_id"]
            for order_id in submission["order_ids"]:
                self._await_orders(tenant, [order_id])
        return None

    def _await_orders(self, tenant: str, order_ids: list[str]) -> None:
        """Pending orders are polled until their subscriptions exist (bounded)."""
        for order_id in order_ids:
            for _ in range(self.max_rounds * 4):
                try:
                    status = str(self.client.get_order(tenant, order_id).get("status", "")).casefold()
                except _UNCLEAR:
                    status = ""
                if status == "completed":
                    break
                time.sleep(self.order_poll_seconds)

    def _bought(self, tenant: str) -> dict[int, str]:
        """line_pk → subscription id of everything of ours this customer has."""
        found: dict[int, str] = {}
        for name, subscriptions in self.client.subscriptions_by_friendly_name(tenant).items():
            pk = line_pk_of(name)
            if pk is not None and subscriptions:
                found[pk] = str(subscriptions[0]["id"])
        return found

    def _bought_quietly(self, tenant: str, known: dict[int, str]) -> dict[int, str]:
        try:
            return self._bought(tenant)
        except PartnerCenterError:
            return known

    def _increase(self, tenant: str, row) -> dict[str, Any]:
        """R5 Existing: set the new absolute quantity (a repeat sets the same number)."""
        pk = int(row.line_pk)
        if not isinstance(row.provider_subscription_id, str) or not row.provider_subscription_id:
            return _failure(pk, "NO_PROVIDER_SUBSCRIPTION",
                            "the subscription to increase has no Partner Center subscription id")
        for _ in range(self.max_rounds):
            try:
                self.client.set_subscription_quantity(tenant, row.provider_subscription_id,
                                                      int(float(row.quantity_after)))
                return _success(pk, row.provider_subscription_id)
            except _BUSINESS as error:
                return _failure(pk, *_error_of(error))
            except _UNCLEAR:
                continue
        return _failure(pk, "UNCONFIRMED", "Partner Center did not confirm the quantity change")


def _error_of(error: BaseException) -> tuple[str, str]:
    if isinstance(error, PartnerCenterError):
        return str(error.code or type(error).__name__), str(error.description or error)
    return type(error).__name__, str(error)


def _success(pk: int, subscription_id: str | None) -> dict[str, Any]:
    return {"line_pk": pk, "is_success": True, "provider_subscription_id": subscription_id,
            "provider_order_id": None, "error_code": None, "error_message": None}


def _failure(pk: int, code: str, message: str) -> dict[str, Any]:
    return {"line_pk": int(pk), "is_success": False, "provider_subscription_id": None,
            "provider_order_id": None, "error_code": code, "error_message": message}
