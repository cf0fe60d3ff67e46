"""R2 — orders are atomic: decide each line's bucket, once, from all its problems.

Precedence (SPEC §3): R1 first (a skipped order's lines are ``skipped`` whatever else is
wrong), then R6 (a line provisioned before is ``already_provisioned`` whatever happens in its
order), then the line's own problems (``rejected``), then R2/R3 holds: every other line of an
order with a rejected line is held ``ORDER_HAS_REJECTED_LINES``; of an order waiting for a
provider mapping, ``NEEDS_PROVIDER_MAPPING`` (the former wins when both apply).
"""

from __future__ import annotations

import pandas as pd

from w365etl.reasons import HOLD_CODES, ReasonCode
from w365etl.columns import is_in

SKIPPED = "skipped"
ALREADY_PROVISIONED = "already_provisioned"
REJECTED = "rejected"
HELD = "held"
PLANNED = "planned"
PROVISIONED = "provisioned"
FAILED = "failed"
LINE_BUCKETS = (PROVISIONED, ALREADY_PROVISIONED, SKIPPED, HELD, REJECTED, FAILED)
ORDER_BUCKETS = ("fulfilled", "already_fulfilled", "provisioned_not_fulfilled", "held", "skipped", "failed")


def order_keys(lines: pd.DataFrame) -> pd.Series:
    """The order a line belongs to: its number, else its order GUID, else the line alone."""
    fallback = "row " + lines["file_path"].astype("string") + ":" + lines["row_number"].astype("string")
    return lines["order_number"].astype("string").fillna(lines["order_id"].astype("string")).fillna(fallback)


def assign_buckets(
    lines: pd.DataFrame,
    skip_reason: pd.Series,
    is_already_provisioned: pd.Series,
    own_problem_lines: pd.Series,
    mapping_hold_reason: pd.Series,
) -> pd.DataFrame:
    """Return ``bucket`` and ``hold_reason`` per line (R1 > R6 > own problems > R2 holds).

    ``own_problem_lines``: the line has a rejecting reason of its own.
    ``mapping_hold_reason``: NEEDS_PROVIDER_MAPPING / PROVIDER_MAPPING_INVALID when the line's
    own provider mapping is missing, else NA.
    """
    order = lines["order_key"]
    skipped = skip_reason.notna()
    already = ~skipped & is_already_provisioned
    rejected = ~skipped & ~already & own_problem_lines
    mapping_gap = ~skipped & ~already & ~rejected & mapping_hold_reason.notna()

    orders_rejected = order[rejected].drop_duplicates()
    order_mapping_reason = (
        pd.DataFrame({"order": order[mapping_gap], "reason": mapping_hold_reason[mapping_gap]})
        .sort_values("reason").drop_duplicates("order").set_index("order")["reason"]
    )
    open_lines = ~skipped & ~already & ~rejected
    by_rejection = open_lines & is_in(order, orders_rejected)
    by_mapping = open_lines & ~by_rejection & is_in(order, order_mapping_reason.index)

    bucket = pd.Series(PLANNED, index=lines.index, dtype="string")
    bucket[skipped] = SKIPPED
    bucket[already] = ALREADY_PROVISIONED
    bucket[rejected] = REJECTED
    bucket[by_rejection | by_mapping] = HELD
    hold_reason = pd.Series(pd.NA, index=lines.index, dtype="string")
    hold_reason[by_rejection] = str(ReasonCode.ORDER_HAS_REJECTED_LINES)
    hold_reason[by_mapping] = order[by_mapping].map(order_mapping_reason).astype("string")
    reason = skip_reason.astype("string").where(skipped, hold_reason)
    assert reason[bucket == HELD].isin([str(code) for code in HOLD_CODES]).all()
    return pd.DataFrame({"bucket": bucket, "bucket_reason": reason}, index=lines.index)


def summarise_orders(lines: pd.DataFrame) -> pd.DataFrame:
    """R7 and the order buckets of SPEC §5, one row per order of the run.

    ``lines`` carry final buckets (after execution) and ``effective_fulfill_order``.
    An order whose lines were all provisioned in earlier runs is ``already_fulfilled``
    (or ``provisioned_not_fulfilled`` when its Fulfill Order says No).
    """
    frame = pd.DataFrame(
        {
            "order_key": lines["order_key"],
            "skipped": lines["bucket"] == SKIPPED,
            "blocked": lines["bucket"].isin([HELD, REJECTED]),
            "failed": lines["bucket"] == FAILED,
            "new": lines["bucket"] == PROVISIONED,
            "fulfil": lines["effective_fulfill_order"].fillna(True).astype(bool),
        }
    )
    grouped = frame.groupby("order_key", sort=False).agg(
        any_skipped=("skipped", "any"), any_blocked=("blocked", "any"), any_failed=("failed", "any"),
        any_new=("new", "any"), fulfil=("fulfil", "all"),
    )
    bucket = pd.Series("fulfilled", index=grouped.index, dtype="string")
    complete = ~grouped["any_skipped"] & ~grouped["any_blocked"] & ~grouped["any_failed"]
    bucket[complete & ~grouped["any_new"]] = "already_fulfilled"
    bucket[complete & ~grouped["fulfil"]] = "provisioned_not_fulfilled"
    bucket[grouped["any_failed"]] = "failed"
    bucket[grouped["any_blocked"]] = "held"
    bucket[grouped["any_skipped"]] = "skipped"
    result = pd.DataFrame({"order_bucket": bucket})
    result["is_fulfilled_now"] = result["order_bucket"] == "fulfilled"
    result["is_fulfilment_due"] = result["order_bucket"].isin(["fulfilled", "already_fulfilled"])
    return result.rename_axis("order_key").reset_index()
