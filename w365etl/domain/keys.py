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

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

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

    ``stored_identifiers`` has one row per (``line_pk``, ``level``, ``identifier``); an NA
    ``identifier`` only says the line has that level. A match at a level counts only when
    neither side has a stronger identifier that the other also has; of several, the strongest
    level wins, then the lowest ``line_pk``.

    Vectorised on integer positions: the rows' identifiers are looked up in the stored ones
    with Arrow's hash lookup (no text merge, no Python objects per identifier).
    """
    result = pd.Series(pd.NA, index=lines.index, dtype="Int64")
    if stored_identifiers.empty or lines.empty:
        return result
    stored_pk = stored_identifiers["line_pk"].to_numpy(dtype="int64")
    stored_rank = stored_identifiers["level"].map(_RANKS).astype("float64").fillna(-1).to_numpy(dtype="int64")
    rows, line_pks, ranks = _candidates(lines, stored_identifiers, stored_pk, stored_rank)
    if not len(rows):
        return result
    # the rule: no level stronger than the match's that both the row and the line have
    incoming_has = lines[[f"key_{level}" for level in LEVELS]].notna().to_numpy()
    is_valid = np.ones(len(rows), dtype=bool)
    for rank in range(len(LEVELS) - 1):
        stronger = ranks > rank
        if not stronger.any():
            continue
        having = np.unique(stored_pk[stored_rank == rank])
        line_has = np.isin(line_pks, having, assume_unique=False)
        is_valid &= ~(stronger & incoming_has[rows, rank] & line_has)
    rows, line_pks, ranks = rows[is_valid], line_pks[is_valid], ranks[is_valid]
    order = np.lexsort((line_pks, ranks, rows))  # per row: strongest level, then lowest line_pk
    rows, line_pks = rows[order], line_pks[order]
    first = np.ones(len(rows), dtype=bool)
    first[1:] = rows[1:] != rows[:-1]
    values = result.to_numpy(dtype="float64", na_value=np.nan)
    values[rows[first]] = line_pks[first]
    return pd.Series(values, index=lines.index).astype("Int64")


_RANKS = {level: rank for rank, level in enumerate(LEVELS)}


def _candidates(lines: pd.DataFrame, stored: pd.DataFrame, stored_pk: np.ndarray,
                stored_rank: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every (row position, ``line_pk``, level rank) where a row's identifier is stored at the
    same level."""
    texts = pa.array(stored["identifier"].astype("string").array)
    is_unique = pc.count_distinct(texts).as_py() == len(texts) - texts.null_count
    if not is_unique:  # the same identifier listed twice: for the same line (harmless) or not
        distinct = ~stored.duplicated(["identifier", "line_pk", "level"]).to_numpy()
        texts, stored_pk, stored_rank = texts.filter(pa.array(distinct)), stored_pk[distinct], stored_rank[distinct]
        is_unique = pc.count_distinct(texts).as_py() == len(texts) - texts.null_count
    parts = []
    for rank, level in enumerate(LEVELS):
        keys = pa.array(lines[f"key_{level}"].astype("string").array)
        if is_unique:
            found = pc.fill_null(pc.index_in(keys, value_set=texts, skip_nulls=True), -1).to_numpy(zero_copy_only=False)
            row, where = np.flatnonzero(found >= 0), found[found >= 0]
        else:  # one identifier naming two lines (not what a store holds): every pair
            pairs = pd.DataFrame({"row": np.arange(len(keys)), "identifier": keys.to_pandas()}).dropna().merge(
                pd.DataFrame({"identifier": texts.to_pandas(), "where": np.arange(len(texts))}), on="identifier")
            row, where = pairs["row"].to_numpy(dtype="int64"), pairs["where"].to_numpy(dtype="int64")
        same_level = stored_rank[where] == rank
        parts.append((row[same_level], stored_pk[where[same_level]], np.full(int(same_level.sum()), rank)))
    return tuple(np.concatenate([part[i] for part in parts]).astype("int64") for i in range(3))


def line_content_signature(lines: pd.DataFrame) -> pd.Series:
    """What must not change once a line is provisioned (R6): product, quantity, price."""
    product = lines["catalog_product_number"].astype("string").fillna(
        lines["product_number"].astype("string")
    ).fillna(lines["product_name"].astype("string")).fillna("")
    quantity = decimals_to_text(lines["quantity"]).fillna("")
    price = decimals_to_text(lines["price_per_unit"]).fillna("")
    return (product + "|" + quantity + "|" + price).astype("string")

