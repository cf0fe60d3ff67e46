"""``report.html``: a self-contained page a person understands without the docs.

The inputs are built by hand (a summary shaped like ``build_summary``'s output and small
frames), so these tests need neither the pipeline nor a database. The last test opens the page
in headless Chromium and keeps its screenshot under ``test-artifacts/`` at the repository root.
"""

from __future__ import annotations

import base64
import io
import os
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import matplotlib.image
import numpy as np
import pandas as pd
import pytest

from w365etl.adapters.reports_html import EXCEPTION_ROWS_SHOWN, write_html_report
from w365etl.reasons import ReasonCode, severity_of, suggested_action_of
from w365etl.report.build import EXCEPTION_COLUMNS
from w365etl.report.sheets import next_steps

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts" / "report_html"
CHROMIUM = Path("/usr/bin/chromium")

HOSTILE_CUSTOMER = "<script>alert('pwned')</script> & Sons \"Ltd\""
HOSTILE_FILE = "inbox/<img src=x onerror=alert(1)>.csv"
HOSTILE_MESSAGE = 'see <a href="https://evil.example/x">here</a> <img src="http://evil.example/p.png">'
NOTICES = [
    "DRY RUN: nothing was written to the database and no provider was called; counts say what a real run "
    "would do if every provider accepted every line.",
    "SANDBOX: partner_center lines went to the local Partner Center simulator, not to Microsoft.",
]


def make_summary(exception_counts: dict[str, int], *, notices=NOTICES, dry_run=True) -> dict:
    return {
        "run_id": "20261129T010203Z-abc123",
        "as_of": "2026-11-29",
        "dry_run": dry_run,
        "notices": list(notices),
        "provider_modes": {"manual": "manual", "partner_center": "sandbox"},
        "files": [
            {"path": "inbox/orders.xlsx", "sha256": "a" * 64, "layout": "flat", "dialect": "display", "rows": 57,
             "status": "read", "error": None, "unknown_columns": ["Owner", "<b>Territory</b>"]},
            {"path": HOSTILE_FILE, "sha256": "b" * 64, "layout": None, "dialect": None, "rows": 0,
             "status": "rejected", "error": "MISSING_COLUMN: no column for quantity <Quantity>", "unknown_columns": []},
        ],
        "lines": {"input": 57, "provisioned": 31, "already_provisioned": 4, "skipped": 6, "held": 9,
                  "rejected": 5, "failed": 2, "reevaluated": 11},
        "orders": {"input": 23, "fulfilled": 9, "already_fulfilled": 2, "provisioned_not_fulfilled": 1,
                   "held": 7, "skipped": 3, "failed": 1},
        "customers_needing_provider_mapping": 2,
        "billing_contracts": {"created": 13, "reused": 7},
        "subscriptions": {"created": 27, "updated": 3},
        "one_time_charges": {"created": 4},
        "exceptions_by_reason": {str(code): 0 for code in ReasonCode} | exception_counts,
    }


def exception_rows(counts: dict[str, int]) -> pd.DataFrame:
    rows = []
    for code, count in counts.items():
        for i in range(count):
            rows.append({
                "run_id": "20261129T010203Z-abc123", "severity": str(severity_of(code)), "reason_code": code,
                "file": "inbox/orders.xlsx", "row": i + 2, "sheet": "Order Products",
                "order_number": f"ORD-{i:05d}", "line_key": f"line-{code}-{i}",
                "customer_name": HOSTILE_CUSTOMER if i == 0 else f"Customer {i}",
                "column": "Quantity", "value": "=1+1" if i == 0 else str(i),
                "message": HOSTILE_MESSAGE if i == 0 else f"problem {i}",
                "suggested_action": suggested_action_of(code),
            })
    frame = pd.DataFrame(rows, columns=EXCEPTION_COLUMNS)
    return frame.astype({"row": "Int64"})


def needs_mapping_rows() -> pd.DataFrame:
    return pd.DataFrame({
        "customer_name": [HOSTILE_CUSTOMER, "Trey Research"], "customer_id": ["", "5f1c"],
        "provider": ["partner_center", "partner_center"], "provider_customer_id": ["", ""],
        "reason_code": ["NEEDS_PROVIDER_MAPPING", "PROVIDER_MAPPING_INVALID"],
        "held_orders": ["ORD-00001; ORD-00002", "ORD-00009"], "held_lines": pd.array([5, 4], dtype="Int64"),
    })


