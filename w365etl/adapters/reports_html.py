"""Writes ``report.html`` (SPEC §5 outputs): one self-contained page a person opens after a run.

The page says what happened and what to do next, without the docs: the run's notices first
(DRY RUN / SANDBOX / RECORD), a verdict, "What to do next" (the Summary sheet's own
:func:`~w365etl.report.sheets.next_steps`), the counts of lines and orders by outcome with
what each outcome means, contracts, subscriptions, charges, two charts (lines per outcome,
exceptions per reason), the files read or rejected, the customers waiting for a provider
mapping and the top exceptions grouped by severity and suggested action.

Self-contained and offline: no script, no external stylesheet, font or image. The charts are
PNGs drawn with matplotlib's Agg canvas (object API, no pyplot, so no global state) and
inlined as ``data:`` URIs; a Content-Security-Policy forbids every other source. Every value
that comes from the input is HTML-escaped. The file is written beside its target and renamed
into place, so a reader never sees half a page.
"""

from __future__ import annotations

import base64
import html
import io
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import pandas as pd

from w365etl.report.build import EXCEPTION_COLUMNS
from w365etl.report.sheets import next_steps

__all__ = ["write_html_report", "EXCEPTION_ROWS_SHOWN", "MAPPING_ROWS_SHOWN"]

#: rows of the exception table on the page; exceptions.csv always has them all
EXCEPTION_ROWS_SHOWN = 200
MAPPING_ROWS_SHOWN = 200

LINE_OUTCOMES: dict[str, tuple[str, str]] = {
    "provisioned": ("#2e7d32", "provisioned in this run: subscriptions, quantity changes or one-time charges were created"),
    "already_provisioned": ("#78909c", "provisioned by an earlier run; nothing was done again"),
    "skipped": ("#b0bec5", "the order is Fulfilled, Invoiced or Canceled in D365, so it was left alone"),
    "held": ("#f9a825", "waiting: another line of its order was rejected, or the customer needs a provider mapping"),
    "rejected": ("#c62828", "wrong data: fix it in D365 and re-export (see the exceptions below)"),
    "failed": ("#6a1b9a", "the provider refused the line; it is tried again on the next run that carries it"),
}
ORDER_OUTCOMES: dict[str, tuple[str, str]] = {
    "fulfilled": ("#2e7d32", "every line provisioned: re-import as Fulfilled / Complete (order_status_updates.csv)"),
    "already_fulfilled": ("#78909c", "every line was provisioned by an earlier run"),
    "provisioned_not_fulfilled": ("#00897b", "every line provisioned, but the order says Fulfill Order = No"),
    "held": ("#f9a825", "not fulfilled: a line is held or rejected"),
    "skipped": ("#b0bec5", "Fulfilled, Invoiced or Canceled in D365"),
    "failed": ("#6a1b9a", "a line failed at the provider; retried on the next run"),
}
#: counts in "lines"/"orders" that are not outcomes but part of the input, with what they mean
SUB_COUNTS = {
    "reevaluated": "lines waiting from earlier runs (held for a mapping, or failed), taken again from the "
                   "database without their file; already counted in the outcomes above",
}
SEVERITY_COLOURS = {"error": "#c62828", "warning": "#f9a825"}
_SEVERITY_RANK = {"error": 0, "warning": 1}

_CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'"

