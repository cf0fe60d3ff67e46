"""Customer partitions (issue 7): rows a rule looks at together always share a partition.

Property tests on random rows drawn from small pools of order numbers, order GUIDs, customer
ids, customer names and line ids (with blanks and spelling variants), so that every kind of
tie — and chains of ties — occurs.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from w365etl.partitions import KEY_FIELDS, assign_partitions, row_keys

ORDERS = ["SO-1", "so-1 ", "SO-2", "SO-3", "SO-4", ""]
GUIDS = ["{0A1B2C3D-0000-0000-0000-000000000001}", "0a1b2c3d-0000-0000-0000-000000000001",
         "0a1b2c3d-0000-0000-0000-000000000002", ""]
NAMES = ["Acme Ltd", "ACME  ltd", "Contoso", "Fabrikam", "Straße GmbH", "STRASSE gmbh", ""]
POOLS = {"order_number": ORDERS, "order_id": GUIDS, "customer_id": GUIDS, "customer_name": NAMES, "line_id": GUIDS}

rows = st.lists(st.fixed_dictionaries({name: st.sampled_from(pool) for name, pool in POOLS.items()}),
                min_size=1, max_size=60)


def _partition_rows(table: list[dict], max_lines: int, block: int) -> np.ndarray:
    blocks = []
    for start in range(0, len(table), block):
        part = table[start:start + block]
        columns = {name: pa.array([row[name] for row in part], pa.string()) for name in KEY_FIELDS}
        blocks.append(row_keys(columns, np.arange(start, start + len(part), dtype=np.uint64)))
    partitions = assign_partitions(blocks, max_lines)
    return np.concatenate([partitions.partition_of(keys.hubs) for keys in blocks]), partitions


def _same(a: str, b: str, field: str) -> bool:
    """How the rules compare the field, at its finest: a tie the partition must honour."""
    if not a.strip() or not b.strip():
        return False
    if field in ("order_id", "customer_id", "line_id"):
        return a.strip("{}").lower() == b.strip("{}").lower()
    return " ".join(a.split()).casefold() == " ".join(b.split()).casefold()


@settings(max_examples=150, deadline=None)
@given(table=rows, max_lines=st.integers(1, 20), block=st.integers(1, 25))
def test_rows_that_share_an_order_a_customer_or_a_line_id_share_a_partition(table, max_lines, block):
    partition, partitions = _partition_rows(table, max_lines, block)
    assert partitions.lines_per_partition.sum() == len(table)  # every row in exactly one partition
    assert np.array_equal(np.bincount(partition, minlength=partitions.count), partitions.lines_per_partition)
    for i, left in enumerate(table):
        for j in range(i + 1, len(table)):
            right = table[j]
            # the order of a line: its number, else its GUID (outcomes.order_keys)
            left_order = ("n", left["order_number"]) if left["order_number"].strip() else ("g", left["order_id"])
            right_order = ("n", right["order_number"]) if right["order_number"].strip() else ("g", right["order_id"])
            tied = (left_order[0] == right_order[0] and _same(left_order[1], right_order[1],
                                                              "order_number" if left_order[0] == "n" else "order_id"))
            tied |= any(_same(left[field], right[field], field) for field in ("customer_id", "customer_name", "line_id"))
            if tied:
                assert partition[i] == partition[j], (left, right)


@settings(max_examples=60, deadline=None)
@given(table=rows, max_lines=st.integers(1, 20))
def test_the_blocks_a_file_is_read_in_do_not_change_the_partitions(table, max_lines):
    whole, _ = _partition_rows(table, max_lines, len(table))
    for block in (1, 7):
        assert np.array_equal(_partition_rows(table, max_lines, block)[0], whole)


def test_partitions_stay_near_their_size_when_nothing_ties_them():
    table = [{"order_number": f"SO-{i // 4}", "order_id": "", "customer_id": "", "customer_name": f"C{i // 40}",
              "line_id": ""} for i in range(400)]
    partition, partitions = _partition_rows(table, 100, 64)
    # ten customers of 40 lines: a partition takes customers until it holds 100 lines; none is split
    assert partitions.lines_per_partition.tolist() == [120, 120, 120, 40]
    assert (np.diff(partition) >= 0).all()  # in file order


def test_a_partitioned_run_checks_every_catalog_provider_before_it_stores_anything():
    """SPEC §2.2 (no silent default): a later partition may need a provider the first does not,
    so the first checks every provider the catalog names."""
    import pandas as pd
    import pytest

    from w365etl.execute import ProviderNotConfigured
    from w365etl.provisioning import ensure_catalog_providers
    from w365etl.settings import Settings

    catalog = pd.DataFrame({"product_number": ["A", "B"], "provider_code": ["manual", "partner_center"]})
    with pytest.raises(ProviderNotConfigured, match="partner_center"):
        ensure_catalog_providers(catalog, Settings())
    configured = Settings(providers={"partner_center": {"kind": "automatic", "adapter": "record"}})
    ensure_catalog_providers(catalog, configured)  # nothing missing: no error
    ensure_catalog_providers(catalog[catalog["provider_code"] == "manual"], Settings())


def test_a_stored_customer_ties_its_crm_id_to_its_name():
    """Line A names the stored customer by its CRM id, line B by its name: both resolve to that
    customer (mapping.resolve_customers), so they must share a partition though they share no key."""
    from w365etl.partitions import customer_ties

    guid = "0a1b2c3d-0000-0000-0000-0000000000aa"
    table = [{"order_number": "SO-1", "order_id": "", "customer_id": guid, "customer_name": "Old Name Ltd", "line_id": ""},
             *({"order_number": f"SO-{i}", "order_id": "", "customer_id": "", "customer_name": f"Other {i}",
                "line_id": ""} for i in range(2, 6)),
             {"order_number": "SO-9", "order_id": "", "customer_id": "", "customer_name": "New Name Ltd", "line_id": ""}]
    apart, _ = _partition_rows(table, 1, len(table))
    assert apart[0] != apart[-1]  # nothing in the lines ties them
    columns = {name: pa.array([row[name] for row in table], pa.string()) for name in KEY_FIELDS}
    keys = row_keys(columns, np.arange(len(table), dtype=np.uint64))
    ties = customer_ties(pa.array([guid.upper(), "", "x"]), pa.array(["new  name ltd", "Lone", ""]))
    assert len(ties) == 1  # only a customer with both an id and a name ties anything
    together = assign_partitions([keys], 1, ties).partition_of(keys.hubs)
    assert together[0] == together[-1]
