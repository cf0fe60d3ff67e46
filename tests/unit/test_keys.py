"""R6 — a line's identifiers (guid, number, content) and matching rows to stored lines."""

from __future__ import annotations

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.unit import factories as f
from w365etl.domain import keys
from w365etl.domain.rules import resolve_products

SEP = "\x1f"
G1 = "11111111-1111-1111-1111-111111111111"
G2 = "22222222-2222-2222-2222-222222222222"


def _keyed(*rows) -> pd.DataFrame:
    return keys.add_line_identifiers(f.lines_frame(rows))


def _ids(frame: pd.DataFrame, position: int) -> dict[str, str]:
    row = frame.iloc[position]
    return {level: row[f"key_{level}"] for level in keys.LEVELS if pd.notna(row[f"key_{level}"])}


def _stored(*lines: tuple[int, dict[str, str]]) -> pd.DataFrame:
    return f.stored_lines(*({"line_pk": pk, "identifiers": ids, "content_signature": "x"} for pk, ids in lines))[1]


# --------------------------------------------------------------------------------------------
# the identifiers of a line


def test_r6_a_line_with_a_guid_is_keyed_by_it_and_also_gets_its_weaker_identifiers():
    frame = _keyed(f.line(line_id=G1, line_number=3))

    assert frame["key_guid"].tolist() == [f"guid{SEP}{G1}"]
    assert frame["key_number"].tolist() == [f"number{SEP}SO-1{SEP}3"]
    assert frame["key_content"].tolist() == [f"content{SEP}SO-1{SEP}{f.M365}{SEP}Monthly{SEP}1"]
    assert frame["line_key"].tolist() == [G1]


def test_r6_without_a_guid_the_key_is_order_number_and_line_number():
    frame = _keyed(f.line(line_number=3))

    assert frame["key_guid"].isna().all()
    assert frame["line_key"].tolist() == ["SO-1 | 3"]


def test_r6_without_guid_or_number_the_key_is_order_product_unit_and_occurrence():
    frame = _keyed(
        f.line(line_number=None), f.line(line_number=None), f.line(line_number=None, unit=None),
        f.line(line_number=None, product_number=None, product_name="Premier Support"),
        f.line(order_number="SO-2", line_number=None),
    )

    assert frame["key_number"].isna().all()
    assert frame["line_key"].tolist() == [
        f"SO-1 | {f.M365} | Monthly | 1", f"SO-1 | {f.M365} | Monthly | 2", f"SO-1 | {f.M365} |  | 1",
        "SO-1 | Premier Support | Monthly | 1", f"SO-2 | {f.M365} | Monthly | 1",
    ]


def test_r6_the_content_key_uses_the_product_number_when_given_and_the_unit_cell_as_given():
    frame = _keyed(f.line(line_number=None, product_name="Whatever", unit="monthly"))

    assert frame["key_content"].tolist() == [f"content{SEP}SO-1{SEP}{f.M365}{SEP}monthly{SEP}1"]


def test_r6_occurrence_follows_input_order_so_a_reexport_gets_the_same_keys():
    rows = [f.line(line_number=None, quantity=str(q)) for q in (1, 2, 3)]
    first = _keyed(*rows)
    again = _keyed(*rows)

    assert first["key_content"].tolist() == again["key_content"].tolist()
    assert first["key_content"].str.endswith(("1", "2", "3")).all()
    assert first["key_content"].nunique() == 3


def test_r6_a_line_without_order_number_or_guid_has_a_row_label_and_no_content_key():
    frame = _keyed(f.line(order_number=None, line_number=None))

    assert frame["key_content"].isna().all()
    assert frame["line_key"].tolist() == ["row orders.csv:2"]


# --------------------------------------------------------------------------------------------
# in-run duplicates


def test_r6_duplicates_are_flagged_on_every_copy_of_a_guid_or_an_order_and_line_number():
    frame = _keyed(
        f.line(line_id=G1, line_number=1), f.line(line_id=G1, line_number=2),       # same guid
        f.line(order_number="SO-2", line_number=1), f.line(order_number="SO-2", line_number=1),  # same number
        f.line(order_number="SO-3", line_number=1), f.line(order_number="SO-4", line_number=1),
        f.line(order_number="SO-5", line_number=None), f.line(order_number="SO-5", line_number=None),
    )

    by_guid, by_number = keys.duplicates_by_identifier(frame)
    assert by_guid.tolist() == [True, True, False, False, False, False, False, False]
    assert by_number.tolist() == [False, False, True, True, False, False, False, False]


