"""Customers and R3 — provider account mapping ("Account Provisioning" in Work 365).

Two questions, both answered by id when both sides have one and else by name
(case-insensitive, whitespace collapsed — SPEC §2.2):

* which CRM account a line belongs to (so its billing contracts are found again later,
  whether an export carries the account GUID or only its name), and
* which account at an automatic provider that customer is mapped to. A line whose provider is
  automatic and whose customer has no mapping holds its order (``NEEDS_PROVIDER_MAPPING``);
  a name that fits two different accounts is ``AMBIGUOUS_CUSTOMER``.
"""

from __future__ import annotations

import hashlib

import pandas as pd

from w365etl.reference import name_key


def _digest(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:12]


def resolve_customers(lines: pd.DataFrame, customers: pd.DataFrame) -> pd.DataFrame:
    """Give each line a ``customer_key`` and ``is_ambiguous_customer``.

    ``customers`` are the stored accounts (``customer_pk``, ``crm_customer_id``, ``name_key``).
    Stored accounts get ``customer_key`` ``pk:<n>``; accounts first seen in this run get
    ``new:<id>`` or ``new:name:<name>``. Works on the distinct (id, name) pairs, not per line.
    """
    out = lines.copy(deep=False)
    out["customer_name_key"] = name_key(out["customer_name"])
    pairs = (
        out[["customer_id", "customer_name_key"]].drop_duplicates().reset_index(drop=True)
        .astype({"customer_id": "string", "customer_name_key": "string"})
    )
    pairs["customer_key"] = pd.Series(pd.NA, index=pairs.index, dtype="string")
    pairs["is_ambiguous_customer"] = False
    stored = customers.astype({"crm_customer_id": "string", "name_key": "string"})

    # 1. the account id matches a stored account
    by_id = stored.dropna(subset=["crm_customer_id"]).drop_duplicates("crm_customer_id").set_index("crm_customer_id")["customer_pk"]
    id_match = pairs["customer_id"].map(by_id)
    pairs.loc[id_match.notna(), "customer_key"] = "pk:" + id_match.dropna().astype("int64").astype("string")

    # 2. by name among stored accounts that cannot contradict by id
    open_rows = pairs["customer_key"].isna() & pairs["customer_name_key"].notna()
    candidates = pairs.loc[open_rows, ["customer_id", "customer_name_key"]].reset_index().merge(
        stored[["customer_pk", "crm_customer_id", "name_key"]],
        left_on="customer_name_key", right_on="name_key", how="inner",
    )
    candidates = candidates[candidates["customer_id"].isna() | candidates["crm_customer_id"].isna()]
    counts = candidates.groupby("index")["customer_pk"].nunique()
    single = candidates[candidates["index"].isin(counts[counts == 1].index)].drop_duplicates("index")
    pairs.loc[single["index"].to_numpy(), "customer_key"] = "pk:" + single["customer_pk"].astype("int64").astype("string").to_numpy()
    pairs.loc[counts[counts > 1].index, "is_ambiguous_customer"] = True

    # 3. accounts new in this run: an id is its own account; a bare name joins the one
    #    account of this run with that name, if exactly one has an id
    new_rows = pairs["customer_key"].isna() & ~pairs["is_ambiguous_customer"]
    with_id = pairs[new_rows & pairs["customer_id"].notna()]
    pairs.loc[with_id.index, "customer_key"] = "new:" + with_id["customer_id"]
    named_ids = pairs[pairs["customer_id"].notna()].groupby("customer_name_key")["customer_key"].agg(["nunique", "first"])
    bare = pairs[new_rows & pairs["customer_id"].isna()]
    found = bare["customer_name_key"].map(named_ids["nunique"]).fillna(0)
    one = bare[found == 1]
    pairs.loc[one.index, "customer_key"] = one["customer_name_key"].map(named_ids["first"])
    pairs.loc[bare[found > 1].index, "is_ambiguous_customer"] = True
    none = bare[found == 0]
    pairs.loc[none.index, "customer_key"] = "new:name:" + none["customer_name_key"]

    out = out.merge(pairs, on=["customer_id", "customer_name_key"], how="left", validate="many_to_one")
    out.index = lines.index
    return out