_CSS = """
:root { --ink:#1d2329; --muted:#5f6b76; --line:#dde3e8; --bg:#f6f8fa; }
* { box-sizing: border-box; }
body { margin:0; background:var(--bg); color:var(--ink);
  font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Noto Sans", "DejaVu Sans", Arial, sans-serif; }
main { max-width: 1220px; margin: 0 auto; padding: 20px 24px 48px; }
h1 { font-size: 24px; margin: 4px 0 2px; }
h2 { font-size: 18px; margin: 0 0 10px; }
.meta { color: var(--muted); margin: 0 0 14px; }
.meta span + span::before { content: " · "; }
section, .card { background:#fff; border:1px solid var(--line); border-radius:8px; padding:16px 18px; margin:0 0 16px; }
.notice { background:#fff3cd; border:1px solid #f0d48a; border-left:8px solid #f9a825; border-radius:6px;
  padding:10px 14px; margin:0 0 10px; font-weight:600; }
.verdict { border-radius:8px; padding:14px 18px; margin:0 0 16px; font-size:17px; }
.verdict.attention { background:#fdecea; border:1px solid #f3b8b3; border-left:8px solid #c62828; }
.verdict.ok { background:#e8f5e9; border:1px solid #b5dcb8; border-left:8px solid #2e7d32; }
.verdict b { font-size:18px; }
.next ol { margin:0; padding-left:22px; } .next li { margin:4px 0; }
.grid { display:grid; grid-template-columns: repeat(auto-fit, minmax(340px, 1fr)); gap:16px; margin:0 0 16px; align-items:start; }
.grid > section { margin:0; }
.tiles { display:grid; grid-template-columns: repeat(auto-fit, minmax(150px, 1fr)); gap:10px; }
.tile { border:1px solid var(--line); border-radius:6px; padding:8px 12px; }
.tile .n { font-size:24px; font-weight:700; } .tile .l { color:var(--muted); font-size:13px; }
table { border-collapse:collapse; width:100%; }
th, td { text-align:left; vertical-align:top; padding:5px 8px; border-bottom:1px solid var(--line); }
th { font-size:13px; color:var(--muted); font-weight:600; }
td.num, th.num { text-align:right; font-variant-numeric: tabular-nums; white-space:nowrap; }
td.why { color:var(--muted); font-size:13px; }
tr.total td { font-weight:700; border-top:2px solid var(--line); }
tr.group th { background:#f1f4f7; color:var(--ink); font-size:14px; padding-top:8px; }
.swatch { display:inline-block; width:11px; height:11px; border-radius:2px; margin-right:6px; vertical-align:baseline; }
.pill { display:inline-block; padding:0 7px; border-radius:9px; color:#fff; font-size:12px; font-weight:600; }
.pill.error { background:#c62828; } .pill.warning { background:#b7791f; }
.pill.read { background:#2e7d32; } .pill.rejected { background:#c62828; } .pill.duplicate { background:#78909c; }
tr.bad td { background:#fdecea; }
.note { color:var(--muted); font-size:13px; margin:8px 0 0; }
.chart img { width:100%; height:auto; display:block; }
table.exc { table-layout: fixed; }
.exc td { font-size:13px; overflow-wrap:anywhere; } .exc td code { font-size:11.5px; }
code { font-family: ui-monospace, "DejaVu Sans Mono", Menlo, Consolas, monospace; font-size: 12.5px; }
.wrap { overflow-x:auto; }
@media print { body { background:#fff; } section, .card { break-inside: avoid; } }
"""


def write_html_report(path: Path, summary: dict, exceptions: pd.DataFrame, needs_mapping: pd.DataFrame) -> None:
    """Write the run's ``report.html`` to ``path`` (atomically)."""
    path = Path(path)
    page = render_html_report(summary, exceptions, needs_mapping)
    partial = path.with_name(path.name + ".partial")
    try:
        partial.write_text(page, encoding="utf-8")
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)


def render_html_report(summary: dict, exceptions: pd.DataFrame, needs_mapping: pd.DataFrame) -> str:
    """The page as text (see the module docstring)."""
    run_id = _text(summary.get("run_id"))
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        '<meta name="referrer" content="no-referrer">',
        f"<title>w365etl run {_e(run_id)}</title>",
        f"<style>{_CSS}</style>",
        "</head><body><main>",
    ]
    parts.extend(_notices(summary))
    parts.append(_header(summary))
    parts.append(_verdict(summary))
    parts.append(_next_steps(summary))
    parts.append(_counts(summary))
    parts.append(_charts(summary, exceptions))
    parts.append(_files(summary))
    parts.append(_mapping(summary, needs_mapping))
    parts.append(_exceptions(summary, exceptions))
    parts.extend(_notices(summary))  # said again at the bottom: a printout keeps it on the last page too
    parts.append("</main></body></html>\n")
    return "\n".join(part for part in parts if part)


