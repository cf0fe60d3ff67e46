"""Bearer tokens for Partner Center, behind a small port.

``TokenProvider`` is what the client needs: ``get_token()`` (a valid access token, refreshed
before it expires) and ``invalidate()`` (forget it: the API said 401). Two implementations:

- ``MsalTokenProvider`` — live: Microsoft Entra ID client credentials through ``msal`` for the
  scope ``https://api.partnercenter.microsoft.com/.default``;
- ``SandboxTokenProvider`` — the local simulator: ``POST {base}/{tenant}/oauth2/v2.0/token`` with
  client credentials (any id and secret), the same form Entra ID takes.

The client secret is held in a wrapper whose ``repr`` is ``'***'``; no secret or token is ever
logged or put into an exception message.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

import httpx

from w365etl.adapters.partner_center.errors import TransientError, Unauthorized

PARTNER_CENTER_SCOPE = "https://api.partnercenter.microsoft.com/.default"
ENTRA_AUTHORITY_HOST = "https://login.microsoftonline.com"

log = logging.getLogger(__name__)


@runtime_checkable
class TokenProvider(Protocol):
    def get_token(self) -> str:
        """A bearer token valid for at least the refresh margin."""
        ...

    def invalidate(self) -> None:
        """Drop the cached token (the API answered 401); the next ``get_token`` fetches anew."""
        ...


class _Secret:
    """A secret that never shows in a repr, a log line or a traceback's locals display."""

    __slots__ = ("_value",)

    def __init__(self, value: Any) -> None:
        if hasattr(value, "get_secret_value"):  # pydantic SecretStr
            value = value.get_secret_value()
        self._value = "" if value is None else str(value)

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "'***'"

    __str__ = __repr__


class _CachedTokenProvider:
    """Caching and refresh-before-expiry shared by both providers (thread-safe)."""

    def __init__(self, *, refresh_margin: float, clock: Callable[[], float]) -> None:
        self._refresh_margin = refresh_margin
        self._clock = clock
        self._lock = threading.Lock()
        self._token: _Secret | None = None
        self._refresh_at = 0.0
        self.fetch_count = 0  # how many tokens were fetched (observability, tests)

    def _fetch(self, *, fresh: bool) -> tuple[str, float]:
        """A new ``(access_token, expires_in_seconds)``."""
        raise NotImplementedError

    def get_token(self) -> str:
        with self._lock:
            now = self._clock()
            if self._token is None or now >= self._refresh_at:
                fresh = self._token is not None
                token, expires_in = self._fetch(fresh=fresh)
                self.fetch_count += 1
                expires_in = max(0.0, float(expires_in))
                margin = min(self._refresh_margin, expires_in / 2.0)
                self._token = _Secret(token)
                self._refresh_at = now + expires_in - margin
            return self._token.reveal()

    def invalidate(self) -> None:
        with self._lock:
            self._token = None
            self._refresh_at = 0.0


class SandboxTokenProvider(_CachedTokenProvider):
    """Client credentials against the sandbox's ``/{tenant}/oauth2/v2.0/token``."""

    def __init__(self, base_url: str, tenant: str = "partner", client_id: str = "w365etl",
                 client_secret: Any = "sandbox", *, scope: str = PARTNER_CENTER_SCOPE,
                 refresh_margin: float = 60.0, timeout: float = 10.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(refresh_margin=refresh_margin, clock=clock)
        self.token_url = f"{base_url.rstrip('/')}/{tenant}/oauth2/v2.0/token"
        self.client_id = client_id
        self.scope = scope
        self._client_secret = _Secret(client_secret)
        self._timeout = timeout

    def __repr__(self) -> str:
        return f"SandboxTokenProvider(token_url={self.token_url!r}, client_id={self.client_id!r})"

    def _fetch(self, *, fresh: bool) -> tuple[str, float]:
        form = {"grant_type": "client_credentials", "client_id": self.client_id,
                "client_secret": self._client_secret.reveal(), "scope": self.scope}
        try:
            response = httpx.post(self.token_url, data=form, timeout=self._timeout)
        except httpx.HTTPError as error:
            raise TransientError(None, f"token endpoint unreachable ({type(error).__name__})") from None
        return _token_from_response(response.status_code, _json_or_empty(response))


class MsalTokenProvider(_CachedTokenProvider):
    """Live: Entra ID client credentials (``msal``), scope ``…partnercenter…/.default``.

    ``msal`` keeps its own cache; on top of it this provider refreshes ``refresh_margin`` seconds
    before expiry and, after ``invalidate()``, asks Entra ID for a brand-new token.
    """

    def __init__(self, tenant: str, client_id: str, client_secret: Any, *,
                 authority_host: str = ENTRA_AUTHORITY_HOST, scope: str = PARTNER_CENTER_SCOPE,
                 refresh_margin: float = 300.0, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(refresh_margin=refresh_margin, clock=clock)
        self.tenant = tenant
        self.client_id = client_id
        self.authority = f"{authority_host.rstrip('/')}/{tenant}"
        self.scope = scope
        self._client_secret = _Secret(client_secret)
        self._app: Any = None

    def __repr__(self) -> str:
        return f"MsalTokenProvider(authority={self.authority!r}, client_id={self.client_id!r})"

    def _build_app(self) -> Any:
        import msal  # imported here so the sandbox and tests do not need it loaded

        return msal.ConfidentialClientApplication(
            self.client_id, authority=self.authority,
            client_credential=self._client_secret.reveal(), token_cache=msal.TokenCache())

    def _fetch(self, *, fresh: bool) -> tuple[str, float]:
        if fresh or self._app is None:  # a new cache: really a new token, not msal's cached one
            self._app = self._build_app()
        try:
            result = self._app.acquire_token_for_client(scopes=[self.scope])
        except Exception as error:  # noqa: BLE001 - msal raises requests' errors on network failure
            raise TransientError(None, f"Entra ID token request failed ({type(error).__name__})") from None
        if not isinstance(result, dict) or "access_token" not in result:
            result = result if isinstance(result, dict) else {}
            raise Unauthorized(str(result.get("error") or "token_error"),
                               _short(result.get("error_description") or "no token from Entra ID"), 401)
        return result["access_token"], float(result.get("expires_in") or 3600)


def _json_or_empty(response: httpx.Response) -> dict[str, Any]:
    try:
        value = response.json()
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _short(text: Any) -> str:
    return str(text).splitlines()[0][:300] if text else ""


def _token_from_response(status: int, body: dict[str, Any]) -> tuple[str, float]:
    if status >= 500:
        raise TransientError(None, f"token endpoint answered {status}", status)
    token = body.get("access_token")
    if status != 200 or not token:
        raise Unauthorized(str(body.get("error") or status),
                           _short(body.get("error_description") or "token request refused"), status)
    return str(token), float(body.get("expires_in") or 3600)