COUNTS = {"INVALID_QUANTITY": 3, "UNKNOWN_PRODUCT": 2, "ORDER_HAS_REJECTED_LINES": 7,
          "NEEDS_PROVIDER_MAPPING": 2, "ORDER_CANCELED": 6, "PROVIDER_ERROR": 2}


@pytest.fixture
def report(tmp_path) -> tuple[Path, str, dict]:
    summary = make_summary(COUNTS)
    path = tmp_path / "report.html"
    write_html_report(path, summary, exception_rows(COUNTS), needs_mapping_rows())
    return path, path.read_text(encoding="utf-8"), summary


class Tags(HTMLParser):
    """Every real start tag with its attributes (escaped text never shows up here)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    handle_startendtag = handle_starttag


def parse(page: str) -> list[tuple[str, dict[str, str | None]]]:
    parser = Tags()
    parser.feed(page)
    return parser.tags


def visible_text(page: str) -> str:
    without_style = re.sub(r"<style>.*?</style>", " ", page, flags=re.S)
    import html

    return html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", without_style)))


def test_the_page_opens_with_the_notices_then_says_what_to_do_next(report):
    path, page, summary = report
    text = visible_text(page)
    first_notice = text.index(NOTICES[0])
    assert text.index(NOTICES[1]) > first_notice
    assert first_notice < text.index("Provisioning run 20261129T010203Z-abc123")
    assert text.index("What to do next") < text.index("Lines by outcome")
    for step in next_steps(summary):  # the Summary sheet's own words
        assert step in text
    assert "1 file(s) could not be read at all" in text
    assert "Needs attention:" in text and "5 line(s) rejected" in text and "2 customer(s) need a provider mapping" in text
    assert not path.with_name("report.html.partial").exists()


def test_the_page_shows_every_count_of_the_summary(report):
    _, page, summary = report
    text = visible_text(page)
    for group, outcomes in (("Lines", summary["lines"]), ("Orders", summary["orders"])):
        section = text[text.index(f"{group} by outcome"):]
        for name, count in outcomes.items():
            label = {"input": f"{group.lower()} in", "reevaluated": "of which reevaluated"}.get(name, name.replace("_", " "))
            assert re.search(rf"{re.escape(label)} {count}\b", section), (group, name, count)
    for count, label in ((13, "billing contracts created"), (7, "billing contracts reused"),
                         (27, "subscriptions created"), (3, "subscriptions updated"),
                         (4, "one-time charges created"), (2, "customers needing a provider mapping")):
        assert f"{count} {label}" in text
    files = text[text.index("Files file status rows"):]
    assert "inbox/orders.xlsx read 57 flat / display unknown columns ignored: Owner , <b>Territory</b>" in files
    assert f"{HOSTILE_FILE} rejected 0 - / - MISSING_COLUMN: no column for quantity <Quantity>" in files


def test_both_charts_are_inline_pngs_drawn_by_matplotlib(report):
    _, page, _ = report
    images = [attrs for tag, attrs in parse(page) if tag == "img"]
    assert len(images) == 2
    for attrs in images:
        assert attrs["src"].startswith("data:image/png;base64,")
        png = base64.b64decode(attrs["src"].split(",", 1)[1], validate=True)
        width, height, _ = decode_png(png)
        assert width > 300 and height > 100
    assert images[0]["alt"] == ("Lines per outcome: provisioned 31, already provisioned 4, skipped 6, held 9, "
                                "rejected 5, failed 2")  # outcomes only, not the "reevaluated" sub-count
    exceptions_alt = images[1]["alt"]
    assert exceptions_alt.startswith("Exceptions per reason: ")
    # non-zero reasons only, errors first
    assert "ORDER_INVOICED" not in exceptions_alt and "PROVIDER_ERROR 2" in exceptions_alt
    assert exceptions_alt.index("INVALID_QUANTITY 3") < exceptions_alt.index("ORDER_HAS_REJECTED_LINES 7")


def test_text_from_the_input_is_escaped(report):
    _, page, _ = report
    assert "<script" not in page.lower()
    assert HOSTILE_CUSTOMER not in page and "&lt;script&gt;alert(&#x27;pwned&#x27;)&lt;/script&gt; &amp; Sons" in page
    assert "<img src=x" not in page and "&lt;img src=x onerror=alert(1)&gt;.csv" in page
    assert "<b>Territory</b>" not in page and "<Quantity>" not in page
    tags = parse(page)
    assert {tag for tag, _ in tags} <= {
        "html", "head", "meta", "title", "style", "body", "main", "div", "h1", "h2", "p", "span", "section",
        "ol", "li", "table", "colgroup", "col", "tr", "th", "td", "b", "br", "code", "img", "a"}
    assert [attrs["href"] for tag, attrs in tags if tag == "a"] == [
        "needs_provider_mapping.csv", "exceptions.csv"]
    assert not [attrs for _, attrs in tags if any(name.startswith("on") for name in attrs)]


def test_nothing_is_loaded_from_the_network(report):
    _, page, _ = report
    # every src/href attribute of every real tag: inline data or a file in the run's folder
    for tag in re.findall(r"<[a-zA-Z][^<>]*>", page):
        for name, value in re.findall(r"""\b(src|href|srcset|action|data)\s*=\s*["']?([^"'\s>]*)""", tag):
            assert not re.match(r"(?i)\s*(https?:|//|ftp:|ws)", value), (name, value, tag[:120])
            if name == "src":
                assert value.startswith("data:image/png;base64,")
    assert not re.search(r"(?i)url\(|@import|<link\b|<script\b|<iframe\b|<object\b|<embed\b", page)
    csp = [attrs["content"] for tag, attrs in parse(page)
           if tag == "meta" and attrs.get("http-equiv") == "Content-Security-Policy"]
    assert csp and "default-src 'none'" in csp[0] and "img-src data:" in csp[0]
    # only the escaped hostile message mentions a URL, and as text
    assert set(re.findall(r"https?://[^\s\"'<&]*", page)) == {"https://evil.example/x", "http://evil.example/p.png"}


def test_customers_needing_a_mapping_are_listed(report):
    _, page, _ = report
    text = visible_text(page)
    section = text[text.index("Customers needing a provider mapping (2)"):text.index("Top exceptions")]
    assert f"{HOSTILE_CUSTOMER} partner_center NEEDS_PROVIDER_MAPPING ORD-00001; ORD-00002 5" in section
    assert "Trey Research 5f1c partner_center PROVIDER_MAPPING_INVALID ORD-00009 4" in section


def test_exceptions_are_sorted_by_severity_then_action_and_capped(tmp_path):
    counts = {"INVALID_VALUE": 150, "ORDER_HAS_REJECTED_LINES": 120, "AMOUNT_MISMATCH": 90}
    frame = exception_rows(counts).sample(frac=1, random_state=7)  # the writer sorts
    path = tmp_path / "report.html"
    write_html_report(path, make_summary(counts, notices=[], dry_run=False), frame, needs_mapping_rows().head(0))
    page = path.read_text(encoding="utf-8")
    text = visible_text(page)
    table = page[page.index('<table class="exc">'):]
    rows = re.findall(r"<tr><td><code>([A-Z_]+)</code>", table)
    assert len(rows) == EXCEPTION_ROWS_SHOWN
    # errors first, then by suggested action: "Correct the value…" < "Recalculate the order…"
    assert rows == ["INVALID_VALUE"] * 150 + ["AMOUNT_MISMATCH"] * 50
    assert f"Showing the first {EXCEPTION_ROWS_SHOWN} of 360 exceptions" in text
    assert "The complete list is exceptions.csv in this folder." in text
    assert "(150 row(s) in all)" in text and "(90 row(s) in all)" in text
    assert "Customers needing a provider mapping" not in text
    assert "DRY RUN" not in text and "Import order_status_updates.csv into D365" in text


def test_a_clean_run_says_nothing_is_waiting(tmp_path):
    summary = make_summary({}, notices=[], dry_run=False)
    summary["files"] = summary["files"][:1]
    summary["lines"] = {"input": 3, "provisioned": 3, "already_provisioned": 0, "skipped": 0, "held": 0,
                        "rejected": 0, "failed": 0}
    summary["orders"] = {"input": 1, "fulfilled": 1, "already_fulfilled": 0, "provisioned_not_fulfilled": 0,
                         "held": 0, "skipped": 0, "failed": 0}
    summary["customers_needing_provider_mapping"] = 0
    path = tmp_path / "report.html"
    write_html_report(path, summary, exception_rows({}), needs_mapping_rows().head(0))
    text = visible_text(path.read_text(encoding="utf-8"))
    assert "Nothing is waiting on you. 3 of 3 line(s) provisioned, 1 of 1 order(s) fulfilled." in text
    assert "No exceptions in this run." in text
    assert len([t for t, _ in parse(path.read_text(encoding="utf-8")) if t == "img"]) == 1


def test_what_reading_set_aside_is_listed_escaped(tmp_path):
    """SPEC §2.1: an order with no lines is "ignored with a warning" — the page says so too."""
    summary = make_summary({})
    summary["warnings"] = ["Order 'SO-9' (orders.csv, row 7) has no lines in this run; it is ignored.",
                           f"{HOSTILE_FILE}: sheet 'Notes' skipped."]
    path = tmp_path / "report.html"
    write_html_report(path, summary, exception_rows({}), needs_mapping_rows())
    html = path.read_text(encoding="utf-8")
    text = visible_text(html)
    assert "Set aside while reading (2)" in text
    assert "Order 'SO-9' (orders.csv, row 7) has no lines in this run; it is ignored." in text
    assert "<img src=x" not in html


def test_chromium_renders_the_page(report):
    if not CHROMIUM.exists():
        reason = (f"{CHROMIUM} is not installed (apt-get install chromium): report.html was not rendered "
                  "in a browser")
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"CI=true: {reason}")
        pytest.skip(reason)
    path, _, _ = report
    if ARTIFACTS.exists():
        shutil.rmtree(ARTIFACTS)
    ARTIFACTS.mkdir(parents=True)
    page = shutil.copy(path, ARTIFACTS / "report.html")
    screenshot = ARTIFACTS / "report.png"
    profile = path.parent / "chromium-profile"
    command = [
        str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--disable-dev-shm-usage", "--hide-scrollbars", f"--user-data-dir={profile}",
        f"--screenshot={screenshot}", "--window-size=1280,2000", Path(page).resolve().as_uri(),
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=path.parent)
    print(f"\nreport.html screenshot: {screenshot}")
    assert screenshot.exists(), f"no screenshot (exit {result.returncode}):\n{result.stderr[-3000:]}"
    size = screenshot.stat().st_size
    assert size > 20_000, f"screenshot is only {size} bytes"
    width, height, pixels = decode_png(screenshot.read_bytes())
    assert (width, height) == (1280, 2000)
    colours, counts = np.unique(pixels, return_counts=True)
    assert len(colours) > 50, "the screenshot is (nearly) a single colour"
    assert counts.max() < 0.9 * pixels.size, "the screenshot is (nearly) a single colour"
    # the page's own colours made it to the screen: the notice banner and the charts' bars
    for name, colour in (("notice banner", 0xFFF3CD), ("provisioned bar", 0x2E7D32), ("error bar", 0xC62828)):
        assert np.count_nonzero(pixels == colour) > 500, f"{name} #{colour:06x} is not on the screenshot"


def decode_png(data: bytes) -> tuple[int, int, np.ndarray]:
    """Width, height and the pixels as one packed 0xRRGGBB integer each (decoded by matplotlib/Pillow)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    image = matplotlib.image.imread(io.BytesIO(data), format="png")
    rgb = np.rint(image[..., :3] * 255).astype(np.uint32) if image.dtype.kind == "f" else image[..., :3].astype(np.uint32)
    height, width = rgb.shape[:2]
    return width, height, (rgb[..., 0] << 16 | rgb[..., 1] << 8 | rgb[..., 2]).ravel()