# --------------------------------------------------------------------------------------------
# matching rows to stored lines: the strongest identifier both sides have


def test_r6_a_row_matches_a_stored_line_on_its_guid():
    stored_frame = _keyed(f.line(line_id=G1, line_number=1))
    stored = _stored((40, _ids(stored_frame, 0)))

    rows = _keyed(f.line(line_id=G1, line_number=9, quantity="7"))  # same guid, other number

    assert keys.match_stored_lines(rows, stored).tolist() == [40]


def test_r6_a_later_row_without_guid_but_with_the_same_number_matches():
    stored = _stored((40, _ids(_keyed(f.line(line_id=G1, line_number=1)), 0)))

    rows = _keyed(f.line(line_number=1))

    assert keys.match_stored_lines(rows, stored).tolist() == [40]


def test_r6_a_row_with_a_different_guid_but_the_same_number_does_not_match():
    stored = _stored((40, _ids(_keyed(f.line(line_id=G1, line_number=1)), 0)))

    rows = _keyed(f.line(line_id=G2, line_number=1))

    assert keys.match_stored_lines(rows, stored).isna().all()


def test_r6_a_row_without_guid_with_another_number_but_the_same_content_does_not_match():
    stored = _stored((40, _ids(_keyed(f.line(line_id=G1, line_number=1)), 0)))

    rows = _keyed(f.line(line_number=2))

    assert keys.match_stored_lines(rows, stored).isna().all()


def test_r6_a_row_with_a_guid_matches_a_line_stored_without_one_by_number():
    stored = _stored((40, _ids(_keyed(f.line(line_number=1)), 0)))

    rows = _keyed(f.line(line_id=G1, line_number=1), f.line(line_id=G2, line_number=2))

    assert keys.match_stored_lines(rows, stored).tolist() == [40, pd.NA]


def test_r6_rows_with_content_only_match_on_content_with_occurrence():
    stored_frame = _keyed(f.line(line_number=None), f.line(line_number=None))
    stored = _stored((40, _ids(stored_frame, 0)), (41, _ids(stored_frame, 1)))

    rows = _keyed(f.line(line_number=None), f.line(line_number=None), f.line(line_number=None))

    assert keys.match_stored_lines(rows, stored).tolist() == [40, 41, pd.NA]


def test_r6_a_stored_guid_only_line_is_matched_by_content_from_a_row_without_guid_or_number():
    # strongest identifier both have is content: they agree there
    stored = _stored((40, _ids(_keyed(f.line(line_id=G1, line_number=None)), 0)))

    rows = _keyed(f.line(line_number=None))

    assert keys.match_stored_lines(rows, stored).tolist() == [40]


def test_r6_no_stored_identifiers_means_no_match():
    rows = _keyed(f.line(line_id=G1))

    assert keys.match_stored_lines(rows, f.stored_lines()[1]).isna().all()


def test_r6_matching_keeps_the_row_index_of_the_input():
    stored = _stored((40, _ids(_keyed(f.line(line_id=G1)), 0)))
    rows = _keyed(f.line(line_id=G2, line_number=2), f.line(line_id=G1)).set_index(pd.Index([10, 20]))

    matched = keys.match_stored_lines(rows, stored)

    assert matched.index.tolist() == [10, 20]
    assert matched.tolist() == [pd.NA, 40]


# --------------------------------------------------------------------------------------------
# the content that must not change once provisioned


@pytest.mark.parametrize(("a", "b", "same"), [
    ({"quantity": "5", "price_per_unit": "10.5"}, {"quantity": "5.00000", "price_per_unit": "10.500000"}, True),
    ({"quantity": "5"}, {"quantity": "6"}, False),
    ({"price_per_unit": "10"}, {"price_per_unit": "10.01"}, False),
    ({"product_number": f.M365}, {"product_number": f.LICENCE}, False),
    ({"product_number": f.M365, "tax": "1"}, {"product_number": f.M365, "tax": "2"}, True),
])
def test_r6_the_content_signature_is_product_quantity_and_price(a, b, same):
    frame = resolve_products(_keyed(f.line(**a), f.line(**b)), f.products())
    signature = keys.line_content_signature(frame)

    assert (signature.iloc[0] == signature.iloc[1]) is same


def test_r6_the_content_signature_names_the_catalog_product_found_by_name():
    frame = resolve_products(_keyed(f.line(product_number=None, product_name="Premier Support", quantity="2")),
                             f.products())

    assert keys.line_content_signature(frame).tolist() == [f"{f.SUPPORT}|2|10"]


