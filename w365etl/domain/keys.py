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
    strongest = lines["key_guid"].fillna(lines["key_number"]).fillna(lines["key_content"]).astype("string")
    # what follows the level prefix, in Arrow (a million keys: no Python list per key)
    rest = pc.struct_field(pc.extract_regex(strongest.array.__arrow_array__(), r"(?s)^[^\x1f]*\x1f(?P<rest>.*)$"), [0])
    readable = pd.Series(pd.arrays.ArrowStringArray(pc.replace_substring(rest, _SEP, " | ")), index=lines.index)
    # rows with no order number and no GUID still need a unique, stable label
    fallback = "row " + lines["file_path"].astype("string") + ":" + lines["row_number"].astype("string")
    return readable.fillna(fallback).astype("string")


def duplicates_by_identifier(lines: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
    """R6: rows sharing a ``line_id``, and rows sharing an (order number, line number), in one
    run — two masks, so an exception can name the column that repeats. Every copy is flagged
    (nobody can tell which one is right)."""
    by_guid = lines["key_guid"].notna() & lines["key_guid"].duplicated(keep=False)
    by_number = lines["key_number"].notna() & lines["key_number"].duplicated(keep=False)
    return by_guid, by_number


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
    stored_rank = level_ranks(stored_identifiers["level"])
    rows, line_pks, ranks = _candidates(lines, stored_identifiers, stored_pk, stored_rank)
    if not len(rows):
        return result
    # the rule: no level stronger than the match's that both the row and the line have
    incoming_has = lines[[f"key_{level}" for level in LEVELS]].notna().to_numpy()
    is_valid = np.ones(len(rows), dtype=bool)
    # which lines have a level, looked up by line_pk (compact: positions among the stored lines)
    known_pks, stored_at = np.unique(stored_pk, return_inverse=True)
    for rank in range(len(LEVELS) - 1):
        stronger = ranks > rank
        if not stronger.any():
            continue
        has_level = np.zeros(len(known_pks), dtype=bool)
        has_level[stored_at[stored_rank == rank]] = True
        line_has = has_level[np.searchsorted(known_pks, line_pks)]  # every candidate's line is a stored one
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


def level_ranks(levels: pd.Series) -> np.ndarray:
    """Each identifier level's rank in ``LEVELS`` (0 strongest), -1 for a level this version
    does not know or NA — through categorical codes, so only the distinct levels are compared."""
    categories = pd.Categorical(levels.astype("string") if not isinstance(levels.dtype, pd.CategoricalDtype) else levels)
    ranks = np.array([_RANKS.get(level, -1) for level in categories.categories] + [-1], dtype="int64")
    return ranks[categories.codes]  # code -1 (NA) takes the trailing -1


def _candidates(lines: pd.DataFrame, stored: pd.DataFrame, stored_pk: np.ndarray,
                stored_rank: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every (row position, ``line_pk``, level rank) where a row's identifier is stored at the
    same level.

    The stored identifiers and the rows' are encoded together once (one Arrow hash pass), then
    paired on the integer codes by sorting: an identifier listed several times (a line seen
    twice, or — not what a store holds — two lines) gives every pair.
    """
    texts = [pa.array(stored["identifier"].astype("string").array, type=pa.large_string())]
    texts += [pa.array(lines[f"key_{level}"].astype("string").array, type=pa.large_string()) for level in LEVELS]
    codes = pc.fill_null(pc.dictionary_encode(pa.concat_arrays(
        [part.combine_chunks() if isinstance(part, pa.ChunkedArray) else part for part in texts])).indices, -1)
    codes = codes.to_numpy(zero_copy_only=False).astype("int64")
    stored_codes, row_codes = codes[:len(stored)], codes[len(stored):].reshape(len(LEVELS), len(lines))
    positions = np.flatnonzero(stored_codes >= 0)
    positions = positions[np.argsort(stored_codes[positions], kind="stable")]
    sorted_codes = stored_codes[positions]
    parts = []
    for rank in range(len(LEVELS)):
        rows = np.flatnonzero(row_codes[rank] >= 0)
        wanted = row_codes[rank][rows]
        first = np.searchsorted(sorted_codes, wanted, side="left")
        count = np.searchsorted(sorted_codes, wanted, side="right") - first
        # each row once per stored occurrence of its identifier
        within = np.arange(int(count.sum())) - np.repeat(np.cumsum(count) - count, count)
        where = positions[np.repeat(first, count) + within]
        rows = np.repeat(rows, count)
        same_level = stored_rank[where] == rank
        parts.append((rows[same_level], stored_pk[where[same_level]], np.full(int(same_level.sum()), rank)))
    return tuple(np.concatenate([part[i] for part in parts]).astype("int64") for i in range(3))


def line_content_signature(lines: pd.DataFrame) -> pd.Series:
    """What must not change once a line is provisioned (R6): product, quantity, price."""
    product = lines["catalog_product_number"].astype("string").fillna(
        lines["product_number"].astype("string")
    ).fillna(lines["product_name"].astype("string")).fillna("")
    quantity = decimals_to_text(lines["quantity"]).fillna("")
    price = decimals_to_text(lines["price_per_unit"]).fillna("")
    return (product + "|" + quantity + "|" + price).astype("string")

