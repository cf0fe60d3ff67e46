"""Ingest: order files (CSV, xlsx) → normalised lines, issues and file records (SPEC §2.1).

The file reader itself is an adapter (``w365etl.adapters.order_files``); this package takes
tables of cell text from it and does the rest.
"""

from w365etl.ingest.read import read_order_files
from w365etl.ingest.result import FileRecord, IngestResult, issues_per_line
from w365etl.ingest.tables import InputLimits

__all__ = ["FileRecord", "IngestResult", "InputLimits", "issues_per_line", "read_order_files"]
