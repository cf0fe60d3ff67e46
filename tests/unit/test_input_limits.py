"""Input limits of the **read orders** step (issue 6): file size, rows, cells, xlsx inflation.

A file over a limit is rejected whole (``FILE_REJECTED``) with a message naming the limit and
the setting that raises it, before the whole file is loaded; the other files of the run go on.
Also: whatever bytes a file holds, reading it never raises (hypothesis).
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from tests.corpus.build_corpus import Sheet, csv_text, good_rows, sheet_rows, xlsx_bytes, zip_bomb, _styled_empty_rows
from w365etl.adapters.order_files import read_order_files
from w365etl.ingest.tables import InputLimits
from w365etl.settings import SettingsError, load_settings


def good_csv(folder: Path, name: str = "good.csv", rows: int = 2) -> Path:
    path = folder / name
    path.write_bytes(csv_text(good_rows(name.split(".")[0].upper(), rows)).encode())
    return path


def rejected(result, path: Path) -> str:
    """The one file-level message of ``path`` (the other files were read)."""
    issues = result.file_issues[result.file_issues["file"] == str(path)]
    assert issues["reason_code"].tolist() == ["FILE_REJECTED"]
    return issues["message"].iloc[0]


@pytest.mark.parametrize(("kind", "limits", "words"), [
    ("csv", InputLimits(max_rows=5), ("more than 5 rows", "limits.max_rows", "W365_LIMITS__MAX_ROWS")),
    ("xlsx", InputLimits(max_rows=5), ("more than 5 rows", "limits.max_rows", "W365_LIMITS__MAX_ROWS")),
    ("csv", InputLimits(max_cells=50), ("60 cells (6 rows × 10 columns)", "W365_LIMITS__MAX_CELLS")),
    ("xlsx", InputLimits(max_cells=50), ("more than 50 cells", "W365_LIMITS__MAX_CELLS")),
    ("csv", InputLimits(max_file_bytes=300), ("over the limit of 300 bytes", "W365_LIMITS__MAX_FILE_BYTES")),
    ("xlsx", InputLimits(max_xlsx_uncompressed_bytes=2000),
     ("inflates to", "over the limit of 2,000 bytes", "W365_LIMITS__MAX_XLSX_UNCOMPRESSED_BYTES")),
])
def test_a_file_over_a_limit_is_rejected_naming_the_limit_and_its_setting(tmp_path, kind, limits, words):
    path = tmp_path / f"six_rows.{kind}"
    rows = good_rows("L", 6)
    path.write_bytes(csv_text(rows).encode() if kind == "csv" else xlsx_bytes(Sheet("Orders", sheet_rows(rows))))
    other = good_csv(tmp_path)
    result = read_order_files([path, other], limits=limits)
    message = rejected(result, path)
    for word in words:
        assert word in message, message
    assert result.files[1].status == "read" and len(result.lines) == 2


def test_a_file_at_its_limits_is_read(tmp_path):
    path = good_csv(tmp_path, rows=6)
    limits = InputLimits(max_rows=6, max_cells=60, max_file_bytes=path.stat().st_size)
    result = read_order_files([path], limits=limits)
    assert result.files[0].status == "read" and len(result.lines) == 6


def test_the_row_limit_stops_reading_a_sheet_early(tmp_path):
    """1 M styled empty rows of one cell each: the limit trips long before the end of the sheet."""
    path = tmp_path / "styled.xlsx"
    cells = lambda: (f'<row r="{n}"><c r="A{n}" t="inlineStr"><is><t> </t></is></c></row>' for n in range(4, 1_000_004))
    path.write_bytes(xlsx_bytes(Sheet("Orders", sheet_rows(good_rows("S")), tail=cells)))
    started = time.perf_counter()
    result = read_order_files([path], limits=InputLimits(max_rows=1000))
    assert "more than 1,000 rows" in rejected(result, path)
    assert time.perf_counter() - started < 5  # the whole sheet takes ~30 s through openpyxl


def test_a_zip_bomb_is_refused_from_the_archive_directory_without_inflating_it(tmp_path):
    path = tmp_path / "bomb.xlsx"
    path.write_bytes(zip_bomb(256 * 1024**2))
    started = time.perf_counter()
    result = read_order_files([path])
    message = rejected(result, path)
    assert "zip bomb" in message and "W365_LIMITS__MAX_XLSX_COMPRESSION_RATIO" in message
    assert time.perf_counter() - started < 1  # inflating 256 MiB alone takes longer
    # with the ratio raised, the size limit still holds
    result = read_order_files([path], limits=InputLimits(max_xlsx_compression_ratio=10_000,
                                                         max_xlsx_uncompressed_bytes=100 * 1024**2))
    assert "W365_LIMITS__MAX_XLSX_UNCOMPRESSED_BYTES" in rejected(result, path)


def test_empty_styled_rows_are_not_rows(tmp_path):
    path = tmp_path / "formatted.xlsx"
    path.write_bytes(xlsx_bytes(Sheet("Orders", sheet_rows(good_rows("F")), tail=_styled_empty_rows(4, 200_000))))
    result = read_order_files([path], limits=InputLimits(max_rows=10))
    assert result.files[0].status == "read" and result.lines["row_number"].tolist() == [2, 3]


def test_limits_are_settings_from_toml_and_environment(tmp_path, monkeypatch):
    config = tmp_path / "w365etl.toml"
    config.write_text("[limits]\nmax_rows = 1000\nmax_xlsx_compression_ratio = 50\n")
    monkeypatch.setenv("W365_LIMITS__MAX_ROWS", "2000")
    limits = load_settings(config).limits.input_limits()
    assert limits.max_rows == 2000  # the environment wins over the file
    assert limits.max_xlsx_compression_ratio == 50
    assert limits.max_file_bytes == InputLimits().max_file_bytes == 2 * 1024**3
    monkeypatch.setenv("W365_LIMITS__MAX_CELLS", "0")
    with pytest.raises(SettingsError, match="W365_LIMITS__MAX_CELLS"):
        load_settings(config)


def test_the_defaults_suit_a_nightly_batch_of_millions_of_lines():
    limits = InputLimits()
    assert limits.max_rows >= 10_000_000 and limits.max_cells >= 25 * limits.max_rows
    assert limits.max_file_bytes >= 2 * 1024**3 and limits.max_xlsx_compression_ratio == 100


_SUFFIXES = st.sampled_from([".csv", ".xlsx"])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.one_of(
    st.binary(max_size=400),
    st.lists(st.sampled_from(list(',;\t"\r\n ab1.-\x00\x07é€') + ["Quantity", "Order ID", "Customer", "Status"]),
             max_size=120).map(lambda tokens: "".join(tokens).encode("utf-8")),
    st.builds(lambda cut, junk: xlsx_bytes(Sheet("Orders", sheet_rows(good_rows("Z"))))[:cut] + junk,
              st.integers(0, 3000), st.binary(max_size=50)),
), suffix=_SUFFIXES)
def test_whatever_a_file_holds_reading_it_never_raises(tmp_path, data, suffix):
    path = tmp_path / f"fuzz{suffix}"
    path.write_bytes(data)
    result = read_order_files([path])
    record = result.files[0]
    assert record.status in ("read", "rejected")
    for message in result.file_issues["message"]:
        assert "\n" not in message and "Traceback" not in message and message
    if record.status == "rejected":
        assert len(result.file_issues) == 1 and result.lines.empty
