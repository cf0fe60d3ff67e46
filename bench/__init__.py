"""Benchmarks of w365etl: ``make bench`` (``python -m bench.run``).

Speed is measured here, never in timed tests. Every benchmark reports ratios against a
baseline measured (or configured) in the same run, writes its figures to
``bench/results/<name>.json`` and its table to ``docs/benchmarks.md``; see ``bench/run.py``.
"""
