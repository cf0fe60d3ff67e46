"""Execution: run a persisted plan through the providers, exactly once.

Lines are grouped per provider and handed over in batches (never one call per line); each
batch's results are recorded — subscriptions, changes, charges and the line marked done — in
one transaction keyed on the line, so repeating a batch after a crash adds nothing.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping

import pandas as pd

from w365etl.amounts import decimals_to_text, units_to_text
from w365etl.failpoints import failpoint
from w365etl.ports import PROVISION_RESULT_COLUMNS, Provider, Store

BATCH_SIZE = 50_000


class ProviderNotConfigured(Exception):
    """An automatic provider is needed but no adapter is chosen (exit status 2)."""


def check_providers_configured(provider_codes: set[str], adapters: Mapping[str, str | None]) -> None:
    """SPEC §2.2: no silent default — stop before provisioning when an adapter is missing."""
    missing = sorted(code for code in provider_codes if not adapters.get(code))
    if missing:
        names = ", ".join(missing)
        settings = "; ".join(
            f"providers.{code}.adapter (W365_PROVIDERS__{code.upper()}__ADAPTER) = live | sandbox | record"
            for code in missing
        )
        raise ProviderNotConfigured(
            f"lines need provider(s) {names} but no adapter is configured; set {settings}"
        )


#: the plan's columns a provider request is made of (the store hands back only these, and the buckets)
REQUEST_SOURCE_COLUMNS = (
    "line_pk", "line_key", "action", "customer_name", "customer_pk", "contract_pk", "effective_provider_code",
    "provider_customer_id", "catalog_product_number", "catalog_provider_sku", "quantity", "quantity_after_units",
    "price_per_unit", "extended_amount", "target_subscription_pk", "target_provider_subscription_id",
    "effective_term_duration", "effective_billing_frequency", "effective_provisioning_unit",
)


def provision_requests(planned: pd.DataFrame) -> pd.DataFrame:
    """The frame a provider receives: one row per planned line, exact text quantities."""
    return pd.DataFrame({
        "line_pk": planned["line_pk"].astype("int64"),
        "line_key": planned["line_key"],
        "action": planned["action"],
        "customer_name": planned["customer_name"],
        "customer_pk": planned["customer_pk"],
        "contract_pk": planned["contract_pk"],
        "provider_code": planned["effective_provider_code"],
        "provider_customer_id": planned["provider_customer_id"],
        "product_number": planned["catalog_product_number"],
        "provider_sku": planned["catalog_provider_sku"],
        "quantity": decimals_to_text(planned["quantity"]),
        "quantity_after": units_to_text(planned["quantity_after_units"]),
        "price_per_unit": decimals_to_text(planned["price_per_unit"]),
        "extended_amount": decimals_to_text(planned["extended_amount"]),
        "target_subscription_pk": planned["target_subscription_pk"],
        "provider_subscription_id": planned["target_provider_subscription_id"],
        "term_duration": planned["effective_term_duration"],
        "billing_frequency": planned["effective_billing_frequency"],
        "provisioning_unit": planned["effective_provisioning_unit"],
    }).reset_index(drop=True)


def execute_plan(
    run_id: str, requests: pd.DataFrame, providers: Mapping[str, Provider], store: Store | None, as_of: dt.date,
    payloads_for: Callable[[pd.Series], pd.Series] | None = None,
) -> pd.DataFrame:
    """Provision every request through its provider; record each batch (unless ``store`` is
    None: a dry run, where every provider is assumed to accept). Returns all results.

    ``payloads_for(line_pks)`` gives the stored content of lines the provider refused: only
    those need it (a failed line comes back by itself in the next run), so it is not computed
    for the lines that succeed — most of a large run."""
    results = []
    for code, batch in requests.groupby("provider_code", sort=True):
        for start in range(0, len(batch), BATCH_SIZE):
            chunk = batch.iloc[start:start + BATCH_SIZE]
            if store is None:
                outcome = assume_accepted(chunk)
            else:
                outcome = providers[code].provision(chunk)
                failpoint("after_provider_call", code)
                refused = chunk["line_pk"][~chunk["line_pk"].isin(
                    outcome.loc[outcome["is_success"].fillna(False).astype(bool), "line_pk"])]
                kept = payloads_for(refused) if payloads_for is not None and len(refused) else None
                store.record_results(run_id, chunk, outcome, as_of, payloads=kept)
                failpoint("after_recording_results", code)
            results.append(outcome)
    if not results:
        return pd.DataFrame({column: pd.Series(dtype="object") for column in PROVISION_RESULT_COLUMNS})
    return pd.concat(results, ignore_index=True)


def assume_accepted(requests: pd.DataFrame) -> pd.DataFrame:
    """What a dry run reports: every provider accepts every line (SPEC §4)."""
    return pd.DataFrame({
        "line_pk": requests["line_pk"].to_numpy(),
        "is_success": True,
        "provider_subscription_id": pd.NA,
        "provider_order_id": pd.NA,
        "error_code": pd.NA,
        "error_message": pd.NA,
    })
