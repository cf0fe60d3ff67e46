"""A synchronous Partner Center REST client (``httpx``), the part of the API w365etl buys with.

Buying NCE seats is: resolve the catalog item (``PRODUCT:SKU`` → availability whose terms offer
the wanted term and billing cycle → ``catalogItemId`` = ``product:sku:availability``), create a
cart whose line items carry our line key as ``friendlyName``, check the cart out; the order and
the subscriptions it creates carry the ``friendlyName`` back, which is how a purchase is
recognised later. A quantity change is a read-modify-write of the subscription with its etag.

Retries and idempotency:

- every logical call has one ``MS-RequestId`` (the caller may pass its own, persisted before the
  call); every retry of that call re-sends the same id; the next call gets a new one;
- GETs retry on 429 (honouring ``Retry-After``), 5xx, timeouts and dropped connections;
- POST/PATCH retry only when the request certainly was not processed (429, connection refused);
  a timeout, dropped connection or 5xx raises ``AmbiguousWrite`` — the caller reconciles (reads the
  cart, orders, subscriptions by ``friendlyName``) before doing anything that could buy twice.
  Checking out the *same* cart again is safe (one cart is bought at most once);
- a 401 drops the cached token and tries once more with a fresh one.

Responses are returned as plain dicts with camelCase keys whatever the casing Partner Center used.
"""

from __future__ import annotations

import logging
import numbers
import random
import re
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal
from typing import Any
from urllib.parse import quote

import httpx

from w365etl.adapters.partner_center.errors import (
    AmbiguousWrite,
    CatalogItemUnavailable,
    Conflict,
    EtagMismatch,
    PartnerCenterError,
    ResourceNotFound,
    Throttled,
    TransientError,
    ValidationFailed,
    error_from_response,
)
from w365etl.adapters.partner_center.rate_limit import RateLimiter
from w365etl.adapters.partner_center.tokens import TokenProvider

LIVE_BASE_URL = "https://api.partnercenter.microsoft.com"
CONTRACT_VERSION = "v1"
TERM_DURATIONS = ("P1M", "P1Y", "P3Y")
_BILLING_CYCLES = {
    "monthly": "monthly", "month": "monthly",
    "annual": "annual", "annually": "annual", "yearly": "annual", "year": "annual",
    "triennial": "triennial",
    "one_time": "one_time", "onetime": "one_time",
}

log = logging.getLogger(__name__)


def normalize_billing_cycle(value: str) -> str:
    """Partner Center's billing cycle for our wording: Monthly → monthly, Annually → annual…"""
    cycle = _BILLING_CYCLES.get(str(value or "").strip().casefold().replace(" ", "_").replace("-", "_"))
    if cycle is None:
        raise ValidationFailed("900269", f"billing cycle '{value}' is not one Partner Center sells "
                                         "(monthly, annual, triennial)", None)
    return cycle


def normalize_term_duration(value: str) -> str:
    term = str(value or "").strip().upper()
    if term not in TERM_DURATIONS:
        raise ValidationFailed("800121", f"term duration '{value}' is not one of {', '.join(TERM_DURATIONS)}", None)
    return term


def camel_keys(value: Any) -> Any:
    """JSON with every key in camelCase (first letter lower): case-insensitive in, camelCase out."""
    if isinstance(value, Mapping):
        return {_camel(key): camel_keys(item) for key, item in value.items()}
    if isinstance(value, list):
        return [camel_keys(item) for item in value]
    return value


def _camel(key: Any) -> Any:
    if not isinstance(key, str) or not key:
        return key
    if key.casefold() == "etag":
        return "etag"
    return key[0].lower() + key[1:]


def _new_id() -> str:
    return str(uuid.uuid4())


def _seg(value: str) -> str:
    return quote(str(value).strip(), safe="")


