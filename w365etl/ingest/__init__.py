"""Ingest: order files (CSV, xlsx) → normalised lines, issues and file records (SPEC §2.1)."""

from w365etl.ingest.read import read_order_files
from w365etl.ingest.result import FileRecord, IngestResult, issues_per_line

__all__ = ["FileRecord", "IngestResult", "issues_per_line", "read_order_files"]
