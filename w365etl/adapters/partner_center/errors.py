"""Partner Center errors: the documented error body, parsed into a small typed hierarchy.

Partner Center answers every 4xx/5xx with ``{"code", "description", "data", "source"}``
(``code`` is a string of digits, e.g. ``"2002"``), except throttling, which comes from the API
gateway as ``{"statusCode": 429, "message": "Rate limit is exceeded. Try again in 57 seconds."}``
with a ``Retry-After`` header. The class of an error says what the caller may do next:

- ``CustomerNotFound``, ``NoResellerRelationship``, ``CatalogItemUnavailable``,
  ``QuantityOutOfRange``, ``ValidationFailed`` — a definitive refusal of *this* request; nothing
  was bought; retrying the same request gives the same answer (the line becomes an exception row);
- ``Conflict`` — the resource is busy or changed under us (order in progress, cart being
  processed, stale etag); re-read, then try again;
- ``Throttled`` — 429, honour ``retry_after``;
- ``TransientError`` — 5xx or a network failure on a call that changes nothing (a GET); retry;
- ``AmbiguousWrite`` — a timeout, dropped connection or 5xx on a POST/PATCH: the write may or may
  not have happened. The client never retries it blindly; the caller reconciles (reads the cart,
  orders and subscriptions by ``friendlyName``) before doing anything that could buy twice.

The numbers are Partner Center's own (https://learn.microsoft.com/partner-center/developer/error-codes).
"""

from __future__ import annotations

import email.utils
import json
import re
import time
from collections.abc import Mapping
from typing import Any


class PartnerCenterError(Exception):
    """An answer from Partner Center that is not a success (or no answer at all)."""

    def __init__(self, code: str | None, description: str, status: int | None = None, *,
                 data: list[Any] | None = None, source: str | None = None,
                 request_id: str | None = None, correlation_id: str | None = None) -> None:
        self.code = None if code is None else str(code)
        self.description = description
        self.status = status
        self.data = data or []
        self.source = source
        self.request_id = request_id
        self.correlation_id = correlation_id
        super().__init__(self.__str__())

    def __str__(self) -> str:
        where = f"HTTP {self.status}" if self.status else "no HTTP answer"
        code = f" code {self.code}" if self.code else ""
        return f"Partner Center {where}{code}: {self.description}"

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(code={self.code!r}, description={self.description!r}, "
                f"status={self.status!r}, request_id={self.request_id!r})")

    def __reduce__(self):  # keep the subclass and fields across pickling (process pools, Prefect)
        return (_rebuild, (type(self), self.__dict__.copy()))


def _rebuild(cls, state):
    error = cls.__new__(cls)
    Exception.__init__(error)
    error.__dict__.update(state)
    error.args = (str(error),)
    return error


class Unauthorized(PartnerCenterError):
    """401: the bearer token is missing, invalid or expired (and a fresh one did not help)."""


class CustomerNotFound(PartnerCenterError):
    """The customer tenant does not exist (or is not one of the partner's customers)."""


class NoResellerRelationship(PartnerCenterError):
    """The partner has no (commerce) reseller relationship with the customer."""


class CatalogItemUnavailable(PartnerCenterError):
    """The product / SKU / availability (catalog item) is unknown, invalid or cannot be bought."""


class QuantityOutOfRange(PartnerCenterError):
    """The quantity is outside the SKU's minimum/maximum (or a seat/subscription limit)."""


class ValidationFailed(PartnerCenterError):
    """The request was refused as invalid (bad input, term or billing cycle, state of the item)."""


class ResourceNotFound(PartnerCenterError):
    """404 for a cart, order or subscription id that does not exist (or a cart that expired)."""


class Conflict(PartnerCenterError):
    """The resource is busy or changed concurrently: re-read and try again later."""


class EtagMismatch(Conflict):
    """The subscription changed since it was read (stale etag): re-read, then write again."""


class CartAlreadyCheckedOut(Conflict):
    """The cart was already submitted; its order(s) exist — reconcile, never buy again."""


class Throttled(PartnerCenterError):
    """429 Too Many Requests; ``retry_after`` seconds is how long Partner Center asked us to wait."""

    def __init__(self, code: str | None, description: str, status: int | None = 429, *,
                 retry_after: float = 1.0, **kwargs: Any) -> None:
        self.retry_after = retry_after
        super().__init__(code, description, status, **kwargs)


