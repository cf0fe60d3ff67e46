"""Problems found on lines: the common shape every rule uses to report a bad line.

Rules never raise on bad data (a bad line is data, not a crash); each returns rows of this
frame, which the exception report later places in the file, sheet and row a person sees.
"""

from __future__ import annotations

import pandas as pd

from w365etl.amounts import decimals_to_text
from w365etl.reasons import ReasonCode

ISSUE_COLUMNS = ["line_index", "reason_code", "field", "value", "message"]


def empty_issues() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "line_index": pd.Series(dtype="Int64"),
            "reason_code": pd.Series(dtype="str"),
            "field": pd.Series(dtype="str"),
            "value": pd.Series(dtype="str"),
            "message": pd.Series(dtype="str"),
        }
    )


def issues_for(
    lines: pd.DataFrame,
    mask: pd.Series,
    reason: ReasonCode,
    field: str | None,
    message: pd.Series | str,
    value: pd.Series | None = None,
) -> pd.DataFrame:
    """Issue rows for the lines selected by ``mask`` (vectorised: one call per rule)."""
    # only the columns an issue shows: a plan's lines have ~90 columns, a rule may pick most rows
    selected = lines.loc[mask, list(dict.fromkeys(["line_index", *([field] if field in lines.columns else [])]))]
    if selected.empty:
        return empty_issues()
    if value is None:
        if field and field in selected.columns and isinstance(selected[field].dtype, pd.ArrowDtype):
            value_text = decimals_to_text(selected[field])  # "2.5", not "2.50000"
        elif field and field in selected.columns:
            value_text = selected[field].astype("string")
        else:
            value_text = pd.Series(pd.NA, index=selected.index, dtype="string")
    else:
        value_text = value.loc[selected.index].astype("string")
    if isinstance(message, str):
        message_text = pd.Series(message, index=selected.index, dtype="string")
    else:
        message_text = message.loc[selected.index].astype("string")
    return pd.DataFrame(
        {
            "line_index": selected["line_index"].astype("Int64").to_numpy(),
            "reason_code": str(reason),
            "field": field if field else pd.NA,
            "value": value_text.to_numpy(),
            "message": message_text.to_numpy(),
        }
    ).astype({"line_index": "Int64", "reason_code": "str", "field": "str", "value": "str", "message": "str"})


def concat_issues(frames: list[pd.DataFrame]) -> pd.DataFrame:
    frames = [frame for frame in frames if not frame.empty]
    if not frames:
        return empty_issues()
    return pd.concat(frames, ignore_index=True)
