"""Microsoft Partner Center (NCE) adapter: REST client, error model, tokens, throughput.

The provider adapter (what the ``Provider`` port calls) is built on top of these pieces;
``w365etl.sandbox.partner_center`` is the local simulator they are tested against.
"""

from w365etl.adapters.partner_center.client import (
    LIVE_BASE_URL,
    PartnerCenterClient,
    camel_keys,
    normalize_billing_cycle,
    normalize_term_duration,
)
from w365etl.adapters.partner_center.errors import (
    ERROR_CODES,
    AmbiguousWrite,
    CartAlreadyCheckedOut,
    CatalogItemUnavailable,
    Conflict,
    CustomerNotFound,
    EtagMismatch,
    NoResellerRelationship,
    PartnerCenterError,
    QuantityOutOfRange,
    ResourceNotFound,
    Throttled,
    TransientError,
    Unauthorized,
    ValidationFailed,
    error_from_response,
    parse_error_body,
    parse_retry_after,
)
from w365etl.adapters.partner_center.rate_limit import (
    BoundedExecutor,
    RateLimiter,
    TokenBucket,
    run_per_customer,
)
from w365etl.adapters.partner_center.tokens import (
    PARTNER_CENTER_SCOPE,
    MsalTokenProvider,
    SandboxTokenProvider,
    TokenProvider,
)

__all__ = [
    "ERROR_CODES", "LIVE_BASE_URL", "PARTNER_CENTER_SCOPE",
    "AmbiguousWrite", "BoundedExecutor", "CartAlreadyCheckedOut", "CatalogItemUnavailable", "Conflict",
    "CustomerNotFound", "EtagMismatch", "MsalTokenProvider", "NoResellerRelationship",
    "PartnerCenterClient", "PartnerCenterError", "QuantityOutOfRange", "RateLimiter", "ResourceNotFound",
    "SandboxTokenProvider", "Throttled", "TokenBucket", "TokenProvider", "TransientError", "Unauthorized",
    "ValidationFailed", "camel_keys", "error_from_response", "normalize_billing_cycle",
    "normalize_term_duration", "parse_error_body", "parse_retry_after", "run_per_customer",
]
