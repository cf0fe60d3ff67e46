"""R6 — exactly once: the identity of an order line across exports and runs.

A line is known by up to three identifiers, strongest first:

1. ``guid``    — its D365 record id (``line_id``, the hidden ``(Do Not Modify) Order Product``);
2. ``number``  — (``order_number``, ``line_number``);
3. ``content`` — (``order_number``, product number or else name, the unit cell as given,
   occurrence among identical lines of that order).

The database keeps every identifier a line was seen with. A row is the same line as a stored
one when they share the **strongest identifier both have**: a line first bought under its GUID
is still recognised in a later export without the hidden columns (its ``number`` or
``content`` identifier was stored too), while two different GUIDs are never the same line even
if their line numbers agree.
"""

from __future__ import annotations

import pandas as pd

from w365etl.amounts import decimals_to_text

LEVELS = ("guid", "number", "content")
_SEP = "\x1f"  # a separator that cannot appear in a spreadsheet cell


def add_line_identifiers(lines: pd.DataFrame) -> pd.DataFrame:
    """Add ``key_guid``, ``key_number``, ``key_content`` and ``line_key`` (the strongest one).

    ``key_content``'s occurrence counts identical lines of one order in input order
    (``line_index``), so a re-export in the same order gets the same keys.
    """
    out = lines.copy(deep=False)
    order = out["order_number"].astype("string")
    out["key_guid"] = ("guid" + _SEP + out["line_id"].astype("string")).astype("string")
    number_text = out["line_number"].astype("Int64").astype("string")
    out["key_number"] = ("number" + _SEP + order + _SEP + number_text).astype("string")
    product = out["product_number"].astype("string").fillna(
        out["product_name"].astype("string")
    ).fillna(out["write_in_product"].astype("string")).fillna("")
    unit = out["unit"].astype("string").fillna("")
    group = order.fillna("") + _SEP + product + _SEP + unit
    occurrence = group.groupby(group, sort=False).cumcount() + 1
    content = "content" + _SEP + group + _SEP + occurrence.astype("string")
    out["key_content"] = content.where(order.notna()).astype("string")
    out["line_key"] = display_key(out)
    return out


def display_key(lines: pd.DataFrame) -> pd.Series:
    """The key a person reads in reports: the strongest identifier, without the level prefix."""
    strongest = lines["key_guid"].fillna(lines["key_number"]).fillna(lines["key_content"])
    readable = strongest.str.split(_SEP, n=1).str[1].str.replace(_SEP, " | ", regex=False)
    # rows with no order number and no GUID still need a unique, stable label
    fallback = "row " + lines["file_path"].astype("string") + ":" + lines["row_number"].astype("string")
    return readable.fillna(fallback).astype("string")


def find_duplicate_lines(lines: pd.DataFrame) -> pd.Series:
    """R6: rows sharing a ``line_id``, or an (order number, line number), in one run.

    Returns a boolean mask; every copy is flagged (nobody can tell which one is right).
    """
    by_guid = lines["key_guid"].notna() & lines["key_guid"].duplicated(keep=False)
    by_number = lines["key_number"].notna() & lines["key_number"].duplicated(keep=False)
    return by_guid | by_number


def identifiers_long(lines: pd.DataFrame, ref_column: str) -> pd.DataFrame:
    """One row per (line, identifier): columns ``ref_column``, ``level``, ``identifier``."""
    parts = []
    for level in LEVELS:
        column = f"key_{level}"
        present = lines[column].notna()
        part = pd.DataFrame(
            {ref_column: lines.loc[present, ref_column].to_numpy(), "level": level,
             "identifier": lines.loc[present, column].to_numpy()}
        )
        parts.append(part)
    return pd.concat(parts, ignore_index=True)


def match_stored_lines(lines: pd.DataFrame, stored_identifiers: pd.DataFrame) -> pd.Series:
    """The stored ``line_pk`` each row is the same line as, or NA (R6).

    ``stored_identifiers`` has one row per (``line_pk``, ``level``, ``identifier``). A match at
    a level counts only when neither side has a stronger identifier that the other also has.
    """
    result = pd.Series(pd.NA, index=lines.index, dtype="Int64")
    if stored_identifiers.empty or lines.empty:
        return result
    incoming = identifiers_long(lines.assign(_row=lines.index), "_row")
    candidates = incoming.merge(stored_identifiers, on=["level", "identifier"], how="inner")
    if candidates.empty:
        return result
    stored_levels = (
        stored_identifiers.assign(has=True)
        .pivot_table(index="line_pk", columns="level", values="has", aggfunc="any", fill_value=False)
        .reindex(columns=list(LEVELS), fill_value=False)
    )
    incoming_levels = pd.DataFrame(
        {level: lines[f"key_{level}"].notna().to_numpy() for level in LEVELS}, index=lines.index
    )
    stored_has = stored_levels.loc[candidates["line_pk"].to_numpy()].to_numpy(dtype=bool)
    incoming_has = incoming_levels.loc[candidates["_row"].to_numpy()].to_numpy(dtype=bool)
    both = stored_has & incoming_has
    # strongest level both sides have = first True column; content always exists on both
    strongest_common = both.argmax(axis=1)
    level_rank = candidates["level"].map({level: rank for rank, level in enumerate(LEVELS)}).to_numpy()
    valid = candidates.loc[level_rank == strongest_common]
    valid = valid.assign(rank=level_rank[level_rank == strongest_common])
    best = valid.sort_values(["_row", "rank", "line_pk"]).drop_duplicates("_row")
    result.loc[best["_row"].to_numpy()] = best["line_pk"].to_numpy()
    return result


def line_content_signature(lines: pd.DataFrame) -> pd.Series:
    """What must not change once a line is provisioned (R6): product, quantity, price."""
    product = lines["catalog_product_number"].astype("string").fillna(
        lines["product_number"].astype("string")
    ).fillna(lines["product_name"].astype("string")).fillna("")
    quantity = decimals_to_text(lines["quantity"]).fillna("")
    price = decimals_to_text(lines["price_per_unit"]).fillna("")
    return (product + "|" + quantity + "|" + price).astype("string")

