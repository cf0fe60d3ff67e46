"""Two hot-path text functions run in Arrow; each must equal its plain-Python definition.

* ``name_key`` (SPEC §2.2: names compare case-insensitive, whitespace collapsed) — R3/R4 match
  customers by it. Python's whitespace is spelled as an RE2 class (``WHITESPACE_RE2``); every
  Unicode code point is checked against ``str.isspace``.
* ``decimals_to_text`` (R8 amounts, R6 content signature): the exact canonical text of an
  Arrow decimal, equal to ``Decimal`` formatting without trailing zeros.
"""

from __future__ import annotations

from decimal import Decimal

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from hypothesis import given, settings
from hypothesis import strategies as st

from w365etl.amounts import MONEY_TYPE, QUANTITY_TYPE, decimals_from_text, decimals_to_text
from w365etl.reference import WHITESPACE_RE2, name_key
from w365etl.report.cells import _REPLACEMENT, xlsx_text, xlsx_text_column


def test_the_re2_whitespace_class_is_exactly_pythons_isspace():
    points = [chr(code) for code in range(0x110000) if not 0xD800 <= code <= 0xDFFF]
    matched = pc.match_substring_regex(pa.array(points, type=pa.string()), "^" + WHITESPACE_RE2 + "$").to_pylist()
    differing = [hex(ord(char)) for char, is_match in zip(points, matched) if is_match != char.isspace()]
    assert differing == []
    assert sum(matched) == sum(char.isspace() for char in points) > 20


def _python_name_key(name: str) -> str:
    return " ".join(name.split()).casefold()


_NAME_CHARS = st.sampled_from(list("aAbZß éÉİı\t\n\u00a0\u2003\u3000\x1c\x85\u200b-.&'") + ["Contoso", "  "])


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(st.none(), st.lists(_NAME_CHARS, max_size=12).map("".join)), max_size=30))
def test_name_key_equals_the_python_definition(names):
    series = pd.Series(names, dtype="string", index=range(100, 100 + len(names)))
    keys = name_key(series)
    assert list(keys.index) == list(series.index)
    expected = [None if name is None else _python_name_key(name) for name in names]
    assert [None if pd.isna(key) else key for key in keys] == expected


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(st.none(), st.decimals(min_value=Decimal("-999999999999"), max_value=Decimal("999999999999"),
                                                   places=6, allow_nan=False, allow_infinity=False)), max_size=40),
       st.sampled_from([MONEY_TYPE, QUANTITY_TYPE]))
def test_decimal_text_is_the_exact_value_without_trailing_zeros(values, arrow_type):
    scale = arrow_type.scale
    values = [None if value is None else value.quantize(Decimal(1).scaleb(-scale)) for value in values]
    text = pd.Series([None if value is None else format(value, "f") for value in values], dtype="string")
    column = decimals_from_text(text, arrow_type)
    shown = decimals_to_text(column)
    for value, got in zip(values, shown):
        if value is None:
            assert pd.isna(got)
            continue
        assert Decimal(got) == value  # exact
        assert got == _plain(value)  # canonical: no exponent, no trailing zeros, no bare point


def _plain(value: Decimal) -> str:
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


# --------------------------------------------------------------------------------------------
# xlsx cell text (SPEC §5 reports): the column function, in Arrow, is the per-value one


def test_xlsx_text_column_treats_every_code_point_as_xlsx_text_does():
    points = [chr(code) for code in range(0x110000) if not 0xD800 <= code <= 0xDFFF]
    series = pd.Series([f"a{point}b" for point in points], dtype="string")
    got = xlsx_text_column(series).tolist()
    differing = [hex(ord(point)) for point, value in zip(points, got) if value != xlsx_text(f"a{point}b")]
    assert differing == []
    replaced = [point for point, value in zip(points, got) if value == f"a{_REPLACEMENT}b" and point != _REPLACEMENT]
    assert len(replaced) == 31  # 29 C0 controls (not tab, LF, CR) + U+FFFE + U+FFFF


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(st.none(), st.text(st.sampled_from(list("ab\r\n\x00\x0b\ufffe\uffff\ufffd é\t")), max_size=10)),
                max_size=20))
def test_xlsx_text_column_equals_xlsx_text_value_by_value(values):
    series = pd.Series(values, dtype="string", index=range(7, 7 + len(values)))
    got = xlsx_text_column(series)
    assert list(got.index) == list(series.index)
    # an empty cell stays empty (NA), as the writer leaves it blank
    expected = [None if value is None or value == "" else xlsx_text(value) for value in values]
    assert [None if pd.isna(value) else value for value in got] == expected