# --- page sections ---------------------------------------------------------------------------

def _notices(summary: dict) -> list[str]:
    return [f'<div class="notice" role="alert">{_e(notice)}</div>' for notice in summary.get("notices") or []]


def _header(summary: dict) -> str:
    bits = [f"<span>as of {_e(summary.get('as_of'))}</span>",
            f"<span>{'dry run (nothing written)' if summary.get('dry_run') else 'real run'}</span>"]
    for code, adapter in sorted((summary.get("provider_modes") or {}).items()):
        bits.append(f"<span>provider {_e(code)}: {_e(adapter)}</span>")
    return (f"<h1>Provisioning run {_e(summary.get('run_id'))}</h1>"
            f'<p class="meta">{"".join(bits)}</p>')


def _verdict(summary: dict) -> str:
    lines, orders = summary["lines"], summary["orders"]
    rejected_files = [item for item in summary.get("files", []) if item.get("status") == "rejected"]
    problems = []
    if rejected_files:
        problems.append(f"{len(rejected_files):,} file(s) rejected whole")
    for name, label in (("rejected", "rejected"), ("held", "held"), ("failed", "failed at the provider")):
        if lines.get(name):
            problems.append(f"{_n(lines[name])} line(s) {label}")
    mapping = summary.get("customers_needing_provider_mapping", 0)
    if mapping:
        problems.append(f"{_n(mapping)} customer(s) need a provider mapping")
    would = "would be " if summary.get("dry_run") else ""
    what = (f"{_n(lines.get('provisioned'))} of {_n(lines.get('input'))} line(s) {would}provisioned, "
            f"{_n(orders.get('fulfilled'))} of {_n(orders.get('input'))} order(s) {would}fulfilled.")
    if problems:
        return (f'<div class="verdict attention"><b>Needs attention:</b> {_e("; ".join(problems))}.<br>'
                f"{_e(what)}</div>")
    return f'<div class="verdict ok"><b>Nothing is waiting on you.</b> {_e(what)}</div>'


def _next_steps(summary: dict) -> str:
    steps = list(next_steps(summary))
    rejected_files = [item for item in summary.get("files", []) if item.get("status") == "rejected"]
    if rejected_files:
        steps.insert(0, f"{len(rejected_files)} file(s) could not be read at all and none of their rows were "
                        "counted: see Files below, fix or re-export them and run them again.")
    if not steps:
        steps = ["Nothing: every line is accounted for and nothing waits for a fix."]
    items = "".join(f"<li>{_e(step)}</li>" for step in steps)
    return f'<section class="next"><h2>What to do next</h2><ol>{items}</ol></section>'


def _counts(summary: dict) -> str:
    lines = _outcome_table("Lines", summary["lines"], LINE_OUTCOMES)
    orders = _outcome_table("Orders", summary["orders"], ORDER_OUTCOMES)
    tiles = [
        ("billing contracts created", summary["billing_contracts"].get("created")),
        ("billing contracts reused", summary["billing_contracts"].get("reused")),
        ("subscriptions created", summary["subscriptions"].get("created")),
        ("subscriptions updated", summary["subscriptions"].get("updated")),
        ("one-time charges created", summary["one_time_charges"].get("created")),
        ("customers needing a provider mapping", summary.get("customers_needing_provider_mapping")),
    ]
    tile_html = "".join(f'<div class="tile"><div class="n">{_n(count)}</div><div class="l">{_e(label)}</div></div>'
                        for label, count in tiles)
    heading = "What this run would create" if summary.get("dry_run") else "What this run created"
    return (f'<div class="grid">{lines}{orders}</div>'
            f'<section><h2>{_e(heading)}</h2><div class="tiles">{tile_html}</div></section>')