class TransientError(PartnerCenterError):
    """A 5xx or a network failure on a call that changes nothing: safe to retry."""


class AmbiguousWrite(PartnerCenterError):
    """A POST/PATCH whose outcome is unknown (timeout, dropped connection, 5xx): reconcile first."""

    def __init__(self, code: str | None, description: str, status: int | None = None, *,
                 operation: str = "", **kwargs: Any) -> None:
        self.operation = operation
        super().__init__(code, description, status, **kwargs)


#: Partner Center business error code → class (codes from the documented error table).
ERROR_CODES: dict[str, type[PartnerCenterError]] = {
    # customer
    "60003": CustomerNotFound,          # 404 Tenant not found
    "900118": CustomerNotFound,         # 400 Invalid Customer ID
    "20002": NoResellerRelationship,    # 403 The partner ID {0} has no commerce relationship with the customer ID {1}
    "900159": NoResellerRelationship,   # 403 The partner ... has no commerce relationship with the customer ...
    "800015": NoResellerRelationship,   # 404 PartnerID isn't found
    "800016": NoResellerRelationship,   # 400 PartnerID isn't a valid Indirect Reseller
    "800039": NoResellerRelationship,   # 403 Reseller program status isn't active
    # catalog item
    "400013": CatalogItemUnavailable,   # 404 Product wasn't found
    "400018": CatalogItemUnavailable,   # 404 SKU wasn't found
    "400019": CatalogItemUnavailable,   # 404 Availability not found
    "400072": CatalogItemUnavailable,   # This item isn't available
    "2006": CatalogItemUnavailable,     # 403 Partner isn't valid for offer
    "2085": CatalogItemUnavailable,     # 403 The offer isn't eligible for purchase
    "2091": CatalogItemUnavailable,     # 403 The offer is no longer available for purchase
    "800004": CatalogItemUnavailable,   # 400 Invalid offer ID
    "800010": CatalogItemUnavailable,   # 400 Inventory isn't available for this catalog item
    "800020": CatalogItemUnavailable,   # 403 The catalog item isn't eligible for purchase
    "800028": CatalogItemUnavailable,   # 403 The initial purchase term is no longer available
    "800070": CatalogItemUnavailable,   # 400 Offer isn't available in the specified country/region
    "900142": CatalogItemUnavailable,   # 400 The catalog item ID isn't present
    # quantity
    "2002": QuantityOutOfRange,         # 400 Subscription quantity isn't within minimum and maximum allowed quantity
    "800017": QuantityOutOfRange,       # 400 The quantity isn't available for this catalog item
    "800067": QuantityOutOfRange,       # 403 The desired seat count exceeded the maximum seat count per subscription
    "800088": QuantityOutOfRange,       # 403 The requested number of seats exceeded the remaining limit
    "900275": QuantityOutOfRange,       # 400 The requested quantity for line item {0} is not within the allowed quantity
    # validation
    "3000": ValidationFailed,           # 400 Invalid property
    "400056": ValidationFailed,         # 400 Invalid input
    "800002": ValidationFailed,         # 400 Invalid request input
    "800009": ValidationFailed,         # 400 Error in Cart item(s)
    "800090": ValidationFailed,         # 400 Subscription quantity can't be decreased
    "800091": ValidationFailed,         # 400 Can't update a subscription with suspended status
    "800121": ValidationFailed,         # 400 The term duration provided is invalid
    "900269": ValidationFailed,         # 400 The billing cycle is invalid
    "900270": ValidationFailed,         # 400 The billing cycle cannot be longer than the term
    "13605": ValidationFailed,          # 403 Microsoft Customer Agreement not accepted
    # not found (cart / order / subscription)
    "800008": ResourceNotFound,         # 404 Unable to retrieve cart ID
    "20000": ResourceNotFound,          # 404 Order ID not found
    "20003": ResourceNotFound,          # 404 Subscription with ID {0} not found
    # conflicts
    "2055": EtagMismatch,               # 400 Etag is no longer valid
    "800060": Conflict,                 # 409 Your order is in progress
    "800064": Conflict,                 # 409 Cart {0} is being processed by another request
    "800065": CartAlreadyCheckedOut,    # 400 Can't check out an already submitted cart {0}
    "800082": Conflict,                 # 409 Subscription is not ready to be updated
    "900278": Conflict,                 # 409 There is a pending operation on this subscription
    # authentication
    "400": Unauthorized,                # 401 Access denied
    "800001": Unauthorized,             # 401 Partner Token missing in request context
}