def customer_crm_ids(lines: pd.DataFrame, customers: pd.DataFrame) -> pd.Series:
    """The CRM account id known for each line's customer: the line's own, else the stored one,
    else the first one another line of the same customer carries in this run (what the store
    learns from this run) — so every line of one customer finds the same provider mapping, in
    this run and the next."""
    stored = customers.assign(customer_key="pk:" + customers["customer_pk"].astype("int64").astype("string"))
    known = lines["customer_key"].map(stored.set_index("customer_key")["crm_customer_id"])
    own = lines["customer_id"].astype("string")
    in_run = own.groupby(lines["customer_key"]).transform("first")
    return own.fillna(known.astype("string")).fillna(in_run.astype("string"))


def match_provider_accounts(
    lines: pd.DataFrame, accounts: pd.DataFrame, crm_ids: pd.Series
) -> pd.DataFrame:
    """R3: the provider account of each line's (customer, provider).

    Returns, aligned to ``lines``: ``provider_customer_id`` (NA when none) and
    ``is_ambiguous_mapping`` (the name fits mappings to different provider accounts).
    """
    result = pd.DataFrame(
        {"provider_customer_id": pd.Series(pd.NA, index=lines.index, dtype="string"),
         "is_ambiguous_mapping": pd.Series(False, index=lines.index)}
    )
    if accounts.empty or lines.empty:
        return result
    accounts = accounts.assign(
        name_key=name_key(accounts["customer_name"]),
        customer_id=accounts["customer_id"].astype("string"),
        provider_code=accounts["provider_code"].astype("string"),
    )
    keys = pd.DataFrame(
        {"crm_id": crm_ids.astype("string"), "name_key": lines["customer_name_key"].astype("string"),
         "provider_code": lines["effective_provider_code"].astype("string")}
    )
    distinct = keys.drop_duplicates().reset_index(drop=True)
    by_id = distinct.reset_index().merge(
        accounts.dropna(subset=["customer_id"]), left_on=["crm_id", "provider_code"],
        right_on=["customer_id", "provider_code"], how="inner",
    )
    by_name = distinct.reset_index().merge(accounts, on=["name_key", "provider_code"], how="inner")
    by_name = by_name[by_name["crm_id"].isna() | by_name["customer_id"].isna()]
    by_name = by_name[~by_name["index"].isin(by_id["index"])]
    found = pd.concat([by_id[["index", "provider_customer_id"]], by_name[["index", "provider_customer_id"]]])
    tenants = found.groupby("index")["provider_customer_id"].agg(["nunique", "first"])
    distinct["provider_customer_id"] = tenants["first"].where(tenants["nunique"] == 1).reindex(distinct.index).astype("string")
    distinct["is_ambiguous_mapping"] = (tenants["nunique"] > 1).reindex(distinct.index, fill_value=False).astype(bool)
    merged = keys.merge(distinct, on=["crm_id", "name_key", "provider_code"], how="left")
    result["provider_customer_id"] = merged["provider_customer_id"].to_numpy()
    result["is_ambiguous_mapping"] = merged["is_ambiguous_mapping"].fillna(False).astype(bool).to_numpy()
    return result


def stable_id(prefix: str, parts: pd.Series) -> pd.Series:
    """Deterministic ids (``BC-…``, ``SUB-…``): the same input always names the same record,
    so a repeated or concurrent run converges on one row instead of creating a second."""
    unique = parts.drop_duplicates()
    ids = pd.Series([f"{prefix}-{_digest(text).upper()}" for text in unique.astype(str)], index=unique.to_numpy())
    return parts.map(ids).astype("string")
