"""Run the benchmarks: ``python -m bench.run [--only NAME] [--quick] [--list]`` (``make bench``).

A benchmark is a module listed in ``BENCHMARKS`` with a function ``run(*, quick: bool) -> dict``
returning:

- ``title`` — one line; ``status`` — ``PASS``, ``FAIL`` (the bar is not met; never an exception)
  or ``INFO`` (no bar); ``headline`` — the figure that matters, one line;
- ``columns`` and ``rows`` — the table (rows are lists, in column order);
- ``config`` — what was measured with (limits, latency, durations…);
- ``method`` — markdown: how it is measured and what the ratio is against;
- ``notes`` — optional list of markdown lines (observations of this run).

The runner adds the machine (CPU count and model, Python, platform), the date and the wall
time, writes ``bench/results/<name>.json`` and replaces the benchmark's section of
``docs/benchmarks.md`` (between ``<!-- bench:<name>:start -->`` and ``…:end -->``; the rest of
the file is left as written). ``--quick`` is a smoke run: shorter windows, figures go to
``bench/results/tmp/`` (ignored by git) and the docs are not touched.

Exit status: 0 when every benchmark ran (a FAIL is a result, not a crash), 1 when one raised.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import json
import os
import platform
import re
import sys
import time
import traceback
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
DOCS = ROOT / "docs" / "benchmarks.md"

#: name → module with ``run(*, quick)``; add a benchmark by adding a line here
BENCHMARKS: dict[str, str] = {
    "partner_center_throughput": "bench.partner_center_throughput",
    "pipeline_scale": "bench.pipeline_scale",
}

DOC_HEADER = """# Benchmarks

Speed is measured here, never in timed tests. Each benchmark reports **ratios against a
baseline measured or configured in the same run** (so figures from different machines can be
compared), writes its figures to `bench/results/<name>.json` and its table below, with the
machine it ran on.

```sh
make bench                                               # every benchmark
.venv/bin/python -m bench.run --only partner_center_throughput
.venv/bin/python -m bench.run --quick                    # smoke run: short windows, results in bench/results/tmp/, docs untouched
.venv/bin/python -m bench.run --list
```

A benchmark whose bar is not met prints `FAIL` and still exits 0 (the figure is the result);
the runner exits 1 only when a benchmark raised. The sections below are rewritten by
`bench/run.py` between their markers; text outside the markers is kept.
"""


def machine() -> dict[str, Any]:
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace").splitlines():
            if line.lower().startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        model = platform.processor() or "unknown"
    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "cpu_count": os.cpu_count(),
        "cpus_usable": affinity,
        "cpu_model": model,
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
    }


def describe_machine(info: dict[str, Any]) -> str:
    return (f"{info['cpu_count']} CPUs ({info['cpus_usable']} usable), {info['cpu_model']}; "
            f"{info['implementation']} {info['python']}; {info['platform']}")


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.1f}" if abs(value) >= 100 else f"{value:.2f}"
    return str(value)


def markdown_table(columns: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(columns) + " |", "|" + "|".join("---" for _ in columns) + "|"]
    lines += ["| " + " | ".join(_cell(value).replace("|", "\\|") for value in row) + " |" for row in rows]
    return "\n".join(lines)


def text_table(columns: list[str], rows: list[list[Any]]) -> str:
    cells = [[str(c) for c in columns]] + [[_cell(value) for value in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(columns))]
    out = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in cells]
    out.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(out)


def render_section(result: dict[str, Any]) -> str:
    name = result["name"]
    parts = [f"<!-- bench:{name}:start -->", f"## {result['title']} (`{name}`)", ""]
    parts.append(f"**{result['status']}** — {result['headline']}")
    parts.append("")
    parts.append(f"Run {result['date']} on {describe_machine(result['machine'])}; "
                 f"wall time {result['duration_seconds']:.0f} s. Figures: `bench/results/{name}.json`.")
    parts.append("")
    parts.append(markdown_table(result["columns"], result["rows"]))
    parts.append("")
    if result.get("config"):
        parts.append("Configuration: " + ", ".join(f"`{key}` = {value}" for key, value in result["config"].items()) + ".")
        parts.append("")
    if result.get("method"):
        parts.append("### How it is measured")
        parts.append("")
        parts.append(result["method"].strip())
        parts.append("")
    if result.get("notes"):
        parts.append("### Observations")
        parts.append("")
        parts.extend(f"- {note}" for note in result["notes"])
        parts.append("")
    parts.append(f"<!-- bench:{name}:end -->")
    return "\n".join(parts)


def update_docs(result: dict[str, Any], path: Path = DOCS) -> None:
    text = path.read_text(encoding="utf-8") if path.exists() else DOC_HEADER
    section = render_section(result)
    name = re.escape(result["name"])
    pattern = re.compile(rf"<!-- bench:{name}:start -->.*?<!-- bench:{name}:end -->", re.DOTALL)
    if pattern.search(text):
        text = pattern.sub(lambda _: section, text)
    else:
        text = text.rstrip("\n") + "\n\n" + section
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text.rstrip("\n") + "\n", encoding="utf-8")


def run_one(name: str, *, quick: bool) -> dict[str, Any]:
    module = importlib.import_module(BENCHMARKS[name])
    started = time.monotonic()
    result = module.run(quick=quick)
    return {"name": name, "date": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
            "machine": machine(), "quick": quick,
            "duration_seconds": round(time.monotonic() - started, 1), **result}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description="Run w365etl's benchmarks.")
    parser.add_argument("--only", action="append", choices=sorted(BENCHMARKS), metavar="NAME",
                        help=f"run only this benchmark (repeatable): {', '.join(sorted(BENCHMARKS))}")
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: short windows; results in bench/results/tmp/, docs untouched")
    parser.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    args = parser.parse_args(argv)
    if args.list:
        for name, module in BENCHMARKS.items():
            print(f"{name}\t{module}")
        return 0
    names = args.only or list(BENCHMARKS)
    print(f"machine: {describe_machine(machine())}", flush=True)
    summary: list[list[Any]] = []
    crashed = False
    for name in names:
        print(f"\n=== {name}{' (quick)' if args.quick else ''} ===", flush=True)
        try:
            result = run_one(name, quick=args.quick)
        except Exception:  # noqa: BLE001 - one benchmark's crash is reported, the others still run
            traceback.print_exc()
            summary.append([name, "ERROR", "raised (see traceback above)", "-"])
            crashed = True
            continue
        folder = RESULTS / "tmp" if args.quick else RESULTS
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / f"{name}.json"
        target.write_text(json.dumps(result, indent=2, default=str) + "\n", encoding="utf-8")
        if not args.quick:
            update_docs(result)
        print(text_table(result["columns"], result["rows"]), flush=True)
        summary.append([name, result["status"], result["headline"], f"{result['duration_seconds']:.0f} s"])
        print(f"-> {target.relative_to(ROOT)}" + ("" if args.quick else f", {DOCS.relative_to(ROOT)}"), flush=True)
    print("\n=== summary ===")
    print(text_table(["benchmark", "status", "headline", "wall"], summary))
    return 1 if crashed else 0


if __name__ == "__main__":
    sys.exit(main())