class PartnerCenterClient:
    """Partner Center ``/v1`` API. Thread-safe (one ``httpx.Client``, a shared ``RateLimiter``).

    ``country``/``target_view`` scope the catalog reads; ``sleep`` is injectable (tests record
    the waits); ``etag_retries`` bounds the read-modify-write loop of a quantity change.
    """

    def __init__(self, base_url: str, token_provider: TokenProvider, *, limiter: RateLimiter | None = None,
                 timeout: float = 30.0, max_retries: int = 5, country: str = "US",
                 target_view: str = "OnlineServicesNCE", backoff_seconds: float = 0.5,
                 max_backoff_seconds: float = 30.0, etag_retries: int = 5,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        root = base_url.rstrip("/")
        if root.casefold().endswith("/v1"):
            root = root[:-3]
        self.base_url = root
        self._tokens = token_provider
        self._limiter = limiter if limiter is not None else RateLimiter()
        self._max_retries = max(0, int(max_retries))
        self._backoff = backoff_seconds
        self._max_backoff = max_backoff_seconds
        self._etag_retries = max(0, int(etag_retries))
        self._sleep = sleep
        self._jitter = random.Random()
        self.country = country
        self.target_view = target_view
        self._http = httpx.Client(base_url=f"{root}/{CONTRACT_VERSION}", timeout=timeout,
                                  headers={"Accept": "application/json", "User-Agent": "w365etl"})
        self._catalog_items: dict[tuple[str, str, str], str] = {}
        self._skus: dict[tuple[str, str], dict[str, Any]] = {}

    def __repr__(self) -> str:
        return f"PartnerCenterClient(base_url={self.base_url!r})"

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> PartnerCenterClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ----------------------------------------------------------------------------- customers
    def get_customer(self, tenant: str) -> dict[str, Any]:
        """The customer; ``CustomerNotFound`` / ``NoResellerRelationship`` when it cannot be used."""
        return self._call("GET", f"/customers/{_seg(tenant)}", tenant=tenant, customer_scope=True)

    # ----------------------------------------------------------------------------- catalog
    def list_products(self, *, target_view: str | None = None) -> list[dict[str, Any]]:
        params = {"country": self.country, "targetView": target_view or self.target_view}
        return self._collect("/products", params=params)

    def get_sku(self, product_id: str, sku_id: str) -> dict[str, Any]:
        key = (product_id.upper(), sku_id.upper())
        if key not in self._skus:
            try:
                self._skus[key] = self._call("GET", f"/products/{_seg(product_id)}/skus/{_seg(sku_id)}",
                                             params={"country": self.country})
            except ResourceNotFound as error:
                raise _as_unavailable(error, f"{product_id}:{sku_id}") from None
        return self._skus[key]

    def list_skus(self, product_id: str) -> list[dict[str, Any]]:
        try:
            return self._collect(f"/products/{_seg(product_id)}/skus", params={"country": self.country})
        except ResourceNotFound as error:
            raise _as_unavailable(error, product_id) from None

    def list_availabilities(self, product_id: str, sku_id: str) -> list[dict[str, Any]]:
        try:
            return self._collect(f"/products/{_seg(product_id)}/skus/{_seg(sku_id)}/availabilities",
                                 params={"country": self.country})
        except ResourceNotFound as error:
            raise _as_unavailable(error, f"{product_id}:{sku_id}") from None

    def sku_quantity_bounds(self, provider_sku: str) -> tuple[int | None, int | None]:
        """``(minimumQuantity, maximumQuantity)`` of a ``PRODUCT:SKU`` as the catalog states them."""
        product_id, sku_id = _split_provider_sku(provider_sku)
        sku = self.get_sku(product_id, sku_id)
        low, high = sku.get("minimumQuantity"), sku.get("maximumQuantity")
        return (None if low is None else int(low), None if high is None else int(high))

    def resolve_catalog_item(self, provider_sku: str, term_duration: str, billing_cycle: str) -> str:
        """``catalogItemId`` (``product:sku:availability``) for our catalog's ``PRODUCT:SKU``.

        Picks the purchasable availability whose terms include ``term_duration`` billed
        ``billing_cycle``; cached per (sku, term, cycle). ``CatalogItemUnavailable`` when the
        product, SKU or such an availability does not exist.
        """
        product_id, sku_id = _split_provider_sku(provider_sku)
        term = normalize_term_duration(term_duration)
        cycle = normalize_billing_cycle(billing_cycle)
        key = (f"{product_id}:{sku_id}".upper(), term, cycle)
        cached = self._catalog_items.get(key)
        if cached:
            return cached
        self.get_sku(product_id, sku_id)
        for availability in self.list_availabilities(product_id, sku_id):
            if availability.get("isPurchasable") is False:
                continue
            for offered in availability.get("terms") or []:
                offered_cycle = _BILLING_CYCLES.get(str(offered.get("billingCycle") or "").casefold())
                if str(offered.get("duration") or "").upper() == term and offered_cycle == cycle:
                    catalog_item_id = availability.get("catalogItemId") or \
                        f"{product_id}:{sku_id}:{availability.get('id')}"
                    self._catalog_items[key] = catalog_item_id
                    return catalog_item_id
        raise CatalogItemUnavailable("400019", f"{product_id}:{sku_id} has no availability for term "
                                               f"{term} billed {cycle}", None)

    # ----------------------------------------------------------------------------- carts and orders
    def create_cart(self, tenant: str, line_items: list[dict[str, Any]], request_id: str | None = None) -> dict[str, Any]:
        """Create a cart. Each line item needs ``catalogItemId``, ``quantity``, ``termDuration``,
        ``billingCycle`` and ``friendlyName`` (our line key); keys are matched case-insensitively
        (``catalog_item_id`` works too). Pass ``request_id`` persisted beforehand: re-sending the
        same id after an ``AmbiguousWrite`` cannot create a second cart."""
        if not line_items:
            raise ValidationFailed("800002", "a cart needs at least one line item", None)
        body = {"lineItems": [_cart_line(index, item) for index, item in enumerate(line_items)]}
        return self._call("POST", f"/customers/{_seg(tenant)}/carts", tenant=tenant, json=body,
                          request_id=request_id, write=True, operation="create cart")

    def get_cart(self, tenant: str, cart_id: str) -> dict[str, Any]:
        return self._call("GET", f"/customers/{_seg(tenant)}/carts/{_seg(cart_id)}", tenant=tenant)

    def checkout(self, tenant: str, cart_id: str, request_id: str | None = None) -> dict[str, Any]:
        """Check the cart out: ``{"orders": [...], "orderErrors": [...]}``. Never retried here on
        an unclear outcome (``AmbiguousWrite``); checking out the same cart again is the safe retry
        (``CartAlreadyCheckedOut`` where Partner Center refuses a second submission)."""
        return self._call("POST", f"/customers/{_seg(tenant)}/carts/{_seg(cart_id)}/checkout", tenant=tenant,
                          request_id=request_id, write=True, operation="checkout")

    def get_order(self, tenant: str, order_id: str) -> dict[str, Any]:
        return self._call("GET", f"/customers/{_seg(tenant)}/orders/{_seg(order_id)}", tenant=tenant)

    def list_orders(self, tenant: str) -> list[dict[str, Any]]:
        return self._collect(f"/customers/{_seg(tenant)}/orders", tenant=tenant)

    # ----------------------------------------------------------------------------- subscriptions
    def list_subscriptions(self, tenant: str) -> list[dict[str, Any]]:
        return self._collect(f"/customers/{_seg(tenant)}/subscriptions", tenant=tenant)

    def subscriptions_by_friendly_name(self, tenant: str) -> dict[str, list[dict[str, Any]]]:
        """The customer's subscriptions grouped by ``friendlyName`` (how purchases are recognised)."""
        grouped: dict[str, list[dict[str, Any]]] = {}
        for subscription in self.list_subscriptions(tenant):
            grouped.setdefault(str(subscription.get("friendlyName") or ""), []).append(subscription)
        return grouped

    def get_subscription(self, tenant: str, subscription_id: str) -> dict[str, Any]:
        return self._call("GET", f"/customers/{_seg(tenant)}/subscriptions/{_seg(subscription_id)}", tenant=tenant)

    def set_subscription_quantity(self, tenant: str, subscription_id: str, quantity: int, *,
                                  request_id: str | None = None) -> dict[str, Any]:
        """Set the seat count to ``quantity`` (an absolute target, so calling again is safe).

        Reads the subscription, PATCHes it with its etag; on a stale etag (412/409/2055) or a
        subscription not ready yet, re-reads and tries again (``etag_retries`` times). Returns at
        once when the subscription already has ``quantity``. ``AmbiguousWrite`` propagates: call
        again — the re-read shows whether the change landed.
        """
        target = whole_number(quantity)
        if target is None:
            raise ValidationFailed("800002", f"quantity {quantity!r} is not a whole number", None)
        quantity = target
        path = f"/customers/{_seg(tenant)}/subscriptions/{_seg(subscription_id)}"
        last_error: PartnerCenterError | None = None
        for attempt in range(self._etag_retries + 1):
            current = self.get_subscription(tenant, subscription_id)
            if current.get("quantity") == quantity:
                return current
            etag = (current.get("attributes") or {}).get("etag")
            body = {key: value for key, value in current.items() if key != "links"}
            body["quantity"] = quantity
            headers = {"If-Match": str(etag)} if etag else {}
            try:
                return self._call("PATCH", path, tenant=tenant, json=body, headers=headers, write=True,
                                  request_id=request_id if attempt == 0 else None, operation="update quantity")
            except EtagMismatch as error:
                last_error = error
                log.info("subscription %s changed under us (etag); re-reading", subscription_id)
            except Conflict as error:  # not ready yet / pending operation: wait, re-read
                last_error = error
                self._sleep(self._backoff_for(attempt))
        assert last_error is not None
        raise last_error

    # ----------------------------------------------------------------------------- plumbing
    def _collect(self, path: str, *, tenant: str | None = None, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        """All items of a collection, following ``links.next`` (continuation) when present."""
        page = self._call("GET", path, tenant=tenant, params=params)
        items = list(page.get("items") or [])
        seen = 0
        while isinstance(page.get("links"), Mapping) and isinstance(page["links"].get("next"), Mapping) and seen < 1000:
            following = page["links"]["next"]
            uri = str(following.get("uri") or "")
            if not uri:
                break
            headers = {str(h.get("key")): str(h.get("value")) for h in following.get("headers") or []
                       if isinstance(h, Mapping) and h.get("key")}
            if uri.startswith("/v1/"):
                uri = uri[3:]
            page = self._call("GET", uri, tenant=tenant, headers=headers)
            items.extend(page.get("items") or [])
            seen += 1
        return items

    def _backoff_for(self, attempt: int) -> float:
        ceiling = min(self._max_backoff, self._backoff * (2 ** attempt))
        return ceiling * (0.5 + self._jitter.random() / 2.0)

    def _call(self, method: str, path: str, *, tenant: str | None = None, json: Any = None,
              params: Mapping[str, Any] | None = None, headers: Mapping[str, str] | None = None,
              request_id: str | None = None, write: bool = False, operation: str = "",
              customer_scope: bool = False) -> dict[str, Any]:
        request_id = request_id or _new_id()
        correlation_id = _new_id()
        operation = operation or f"{method} {path}"
        attempt = 0
        refreshed_token = False
        while True:
            self._limiter.acquire(tenant)
            request_headers = {
                "Authorization": f"Bearer {self._tokens.get_token()}",
                "MS-RequestId": request_id,
                "MS-CorrelationId": correlation_id,
                "MS-Contract-Version": CONTRACT_VERSION,
                **(headers or {}),
            }
            try:
                response = self._http.request(method, path, json=json, params=params, headers=request_headers)
            except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as error:
                # never reached Partner Center: safe to try again, even for a write
                failure: PartnerCenterError = TransientError(
                    None, f"{operation}: cannot connect ({type(error).__name__})", None,
                    request_id=request_id, correlation_id=correlation_id)
            except httpx.TransportError as error:  # timeout, dropped connection: sent, no answer
                if write:
                    raise AmbiguousWrite(None, f"{operation}: no answer ({type(error).__name__}); the write may "
                                               "have happened — reconcile before retrying", None,
                                         operation=operation, request_id=request_id,
                                         correlation_id=correlation_id) from None
                failure = TransientError(None, f"{operation}: no answer ({type(error).__name__})", None,
                                         request_id=request_id, correlation_id=correlation_id)
            else:
                status = response.status_code
                log.debug("%s %s -> %s (MS-RequestId %s, attempt %s)", method, path, status, request_id, attempt + 1)
                if 200 <= status < 300:
                    try:
                        return camel_keys(response.json()) if response.content.strip() else {}
                    except ValueError:
                        failure = TransientError(None, f"{operation}: unreadable answer", status,
                                                 request_id=request_id, correlation_id=correlation_id)
                        if write:
                            raise AmbiguousWrite(None, f"{operation}: unreadable answer; the write may have "
                                                       "happened — reconcile before retrying", status,
                                                 operation=operation, request_id=request_id,
                                                 correlation_id=correlation_id) from None
                else:
                    failure = error_from_response(status, response.content, response.headers,
                                                  request_id=request_id, correlation_id=correlation_id,
                                                  customer_scope=customer_scope)
                    if status == 401 and not refreshed_token:
                        refreshed_token = True
                        self._tokens.invalidate()
                        continue
                    if isinstance(failure, Throttled):
                        if attempt >= self._max_retries:
                            raise failure
                        log.warning("%s throttled (429); waiting %.2fs as asked", operation, failure.retry_after)
                        self._limiter.penalize(failure.retry_after, tenant)
                        self._sleep(failure.retry_after)
                        attempt += 1
                        continue
                    if status >= 500 or status == 408:
                        if write:
                            raise AmbiguousWrite(failure.code, f"{operation}: {failure.description} (HTTP {status}); "
                                                 "the write may have happened — reconcile before retrying",
                                                 status, operation=operation, request_id=request_id,
                                                 correlation_id=correlation_id, data=failure.data,
                                                 source=failure.source) from None
                        failure = failure if isinstance(failure, TransientError) else TransientError(
                            failure.code, failure.description, status, request_id=request_id,
                            correlation_id=correlation_id)
                    else:
                        raise failure  # a definitive answer
            if attempt >= self._max_retries:
                raise failure
            wait = self._backoff_for(attempt)
            log.info("%s failed (%s); retry %s in %.2fs", operation, failure, attempt + 1, wait)
            self._sleep(wait)
            attempt += 1


def whole_number(value: Any) -> int | None:
    """``value`` as an int when it is a whole number (int, numpy int, 3.0, "3", Decimal 3), else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return int(value) if float(value).is_integer() else None
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else None
    if isinstance(value, str) and re.fullmatch(r"\s*-?\d+\s*", value):
        return int(value)
    return None


def _split_provider_sku(provider_sku: str) -> tuple[str, str]:
    parts = [part.strip() for part in str(provider_sku or "").split(":")]
    if len(parts) != 2 or not all(parts):
        raise CatalogItemUnavailable("900142", f"provider SKU '{provider_sku}' is not PRODUCT:SKU", None)
    return parts[0], parts[1]


def _as_unavailable(error: PartnerCenterError, what: str) -> CatalogItemUnavailable:
    return CatalogItemUnavailable(error.code or "400018", f"{what}: {error.description}", error.status,
                                  request_id=error.request_id, correlation_id=error.correlation_id)


_LINE_KEYS = {
    "catalogitemid": "catalogItemId", "quantity": "quantity", "termduration": "termDuration",
    "billingcycle": "billingCycle", "friendlyname": "friendlyName",
}


def _cart_line(index: int, item: Mapping[str, Any]) -> dict[str, Any]:
    line: dict[str, Any] = {"id": index}
    for key, value in item.items():
        folded = str(key).replace("_", "").casefold()
        line[_LINE_KEYS.get(folded, _camel(str(key)))] = value
    line["id"] = index
    missing = [name for name in ("catalogItemId", "quantity", "termDuration", "billingCycle", "friendlyName")
               if line.get(name) in (None, "")]
    if missing:
        raise ValidationFailed("800002", f"cart line {index} lacks {', '.join(missing)}", None)
    quantity = whole_number(line["quantity"])
    if quantity is None:
        raise ValidationFailed("800002", f"cart line {index}: quantity {line['quantity']!r} is not a whole number", None)
    line["quantity"] = quantity
    line["termDuration"] = normalize_term_duration(line["termDuration"])
    line["billingCycle"] = normalize_billing_cycle(line["billingCycle"])
    line["friendlyName"] = str(line["friendlyName"])
    return line


def friendly_names(items: Iterable[Mapping[str, Any]]) -> list[str]:
    """The ``friendlyName`` of each item (cart lines, order lines, subscriptions)."""
    return [str(item.get("friendlyName") or "") for item in items]
