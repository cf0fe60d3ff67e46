"""A local Partner Center (NCE) simulator: a real HTTP server on 127.0.0.1.

It speaks the part of the Partner Center REST API w365etl uses, with the same JSON (camelCase out,
any casing in), the same error body ``{code, description, data, source}`` and the same codes:

- ``POST /{tenant}/oauth2/v2.0/token`` — client credentials (any id and secret) → bearer token;
  every ``/v1`` call needs a valid, unexpired one (401 otherwise);
- ``GET /v1/customers``, ``GET /v1/customers/{tenant}`` (unknown → 404 ``60003`` Tenant not
  found; no reseller relationship → 403 ``20002``);
- ``GET /v1/products?country=&targetView=``, ``/products/{id}``, ``/products/{id}/skus[/{sku}]``,
  ``/products/{id}/skus/{sku}/availabilities[/{availability}]`` — availabilities carry
  ``catalogItemId`` = ``product:sku:availability`` and ``terms`` (duration + billing cycle);
  SKUs carry ``minimumQuantity``/``maximumQuantity``;
- ``POST /v1/customers/{tenant}/carts`` (validates catalog item ``400013/400018/400019``, term
  ``800121``, billing cycle ``900269``, quantity ``900275``), ``GET …/carts/{id}`` (active carts
  expire: 404 ``800008``), ``POST …/carts/{id}/checkout`` — one order per billing cycle, one
  subscription per line carrying the line's ``friendlyName``; checking out a checked-out cart
  returns the same orders and buys nothing (or 400 ``800065`` with ``checkout_resubmit="error"``);
- ``GET …/orders``, ``GET …/orders/{id}`` — ``pending`` until read ``order_completion_polls``
  times or ``order_completion_seconds`` old, then ``completed`` (its subscriptions turn
  ``active``);
- ``GET …/subscriptions``, ``GET|PATCH …/subscriptions/{id}`` — PATCH needs the current etag
  (``attributes.etag`` or ``If-Match``; stale → 412 ``2055``), an active subscription (pending →
  409 ``800082``) and a quantity within the SKU's bounds (400 ``2002``); the etag changes on every
  update. Subscriptions bought before the sandbox started can be seeded (``start_sandbox(
  subscriptions=...)``, ``SandboxState.seed_subscriptions``): they are active and can be updated.

``MS-RequestId`` makes a write idempotent, as in Partner Center: the same POST/PATCH with the same
request id is answered from memory and applied once.

Faults, on purpose (``fault_rate`` per request, seeded RNG; or queued one by one with
``SandboxHandle.queue_fault``): ``throttle`` (429 ``{statusCode, message}`` + ``Retry-After``),
``error_500``, ``error_503``, ``slow`` (answers after ``slow_ms``), ``drop`` (closes the socket
without answering), and for writes ``commit_then_500`` / ``commit_then_drop`` (the write is applied,
the answer is lost); ``concurrent_update`` (on request only: the subscription just read is changed
by "someone else", so the reader's etag is stale). The token endpoint is never faulted.

Start it in-process with ``start_sandbox(...)`` (free port, ready at once) or standalone with
``w365etl sandbox partner-center --port 8765 --reference sample_data/reference`` /
``python -m w365etl.sandbox.partner_center``. Only the standard library is used.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import datetime as dt
import hashlib
import json
import logging
import math
import random
import re
import secrets
import signal
import socket
import threading
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

log = logging.getLogger(__name__)

#: faults drawn at random (``fault_rate``) unless ``fault_kinds`` says otherwise
FAULT_KINDS = ("throttle", "error_500", "error_503", "slow", "drop", "commit_then_500", "commit_then_drop")
#: every fault: ``concurrent_update`` (someone else changes the subscription right after we read it,
#: so our etag is stale) is only injected when asked for
ALL_FAULT_KINDS = FAULT_KINDS + ("concurrent_update",)
WRITE_FAULTS = frozenset({"commit_then_500", "commit_then_drop"})
DEFAULT_CART_TTL_SECONDS = 7 * 24 * 3600  # Partner Center: carts expire 7 days after creation
DEFAULT_MAX_QUANTITY = 10000
PROVIDER_CODE = "partner_center"

_CYCLES = {"monthly": "monthly", "month": "monthly", "annual": "annual", "annually": "annual",
           "yearly": "annual", "triennial": "triennial"}
_CYCLE_TITLES = {"monthly": "Monthly", "annual": "Annual", "triennial": "Triennial"}
_TERM_TEXT = {"P1M": "One-Month", "P1Y": "One-Year", "P3Y": "Three-Year"}
_TERM_DAYS = {"P1M": 30, "P1Y": 365, "P3Y": 3 * 365}
_STANDARD_TERMS = (("P1M", "monthly"), ("P1Y", "monthly"), ("P1Y", "annual"))

#: used when no catalog is given: a few NCE SKUs with their real product:sku ids
DEFAULT_PRODUCTS = [
    {"provider_sku": "CFQ7TTC0LH18:0001", "product_name": "Microsoft 365 Business Basic", "term_duration": "P1M", "billing_frequency": "Monthly", "min_quantity": 1, "max_quantity": 300},
    {"provider_sku": "CFQ7TTC0LH18:0001", "product_name": "Microsoft 365 Business Basic", "term_duration": "P1Y", "billing_frequency": "Annually", "min_quantity": 1, "max_quantity": 300},
    {"provider_sku": "CFQ7TTC0LDPB:0001", "product_name": "Microsoft 365 Business Standard", "term_duration": "P1M", "billing_frequency": "Monthly", "min_quantity": 1, "max_quantity": 300},
    {"provider_sku": "CFQ7TTC0LDPB:0001", "product_name": "Microsoft 365 Business Standard", "term_duration": "P1Y", "billing_frequency": "Annually", "min_quantity": 1, "max_quantity": 300},
    {"provider_sku": "CFQ7TTC0LCHC:0002", "product_name": "Microsoft 365 Business Premium", "term_duration": "P1Y", "billing_frequency": "Monthly", "min_quantity": 1, "max_quantity": 300},
    {"provider_sku": "CFQ7TTC0LFLZ:0002", "product_name": "Microsoft 365 E5", "term_duration": "P3Y", "billing_frequency": "Triennial", "min_quantity": 1, "max_quantity": None},
]


class ApiError(Exception):
    """A Partner Center error answer: HTTP status + ``{code, description, data, source}``."""

    def __init__(self, status: int, code: str, description: str, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(description)
        self.status = status
        self.code = code
        self.description = description
        self.headers = dict(headers or {})

    def body(self) -> dict[str, Any]:
        return {"code": self.code, "description": self.description, "data": [], "source": "PartnerFD"}


# ------------------------------------------------------------------------------------- helpers
def _ci(mapping: Any, key: str) -> Any:
    """Case-insensitive lookup in a JSON object (``None`` when absent or not an object)."""
    if not isinstance(mapping, Mapping):
        return None
    if key in mapping:
        return mapping[key]
    folded = key.casefold()
    for name, value in mapping.items():
        if isinstance(name, str) and name.casefold() == folded:
            return value
    return None


def _now_iso(clock_value: float) -> str:
    return dt.datetime.fromtimestamp(clock_value, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _whole(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and re.fullmatch(r"\s*-?\d+\s*", value):
        return int(value)
    return None


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or str(value).strip() == ""


def _public(record: Mapping[str, Any]) -> dict[str, Any]:
    """A stored record without its private (``_``) fields, deep-copied through JSON."""
    return json.loads(json.dumps({key: value for key, value in record.items() if not key.startswith("_")}))


def _collection(items: list[dict[str, Any]], self_uri: str) -> dict[str, Any]:
    return {"totalCount": len(items), "items": items,
            "links": {"self": {"uri": self_uri, "method": "GET", "headers": []}},
            "attributes": {"objectType": "Collection"}}


def _link(uri: str) -> dict[str, Any]:
    return {"uri": uri, "method": "GET", "headers": []}


def _quantity(value: Any) -> int | None:
    """A whole seat count, also from exact-decimal text such as ``"10.00000"`` (the database's)."""
    if _blank(value) or isinstance(value, bool):
        return None
    try:
        number = Decimal(str(value).strip())
    except ArithmeticError:
        return None
    return int(number) if number.is_finite() and number == number.to_integral_value() else None


def _subscription_record(tenant: str, subscription_id: str, offer_id: str, offer_name: str, friendly: str | None,
                         quantity: int, cycle: str, term: str, order_id: str | None, created: float,
                         status: str) -> dict[str, Any]:
    """A subscription as the sandbox stores it (public fields as Partner Center shows them)."""
    product_id, sku_id, availability_id = offer_id.split(":")
    return {
        "id": subscription_id, "offerId": offer_id, "offerName": offer_name, "friendlyName": friendly,
        "productType": {"id": "OnlineServices", "displayName": "OnlineServices"},
        "quantity": quantity, "unitType": "Licenses", "hasPurchasableAddons": False,
        "creationDate": _now_iso(created), "effectiveStartDate": _now_iso(created),
        "commitmentEndDate": _now_iso(created + _TERM_DAYS[term] * 86400),
        "cancellationAllowedUntilDate": _now_iso(created + 7 * 86400),
        "status": status, "autoRenewEnabled": True, "isTrial": False, "billingType": "license",
        "billingCycle": cycle, "termDuration": term, "contractType": "subscription", "orderId": order_id,
        "publisherName": "Microsoft Corporation",
        "links": {"product": _link(f"/products/{product_id}?country=US"),
                  "sku": _link(f"/products/{product_id}/skus/{sku_id}?country=US"),
                  "availability": _link(f"/products/{product_id}/skus/{sku_id}/availabilities/"
                                        f"{availability_id}?country=US"),
                  "self": _link(f"/customers/{tenant}/subscriptions/{subscription_id}")},
        "attributes": {"etag": uuid.uuid4().hex, "objectType": "Subscription"},
        "_tenant": tenant.casefold(),
    }


# ------------------------------------------------------------------------------------- catalog
@dataclass
class Catalog:
    """Products → SKUs → availabilities, keyed case-insensitively by id."""

    products: dict[str, dict[str, Any]] = field(default_factory=dict)
    skus: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    availabilities: dict[tuple[str, str], list[dict[str, Any]]] = field(default_factory=dict)

    @classmethod
    def from_rows(cls, rows: Iterable[Mapping[str, Any]]) -> Catalog:
        """Catalog rows shaped like ``products.csv`` (``provider_sku`` "PRODUCT:SKU", ``term_duration``,
        ``billing_frequency``, ``min_quantity``, ``max_quantity``, ``product_name``); rows of
        another provider or without a ``provider_sku`` are ignored."""
        grouped: dict[tuple[str, str], dict[str, Any]] = {}
        for row in rows:
            provider = _ci(row, "provider")
            if not _blank(provider) and str(provider).strip().casefold() != PROVIDER_CODE:
                continue
            provider_sku = _ci(row, "provider_sku")
            if _blank(provider_sku) or ":" not in str(provider_sku):
                continue
            product_id, sku_id = (part.strip().upper() for part in str(provider_sku).split(":", 1))
            entry = grouped.setdefault((product_id, sku_id), {"names": [], "terms": [], "mins": [], "maxes": []})
            name = _ci(row, "product_name")
            if not _blank(name):
                entry["names"].append(str(name).strip())
            term = _ci(row, "term_duration")
            cycle = _CYCLES.get(str(_ci(row, "billing_frequency") or "").strip().casefold())
            if not _blank(term) and cycle and str(term).strip().upper() in _TERM_TEXT:
                pair = (str(term).strip().upper(), cycle)
                if pair not in entry["terms"]:
                    entry["terms"].append(pair)
            low, high = _ci(row, "min_quantity"), _ci(row, "max_quantity")
            entry["mins"].append(1 if _blank(low) else int(float(low)))
            entry["maxes"].append(None if _blank(high) else int(float(high)))
        catalog = cls()
        for (product_id, sku_id), entry in grouped.items():
            catalog._add(product_id, sku_id, entry)
        return catalog

    def _add(self, product_id: str, sku_id: str, entry: dict[str, Any]) -> None:
        title = re.sub(r"\s*\([^)]*\)\s*$", "", entry["names"][0]) if entry["names"] else f"Product {product_id}"
        terms = entry["terms"] or list(_STANDARD_TERMS)
        minimum = min(entry["mins"]) if entry["mins"] else 1
        maxima = [value for value in entry["maxes"] if value is not None]
        maximum = DEFAULT_MAX_QUANTITY if (not maxima or None in entry["maxes"]) else max(maxima)
        product_key = product_id.casefold()
        base = f"/products/{product_id}"
        self.products.setdefault(product_key, {
            "id": product_id, "title": title, "description": f"{title} (sandbox)",
            "productType": {"id": "OnlineServices", "displayName": "OnlineServices"},
            "isMicrosoftProduct": True, "publisherName": "Microsoft Corporation",
            "links": {"skus": _link(f"{base}/skus?country=US"), "self": _link(f"{base}?country=US")},
            "attributes": {"objectType": "Product"},
        })
        cycles = sorted({cycle for _, cycle in terms}, key=list(_CYCLE_TITLES).index)
        self.skus[(product_key, sku_id.casefold())] = {
            "id": sku_id, "productId": product_id, "title": title, "description": f"{title} (sandbox)",
            "minimumQuantity": minimum, "maximumQuantity": maximum, "isTrial": False,
            "supportedBillingCycles": cycles, "purchasePrerequisites": [], "provisioningVariables": [],
            "dynamicAttributes": {"isMicrosoftProduct": True},
            "links": {"availabilities": _link(f"{base}/skus/{sku_id}/availabilities?country=US"),
                      "self": _link(f"{base}/skus/{sku_id}?country=US")},
            "attributes": {"objectType": "Sku"},
        }
        availability_id = "CFQ7TTC0" + hashlib.sha1(f"{product_id}:{sku_id}".encode()).hexdigest()[:4].upper()
        self.availabilities[(product_key, sku_id.casefold())] = [{
            "id": availability_id, "productId": product_id, "skuId": sku_id,
            "catalogItemId": f"{product_id}:{sku_id}:{availability_id}",
            "defaultCurrency": {"code": "USD", "symbol": "$"}, "segment": "commercial", "country": "US",
            "isPurchasable": True, "isRenewable": True,
            "terms": [{"duration": term, "billingCycle": _CYCLE_TITLES[cycle],
                       "description": f"{_TERM_TEXT[term]} commitment for {cycle} billing",
                       "cancellationPolicies": [{"refundOptions": [
                           {"sequenceId": 0, "type": "Full", "expiresAfter": "P7D"}]}]}
                      for term, cycle in terms],
            "links": {"self": _link(f"{base}/skus/{sku_id}/availabilities/{availability_id}?country=US")},
            "attributes": {"objectType": "Availability"},
        }]

    def product(self, product_id: str) -> dict[str, Any]:
        product = self.products.get(product_id.casefold())
        if product is None:
            raise ApiError(404, "400013", f"Product {product_id} wasn't found.")
        return product

    def sku(self, product_id: str, sku_id: str) -> dict[str, Any]:
        self.product(product_id)
        sku = self.skus.get((product_id.casefold(), sku_id.casefold()))
        if sku is None:
            raise ApiError(404, "400018", f"SKU {product_id}:{sku_id} wasn't found.")
        return sku

    def availabilities_of(self, product_id: str, sku_id: str) -> list[dict[str, Any]]:
        self.sku(product_id, sku_id)
        return self.availabilities.get((product_id.casefold(), sku_id.casefold()), [])

    def availability(self, product_id: str, sku_id: str, availability_id: str) -> dict[str, Any]:
        for availability in self.availabilities_of(product_id, sku_id):
            if availability["id"].casefold() == availability_id.casefold():
                return availability
        raise ApiError(404, "400019", f"Availability {product_id}:{sku_id}:{availability_id} not found.")

    def resolve(self, catalog_item_id: Any) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
        """(product, sku, availability) of a ``product:sku:availability`` catalog item id."""
        parts = str(catalog_item_id or "").split(":")
        if len(parts) != 3 or not all(part.strip() for part in parts):
            raise ApiError(400, "900142", f"The catalog item ID isn't present or valid: '{catalog_item_id}'.")
        product_id, sku_id, availability_id = (part.strip() for part in parts)
        availability = self.availability(product_id, sku_id, availability_id)
        return self.product(product_id), self.sku(product_id, sku_id), availability


# ------------------------------------------------------------------------------------- reference folder
def _read_reference_csv(path: Path) -> list[dict[str, str]]:
    for encoding in ("utf-8-sig", "cp1252"):
        try:
            text = path.read_text(encoding=encoding)
            break
        except UnicodeDecodeError:
            continue
    else:  # pragma: no cover - every byte string decodes as cp1252 or fails above
        raise ValueError(f"{path}: neither UTF-8 nor cp1252")
    first = text.splitlines()[0] if text else ""
    delimiter = ";" if first.count(";") > first.count(",") else ","
    reader = csv.DictReader(text.splitlines(), delimiter=delimiter)
    return [{str(key).strip().casefold(): (value or "").strip() for key, value in row.items() if key is not None}
            for row in reader]


def load_reference(folder: str | Path) -> tuple[dict[str, str], list[dict[str, str]]]:
    """``(customers, product rows)`` from a reference folder: ``provider_accounts.csv`` rows of
    ``partner_center`` become customers (tenant → name); ``products.csv`` is the catalog."""
    folder = Path(folder)
    customers: dict[str, str] = {}
    accounts = folder / "provider_accounts.csv"
    if accounts.exists():
        for row in _read_reference_csv(accounts):
            if row.get("provider", "").casefold() == PROVIDER_CODE and row.get("provider_customer_id"):
                customers[row["provider_customer_id"]] = row.get("customer_name") or row["provider_customer_id"]
    products_file = folder / "products.csv"
    products = _read_reference_csv(products_file) if products_file.exists() else []
    return customers, products


# ------------------------------------------------------------------------------------- state
@dataclass
class QueuedFault:
    kind: str
    method: str | None = None
    path_contains: str | None = None
    times: int = 1


class SandboxState:
    """Everything the sandbox knows; every change happens under ``lock``."""

    def __init__(self, *, customers: Mapping[str, str], catalog: Catalog, no_relationship: Iterable[str] = (),
                 cart_ttl_seconds: float = DEFAULT_CART_TTL_SECONDS, token_ttl_seconds: float = 3600,
                 order_completion_polls: int = 2, order_completion_seconds: float = 5.0,
                 checkout_resubmit: str = "replay", fault_rate: float = 0.0, seed: int | None = None,
                 fault_kinds: Iterable[str] = FAULT_KINDS, latency_ms: float = 0, slow_ms: float = 1500,
                 retry_after_seconds: float = 1.0) -> None:
        self.lock = threading.RLock()
        self.customers = {tenant.casefold(): {"id": tenant, "name": name} for tenant, name in customers.items()}
        self.no_relationship = {tenant.casefold() for tenant in no_relationship}
        self.catalog = catalog
        self.cart_ttl_seconds = cart_ttl_seconds
        self.token_ttl_seconds = token_ttl_seconds
        self.order_completion_polls = order_completion_polls
        self.order_completion_seconds = order_completion_seconds
        if checkout_resubmit not in ("replay", "error"):
            raise ValueError("checkout_resubmit is 'replay' or 'error'")
        self.checkout_resubmit = checkout_resubmit
        self.fault_rate = fault_rate
        unknown = set(fault_kinds) - set(ALL_FAULT_KINDS)
        if unknown:
            raise ValueError(f"unknown fault kind(s): {', '.join(sorted(unknown))}")
        self.fault_kinds = tuple(fault_kinds)
        self.latency_ms = latency_ms
        self.slow_ms = slow_ms
        self.retry_after_seconds = retry_after_seconds
        self._rng = random.Random(seed)
        self._queued: list[QueuedFault] = []
        self.carts: dict[str, dict[str, Any]] = {}
        self.orders: dict[str, dict[str, Any]] = {}
        self.subscriptions: dict[str, dict[str, Any]] = {}
        self.tokens: dict[str, float] = {}
        self.replies: dict[tuple[str, str, str], tuple[int, Any]] = {}
        self.faults: list[dict[str, Any]] = []  # what was injected: kind, method, path
        self.request_count = 0
        self.tokens_issued = 0

    # -- faults
    def queue_fault(self, kind: str, *, method: str | None = None, path_contains: str | None = None, times: int = 1) -> None:
        if kind not in ALL_FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r}")
        with self.lock:
            self._queued.append(QueuedFault(kind, method.upper() if method else None, path_contains, times))

    def draw_fault(self, method: str, path: str) -> str | None:
        is_write = method in ("POST", "PATCH", "PUT", "DELETE")
        with self.lock:
            self.request_count += 1
            for queued in self._queued:
                if (queued.method is None or queued.method == method) and \
                        (queued.path_contains is None or queued.path_contains.casefold() in path.casefold()) and \
                        (is_write or queued.kind not in WRITE_FAULTS):
                    queued.times -= 1
                    if queued.times <= 0:
                        self._queued.remove(queued)
                    return self._record(queued.kind, method, path)
            if self.fault_rate <= 0:
                return None
            roll = self._rng.random()
            kinds = [kind for kind in self.fault_kinds if is_write or kind not in WRITE_FAULTS]
            pick = self._rng.choice(kinds) if kinds else None
            if roll >= self.fault_rate or pick is None:
                return None
            return self._record(pick, method, path)

    def _record(self, kind: str, method: str, path: str) -> str:
        self.faults.append({"kind": kind, "method": method, "path": path})
        return kind

    # -- tokens
    def issue_token(self) -> tuple[str, float]:
        token = secrets.token_urlsafe(32)
        with self.lock:
            self.tokens[token] = time.monotonic() + self.token_ttl_seconds
            self.tokens_issued += 1
        return token, self.token_ttl_seconds

    def token_valid(self, token: str) -> bool:
        with self.lock:
            expires = self.tokens.get(token)
            return expires is not None and time.monotonic() < expires

    def expire_tokens(self) -> None:
        """Every token issued so far stops working (the next call gets 401)."""
        with self.lock:
            self.tokens.clear()

    # -- customers
    def customer(self, tenant: str) -> dict[str, Any]:
        record = self.customers.get(tenant.casefold())
        if record is None:
            raise ApiError(404, "60003", f"Tenant not found: {tenant}.")
        if tenant.casefold() in self.no_relationship:
            raise ApiError(403, "20002", f"The partner has no commerce relationship with the customer ID {tenant}.")
        return record

    def customer_resource(self, tenant: str) -> dict[str, Any]:
        record = self.customer(tenant)
        tenant_id, name = record["id"], record["name"]
        domain = re.sub(r"[^a-z0-9]+", "", name.casefold())[:40] or "customer"
        return {
            "id": tenant_id,
            "companyProfile": {"tenantId": tenant_id, "domain": f"{domain}.onmicrosoft.com", "companyName": name,
                               "attributes": {"objectType": "CustomerCompanyProfile"}},
            "billingProfile": {"companyName": name, "culture": "en-US", "language": "en",
                               "defaultAddress": {"country": "US"}, "attributes": {"objectType": "CustomerBillingProfile"}},
            "relationshipToPartner": "reseller", "allowDelegatedAccess": True,
            "links": {"self": _link(f"/customers/{tenant_id}")},
            "attributes": {"objectType": "Customer"},
        }

    # -- carts
    def create_cart(self, tenant: str, body: Any) -> dict[str, Any]:
        self.customer(tenant)
        lines = _ci(body, "lineItems")
        if not isinstance(lines, list) or not lines:
            raise ApiError(400, "800002", "Invalid request input: a cart needs at least one line item.")
        cart_lines = []
        for index, raw in enumerate(lines):
            if not isinstance(raw, Mapping):
                raise ApiError(400, "800002", f"Invalid request input: line item {index} is not an object.")
            product, sku, availability = self.catalog.resolve(_ci(raw, "catalogItemId"))
            term = str(_ci(raw, "termDuration") or "").strip().upper()
            cycle = _CYCLES.get(str(_ci(raw, "billingCycle") or "").strip().casefold())
            offered = {(t["duration"], _CYCLES[t["billingCycle"].casefold()]) for t in availability["terms"]}
            if term not in {duration for duration, _ in offered}:
                raise ApiError(400, "800121", f"The term duration provided is invalid: '{_ci(raw, 'termDuration')}' "
                                              f"for line item {index}.")
            if (term, cycle) not in offered:
                raise ApiError(400, "900269", f"The billing cycle is invalid: '{_ci(raw, 'billingCycle')}' "
                                              f"for term {term} on line item {index}.")
            quantity = _whole(_ci(raw, "quantity"))
            if quantity is None or not sku["minimumQuantity"] <= quantity <= sku["maximumQuantity"]:
                raise ApiError(400, "900275", f"The requested quantity for line item {index} is not within the "
                                              f"allowed quantity for this offer ({sku['minimumQuantity']}-"
                                              f"{sku['maximumQuantity']}).")
            friendly = _ci(raw, "friendlyName")
            cart_lines.append({
                "id": index, "catalogItemId": availability["catalogItemId"],
                "friendlyName": None if friendly is None else str(friendly), "quantity": quantity,
                "currencyCode": "USD", "billingCycle": cycle, "termDuration": term,
                "provisioningContext": _ci(raw, "provisioningContext") or {}, "orderGroup": "0",
                "_offerName": sku["title"], "_productTitle": product["title"],
            })
        now = time.time()
        cart_id = str(uuid.uuid4())
        with self.lock:
            cart = {
                "id": cart_id, "creationTimestamp": _now_iso(now), "lastModifiedTimestamp": _now_iso(now),
                "expirationTimestamp": _now_iso(now + self.cart_ttl_seconds), "lastModifiedUser": "sandbox-app",
                "status": "Active", "lineItems": cart_lines,
                "links": {"self": _link(f"/customers/{tenant}/carts/{cart_id}")},
                "attributes": {"objectType": "Cart"},
                "_tenant": tenant.casefold(), "_expires_at": now + self.cart_ttl_seconds, "_result": None,
            }
            self.carts[cart_id.casefold()] = cart
        return self.render_cart(cart)

    def render_cart(self, cart: dict[str, Any]) -> dict[str, Any]:
        public = _public(cart)
        public["lineItems"] = [_public(line) for line in cart["lineItems"]]
        return public

    def cart(self, tenant: str, cart_id: str) -> dict[str, Any]:
        self.customer(tenant)
        cart = self.carts.get(cart_id.casefold())
        if cart is None or cart["_tenant"] != tenant.casefold():
            raise ApiError(404, "800008", f"Unable to retrieve cart ID {cart_id}.")
        if cart["status"] == "Active" and time.time() >= cart["_expires_at"]:
            raise ApiError(404, "800008", f"Unable to retrieve cart ID {cart_id}: the cart expired.")
        return cart

    def checkout(self, tenant: str, cart_id: str) -> dict[str, Any]:
        with self.lock:
            cart = self.cart(tenant, cart_id)
            if cart["status"] == "Ordered":
                if self.checkout_resubmit == "error":
                    raise ApiError(400, "800065", f"Can't check out an already submitted cart {cart_id}.")
                return self.checkout_result(cart)
            now = time.time()
            groups: dict[str, list[dict[str, Any]]] = {}
            for line in cart["lineItems"]:
                groups.setdefault(line["billingCycle"], []).append(line)
            order_ids = []
            for cycle, lines in groups.items():
                order_id = uuid.uuid4().hex
                order_lines = []
                for number, line in enumerate(lines):
                    subscription_id = str(uuid.uuid4())
                    product_id, sku_id, _ = line["catalogItemId"].split(":")
                    self.subscriptions[subscription_id] = _subscription_record(
                        tenant, subscription_id, line["catalogItemId"], line["_offerName"], line["friendlyName"],
                        line["quantity"], cycle, line["termDuration"], order_id, now, "pending")
                    order_lines.append({
                        "lineItemNumber": number, "offerId": line["catalogItemId"], "subscriptionId": subscription_id,
                        "friendlyName": line["friendlyName"], "quantity": line["quantity"],
                        "termDuration": line["termDuration"], "transactionType": "New",
                        "links": {"subscription": _link(f"/customers/{tenant}/subscriptions/{subscription_id}"),
                                  "sku": _link(f"/products/{product_id}/skus/{sku_id}?country=US")},
                    })
                self.orders[order_id] = {
                    "id": order_id, "referenceCustomerId": self.customer(tenant)["id"], "billingCycle": cycle,
                    "currencyCode": "USD", "currencySymbol": "$", "lineItems": order_lines,
                    "creationDate": _now_iso(now), "status": "pending", "transactionType": "UserPurchase",
                    "links": {"self": _link(f"/customers/{tenant}/orders/{order_id}"),
                              "provisioningStatus": _link(f"/customers/{tenant}/orders/{order_id}/provisioningstatus")},
                    "attributes": {"objectType": "Order"},
                    "_tenant": tenant.casefold(), "_created": time.monotonic(), "_polls": 0, "_cart": cart["id"],
                }
                order_ids.append(order_id)
            cart["status"] = "Ordered"
            cart["lastModifiedTimestamp"] = _now_iso(now)
            cart["_result"] = order_ids
            return self.checkout_result(cart)

    def checkout_result(self, cart: dict[str, Any]) -> dict[str, Any]:
        orders = [self.render_order(self.orders[order_id]) for order_id in cart["_result"] or []]
        return {"orders": orders, "orderErrors": [], "attributes": {"objectType": "CartCheckoutResult"}}

    # -- orders
    def _settle(self, order: dict[str, Any], *, poll: bool) -> None:
        if order["status"] != "pending":
            return
        if poll:
            order["_polls"] += 1
        old_enough = time.monotonic() - order["_created"] >= self.order_completion_seconds
        if order["_polls"] >= self.order_completion_polls or old_enough:
            order["status"] = "completed"
            for line in order["lineItems"]:
                subscription = self.subscriptions.get(line["subscriptionId"])
                if subscription is not None and subscription["status"] == "pending":
                    subscription["status"] = "active"

    def render_order(self, order: dict[str, Any]) -> dict[str, Any]:
        return _public(order)

    def order(self, tenant: str, order_id: str) -> dict[str, Any]:
        with self.lock:
            self.customer(tenant)
            order = self.orders.get(order_id) or next(
                (o for key, o in self.orders.items() if key.casefold() == order_id.casefold()), None)
            if order is None or order["_tenant"] != tenant.casefold():
                raise ApiError(404, "20000", f"Order ID {order_id} not found.")
            self._settle(order, poll=True)
            return self.render_order(order)

    def orders_of(self, tenant: str) -> list[dict[str, Any]]:
        with self.lock:
            self.customer(tenant)
            found = []
            for order in self.orders.values():
                if order["_tenant"] == tenant.casefold():
                    self._settle(order, poll=True)
                    found.append(self.render_order(order))
            return found

    # -- subscriptions
    def _subscription(self, tenant: str, subscription_id: str) -> dict[str, Any]:
        self.customer(tenant)
        subscription = self.subscriptions.get(subscription_id) or next(
            (s for key, s in self.subscriptions.items() if key.casefold() == subscription_id.casefold()), None)
        if subscription is None or subscription["_tenant"] != tenant.casefold():
            raise ApiError(404, "20003", f"Subscription with ID {subscription_id} not found.")
        order = self.orders.get(subscription["orderId"])
        if order is not None:
            self._settle(order, poll=True)
        return subscription

    def subscription(self, tenant: str, subscription_id: str) -> dict[str, Any]:
        with self.lock:
            return _public(self._subscription(tenant, subscription_id))

    def subscriptions_of(self, tenant: str) -> list[dict[str, Any]]:
        with self.lock:
            self.customer(tenant)
            found = []
            for subscription in self.subscriptions.values():
                if subscription["_tenant"] == tenant.casefold():
                    order = self.orders.get(subscription["orderId"])
                    if order is not None:
                        self._settle(order, poll=True)
                    found.append(_public(subscription))
            return found

    def update_subscription(self, tenant: str, subscription_id: str, body: Any, if_match: str | None) -> dict[str, Any]:
        with self.lock:
            subscription = self._subscription(tenant, subscription_id)
            if subscription["status"] == "pending":
                raise ApiError(409, "800082", "Subscription is not ready to be updated. Try again after sometime.")
            if subscription["status"] != "active":
                raise ApiError(400, "800091", f"Can't update a subscription with {subscription['status']} status.")
            if not isinstance(body, Mapping):
                raise ApiError(400, "800002", "Invalid request input: a Subscription resource is required.")
            etag = _ci(_ci(body, "attributes"), "etag") or (if_match or "").strip().strip('"') or None
            if not etag:
                raise ApiError(400, "800002", "Invalid request input: the subscription etag is required.")
            if etag != subscription["attributes"]["etag"]:
                raise ApiError(412, "2055", "Etag is no longer valid.")
            quantity = _ci(body, "quantity")
            if quantity is not None:
                quantity = _whole(quantity)
                low, high = self._bounds(subscription)
                if quantity is None or not low <= quantity <= high:
                    raise ApiError(400, "2002", f"Subscription quantity isn't within minimum and maximum allowed "
                                                f"quantity ({low}-{high}).")
                subscription["quantity"] = quantity
            friendly = _ci(body, "friendlyName")
            if friendly is not None:
                subscription["friendlyName"] = str(friendly)
            auto_renew = _ci(body, "autoRenewEnabled")
            if isinstance(auto_renew, bool):
                subscription["autoRenewEnabled"] = auto_renew
            subscription["attributes"]["etag"] = uuid.uuid4().hex
            return _public(subscription)

    def touch_subscription(self, tenant: str, subscription_id: str) -> None:
        """Another writer updated the subscription: its etag changes (stale for whoever read it)."""
        with self.lock:
            self._subscription(tenant, subscription_id)["attributes"]["etag"] = uuid.uuid4().hex

    def _bounds(self, subscription: Mapping[str, Any]) -> tuple[int, int]:
        product_id, sku_id, _ = subscription["offerId"].split(":")
        try:
            sku = self.catalog.sku(product_id, sku_id)
        except ApiError:
            # a subscription seeded from before the sandbox started whose SKU left the catalog
            # since: Partner Center still lets it be changed, so the bounds are the general ones
            return 1, DEFAULT_MAX_QUANTITY
        return sku["minimumQuantity"], sku["maximumQuantity"]

    def seed_subscriptions(self, rows: Iterable[Mapping[str, Any]]) -> int:
        """Subscriptions bought before this sandbox started, as Partner Center (which remembers
        every purchase) would still have them: active, with their quantity.

        Rows (dicts or a DataFrame's records): ``provider_customer_id`` (tenant),
        ``provider_subscription_id``, ``provider_sku`` ("PRODUCT:SKU"), ``quantity`` (whole), and
        optionally ``term_duration``, ``billing_frequency``, ``friendly_name``. A subscription the
        sandbox already knows is left as it is (what happened to it here is newer), and a row
        without a tenant, an id, a SKU or a whole quantity is ignored. Returns how many were added.
        """
        now = time.time()
        added = 0
        with self.lock:
            known = {key.casefold() for key in self.subscriptions}
            for row in rows:
                tenant, subscription_id = _ci(row, "provider_customer_id"), _ci(row, "provider_subscription_id")
                provider_sku, quantity = _ci(row, "provider_sku"), _quantity(_ci(row, "quantity"))
                if _blank(tenant) or _blank(subscription_id) or _blank(provider_sku) or quantity is None \
                        or ":" not in str(provider_sku):
                    log.debug("not seeding subscription row %r", row)
                    continue
                subscription_id = str(subscription_id).strip()
                if subscription_id.casefold() in known:
                    continue
                product_id, sku_id = (part.strip() for part in str(provider_sku).split(":", 1))
                offers = self.catalog.availabilities.get((product_id.casefold(), sku_id.casefold())) or []
                offer_id = offers[0]["catalogItemId"] if offers else f"{product_id}:{sku_id}:0000"
                sku = self.catalog.skus.get((product_id.casefold(), sku_id.casefold()))
                term = str(_ci(row, "term_duration") or "").strip().upper()
                cycle = _CYCLES.get(str(_ci(row, "billing_frequency") or "").strip().casefold(), "monthly")
                friendly = _ci(row, "friendly_name")
                self.subscriptions[subscription_id] = _subscription_record(
                    str(tenant).strip(), subscription_id, offer_id, sku["title"] if sku else str(provider_sku),
                    None if _blank(friendly) else str(friendly), quantity, cycle,
                    term if term in _TERM_DAYS else "P1M", None, now, "active")
                known.add(subscription_id.casefold())
                added += 1
        return added

    # -- inspection (tests, demos)
    def friendly_name_counts(self, tenant: str) -> dict[str, int]:
        """friendlyName → number of subscriptions with it, for one customer."""
        counts: dict[str, int] = {}
        with self.lock:
            for subscription in self.subscriptions.values():
                if subscription["_tenant"] == tenant.casefold():
                    name = subscription["friendlyName"] or ""
                    counts[name] = counts.get(name, 0) + 1
        return counts