_STATUS_CLASSES: dict[int, type[PartnerCenterError]] = {
    400: ValidationFailed, 401: Unauthorized, 404: ResourceNotFound, 409: Conflict,
    412: EtagMismatch, 429: Throttled,
}
_TRY_AGAIN = re.compile(r"try again in (\d+(?:\.\d+)?) second", re.IGNORECASE)


def _ci(mapping: Mapping[str, Any], key: str) -> Any:
    """Case-insensitive lookup (Partner Center answers camelCase, sometimes PascalCase)."""
    if key in mapping:
        return mapping[key]
    folded = key.casefold()
    for name, value in mapping.items():
        if isinstance(name, str) and name.casefold() == folded:
            return value
    return None


def parse_error_body(body: Any) -> tuple[str | None, str, list[Any], str | None]:
    """``(code, description, data, source)`` from an error body (bytes, text or parsed JSON).

    Understands the Partner Center body, the gateway's ``{statusCode, message}`` (code is then
    the status as text) and the OData-like ``{"error": {"code", "message"}}``.
    """
    if isinstance(body, (bytes, bytearray)):
        body = body.decode("utf-8", errors="replace")
    if isinstance(body, str):
        text = body.strip()
        try:
            body = json.loads(text) if text else {}
        except ValueError:
            return None, (text[:1024] or "no error description"), [], None
    if not isinstance(body, Mapping):
        return None, "no error description", [], None
    nested = _ci(body, "error")
    if isinstance(nested, Mapping) and _ci(body, "code") is None:
        body = nested
    code = _ci(body, "code")
    if code is None and _ci(body, "statusCode") is not None:
        code = _ci(body, "statusCode")
    description = _ci(body, "description") or _ci(body, "message") or "no error description"
    data = _ci(body, "data")
    source = _ci(body, "source")
    return (None if code is None else str(code), str(description),
            data if isinstance(data, list) else ([] if data is None else [data]),
            None if source is None else str(source))


def parse_retry_after(value: str | None, *, default: float = 1.0, now: float | None = None) -> float:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date)."""
    if value is None or not str(value).strip():
        return default
    value = str(value).strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return default
    if when is None:
        return default
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def error_from_response(status: int, body: Any, headers: Mapping[str, str] | None = None, *,
                        request_id: str | None = None, correlation_id: str | None = None,
                        customer_scope: bool = False) -> PartnerCenterError:
    """The typed error for a non-2xx answer.

    The business code decides first; else the HTTP status (``customer_scope``: a bare 404 on a
    ``/customers/{tenant}`` read means the customer is unknown). A 5xx is ``TransientError``
    here — the client turns it into ``AmbiguousWrite`` for writes.
    """
    headers = headers or {}
    code, description, data, source = parse_error_body(body)
    common = dict(data=data, source=source, request_id=request_id, correlation_id=correlation_id)
    if status == 429:
        retry_header = _ci(headers, "Retry-After") if isinstance(headers, Mapping) else None
        match = _TRY_AGAIN.search(description)
        fallback = float(match.group(1)) if match else 1.0
        return Throttled(code or "429", description, status,
                         retry_after=parse_retry_after(retry_header, default=fallback), **common)
    cls = ERROR_CODES.get(code or "")
    if cls is Unauthorized and status != 401:  # "400" is also the gateway's statusCode for HTTP 400
        cls = None
    if cls is None:
        if status >= 500:
            cls = TransientError
        elif status == 404 and customer_scope:
            cls = CustomerNotFound
        else:
            cls = _STATUS_CLASSES.get(status, PartnerCenterError)
    if cls is Throttled:  # a 429 code under another status: still throttling
        return Throttled(code, description, status, retry_after=1.0, **common)
    return cls(code, description, status, **common)
