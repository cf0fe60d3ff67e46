"""Wiring: the one place that turns settings into adapters (store, providers, report writers)."""

from __future__ import annotations

from w365etl.adapters.providers.fake import FakeProvider
from w365etl.adapters.providers.manual import manual_provider, record_provider
from w365etl.adapters.store_sql import SqlStore, StoreUnavailable, sqlite_file_missing
from w365etl.execute import ProviderNotConfigured
from w365etl.ports import Provider
from w365etl.settings import Settings

#: adapters that ship with this version; live and sandbox Partner Center come with their issue
AVAILABLE_ADAPTERS = ("manual", "record", "fake")


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
        else:
            raise ProviderNotConfigured(
                f"provider {code}: adapter '{configured.adapter}' is not available in this version "
                f"(available: {', '.join(AVAILABLE_ADAPTERS)}); set providers.{code}.adapter "
                f"(W365_PROVIDERS__{code.upper()}__ADAPTER)")
    return providers


def provider_modes(settings: Settings) -> dict[str, str]:
    """The adapter of each configured provider, for the reports' first lines."""
    return {code: provider.adapter for code, provider in settings.providers.items() if provider.adapter}


__all__ = ["build_store", "build_providers", "provider_modes", "StoreUnavailable"]
