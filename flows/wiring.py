"""Wiring: the one place that turns settings into adapters (store, providers, report writers)."""

from __future__ import annotations

from w365etl.adapters.providers.fake import FakeProvider
from w365etl.adapters.providers.manual import manual_provider, record_provider
from w365etl.adapters.store_sql import SqlStore, StoreUnavailable, sqlite_file_missing
from w365etl.execute import ProviderNotConfigured
from w365etl.ports import Provider
from w365etl.sandbox.seeding import increased_subscriptions, stored_subscriptions
from w365etl.settings import Settings

#: the adapters this version ships
AVAILABLE_ADAPTERS = ("live", "sandbox", "record", "manual", "fake")


def build_store(settings: Settings, *, is_dry_run: bool) -> SqlStore | None:
    """The database, or None for a dry run on an embedded database that does not exist yet
    (a dry run writes nothing at all — not even an empty SQLite file)."""
    url = settings.db_url.get_secret_value()
    if is_dry_run and sqlite_file_missing(url):
        return None
    store = SqlStore(url, create_schema=not is_dry_run)
    if is_dry_run and not store.has_schema():
        store.dispose()
        return None
    return store


def build_providers(settings: Settings, needed: set[str], *, store=None, run_id: str | None = None,
                    state=None) -> dict[str, Provider]:
    """An adapter for every provider code the run needs (SPEC §2.2: chosen in settings)."""
    providers: dict[str, Provider] = {}
    for code in sorted(needed):
        configured = settings.provider(code)
        if configured is None or configured.adapter is None:
            raise ProviderNotConfigured(
                f"provider {code} has no adapter; set providers.{code}.adapter "
                f"(W365_PROVIDERS__{code.upper()}__ADAPTER)")
        if configured.adapter == "manual":
            providers[code] = manual_provider(code)
        elif configured.adapter == "record":
            providers[code] = record_provider(code)
        elif configured.adapter == "fake":
            providers[code] = FakeProvider(code, configured.kind, frozenset(configured.fake_refused_products),
                                           frozenset(configured.fake_unknown_accounts))
        elif configured.adapter in ("live", "sandbox"):
            providers[code] = _partner_center(code, configured, store, run_id, state)
        else:
            raise ProviderNotConfigured(
                f"provider {code}: adapter '{configured.adapter}' is not available in this version "
                f"(available: {', '.join(AVAILABLE_ADAPTERS)}); set providers.{code}.adapter "
                f"(W365_PROVIDERS__{code.upper()}__ADAPTER)")
    return providers


def _partner_center(code: str, configured, store, run_id: str | None, state):
    """Partner Center through its REST API: ``live`` (Entra ID credentials from settings, never a
    fallback to the sandbox) or ``sandbox`` (the one at ``sandbox_url``, else one started here,
    seeded with this database's catalog, provider account mappings and the subscriptions the run
    may increase; a sandbox at ``sandbox_url`` is not ours to seed: it keeps its own state)."""
    from w365etl.adapters.partner_center import MsalTokenProvider, PartnerCenterClient, RateLimiter, SandboxTokenProvider
    from w365etl.adapters.providers.partner_center import PartnerCenterProvider
    from w365etl.adapters.store_sql import SqlSubmissionJournal

    prefix = f"providers.{code}"
    on_close = before_provision = None
    if configured.adapter == "live":
        missing = [name for name in ("tenant_id", "client_id", "client_secret") if not getattr(configured, name)]
        if missing:
            raise ProviderNotConfigured(
                f"provider {code} uses the live Partner Center API but " + ", ".join(
                    f"{prefix}.{name} (W365_PROVIDERS__{code.upper()}__{name.upper()})" for name in missing)
                + " is not set")
        base_url = configured.api_base_url
        tokens = MsalTokenProvider(configured.tenant_id, configured.client_id, configured.client_secret)
    else:
        base_url = configured.sandbox_url
        if not base_url:
            from w365etl.sandbox.partner_center import start_sandbox

            customers = {}
            if state is not None and not state.provider_accounts.empty:
                accounts = state.provider_accounts[state.provider_accounts["provider_code"] == code]
                customers = dict(zip(accounts["provider_customer_id"], accounts["customer_name"]))
            products = None
            if state is not None and not state.products.empty:
                products = state.products.rename(columns={"provider_code": "provider"})
            # Partner Center remembers what earlier runs bought; a sandbox started for this run
            # must too, or R5 Existing on a subscription of an earlier run is "not found" (20003)
            handle = start_sandbox(customers=customers, products=products, latency_ms=configured.sandbox_latency_ms,
                                   fault_rate=configured.sandbox_fault_rate,
                                   subscriptions=stored_subscriptions(code, state))
            base_url, on_close = handle.url, handle.stop
            # the providers are built once per run, from its first partition's state: the
            # subscriptions a later partition increases are added as its requests arrive
            # (in-process, before the first call that could need them)

            def before_provision(requests, sandbox_state=handle.state):
                sandbox_state.seed_subscriptions(increased_subscriptions(requests))

        # the sandbox takes any credentials; the configured ones are sent when set, so that a
        # sandbox run handles the client secret exactly as a live run does (never shown anywhere)
        tokens = SandboxTokenProvider(base_url, client_id=configured.client_id or "w365etl",
                                      client_secret=configured.client_secret or "sandbox")
    client = PartnerCenterClient(base_url, tokens, limiter=RateLimiter(configured.partner_requests_per_minute,
                                                                       configured.customer_requests_per_minute))
    journal = SqlSubmissionJournal(store, code, run_id)
    return PartnerCenterProvider(code, configured.adapter, client, journal, max_workers=configured.max_workers,
                                 on_close=on_close, before_provision=before_provision)


def provider_modes(settings: Settings) -> dict[str, str]:
    """The adapter of each configured provider, for the reports' first lines."""
    return {code: provider.adapter for code, provider in settings.providers.items() if provider.adapter}


__all__ = ["build_store", "build_providers", "provider_modes", "StoreUnavailable"]
