"""Re-evaluation: a waiting line's stored payload gives back what the run needs of it.

A partitioned run reads only the tie keys of the waiting lines (order, customer, line id) from
their payloads, with Arrow's JSON reader; the lines themselves are rebuilt with
``lines_from_payloads``. Both must read the same values from the same payload.
"""

from __future__ import annotations

import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.unit import factories as f
from w365etl.partitions import KEY_FIELDS
from w365etl.reevaluation import lines_from_payloads, payloads, waiting_keys

#: text a spreadsheet cell can hold: quotes, backslashes, line breaks, tabs, accents, emoji
cell_text = st.one_of(st.none(), st.text(st.characters(blacklist_categories=["Cs"]), max_size=12))


@settings(max_examples=80, deadline=None)
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