# ------------------------------------------------------------------------------------- HTTP
_ROUTES: list[tuple[str, re.Pattern[str], str]] = [
    (method, re.compile(pattern, re.IGNORECASE), name) for method, pattern, name in [
        ("GET", r"^/v1/customers/?$", "customers"),
        ("GET", r"^/v1/customers/(?P<tenant>[^/]+)/?$", "customer"),
        ("POST", r"^/v1/customers/(?P<tenant>[^/]+)/carts/?$", "create_cart"),
        ("GET", r"^/v1/customers/(?P<tenant>[^/]+)/carts/(?P<cart>[^/]+)/?$", "get_cart"),
        ("POST", r"^/v1/customers/(?P<tenant>[^/]+)/carts/(?P<cart>[^/]+)/checkout/?$", "checkout"),
        ("GET", r"^/v1/customers/(?P<tenant>[^/]+)/orders/?$", "orders"),
        ("GET", r"^/v1/customers/(?P<tenant>[^/]+)/orders/(?P<order>[^/]+)/?$", "order"),
        ("GET", r"^/v1/customers/(?P<tenant>[^/]+)/subscriptions/?$", "subscriptions"),
        ("GET", r"^/v1/customers/(?P<tenant>[^/]+)/subscriptions/(?P<subscription>[^/]+)/?$", "subscription"),
        ("PATCH", r"^/v1/customers/(?P<tenant>[^/]+)/subscriptions/(?P<subscription>[^/]+)/?$", "patch_subscription"),
        ("GET", r"^/v1/products/?$", "products"),
        ("GET", r"^/v1/products/(?P<product>[^/]+)/?$", "product"),
        ("GET", r"^/v1/products/(?P<product>[^/]+)/skus/?$", "skus"),
        ("GET", r"^/v1/products/(?P<product>[^/]+)/skus/(?P<sku>[^/]+)/?$", "sku"),
        ("GET", r"^/v1/products/(?P<product>[^/]+)/skus/(?P<sku>[^/]+)/availabilities/?$", "availabilities"),
        ("GET", r"^/v1/products/(?P<product>[^/]+)/skus/(?P<sku>[^/]+)/availabilities/(?P<availability>[^/]+)/?$",
         "availability"),
    ]
]
_TOKEN_ROUTE = re.compile(r"^/(?P<tenant>[^/]+)/oauth2/v2\.0/token/?$", re.IGNORECASE)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128
    state: SandboxState

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hung up (timeout, our own dropped connection) is routine, not a traceback."""
        import sys

        error = sys.exc_info()[1]
        if isinstance(error, (ConnectionError, TimeoutError)):
            log.debug("client %s went away: %s", client_address, error)
            return
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "PartnerCenterSandbox/1.0"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        log.debug("%s " + format, self.address_string(), *args)

    def do_GET(self) -> None:  # noqa: N802 - stdlib naming
        self._handle("GET")

    def do_POST(self) -> None:  # noqa: N802
        self._handle("POST")

    def do_PATCH(self) -> None:  # noqa: N802
        self._handle("PATCH")

    def do_PUT(self) -> None:  # noqa: N802
        self._handle("PUT")

    def do_DELETE(self) -> None:  # noqa: N802
        self._handle("DELETE")

    # -- plumbing
    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _send(self, status: int, body: Any, headers: Mapping[str, str] | None = None) -> None:
        payload = b"" if body is None else json.dumps(body).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(payload)))
        for name in ("MS-RequestId", "MS-CorrelationId"):
            if self.headers.get(name):
                self.send_header(name, self.headers[name])
        self.send_header("MS-CV", uuid.uuid4().hex[:16] + ".0")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if payload:
            self.wfile.write(payload)

    def _drop(self) -> None:
        """Close the connection without a word (the client sees a dropped connection)."""
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)

    def _handle(self, method: str) -> None:
        state = self.server.state
        url = urlsplit(self.path)
        path = unquote(url.path)
        query = {key.casefold(): values[-1] for key, values in parse_qs(url.query).items()}
        raw = self._read_body()
        token_route = _TOKEN_ROUTE.match(path)
        if token_route and method == "POST":
            self._token(raw)
            return
        route = next(((name, match) for route_method, pattern, name in _ROUTES
                      if route_method == method and (match := pattern.match(path))), None)
        if route is None:
            known_path = any(pattern.match(path) for _, pattern, _ in _ROUTES)
            status, code = (405, "405") if known_path else (404, "1000")
            self._send(status, {"code": code, "description": "Method not allowed" if known_path else "Not found",
                                "data": [], "source": "PartnerFD"})
            return
        name, match = route
        authorization = self.headers.get("Authorization") or ""
        scheme, _, token = authorization.partition(" ")
        if not token or scheme.casefold() != "bearer":
            self._send(401, ApiError(401, "800001", "Partner Token missing in request context.").body(),
                       {"WWW-Authenticate": "Bearer realm=urn:cpsvc:sandbox"})
            return
        if not state.token_valid(token.strip()):
            self._send(401, ApiError(401, "400", "Access denied: the token is invalid or expired.").body(),
                       {"WWW-Authenticate": "Bearer realm=urn:cpsvc:sandbox, error=invalid_token"})
            return
        if state.latency_ms:
            time.sleep(state.latency_ms / 1000.0)
        fault = state.draw_fault(method, path)
        if fault == "slow":
            time.sleep(state.slow_ms / 1000.0)
        elif fault == "throttle":
            wait = state.retry_after_seconds
            shown = str(int(wait)) if float(wait).is_integer() else f"{wait:g}"
            self._send(429, {"statusCode": 429, "message": f"Rate limit is exceeded. Try again in {shown} seconds."},
                       {"Retry-After": shown})
            return
        elif fault in ("error_500", "error_503"):
            status = 500 if fault == "error_500" else 503
            self._send(status, ApiError(status, "800003" if status == 500 else "503",
                                        "Unexpected service error." if status == 500
                                        else "Service unavailable.").body())
            return
        elif fault == "drop":
            self._drop()
            return
        status, body = self._apply(state, method, name, match.groupdict(), query, raw, path)
        if fault == "concurrent_update" and name == "subscription" and status == 200:
            state.touch_subscription(match.group("tenant"), match.group("subscription"))
        if fault == "commit_then_500":
            self._send(500, ApiError(500, "800003", "Unexpected service error.").body())
        elif fault == "commit_then_drop":
            self._drop()
        else:
            self._send(status, body)

    def _apply(self, state: SandboxState, method: str, name: str, params: dict[str, str], query: dict[str, str],
               raw: bytes, path: str) -> tuple[int, Any]:
        """Run the operation (answered from memory when the same write comes again)."""
        request_id = (self.headers.get("MS-RequestId") or "").strip()
        replay_key = (method, path.casefold().rstrip("/"), request_id) if method != "GET" and request_id else None
        if replay_key is not None:
            with state.lock:
                if replay_key in state.replies:
                    return state.replies[replay_key]
        try:
            body: Any = json.loads(raw) if raw.strip() else None
        except ValueError:
            return 400, ApiError(400, "800002", "Invalid request input: the body is not JSON.").body()
        with state.lock:  # one write at a time, and a replayed write sees its first answer
            if replay_key is not None and replay_key in state.replies:
                return state.replies[replay_key]
            try:
                result = self._operation(state, name, params, query, body)
            except ApiError as error:
                result = (error.status, error.body())
            if replay_key is not None and result[0] < 500:
                state.replies[replay_key] = result
            return result

    def _operation(self, state: SandboxState, name: str, p: dict[str, str], query: dict[str, str],
                   body: Any) -> tuple[int, Any]:
        catalog = state.catalog
        if name == "customers":
            items = [state.customer_resource(record["id"]) for key, record in state.customers.items()
                     if key not in state.no_relationship]
            return 200, _collection(items, "/customers")
        if name == "customer":
            return 200, state.customer_resource(p["tenant"])
        if name == "create_cart":
            return 201, state.create_cart(p["tenant"], body)
        if name == "get_cart":
            return 200, state.render_cart(state.cart(p["tenant"], p["cart"]))
        if name == "checkout":
            return 201, state.checkout(p["tenant"], p["cart"])
        if name == "orders":
            return 200, _collection(state.orders_of(p["tenant"]), f"/customers/{p['tenant']}/orders")
        if name == "order":
            return 200, state.order(p["tenant"], p["order"])
        if name == "subscriptions":
            return 200, _collection(state.subscriptions_of(p["tenant"]), f"/customers/{p['tenant']}/subscriptions")
        if name == "subscription":
            return 200, state.subscription(p["tenant"], p["subscription"])
        if name == "patch_subscription":
            return 200, state.update_subscription(p["tenant"], p["subscription"], body, self.headers.get("If-Match"))
        if name == "products":
            return 200, _collection([_public(item) for item in catalog.products.values()], "/products")
        if name == "product":
            return 200, _public(catalog.product(p["product"]))
        if name == "skus":
            catalog.product(p["product"])
            skus = [_public(sku) for (product, _), sku in catalog.skus.items() if product == p["product"].casefold()]
            return 200, _collection(skus, f"/products/{p['product']}/skus")
        if name == "sku":
            return 200, _public(catalog.sku(p["product"], p["sku"]))
        if name == "availabilities":
            items = [_public(item) for item in catalog.availabilities_of(p["product"], p["sku"])]
            return 200, _collection(items, f"/products/{p['product']}/skus/{p['sku']}/availabilities")
        if name == "availability":
            return 200, _public(catalog.availability(p["product"], p["sku"], p["availability"]))
        raise ApiError(404, "1000", "Not found")  # pragma: no cover - every route is handled above

    def _token(self, raw: bytes) -> None:
        form = {key: values[-1] for key, values in parse_qs(raw.decode("utf-8", errors="replace")).items()}
        if form.get("grant_type") != "client_credentials":
            self._send(400, {"error": "unsupported_grant_type",
                             "error_description": "Only client_credentials is supported by the sandbox."})
            return
        if not form.get("client_id") or not form.get("client_secret"):
            self._send(400, {"error": "invalid_request",
                             "error_description": "client_id and client_secret are required."})
            return
        token, expires_in = self.server.state.issue_token()
        self._send(200, {"token_type": "Bearer", "expires_in": int(math.ceil(expires_in)),
                         "ext_expires_in": int(math.ceil(expires_in)), "access_token": token})


# ------------------------------------------------------------------------------------- start / stop
@dataclass
class SandboxHandle:
    """A running sandbox: ``url`` to call, ``state`` to inspect, ``stop()`` to end it."""

    url: str
    state: SandboxState
    _server: _Server
    _thread: threading.Thread

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    def token_url(self, tenant: str = "partner") -> str:
        return f"{self.url}/{tenant}/oauth2/v2.0/token"

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def set_fault_rate(self, rate: float) -> None:
        with self.state.lock:
            self.state.fault_rate = rate

    def queue_fault(self, kind: str, *, method: str | None = None, path_contains: str | None = None,
                    times: int = 1) -> None:
        """The next matching request(s) get this fault, whatever ``fault_rate`` says."""
        self.state.queue_fault(kind, method=method, path_contains=path_contains, times=times)

    @contextlib.contextmanager
    def faults_paused(self) -> Iterator[None]:
        with self.state.lock:
            previous, self.state.fault_rate = self.state.fault_rate, 0.0
        try:
            yield
        finally:
            with self.state.lock:
                self.state.fault_rate = previous

    def __enter__(self) -> SandboxHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_sandbox(*, port: int = 0, customers: Mapping[str, str] | None = None, products: Any = None,
                  latency_ms: float = 0, fault_rate: float = 0.0, seed: int | None = None,
                  cart_ttl_seconds: float = DEFAULT_CART_TTL_SECONDS, reference: str | Path | None = None,
                  host: str = "127.0.0.1", token_ttl_seconds: float = 3600, no_relationship: Iterable[str] = (),
                  order_completion_polls: int = 2, order_completion_seconds: float = 5.0,
                  checkout_resubmit: str = "replay", fault_kinds: Iterable[str] = FAULT_KINDS,
                  slow_ms: float = 1500, retry_after_seconds: float = 1.0,
                  subscriptions: Any = None) -> SandboxHandle:
    """Start the sandbox in a background thread on ``host:port`` (0 = a free port); ready on return.

    ``customers`` (tenant id → name) and ``products`` (catalog rows shaped like ``products.csv``:
    a list of dicts or a DataFrame) add to / override what ``reference`` (a reference folder)
    provides; with neither, the catalog is ``DEFAULT_PRODUCTS`` and there are no customers.
    ``subscriptions`` (rows as ``SandboxState.seed_subscriptions`` takes them, or a DataFrame)
    are active subscriptions from before: a sandbox started for one run knows what earlier
    runs bought, as Partner Center does.
    """
    if not 0.0 <= fault_rate <= 1.0:
        raise ValueError("fault_rate must be between 0 and 1")
    reference_customers: dict[str, str] = {}
    rows: list[Mapping[str, Any]] = []
    if reference is not None:
        reference_customers, reference_rows = load_reference(reference)
        rows.extend(reference_rows)
    if products is not None:
        rows.extend(products.to_dict("records") if hasattr(products, "to_dict") else list(products))
    if not rows:
        rows = list(DEFAULT_PRODUCTS)
    state = SandboxState(
        customers={**reference_customers, **(customers or {})}, catalog=Catalog.from_rows(rows),
        no_relationship=no_relationship, cart_ttl_seconds=cart_ttl_seconds, token_ttl_seconds=token_ttl_seconds,
        order_completion_polls=order_completion_polls, order_completion_seconds=order_completion_seconds,
        checkout_resubmit=checkout_resubmit, fault_rate=fault_rate, seed=seed, fault_kinds=fault_kinds,
        latency_ms=latency_ms, slow_ms=slow_ms, retry_after_seconds=retry_after_seconds)
    if subscriptions is not None:
        state.seed_subscriptions(subscriptions.to_dict("records") if hasattr(subscriptions, "to_dict")
                                 else subscriptions)
    server = _Server((host, port), _Handler)
    server.state = state
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              name="partner-center-sandbox", daemon=True)
    thread.start()
    bound_host, bound_port = server.server_address[:2]
    return SandboxHandle(url=f"http://{bound_host}:{bound_port}", state=state, _server=server, _thread=thread)


def serve(**options: Any) -> None:
    """Run until Ctrl-C or SIGTERM (the standalone sandbox)."""
    handle = start_sandbox(**options)
    stop = threading.Event()

    def _stop(*_: object) -> None:
        stop.set()

    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(ValueError):  # not the main thread
            signal.signal(signum, _stop)
    state = handle.state
    print(f"Partner Center sandbox listening on {handle.url} "
          f"({len(state.customers)} customers, {len(state.catalog.skus)} SKUs, fault rate {state.fault_rate:g})",
          flush=True)
    print(f"  token:  POST {handle.url}/<tenant>/oauth2/v2.0/token  (client credentials, any id/secret)", flush=True)
    print(f"  api:    {handle.url}/v1/…   — Ctrl-C to stop", flush=True)
    try:
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        handle.stop()
        print("Partner Center sandbox stopped.", flush=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Local Partner Center (NCE) sandbox.")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--reference", type=Path, default=None)
    parser.add_argument("--latency-ms", type=float, default=0)
    parser.add_argument("--fault-rate", type=float, default=0.0)
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args(argv)
    serve(port=args.port, host=args.host, reference=args.reference, latency_ms=args.latency_ms,
          fault_rate=args.fault_rate, seed=args.seed)


if __name__ == "__main__":
    main()
