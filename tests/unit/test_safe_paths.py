"""Where a run's files land (report folder, inbox): run ids, business dates and file names that
come from outside can never put a file outside its folder or past the file system's name limit."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from w365etl.adapters import inbox
from w365etl.safe_paths import NAME_MAX_BYTES, UnsafePath, business_date, check_run_id, fitting_name, report_folder

HOSTILE_RUN_IDS = ["../x", "..", ".", "", "/etc", "a/b", "a\\b", "x" * 65, "-rf", "~root", "run id", "rün",
                   "..\\..\\x", "\x00", "20261129T180000Z-abc/../../x"]


@pytest.mark.parametrize("run_id", HOSTILE_RUN_IDS)
def test_a_hostile_run_id_never_names_a_folder(tmp_path, run_id):
    with pytest.raises(UnsafePath, match="run id"):
        report_folder(tmp_path / "out", run_id)


def test_a_generated_run_id_names_a_folder_inside_out(tmp_path):
    from flows.provision_orders import new_run_id

    run_id = new_run_id(dt.date(2026, 11, 29))
    assert check_run_id(run_id) == run_id
    assert report_folder(tmp_path / "out", run_id) == tmp_path / "out" / run_id


def test_a_report_folder_that_is_a_link_out_of_out_is_refused(tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "out" / "20261129T180000Z-abcdef").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(UnsafePath, match="outside"):
        report_folder(tmp_path / "out", "20261129T180000Z-abcdef")


@pytest.mark.parametrize("value, expected", [
    (None, dt.date(2026, 1, 2)), ("", dt.date(2026, 1, 2)), ("2026-11-29", dt.date(2026, 11, 29)),
    (dt.date(2026, 11, 29), dt.date(2026, 11, 29)), (dt.datetime(2026, 11, 29, 23, 59), dt.date(2026, 11, 29)),
])
def test_a_business_date_is_a_date(value, expected):
    assert business_date(value, today=dt.date(2026, 1, 2)) == expected


@pytest.mark.parametrize("value", ["../../etc", "2026-13-01", "29/11/2026", "2026-11-29/../x", 20261129])
def test_a_business_date_that_is_not_a_date_is_refused(value):
    with pytest.raises(UnsafePath, match="YYYY-MM-DD"):
        business_date(value)


# file names: any text a file system holds (no "/" and no NUL), of any length in characters
NAMES = st.text(st.characters(exclude_characters="/\x00", exclude_categories=("Cs",)), min_size=1,
                max_size=300).filter(lambda name: name not in (".", ".."))  # no directory entry has these names


@settings(max_examples=200, deadline=None)
@given(name=NAMES, room=st.integers(0, 40))
def test_a_fitted_name_leaves_room_and_keeps_what_identifies_the_file(name, room):
    fitted = fitting_name(name, room=room)
    assert len(fitted.encode("utf-8")) <= NAME_MAX_BYTES - room
    assert "/" not in fitted and fitted not in ("", ".", "..")
    if len(name.encode("utf-8")) <= NAME_MAX_BYTES - room:
        assert fitted == name
    else:
        stem, dot, extension = name.rpartition(".")
        if dot and stem and len(extension) <= 16:
            assert fitted.endswith("." + extension)
        assert "…" in fitted


def test_a_long_name_in_the_rejected_folder_keeps_its_error_file_and_its_numbering(tmp_path):
    """Names at the limit: the rejected file, its ``.error.txt`` and the free name ``.1`` all fit."""
    root = tmp_path / "inbox"
    root.mkdir()
    long_name = "é" * 120 + "x" * 6 + ".xlsx"   # 251 bytes: ".error.txt" alone would not fit
    for night in (1, 2):
        (root / long_name).write_bytes(b"not a workbook %d" % night)
        batch = inbox.claim(root, f"run-{night}", is_dry_run=False)
        [claimed] = batch.order_files
        inbox.settle(batch, {claimed: ("rejected", f"night {night}: not a workbook")}, "2026-11-29")
    rejected = sorted(path.name for path in (root / "rejected").iterdir())
    assert len(rejected) == 4
    assert all(len(name.encode("utf-8")) <= NAME_MAX_BYTES for name in rejected)
    errors = [name for name in rejected if name.endswith(".error.txt")]
    assert len(errors) == 2
    assert {(root / "rejected" / name).read_text(encoding="utf-8").split(":")[0] for name in errors} == {
        "night 1", "night 2"}
    for name in errors:
        assert (root / "rejected" / name.removesuffix(".error.txt")).is_file()
    assert all(name.startswith("éééé") for name in rejected)
    assert not list(root.glob("*.xlsx")) and not (root / "processing" / "run-2").exists()


@pytest.mark.parametrize("run_id", ["../../etc", "/etc/x", ".."])
def test_report_refuses_a_hostile_run_id_before_it_opens_the_database(tmp_path, monkeypatch, run_id):
    from typer.testing import CliRunner

    from w365etl.cli import app

    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["report", run_id, "--db", f"sqlite:///{tmp_path / 'runs.sqlite'}",
                                      "--out", "out"])
    assert result.exit_code == 2
    assert "is not a run id" in result.output and "Traceback" not in result.output
    assert list(tmp_path.iterdir()) == []  # no database file, no report folder
