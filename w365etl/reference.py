"""Reference data (SPEC §2.2): read and check ``products.csv`` and ``provider_accounts.csv``.

Reference files are small and written by people, so a mistake in them stops the load with a
message naming the file, row and column — the catalog decides how every line is provisioned,
and a half-loaded catalog would silently reject good orders.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pandera.errors as pa_errors

from schemas.reference import Products, ProviderAccounts

PRODUCTS_FILE = "products.csv"
PROVIDER_ACCOUNTS_FILE = "provider_accounts.csv"
_TRUE = {"true", "yes", "1", "y"}
_FALSE = {"false", "no", "0", "n"}


class ReferenceDataError(Exception):
    """A reference file is missing, unreadable or has bad values."""


@dataclass(frozen=True)
class ReferenceData:
    products: pd.DataFrame | None
    provider_accounts: pd.DataFrame | None


#: Python's whitespace (``str.isspace``, what ``\s`` and ``str.split()`` mean) as an RE2 class, so the
#: collapse runs in Arrow instead of a Python regex per name; a unit test checks every code point
WHITESPACE_RE2 = r"[\t\n\x{0b}\f\r\x{1c}-\x{1f}\x{85}\p{Z}]+"


def name_key(names: pd.Series) -> pd.Series:
    """How names are compared (SPEC §2.2): case-insensitive, whitespace collapsed.

    Each distinct name is keyed once, then picked by its code: a million lines name a few
    thousand customers and products."""
    arrow = names.astype("string").array.__arrow_array__()
    if isinstance(arrow, pa.ChunkedArray):
        arrow = arrow.combine_chunks()
    encoded = pc.dictionary_encode(arrow)
    keys = pc.take(_distinct_name_keys(encoded.dictionary), encoded.indices)
    return pd.Series(pd.arrays.ArrowStringArray(keys), index=names.index, name=names.name)


def _distinct_name_keys(names: pa.Array) -> pa.Array:
    collapsed = pc.utf8_trim(pc.replace_substring_regex(names, WHITESPACE_RE2, " "), " ")
    is_ascii = pc.string_is_ascii(collapsed)
    if pc.all(is_ascii).as_py() is not False:
        return pc.ascii_lower(collapsed)
    # ASCII names (nearly all) are case-folded in Arrow — for ASCII, casefold is lower; the
    # others go through Python's str.casefold (ß → ss, İ → i̇ …)
    folded = [name.casefold() if is_plain is False else lowered
              for name, lowered, is_plain in zip(collapsed.to_pylist(), pc.ascii_lower(collapsed).to_pylist(),
                                                 is_ascii.to_pylist())]
    return pa.array(folded, type=names.type)


def _read_csv(path: Path) -> pd.DataFrame:
    for encoding in ("utf-8-sig", "cp1252"):
        try:
            frame = pd.read_csv(path, dtype=str, keep_default_na=False, encoding=encoding,
                                sep=None, engine="python")
            break
        except UnicodeDecodeError:
            continue
        except (pd.errors.ParserError, pd.errors.EmptyDataError, OSError) as error:
            raise ReferenceDataError(f"{path}: cannot be read as CSV ({error})") from None
    else:
        raise ReferenceDataError(f"{path}: is neither UTF-8 nor cp1252 text")
    frame.columns = [str(column).strip().lower() for column in frame.columns]
    frame = frame.apply(lambda column: column.str.strip()).replace("", pd.NA)
    return frame


def _require(frame: pd.DataFrame, path: Path, columns: list[str]) -> None:
    missing = [column for column in columns if column not in frame.columns]
    if missing:
        raise ReferenceDataError(f"{path}: missing column(s) {', '.join(missing)}")


def _to_bool(values: pd.Series, path: Path, column: str) -> pd.Series:
    lowered = values.astype("string").str.lower()
    bad = lowered.notna() & ~lowered.isin(_TRUE | _FALSE)
    if bad.any():
        row = int(bad.idxmax()) + 2
        raise ReferenceDataError(f"{path}: row {row}, column {column}: '{values[bad].iloc[0]}' is not true/false")
    return lowered.isin(_TRUE)


def _to_int(values: pd.Series, path: Path, column: str) -> pd.Series:
    numbers = pd.to_numeric(values, errors="coerce")
    bad = values.notna() & (numbers.isna() | (numbers % 1 != 0))
    if bad.any():
        row = int(bad.idxmax()) + 2
        raise ReferenceDataError(f"{path}: row {row}, column {column}: '{values[bad].iloc[0]}' is not a whole number")
    return numbers.astype("Int64")


def _check(model, frame: pd.DataFrame, path: Path) -> pd.DataFrame:
    try:
        return model.validate(frame, lazy=True)
    except pa_errors.SchemaErrors as errors:
        cases = errors.failure_cases
        messages = []
        for case in cases.head(10).itertuples():
            row = "" if pd.isna(case.index) else f"row {int(case.index) + 2}, "
            column = "" if pd.isna(case.column) else f"column {case.column}: "
            messages.append(f"{row}{column}'{case.failure_case}' fails {case.check}")
        raise ReferenceDataError(f"{path}: " + "; ".join(messages)) from None


def read_products(path: Path) -> pd.DataFrame:
    frame = _read_csv(path)
    _require(frame, path, ["product_number", "product_name", "product_type", "provider", "recurring"])
    for optional in ("provider_sku", "billing_frequency", "provisioning_unit", "term_duration",
                     "min_quantity", "max_quantity"):
        if optional not in frame.columns:
            frame[optional] = pd.NA
    products = pd.DataFrame(
        {
            "product_number": frame["product_number"].astype("str"),
            "product_name": frame["product_name"].astype("str"),
            "product_type": frame["product_type"].astype("str"),
            "provider_code": frame["provider"].astype("string").str.lower().astype("str"),
            "provider_sku": frame["provider_sku"].astype("str"),
            "is_recurring": _to_bool(frame["recurring"], path, "recurring").astype(bool),
            "billing_frequency": frame["billing_frequency"].astype("str"),
            "provisioning_unit": frame["provisioning_unit"].astype("str"),
            "term_duration": frame["term_duration"].astype("string").str.upper().astype("str"),
            "min_quantity": _to_int(frame["min_quantity"], path, "min_quantity"),
            "max_quantity": _to_int(frame["max_quantity"], path, "max_quantity"),
        }
    )
    recurring_without_unit = products["is_recurring"] & products["provisioning_unit"].isna() & products["term_duration"].isna()
    if recurring_without_unit.any():
        row = int(recurring_without_unit.idxmax()) + 2
        raise ReferenceDataError(
            f"{path}: row {row}: recurring product needs a provisioning_unit or term_duration"
        )
    products = _check(Products, products, path)
    _check_distinct_names(products, path)
    return products


def _check_distinct_names(products: pd.DataFrame, path: Path) -> None:
    """Lines name products the way names are compared (SPEC §2.2: case-insensitive,
    whitespace collapsed), so two names that differ only in case or spacing are one name
    twice: which product a line means could not be told."""
    keys = name_key(products["product_name"])
    same = keys.duplicated(keep=False)
    if not same.any():
        return
    first = keys[same].iloc[0]
    rows = products.index[same & (keys == first)]
    names = " and ".join(f"'{products.loc[row, 'product_name']}' (row {int(row) + 2})" for row in rows)
    raise ReferenceDataError(
        f"{path}: column product_name: {names} are the same name — product names are compared "
        "case-insensitively with whitespace collapsed, so each must differ by more than case or spacing"
    )


def read_provider_accounts(path: Path) -> pd.DataFrame:
    frame = _read_csv(path)
    _require(frame, path, ["customer_name", "provider", "provider_customer_id"])
    if "customer_id" not in frame.columns:
        frame["customer_id"] = pd.NA
    accounts = pd.DataFrame(
        {
            "customer_name": frame["customer_name"].astype("str"),
            "customer_id": frame["customer_id"].astype("string").str.strip("{}").str.lower().astype("str"),
            "provider_code": frame["provider"].astype("string").str.lower().astype("str"),
            "provider_customer_id": frame["provider_customer_id"].astype("str"),
        }
    )
    # a template row the onboarding team has not filled in yet is not a mapping
    accounts = accounts[accounts["provider_customer_id"].notna()].reset_index(drop=True)
    return _check(ProviderAccounts, accounts, path)


def read_reference_dir(directory: Path) -> ReferenceData:
    """Read whichever of the two reference files the folder holds (at least one)."""
    if not directory.is_dir():
        raise ReferenceDataError(f"reference folder {directory} does not exist")
    products_path = directory / PRODUCTS_FILE
    accounts_path = directory / PROVIDER_ACCOUNTS_FILE
    if not products_path.is_file() and not accounts_path.is_file():
        raise ReferenceDataError(
            f"reference folder {directory} holds neither {PRODUCTS_FILE} nor {PROVIDER_ACCOUNTS_FILE}"
        )
    return ReferenceData(
        products=read_products(products_path) if products_path.is_file() else None,
        provider_accounts=read_provider_accounts(accounts_path) if accounts_path.is_file() else None,
    )


def merge_products(stored: pd.DataFrame, loaded: pd.DataFrame | None) -> pd.DataFrame:
    """The catalog after an upsert of ``loaded`` (key: product_number)."""
    if loaded is None or loaded.empty:
        return stored
    kept = stored[~stored["product_number"].isin(loaded["product_number"])] if not stored.empty else stored
    merged = pd.concat([kept, loaded], ignore_index=True) if not kept.empty else loaded.reset_index(drop=True)
    return merged.astype({"is_recurring": bool, "min_quantity": "Int64", "max_quantity": "Int64"})


def merge_provider_accounts(stored: pd.DataFrame, loaded: pd.DataFrame | None) -> pd.DataFrame:
    """The mappings after an upsert of ``loaded``: by (provider, CRM id) when the row has an
    id, else every name-only row of that (provider, name) is replaced by the loaded ones."""
    if loaded is None or loaded.empty:
        return stored
    if stored.empty:
        return loaded.reset_index(drop=True)
    stored_keys = name_key(stored["customer_name"])
    loaded_keys = name_key(loaded["customer_name"])
    replaced_ids = set(zip(loaded["provider_code"], loaded["customer_id"].where(loaded["customer_id"].notna())))
    replaced_names = set(zip(loaded.loc[loaded["customer_id"].isna(), "provider_code"],
                             loaded_keys[loaded["customer_id"].isna()]))
    by_id = pd.Series(list(zip(stored["provider_code"], stored["customer_id"])), index=stored.index).isin(replaced_ids) & stored["customer_id"].notna()
    by_name = pd.Series(list(zip(stored["provider_code"], stored_keys)), index=stored.index).isin(replaced_names) & stored["customer_id"].isna()
    return pd.concat([stored[~(by_id | by_name)], loaded], ignore_index=True)
