"""An in-memory provider for tests and demonstrations: accepts or refuses lines on purpose.

It keeps what it "bought" per provider code in memory (``purchases``), so a test can check
that each line key was bought exactly once, and refuses the products it is told to refuse with
a Partner Center-like error code, so that the ``failed`` bucket and ``PROVIDER_ERROR`` rows can
be exercised end to end without a network.
"""

from __future__ import annotations

from collections import defaultdict

import pandas as pd

from w365etl.ports import Provider

#: provider code → line keys bought, in order (shared by every instance of this process)
purchases: dict[str, list[str]] = defaultdict(list)
REFUSAL_CODE = "800002"
REFUSAL_MESSAGE = "The catalog item is not available for this customer."


class FakeProvider(Provider):
    def __init__(self, code: str, kind: str = "automatic", refused_products: frozenset[str] = frozenset(),
                 unknown_accounts: frozenset[str] = frozenset()) -> None:
        self.code = code
        self.kind = kind
        self.adapter_name = "fake"
        self.refused_products = refused_products
        self.unknown_accounts = unknown_accounts

    def verify_accounts(self, provider_customer_ids: list[str]) -> set[str]:
        return set(provider_customer_ids) & self.unknown_accounts

    def close(self) -> None:
        pass

    def provision(self, requests: pd.DataFrame) -> pd.DataFrame:
        refused = requests["product_number"].isin(self.refused_products).to_numpy()
        accepted = requests.loc[~refused]
        purchases[self.code].extend(accepted["line_key"].astype(str))
        subscription_ids = ("FAKE-" + requests["line_pk"].astype("string")).where(
            requests["action"] != "one_time_charge")
        return pd.DataFrame({
            "line_pk": requests["line_pk"].to_numpy(),
            "is_success": ~refused,
            "provider_subscription_id": subscription_ids.where(~refused).to_numpy(),
            "provider_order_id": pd.NA,
            "error_code": pd.Series(REFUSAL_CODE, index=requests.index).where(refused).to_numpy(),
            "error_message": pd.Series(REFUSAL_MESSAGE, index=requests.index).where(refused).to_numpy(),
        })
