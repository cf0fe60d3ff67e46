"""``is_in`` (Arrow hash lookup) must answer exactly as ``Series.isin`` does for text columns:
it decides R6 identifiers already stored, R2 orders with rejected lines and waiting lines."""

from __future__ import annotations

import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from w365etl.columns import is_in

_TEXT = st.one_of(st.none(), st.sampled_from(["", "SO-1", "so-1", "SO-1 ", "guid:ä", "num:SO-2|1", "x" * 40]))


@settings(max_examples=300, deadline=None)
@given(st.lists(_TEXT, max_size=30), st.lists(_TEXT, max_size=30), st.sampled_from(["str", "string", object]),
       st.sampled_from(["series", "index", "set", "list"]))
def test_is_in_equals_pandas_isin(values, candidates, dtype, kind):
    series = pd.Series(values, dtype=dtype, index=range(7, 7 + len(values)))
    given_candidates = {"series": pd.Series(candidates, dtype="string"), "index": pd.Index(candidates, dtype="string"),
                        "set": set(candidates), "list": candidates}[kind]
    got = is_in(series, given_candidates)
    present = {candidate for candidate in candidates if candidate is not None}
    expected = [value is not None and value in present for value in values]
    assert got.tolist() == expected
    assert list(got.index) == list(series.index)
    assert got.dtype == bool
