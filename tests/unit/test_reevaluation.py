"""Re-evaluation: a waiting line's stored payload gives back what the run needs of it.

A partitioned run reads only the tie keys of the waiting lines (order, customer, line id) from
their payloads, with Arrow's JSON reader; the lines themselves are rebuilt with
``lines_from_payloads``. Both must read the same values from the same payload.
"""

from __future__ import annotations

import json

import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.unit import factories as f
from w365etl.partitions import KEY_FIELDS
from w365etl.reevaluation import lines_from_payloads, payload_values, payloads, waiting_keys

#: text a spreadsheet cell can hold: quotes, backslashes, line breaks, tabs, accents, emoji
cell_text = st.one_of(st.none(), st.text(st.characters(blacklist_categories=["Cs"]), max_size=12))


@settings(max_examples=40, deadline=None)
@given(values=st.lists(st.fixed_dictionaries({name: cell_text for name in KEY_FIELDS}), min_size=1, max_size=5),
       slice_lines=st.integers(1, 3))
def test_waiting_keys_reads_the_values_lines_from_payloads_reads(values, slice_lines):
    lines = f.lines_frame([f.line(**row) for row in values])
    waiting = pd.DataFrame({"payload": payloads(lines)})

    keys = waiting_keys(waiting, slice_lines=slice_lines)

    expected = lines_from_payloads(waiting["payload"], 0)[list(KEY_FIELDS)]
    pd.testing.assert_frame_equal(keys, expected)
    for name in KEY_FIELDS:  # the values as the lines held them, whatever characters they contain
        assert [None if pd.isna(value) else value for value in keys[name]] == \
            [None if pd.isna(value) else value for value in lines[name]]


def test_waiting_keys_of_no_waiting_lines_is_an_empty_frame_with_the_key_columns():
    keys = waiting_keys(pd.DataFrame({"payload": pd.Series(dtype="string")}))

    assert list(keys.columns) == list(KEY_FIELDS) and keys.empty


def _pandas_payloads(lines: pd.DataFrame) -> list[str]:
    """The oracle: pandas' own JSON writer over the same values (how payloads were first built)."""
    records = payload_values(lines).to_json(orient="records", lines=True, date_format="iso", force_ascii=False)
    return records.rstrip("\n").split("\n")


#: any code point a cell can hold (surrogates cannot be UTF-8), control characters included
any_text = st.one_of(st.none(), st.text(st.characters(blacklist_categories=["Cs"]), max_size=10))


@settings(max_examples=30, deadline=None)
@given(rows=st.lists(st.fixed_dictionaries({
    "customer_name": any_text, "order_name": any_text, "product_name": any_text, "line_id": any_text,
    "order_number": st.text(st.characters(blacklist_categories=["Cs"]), min_size=1, max_size=8),
    "quantity": st.one_of(st.none(), st.decimals(0, 10**6, places=5).map(str)),
    "price_per_unit": st.one_of(st.none(), st.decimals(-10**6, 10**6, places=6).map(str)),
    "line_number": st.one_of(st.none(), st.integers(0, 10**9)),
    "order_state_code": st.one_of(st.none(), st.integers(0, 3)),
    "fulfill_order": st.one_of(st.none(), st.booleans()),
}), min_size=1, max_size=6))
def test_payloads_hold_exactly_the_values_pandas_json_writer_holds(rows):
    """The Arrow-built payloads parse to the same values as pandas' to_json of the same lines,
    one line of text each, and read back (``lines_from_payloads``) to the lines' own values."""
    lines = f.lines_frame([f.line(**row) for row in rows])

    built = payloads(lines)

    assert built.index.equals(lines.index)
    assert [json.loads(text) for text in built] == [json.loads(text) for text in _pandas_payloads(lines)]
    assert all("\n" not in text and "\r" not in text for text in built)
    again = lines_from_payloads(built, 0)
    for name in ("customer_name", "order_name", "line_id", "quantity", "price_per_unit", "line_number", "fulfill_order"):
        assert [None if pd.isna(value) else value for value in again[name]] == \
            [None if pd.isna(value) else value for value in lines[name]], name


def test_payload_of_every_control_character_and_quote_reads_back_as_written():
    text = "".join(chr(code) for code in range(0x20)) + '"\\/\u0085\u2028\U0001F600'
    lines = f.lines_frame([f.line(customer_name=text, order_name=None)])

    built = payloads(lines)

    assert json.loads(built.iloc[0])["customer_name"] == text
    assert json.loads(built.iloc[0])["order_name"] is None
    assert lines_from_payloads(built, 0)["customer_name"].iloc[0] == text
