"""SPEC §5 large runs: the workbook's sheets are cut to ``report_max_rows`` *before* they are
formatted (``build_sheets(max_rows=…)``), and the workbook is the same one the writer's own cut
would give — same rows, same "showing the first N of M rows" line — while the csv outputs stay
complete. Runs the flow's stages as a dry run (no database) on sample_data/.
"""

from __future__ import annotations

import datetime as dt
import zipfile
from dataclasses import replace

import pytest

from tests.conftest import SAMPLE_DATA
from w365etl import provisioning
from w365etl.adapters.reports_xlsx import write_workbook
from w365etl.reference import read_reference_dir
from w365etl.settings import load_settings

AS_OF = dt.date(2026, 11, 29)
FILES = [SAMPLE_DATA / "d365_order_products_export.xlsx", SAMPLE_DATA / "dataverse_salesorders.csv",
         SAMPLE_DATA / "dataverse_salesorderdetails.csv"]


@pytest.fixture(scope="module")
def dry_run_parts():
    from flows import provision_orders as stages

    settings = load_settings(SAMPLE_DATA / "w365etl.toml")
    reference = read_reference_dir(SAMPLE_DATA / "reference")
    ingest, line_issues = stages.read_orders.fn(FILES, settings)
    lines = stages.add_waiting_lines.fn(None, ingest.lines)
    state = stages.load_state.fn(None, lines, reference, True)
    plan = stages.make_plan.fn(lines, line_issues, state, settings, AS_OF)
    planned_all = stages.persist_plan.fn(None, "cut", plan)
    planned = planned_all[planned_all["bucket"] == "planned"]
    results = stages.provision.fn(None, "cut", plan, planned, {})
    lines, issues = provisioning.apply_results(plan, planned, results, keep_line_ids=False, line_pks=None)

    def build(max_sheet_rows):
        return provisioning.build_outputs(
            run_id="cut", plan=plan, lines=lines, line_issues=issues, file_issues=ingest.file_issues,
            files=[], headers=ingest.headers, fulfilled=None, stored_contracts=state.contracts,
            provider_modes={}, is_dry_run=True, max_sheet_rows=max_sheet_rows)

    return build


def _sheet_xml(path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as archive:
        return {name: archive.read(name) for name in archive.namelist() if name.startswith("xl/")}


@pytest.mark.parametrize("cap", [1, 3, 7])
def test_sheets_cut_early_give_the_same_workbook_as_the_writers_cut(dry_run_parts, tmp_path, cap):
    whole = dry_run_parts(None)
    cut = dry_run_parts(cap)
    by_name = {sheet.name: sheet for sheet in cut.sheets}
    shortened = [name for name, sheet in ((s.name, s) for s in whole.sheets) if len(sheet.frame) > cap]
    assert shortened, "the sample must have sheets longer than the cap, or this test proves nothing"
    for sheet in whole.sheets:
        early = by_name[sheet.name]
        assert early.row_count == len(sheet.frame)  # the full count survives the cut
        if early.total_rows is None:  # small by nature (summary, contracts, mappings) or the csv's own frame
            assert early.frame.equals(sheet.frame), sheet.name
        else:  # cut before formatting: exactly the first rows the writer would have shown
            assert len(early.frame) == min(len(sheet.frame), cap), sheet.name
    assert {s.name for s in cut.sheets if s.total_rows is not None} == {
        "Fulfilled Orders", "Subscriptions", "One-Time Charges", "Manual Tasks"}
    write_workbook(tmp_path / "late.xlsx", whole.sheets, max_rows=cap)
    write_workbook(tmp_path / "early.xlsx", cut.sheets, max_rows=cap)
    late_parts, early_parts = _sheet_xml(tmp_path / "late.xlsx"), _sheet_xml(tmp_path / "early.xlsx")
    assert early_parts == late_parts
    assert any(b"Showing the first" in part for part in early_parts.values())
    # the csv outputs are built from the whole run either way
    assert cut.exceptions.equals(whole.exceptions)
    assert cut.summary == whole.summary


def test_a_sheet_with_a_total_says_it_is_cut_even_when_its_frame_fits(tmp_path):
    """A frame already cut by the builder still carries the 'showing the first' line."""
    import pandas as pd

    from w365etl.report.cells import Sheet

    sheet = Sheet("Subscriptions", pd.DataFrame({"a": ["x", "y"]}), total_rows=5)
    write_workbook(tmp_path / "w.xlsx", [sheet], max_rows=2)
    xml = b"".join(_sheet_xml(tmp_path / "w.xlsx").values())
    assert b"Showing the first 2 of 5 rows" in xml
    uncut = replace(sheet, total_rows=None)
    write_workbook(tmp_path / "v.xlsx", [uncut], max_rows=2)
    assert b"Showing the first" not in b"".join(_sheet_xml(tmp_path / "v.xlsx").values())
