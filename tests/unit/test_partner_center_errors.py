"""Partner Center error bodies → the typed errors the provisioning code decides on."""

from __future__ import annotations

import pickle

import pytest

from w365etl.adapters.partner_center.errors import (
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
from w365etl.adapters.partner_center.tokens import MsalTokenProvider, SandboxTokenProvider


def body(code: str, description: str = "something") -> dict:
    return {"code": code, "description": description, "data": [], "source": "PartnerFD"}


def test_the_documented_error_body_is_parsed():
    parsed = parse_error_body(b'{"code": "2002", "description": "Subscription quantity isn\'t within minimum and '
                              b'maximum allowed quantity", "data": ["x"], "source": "PartnerFD"}')
    assert parsed == ("2002", "Subscription quantity isn't within minimum and maximum allowed quantity", ["x"],
                      "PartnerFD")


def test_keys_are_matched_whatever_their_casing():
    assert parse_error_body({"Code": 800002, "Description": "Invalid request input", "Source": "X"}) == (
        "800002", "Invalid request input", [], "X")


def test_the_gateway_throttling_body_is_parsed():
    code, description, _, _ = parse_error_body('{ "statusCode": 429, "message": "Rate limit is exceeded. '
                                               'Try again in 57 seconds." }')
    assert code == "429"
    assert description.startswith("Rate limit is exceeded")


def test_a_nested_error_object_and_plain_text_are_understood():
    assert parse_error_body({"error": {"code": "InvalidAuthenticationToken", "message": "expired"}})[:2] == (
        "InvalidAuthenticationToken", "expired")
    assert parse_error_body(b"upstream connect error")[:2] == (None, "upstream connect error")
    assert parse_error_body(b"")[:2] == (None, "no error description")


@pytest.mark.parametrize(("status", "code", "expected"), [
    (404, "60003", CustomerNotFound),
    (400, "900118", CustomerNotFound),
    (403, "20002", NoResellerRelationship),
    (403, "900159", NoResellerRelationship),
    (404, "400013", CatalogItemUnavailable),
    (404, "400018", CatalogItemUnavailable),
    (404, "400019", CatalogItemUnavailable),
    (400, "800004", CatalogItemUnavailable),
    (403, "800020", CatalogItemUnavailable),
    (403, "2091", CatalogItemUnavailable),
    (400, "2002", QuantityOutOfRange),
    (400, "800017", QuantityOutOfRange),
    (400, "900275", QuantityOutOfRange),
    (403, "800067", QuantityOutOfRange),
    (400, "800002", ValidationFailed),
    (400, "900269", ValidationFailed),
    (400, "800121", ValidationFailed),
    (404, "800008", ResourceNotFound),
    (404, "20000", ResourceNotFound),
    (404, "20003", ResourceNotFound),
    (409, "800060", Conflict),
    (409, "800064", Conflict),
    (409, "800082", Conflict),
    (400, "800065", CartAlreadyCheckedOut),
    (400, "2055", EtagMismatch),
    (412, "2055", EtagMismatch),
    (401, "800001", Unauthorized),
    (401, "400", Unauthorized),
])
def test_business_codes_map_to_their_class(status, code, expected):
    error = error_from_response(status, body(code), request_id="rid-1")
    assert type(error) is expected
    assert (error.code, error.status, error.request_id) == (code, status, "rid-1")


def test_without_a_known_code_the_status_decides():
    assert type(error_from_response(400, body("999999"))) is ValidationFailed
    assert type(error_from_response(404, body("1000"))) is ResourceNotFound
    assert type(error_from_response(404, body("1000"), customer_scope=True)) is CustomerNotFound
    assert type(error_from_response(409, b"")) is Conflict
    assert type(error_from_response(412, b"")) is EtagMismatch
    assert type(error_from_response(500, body("800003"))) is TransientError
    assert type(error_from_response(503, b"Service Unavailable")) is TransientError
    assert type(error_from_response(403, body("123"))) is PartnerCenterError


def test_an_http_400_is_never_mistaken_for_access_denied_code_400():
    assert type(error_from_response(400, {"statusCode": 400, "message": "Bad Request"})) is ValidationFailed


def test_429_takes_retry_after_from_the_header_else_from_the_message():
    throttled = error_from_response(429, {"statusCode": 429, "message": "Rate limit is exceeded. Try again in 57 "
                                                                         "seconds."}, {"retry-after": "12"})
    assert isinstance(throttled, Throttled) and throttled.retry_after == 12.0
    from_message = error_from_response(429, {"statusCode": 429, "message": "Rate limit is exceeded. Try again in "
                                                                           "26 seconds."})
    assert from_message.retry_after == 26.0


def test_retry_after_accepts_seconds_and_http_dates():
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after(None, default=3.0) == 3.0
    assert parse_retry_after("garbage", default=2.0) == 2.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:30 GMT", now=1445412500.0) == 10.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412500.0) == 0.0


def test_the_class_tree_groups_what_the_caller_does_next():
    assert issubclass(EtagMismatch, Conflict) and issubclass(CartAlreadyCheckedOut, Conflict)
    for cls in (CustomerNotFound, NoResellerRelationship, CatalogItemUnavailable, QuantityOutOfRange,
                ValidationFailed, Conflict, Throttled, TransientError, AmbiguousWrite, Unauthorized):
        assert issubclass(cls, PartnerCenterError)


def test_errors_read_well_and_survive_pickling():
    error = AmbiguousWrite("800003", "checkout: no answer", 500, operation="checkout", request_id="rid-9")
    assert str(error) == "Partner Center HTTP 500 code 800003: checkout: no answer"
    assert "rid-9" in repr(error)
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is AmbiguousWrite and copy.operation == "checkout" and copy.request_id == "rid-9"
    throttled = pickle.loads(pickle.dumps(Throttled("429", "slow down", retry_after=4.0)))
    assert throttled.retry_after == 4.0


def test_token_providers_never_show_the_secret():
    sandbox = SandboxTokenProvider("http://127.0.0.1:1", "partner", "app-id", "s3cr3t-value")
    live = MsalTokenProvider("contoso.onmicrosoft.com", "app-id", "s3cr3t-value")
    for provider in (sandbox, live):
        assert "s3cr3t" not in repr(provider)
        assert "s3cr3t" not in repr(vars(provider))


class FakeConfidentialClient:
    """Stands in for ``msal.ConfidentialClientApplication`` (no network)."""

    issued = 0

    def acquire_token_for_client(self, scopes):
        assert scopes == ["https://api.partnercenter.microsoft.com/.default"]
        FakeConfidentialClient.issued += 1
        return {"access_token": f"token-{FakeConfidentialClient.issued}", "expires_in": 3600}


class RefusingConfidentialClient:
    def acquire_token_for_client(self, scopes):
        return {"error": "invalid_client", "error_description": "AADSTS7000215: Invalid client secret provided.\n"
                                                                "Trace ID: 1"}


class OfflineMsalProvider(MsalTokenProvider):
    def __init__(self, app_class, clock):
        super().__init__("contoso.onmicrosoft.com", "app-id", "s3cr3t-value", clock=clock)
        self.app_class = app_class
        self.builds = 0

    def _build_app(self):
        self.builds += 1
        return self.app_class()


def test_the_live_token_is_cached_and_refreshed_before_expiry():
    now = [0.0]
    provider = OfflineMsalProvider(FakeConfidentialClient, clock=lambda: now[0])
    first = provider.get_token()
    now[0] = 3000.0  # 600 s left, more than the 300 s margin
    assert provider.get_token() == first and provider.fetch_count == 1
    now[0] = 3400.0  # 200 s left: a new token from a new cache
    assert provider.get_token() != first and provider.builds == 2
    provider.invalidate()
    provider.get_token()
    assert provider.fetch_count == 3


def test_a_refused_live_token_is_unauthorized_without_the_secret():
    provider = OfflineMsalProvider(RefusingConfidentialClient, clock=lambda: 0.0)
    try:
        provider.get_token()
    except Unauthorized as error:
        assert error.code == "invalid_client"
        assert "s3cr3t" not in str(error) and "Trace ID" not in str(error)
    else:  # pragma: no cover
        raise AssertionError("expected Unauthorized")