def _outcome_table(title: str, counts: dict, meanings: dict[str, tuple[str, str]]) -> str:
    rows = []
    for name, (colour, meaning) in meanings.items():
        count = counts.get(name, 0)
        rows.append(f'<tr><td><span class="swatch" style="background:{colour}"></span>{_e(_label(name))}</td>'
                    f'<td class="num">{_n(count)}</td><td class="why">{_e(meaning)}</td></tr>')
    rows.append(f'<tr class="total"><td>{_e(title.lower())} in</td><td class="num">{_n(counts.get("input"))}</td>'
                f'<td class="why">each one ended in exactly one of the rows above</td></tr>')
    for name, count in counts.items():  # sub-counts (not outcomes), and keys newer than this page
        if name != "input" and name not in meanings:
            rows.append(f'<tr><td>of which {_e(_label(name))}</td><td class="num">{_n(count)}</td>'
                        f'<td class="why">{_e(SUB_COUNTS.get(name, ""))}</td></tr>')
    return (f"<section><h2>{_e(title)} by outcome</h2><table>"
            f'<tr><th>outcome</th><th class="num">count</th><th>what it means</th></tr>{"".join(rows)}</table></section>')


def _charts(summary: dict, exceptions: pd.DataFrame) -> str:
    lines = summary["lines"]
    names = list(LINE_OUTCOMES)  # the outcomes only: a sub-count such as "reevaluated" is not a bar
    values = [int(lines.get(name, 0) or 0) for name in names]
    if sum(values):
        png = _bar_chart_png(
            [_label(name) for name in names], values,
            [LINE_OUTCOMES[name][0] for name in names])
        alt = "Lines per outcome: " + ", ".join(f"{_label(n)} {v}" for n, v in zip(names, values))
        left = _chart_figure(png, alt)
    else:
        left = '<p class="note">No lines were read in this run.</p>'

    by_reason = {code: int(count) for code, count in (summary.get("exceptions_by_reason") or {}).items() if count}
    if by_reason:
        severity = _severity_by_code(by_reason, exceptions)
        ordered = sorted(by_reason, key=lambda code: (_SEVERITY_RANK.get(severity[code], 2), -by_reason[code], code))
        png = _bar_chart_png(
            ordered, [by_reason[code] for code in ordered],
            [SEVERITY_COLOURS.get(severity[code], "#90a4ae") for code in ordered])
        alt = "Exceptions per reason: " + ", ".join(f"{code} {by_reason[code]}" for code in ordered)
        right = (_chart_figure(png, alt) + '<p class="note"><span class="swatch" style="background:#c62828"></span>error: '
                 'needs a fix &nbsp; <span class="swatch" style="background:#f9a825"></span>warning: skipped or '
                 "waiting (held)</p>")
    else:
        right = '<p class="note">No exceptions in this run.</p>'
    return (f'<div class="grid"><section class="chart"><h2>Lines per outcome</h2>{left}</section>'
            f'<section class="chart"><h2>Exceptions per reason</h2>{right}</section></div>')


def _chart_figure(png: bytes, alt: str) -> str:
    data = base64.b64encode(png).decode("ascii")
    return f'<img alt="{_e(alt)}" src="data:image/png;base64,{data}">'


def _files(summary: dict) -> str:
    files = summary.get("files") or []
    if not files:
        return '<section><h2>Files</h2><p class="note">No files were given.</p></section>'
    rows = []
    for item in files:
        status = _text(item.get("status"))
        notes = []
        if item.get("error"):
            notes.append(f"<b>{_e(item['error'])}</b>")
        if item.get("unknown_columns"):
            notes.append("unknown columns ignored: " + ", ".join(f"<code>{_e(c)}</code>" for c in item["unknown_columns"]))
        layout = " / ".join(_text(item.get(key)) or "-" for key in ("layout", "dialect"))
        rows.append(
            f'<tr class="{"bad" if status == "rejected" else ""}"><td><code>{_e(item.get("path"))}</code></td>'
            f'<td><span class="pill {_e(status)}">{_e(status)}</span></td>'
            f'<td class="num">{_n(item.get("rows"))}</td><td>{_e(layout)}</td><td>{"<br>".join(notes)}</td></tr>')
    return ('<section><h2>Files</h2><div class="wrap"><table><tr><th>file</th><th>status</th>'
            '<th class="num">rows</th><th>layout / dialect</th><th>error, unknown columns</th></tr>'
            f'{"".join(rows)}</table></div><p class="note">A rejected file is not read at all: none of its rows are '
            "counted above. A duplicate was already imported earlier.</p>" + _warnings(summary) + "</section>")


