"""Providers that record instead of calling anyone: ``manual`` and ``record`` (SPEC §2.2).

``manual`` is a provider kind: the subscription is recorded and a person gets a task (the
Manual Tasks sheet). ``record`` is an adapter for an automatic provider such as Partner Center,
for partners who buy in the portal by hand: the purchase is recorded, nobody is called, and
every report of the run says so.
"""

from __future__ import annotations

import pandas as pd


class RecordingProvider:
    """Accepts every line without an external call; the person does the rest."""

    def __init__(self, code: str, kind: str, adapter_name: str) -> None:
        self.code = code
        self.kind = kind
        self.adapter_name = adapter_name

    def verify_accounts(self, provider_customer_ids: list[str]) -> set[str]:
        return set()  # nobody to ask: every mapped account is taken as given

    def close(self) -> None:
        pass

    def provision(self, requests: pd.DataFrame) -> pd.DataFrame:
        return pd.DataFrame({
            "line_pk": requests["line_pk"].to_numpy(),
            "is_success": True,
            # an increase keeps the subscription it adds to; new ones get their id from the person
            "provider_subscription_id": requests["provider_subscription_id"].to_numpy(),
            "provider_order_id": pd.NA,
            "error_code": pd.NA,
            "error_message": pd.NA,
        })


def manual_provider(code: str) -> RecordingProvider:
    return RecordingProvider(code, "manual", "manual")


def record_provider(code: str) -> RecordingProvider:
    return RecordingProvider(code, "automatic", "record")