def test_r6_a_plan_of_lines_keyed_beforehand_is_the_plan_of_the_raw_lines():
    """The flow keys the lines once (to ask the store) and hands them to the plan as they are."""
    raw = f.lines_frame([f.line(), f.line(product_number=f.SETUP), f.line(line_id=None, line_number=None)])
    keyed = keys.add_line_identifiers(raw)
    first, second = f.plan(raw), f.plan(keyed)
    assert f.buckets(first) == f.buckets(second)
    assert first.lines["line_key"].tolist() == second.lines["line_key"].tolist()


# --------------------------------------------------------------------------------------------
# property: the vectorised match is the rule, stated row by row


def _r6_by_hand(rows: list[dict], stored: list[tuple[int, str, str | None]]) -> list:
    """R6 as a person would apply it to one row at a time: every stored line sharing an
    identifier at the same level is a candidate; it counts when no stronger level is had by
    both; the strongest level wins, then the lowest line_pk."""
    levels_of: dict[int, set[str]] = {}
    for pk, level, _ in stored:
        levels_of.setdefault(pk, set()).add(level)
    answers = []
    for row in rows:
        best = None
        for pk, level, identifier in stored:
            if identifier is None or level not in keys.LEVELS or row.get(level) != identifier:
                continue
            rank = keys.LEVELS.index(level)
            if any(row.get(stronger) is not None and stronger in levels_of[pk] for stronger in keys.LEVELS[:rank]):
                continue
            if best is None or (rank, pk) < best:
                best = (rank, pk)
        answers.append(None if best is None else best[1])
    return answers


_identifier_of = {level: st.one_of(st.none(), st.sampled_from([f"{level}{SEP}{n}" for n in range(3)]))
                  for level in keys.LEVELS}
_stored_row = st.tuples(st.integers(1, 5), st.sampled_from([*keys.LEVELS, "future"]),
                        st.one_of(st.none(), st.integers(0, 2)))


@settings(max_examples=300, deadline=None)
@given(rows=st.lists(st.fixed_dictionaries(_identifier_of), min_size=1, max_size=6),
       stored=st.lists(_stored_row, max_size=10))
def test_r6_the_vectorised_match_is_the_rule_applied_row_by_row(rows, stored):
    # stored identifiers as any source may list them: duplicates, one identifier under two
    # lines, a level this version does not know, NA (the line only has that level)
    stored = [(pk, level, None if number is None else f"{level}{SEP}{number}") for pk, level, number in stored]
    index = pd.RangeIndex(3, 3 + len(rows))  # not 0…n-1: the answer must keep the rows' index
    frame = pd.DataFrame({f"key_{level}": pd.Series([row[level] for row in rows], dtype="string", index=index)
                          for level in keys.LEVELS})
    stored_frame = pd.DataFrame({"line_pk": pd.Series([s[0] for s in stored], dtype="int64"),
                                 "level": pd.Series([s[1] for s in stored], dtype="string"),
                                 "identifier": pd.Series([s[2] for s in stored], dtype="string")})

    got = keys.match_stored_lines(frame, stored_frame)

    assert got.index.equals(frame.index)
    assert [None if pd.isna(value) else int(value) for value in got] == _r6_by_hand(rows, stored)


_key_text = st.text(st.sampled_from(list("ab|\x1f \n\u00e9\u2028")), max_size=8)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.one_of(st.none(), _key_text), st.one_of(st.none(), _key_text),
                          st.one_of(st.none(), _key_text)), min_size=1, max_size=8))
def test_r6_the_display_key_is_the_strongest_identifier_after_its_level_prefix(keyed):
    index = pd.RangeIndex(5, 5 + len(keyed))
    frame = pd.DataFrame({
        **{f"key_{level}": pd.Series([None if row[i] is None else f"{level}{SEP}{row[i]}" for row in keyed],
                                     dtype="string", index=index) for i, level in enumerate(keys.LEVELS)},
        "file_path": "orders.csv", "row_number": pd.Series(range(2, 2 + len(keyed)), index=index),
    })

    shown = keys.display_key(frame)

    expected = []
    for position, row in enumerate(keyed):
        strongest = next((value for value in row if value is not None), None)
        expected.append(f"row orders.csv:{2 + position}" if strongest is None else strongest.replace(SEP, " | "))
    assert list(shown.index) == list(index)
    assert shown.tolist() == expected