def _warnings(summary: dict) -> str:
    """What reading the files set aside without an exception row (a sheet skipped, an order
    with no lines ignored)."""
    warnings = summary.get("warnings") or []
    if not warnings:
        return ""
    items = "".join(f"<li>{_e(warning)}</li>" for warning in warnings)
    return f'<h3>Set aside while reading ({len(warnings):,})</h3><ul class="warnings">{items}</ul>'


def _mapping(summary: dict, needs_mapping: pd.DataFrame) -> str:
    if needs_mapping is None or needs_mapping.empty:
        return ""
    columns = [("customer_name", "customer"), ("customer_id", "CRM account id"), ("provider", "provider"),
               ("reason_code", "reason"), ("held_orders", "held orders"), ("held_lines", "held lines")]
    frame = needs_mapping.reindex(columns=[name for name, _ in columns])
    shown = frame.head(MAPPING_ROWS_SHOWN)
    body = "".join(
        "<tr>" + "".join(
            f'<td class="num">{_n(row[name])}</td>' if name == "held_lines" else f"<td>{_e(row[name])}</td>"
            for name, _ in columns) + "</tr>"
        for _, row in shown.iterrows())
    head = "".join(f'<th class="{"num" if name == "held_lines" else ""}">{_e(label)}</th>' for name, label in columns)
    cut = (f" Showing {len(shown):,} of {len(frame):,}." if len(frame) > len(shown) else "")
    return (f'<section id="mapping"><h2>Customers needing a provider mapping ({len(frame):,})</h2>'
            f'<div class="wrap"><table><tr>{head}</tr>{body}</table></div>'
            f'<p class="note">Fill in <code>provider_customer_id</code> in <a href="needs_provider_mapping.csv">'
            f"needs_provider_mapping.csv</a> (in this folder) and load it as provider_accounts.csv "
            f"(<code>w365etl reference load</code>); the held orders go through on the next run that carries them."
            f"{cut}</p></section>")


def _exceptions(summary: dict, exceptions: pd.DataFrame) -> str:
    total = 0 if exceptions is None else len(exceptions)
    if not total:
        return '<section id="exceptions"><h2>Exceptions</h2><p class="note">None.</p></section>'
    frame = exceptions.reindex(columns=EXCEPTION_COLUMNS)
    severity = frame["severity"].astype("string").fillna("")
    action = frame["suggested_action"].astype("string").fillna("")
    keyed = frame.assign(sort_rank=severity.map(_SEVERITY_RANK).fillna(2).astype(int), sort_severity=severity, sort_action=action)
    ordered = keyed.sort_values(["sort_rank", "sort_action", "reason_code", "file", "row"], kind="stable", na_position="last")
    group_sizes = keyed.groupby(["sort_severity", "sort_action"], sort=False).size()
    shown = ordered.head(EXCEPTION_ROWS_SHOWN)

    widths = (17, 16, 10, 11, 10, 10, 26)
    titles = ("reason", "where (file · sheet · row)", "order", "customer", "column", "value", "message")
    head = ("<colgroup>" + "".join(f'<col style="width:{width}%">' for width in widths) + "</colgroup><tr>"
            + "".join(f"<th>{_e(title)}</th>" for title in titles) + "</tr>")
    rows, group = [], None
    for record in shown.itertuples(index=False):
        key = (record.sort_severity, record.sort_action)
        if key != group:
            group = key
            count = int(group_sizes.get(key, 0))
            sev = record.sort_severity or "unknown"
            rows.append(f'<tr class="group"><th colspan="7"><span class="pill {_e(sev)}">{_e(sev)}</span> '
                        f"{_e(record.sort_action or 'no suggested action')} "
                        f'<span class="note">({count:,} row(s) in all)</span></th></tr>')
        file = _text(record.file)
        where = " · ".join(part for part in (_base_name(file), _text(record.sheet),
                                             f"row {_text(record.row)}" if _text(record.row) else "") if part)
        rows.append(
            f'<tr><td><code>{_e(record.reason_code)}</code></td><td title="{_e(file)}">{_e(where)}</td>'
            f"<td>{_e(record.order_number)}</td><td>{_e(record.customer_name)}</td><td>{_e(record.column)}</td>"
            f'<td>{_e(record.value)}</td><td class="msg">{_e(record.message)}</td></tr>')
    if total > len(shown):
        note = (f"Showing the first {len(shown):,} of {total:,} exceptions (errors first, then by suggested action). "
                'The complete list is <a href="exceptions.csv">exceptions.csv</a> in this folder.')
    else:
        note = (f"All {total:,} exceptions are shown (errors first, then by suggested action); "
                '<a href="exceptions.csv">exceptions.csv</a> in this folder has the same rows with every column.')
    return (f'<section id="exceptions"><h2>Top exceptions ({total:,} in all)</h2><p class="note">{note}</p>'
            f'<div class="wrap"><table class="exc">{head}{"".join(rows)}</table></div></section>')


# --- charts ----------------------------------------------------------------------------------

def _bar_chart_png(labels: Sequence[str], values: Sequence[int], colours: Sequence[str]) -> bytes:
    """A horizontal bar chart as PNG bytes, drawn on matplotlib's Agg canvas (no pyplot, no global state)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    height = 0.9 + 0.36 * len(labels)
    figure = Figure(figsize=(6.4, height), dpi=150, layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    positions = list(range(len(labels)))
    bars = axes.barh(positions, values, color=list(colours), height=0.66)
    axes.set_yticks(positions, labels=[_plain(label) for label in labels])
    axes.invert_yaxis()
    axes.bar_label(bars, labels=[f"{value:,}" for value in values], padding=3, fontsize=10)
    axes.set_xlim(0, max(max(values, default=0), 1) * 1.15)
    axes.xaxis.get_major_locator().set_params(integer=True)
    axes.tick_params(labelsize=10)
    for side in ("top", "right"):
        axes.spines[side].set_visible(False)
    axes.grid(axis="x", color="#e3e8ec", linewidth=0.8)
    axes.set_axisbelow(True)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", facecolor="white", metadata={"Software": None})
    return buffer.getvalue()


# --- helpers ---------------------------------------------------------------------------------

def _severity_by_code(codes: Iterable[str], exceptions: pd.DataFrame) -> dict[str, str]:
    from w365etl.reasons import severity_of

    known: dict[str, str] = {}
    if exceptions is not None and not exceptions.empty and {"reason_code", "severity"} <= set(exceptions.columns):
        pairs = exceptions[["reason_code", "severity"]].dropna().drop_duplicates("reason_code")
        known = dict(zip(pairs["reason_code"].astype(str), pairs["severity"].astype(str)))
    result = {}
    for code in codes:
        try:
            result[code] = str(severity_of(code))
        except ValueError:  # a code newer than this module: take the rows' word for it
            result[code] = known.get(code, "error")
    return result


def _text(value: object) -> str:
    if value is None:
        return ""
    try:
        if pd.isna(value):
            return ""
    except (TypeError, ValueError):
        pass
    return str(value)


def _e(value: object) -> str:
    return html.escape(_text(value), quote=True)


def _n(value: object) -> str:
    text = _text(value)
    try:
        return f"{int(text):,}"
    except ValueError:
        return html.escape(text)


def _base_name(path: str) -> str:
    return path.replace("\\", "/").rsplit("/", 1)[-1]


def _label(name: str) -> str:
    return str(name).replace("_", " ")


def _plain(text: str) -> str:
    """Chart text is never mathtext."""
    return str(text).replace("$", r"\$")
