"""Partitioned reading of big flat CSV exports — step 'read orders' for a run over
``partition_lines`` lines (issue 7: a file bigger than memory).

The exports are streamed twice and never held whole:

1. **scan** — each file is hashed (sha256, as the inbox and run history record it) and checked
   as the whole-file reader checks it (text encoding, no NUL byte, header, limits); then its
   records are streamed in blocks with Arrow's CSV reader and each kept row gets its tie keys
   (order, customer, line id; :mod:`w365etl.partitions`).
2. **split** — the files are streamed again and each row is appended, as cell text with its
   spreadsheet row number and its position in the run, to its partition's Arrow IPC file in a
   private spill folder.

Each partition is then read back as the ordinary ingest reads a file (same :class:`RawTable`,
same path and row numbers in every message), so the rules and reports cannot tell the
difference. Anything this streaming reader does not reproduce exactly — xlsx, an orders +
lines pair, a header with blank cells, ragged rows, mixed encodings, a file over a limit — is
:class:`NotPartitioned`: the run then reads its files whole, as before, and gets the whole-file
reader's exact messages.
"""

from __future__ import annotations

import codecs
import csv
import ctypes
import gc
import hashlib
import os
import shutil
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.ipc as ipc

from w365etl.adapters.order_files import _UTF8_SEQUENCE, _sniff_delimiter
from w365etl.adapters.process_owners import is_gone, owner_record, process_space
from w365etl.ingest.headers import match_headers
from w365etl.ingest.layouts import missing_fields
from w365etl.ingest.read import read_order_files as normalise
from w365etl.ingest.result import IngestResult
from w365etl.ingest.tables import FileContent, InputLimits, RawTable
from w365etl.partitions import KEY_FIELDS, Partitions, RowKeys, assign_partitions, customer_ties, row_keys

#: bytes read per block while hashing
_READ_BYTES = 16 << 20
#: Arrow's CSV block size while streaming (rows of one block are keyed and split together)
_BLOCK_BYTES = 8 << 20
#: a flat export row is longer than this: files smaller than partition_lines × this are read whole
MIN_ROW_BYTES = 40
#: workbooks are always read whole (their rows cannot be streamed)
_WORKBOOK_SUFFIXES = (".xlsx", ".xlsm", ".xls")
#: columns of the spill files besides the cells
ROW_NUMBER, LINE_INDEX = "__row_number", "__line_index"
#: spill folders: ``<spill_dir>/w365etl-partitions-*``, each with the machine and process owning it
SPILL_PREFIX, OWNER_FILE = "w365etl-partitions-", "owner"


class NotPartitioned(Exception):
    """The run's files are read whole instead; the message says why (it is logged, as a
    warning when the files are big: reading them whole takes memory in proportion)."""

    def __init__(self, message: str, *, is_big: bool = False) -> None:
        super().__init__(message)
        self.is_big = is_big


@dataclass
class CsvFile:
    """What the scan learned about one export."""

    path: str
    sha256: str
    encoding: str
    delimiter: str
    skip_lines: int
    headers: list[str]
    positions: dict[str, int]
    #: hubs of the kept (non-blank) rows, block by block, in file order
    hubs: list[np.ndarray] = field(default_factory=list)
    rows: int = 0

    @property
    def header_row(self) -> int:
        return self.skip_lines + 1


@dataclass
class PartitionedInput:
    """The run's lines split into partitions in a spill folder (removed by :meth:`close`)."""

    folder: Path
    files: list[CsvFile]
    partitions: Partitions
    #: partition of each waiting line (rows of ``waiting``; empty when there are none)
    waiting_partition: np.ndarray
    file_lines: int

    @property
    def count(self) -> int:
        return self.partitions.count

    def spill_path(self, file_position: int, partition: int) -> Path:
        return self.folder / f"p{partition:05d}-f{file_position:03d}.arrow"

    def read_file(self, partition: int):
        """An ``OrderFileReader`` that gives a file's rows of one partition, under its own
        path, sha256 and row numbers (the ingest cannot tell it from the whole file)."""
        # the ingest reads the run's paths in order, once each (a path given twice, twice)
        by_path: dict[str, list[int]] = {}
        for position, item in enumerate(self.files):
            by_path.setdefault(item.path, []).append(position)

        def read(path, *, number_locale: str = "en-US", limits: InputLimits | None = None) -> FileContent:
            position = by_path[str(path)].pop(0)
            item = self.files[position]
            table = _read_spill(self.spill_path(position, partition), len(item.headers))
            cells = pd.DataFrame({index: table.column(f"c{index}").to_pandas().astype("str")
                                  for index in range(len(item.headers))})
            rows = table.column(ROW_NUMBER).to_numpy()
            raw = RawTable(item.path, None, list(item.headers), cells, rows, item.header_row)
            return FileContent(item.path, item.sha256, "csv", [raw])

        return read

    def line_indexes(self, partition: int) -> np.ndarray:
        """The run-wide position of each line of a partition, in the order the ingest numbers
        them (file by file, row by row)."""
        parts = [_read_spill(self.spill_path(position, partition), len(item.headers)).column(LINE_INDEX).to_numpy()
                 for position, item in enumerate(self.files)]
        return np.concatenate(parts) if parts else np.empty(0, dtype=np.int64)

    def close(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


def _read_spill(path: Path, width: int) -> pa.Table:
    if not path.exists():
        columns = {f"c{index}": pa.array([], pa.string()) for index in range(width)}
        return pa.table(columns | {ROW_NUMBER: pa.array([], pa.int64()), LINE_INDEX: pa.array([], pa.int64())})
    with pa.memory_map(str(path)) as source:
        return ipc.open_file(source).read_all()


def may_partition(paths, partition_lines: int) -> bool:
    """Cheap first look (file names and sizes only): could these files hold more than
    ``partition_lines`` lines of CSV? Only then is a split worth scanning for."""
    try:
        sizes = [Path(path).stat().st_size for path in paths
                 if Path(path).suffix.lower() not in _WORKBOOK_SUFFIXES]
    except OSError:
        return False  # the whole-file reader says what is wrong with the path
    return bool(paths) and len(sizes) == len(paths) and sum(sizes) >= partition_lines * MIN_ROW_BYTES


def split_files(paths: list[Path], *, partition_lines: int, limits: InputLimits, waiting: pd.DataFrame | None = None,
                stored_customers: pd.DataFrame | None = None, spill_dir: Path | None = None) -> PartitionedInput:
    """Scan and split the run's files; raises :class:`NotPartitioned` when they are small or not
    plain flat CSV exports. ``waiting``: the stored waiting lines' key columns (``KEY_FIELDS``),
    which join the partition of their order or customer. ``stored_customers``
    (``crm_customer_id``, ``customer_name``): a stored customer ties its id to its name."""
    if not paths:
        raise NotPartitioned("no files")
    for path in paths:
        path = Path(path)
        if path.suffix.lower() in _WORKBOOK_SUFFIXES or not path.is_file():
            raise NotPartitioned(f"{path} is not a CSV file")
        if path.stat().st_size > limits.max_file_bytes:
            raise NotPartitioned(f"{path} is over limits.max_file_bytes")
    if not may_partition(paths, partition_lines):
        raise NotPartitioned("the files are small enough to read whole")
    try:
        return _split_files(paths, partition_lines, limits, waiting, stored_customers, spill_dir)
    except NotPartitioned as error:
        error.is_big = "fit in one partition" not in str(error)
        raise


def _split_files(paths, partition_lines: int, limits: InputLimits, waiting: pd.DataFrame | None,
                 stored_customers: pd.DataFrame | None, spill_dir: Path | None) -> PartitionedInput:
    files = [_inspect(Path(path)) for path in paths]
    blocks: list[RowKeys] = []
    offset = 0
    for item in files:
        offset = _scan(item, limits, offset, blocks)
    if offset <= partition_lines:
        raise NotPartitioned(f"{offset} lines fit in one partition")
    waiting_rows = 0
    if waiting is not None and len(waiting):
        waiting_rows = len(waiting)
        columns = {name: pa.array(waiting[name].astype("string").fillna(""), pa.string()) for name in KEY_FIELDS}
        blocks.append(row_keys(columns, np.arange(offset, offset + waiting_rows, dtype=np.uint64)))
    ties = None
    if stored_customers is not None and len(stored_customers):
        ties = customer_ties(pa.array(stored_customers["crm_customer_id"].astype("string").fillna(""), pa.string()),
                             pa.array(stored_customers["customer_name"].astype("string").fillna(""), pa.string()))
    partitions = assign_partitions(blocks, partition_lines, ties)
    waiting_partition = (partitions.partition_of(blocks[-1].hubs) if waiting_rows
                         else np.empty(0, dtype=np.int32))
    try:
        if spill_dir is not None:
            Path(spill_dir).mkdir(parents=True, exist_ok=True)
        remove_stale_spills(Path(spill_dir or tempfile.gettempdir()))
        folder = Path(tempfile.mkdtemp(prefix=SPILL_PREFIX, dir=spill_dir))
        (folder / OWNER_FILE).write_text(owner_record(), encoding="utf-8")
    except OSError as error:
        raise NotPartitioned(f"no spill folder in {spill_dir or tempfile.gettempdir()}: {error}") from None
    result = PartitionedInput(folder, files, partitions, waiting_partition, offset)
    try:
        line_offset = 0
        for position, item in enumerate(files):
            line_offset = _split(item, position, result, line_offset)
    except OSError as error:  # a full disk, say: the run reads its files whole instead
        result.close()
        raise NotPartitioned(f"cannot write partitions to {folder}: {error}") from None
    except BaseException:
        result.close()
        raise
    for item in files:
        item.hubs = []  # what the split needed; the partitions keep the rest
    return result


def return_freed_memory() -> None:
    """Between partitions: give the heap that the last partition's frames used back to the
    operating system. The C allocator keeps freed memory for reuse, fragmented between the
    few objects that outlive a partition, and a run of many partitions then grows by some of
    each one's peak (measured: ~0.09 GB per 500 000-line partition without this)."""
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: nothing to ask
        pass


def remove_stale_spills(parent: Path) -> list[Path]:
    """Remove the spill folders of partitioned runs that were killed (a run removes its own when
    it ends, however it ends, but not when it is killed).

    A folder is stale only when its owner file names this very process space — the machine's
    name, its boot and its process namespace (two containers can share a host name and a spill
    volume, each with its own process numbers) — and a process number that no longer exists
    there. A folder of a run still going, of another machine, boot or container, or without an
    owner file is left alone; where the process space cannot be told (not Linux), nothing is
    removed (``process_owners.is_gone``)."""
    if process_space() is None:
        return []
    removed = []
    for folder in parent.glob(f"{SPILL_PREFIX}*"):
        try:
            record = (folder / OWNER_FILE).read_text(encoding="utf-8")
        except (OSError, ValueError):
            continue
        if is_gone(record):
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed


def _inspect(path: Path) -> CsvFile:
    """sha256, encoding and header of one export, reading it block by block."""
    digest = hashlib.sha256()
    decoder = codecs.getincrementaldecoder("utf-8")()
    is_utf8, has_utf8_sequence = True, False
    head = b""
    with path.open("rb") as source:
        while chunk := source.read(_READ_BYTES):
            digest.update(chunk)
            if len(head) < 1 << 20:
                head += chunk[: (1 << 20) - len(head)]
            if b"\x00" in chunk:
                raise NotPartitioned(f"{path} holds a NUL byte")
            if is_utf8:
                try:
                    decoder.decode(chunk)
                except UnicodeDecodeError:
                    is_utf8 = False
            has_utf8_sequence = has_utf8_sequence or bool(_UTF8_SEQUENCE.search(chunk))
    if is_utf8:
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            is_utf8 = False
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise NotPartitioned(f"{path} is UTF-16")
    if not is_utf8 and has_utf8_sequence:
        raise NotPartitioned(f"{path} mixes text encodings")
    encoding = "utf8" if is_utf8 else "cp1252"
    text = head.decode("utf-8" if is_utf8 else "cp1252", errors="replace").removeprefix("\ufeff")
    skipped, start = 0, 0
    while True:
        end = text.find("\n", start)
        if end < 0:
            raise NotPartitioned(f"{path}: no complete header line in its first megabyte")
        line = text[start : end + 1]
        if line.strip(" \t\r\n,;\ufeff"):
            break
        start, skipped = end + 1, skipped + 1
    header_line = line.rstrip("\r\n")
    delimiter = _sniff_delimiter(header_line)
    if delimiter is None or header_line.count('"') % 2:
        raise NotPartitioned(f"{path}: its header line is not a plain delimited line")
    headers = next(csv.reader([header_line], delimiter=delimiter))
    if not headers or any(not header.strip() for header in headers):
        raise NotPartitioned(f"{path}: its header has blank cells")
    match = match_headers(headers)
    if match.ambiguous or not match.has_quantity or missing_fields(set(match.positions)):
        raise NotPartitioned(f"{path} is not a complete flat export")
    return CsvFile(str(path), digest.hexdigest(), encoding, delimiter, skipped, headers, dict(match.positions))


def _batches(item: CsvFile):
    names = [f"c{index}" for index in range(len(item.headers))]
    try:
        reader = pacsv.open_csv(
            item.path,
            # one block at a time: threads read blocks ahead, and memory grows with the file
            read_options=pacsv.ReadOptions(column_names=names, skip_rows=item.skip_lines + 1, use_threads=False,
                                           block_size=_BLOCK_BYTES, encoding=item.encoding),
            parse_options=pacsv.ParseOptions(delimiter=item.delimiter, quote_char='"', double_quote=True,
                                             newlines_in_values=True, ignore_empty_lines=False),
            convert_options=pacsv.ConvertOptions(column_types={name: pa.string() for name in names},
                                                 strings_can_be_null=False, quoted_strings_can_be_null=False),
            memory_pool=_reader_pool(),
        )
        for batch in reader:
            yield batch
    except (pa.ArrowInvalid, UnicodeError, OSError) as error:
        raise NotPartitioned(f"{item.path}: {str(error).splitlines()[0]}") from None


def _reader_pool() -> pa.MemoryPool:
    """jemalloc for the streaming reader where Arrow has it: its blocks come and go, and the
    system allocator keeps what they freed (measured: RSS grew with the file instead of staying
    flat at about 0.5 GB)."""
    try:
        return pa.jemalloc_memory_pool()
    except (NotImplementedError, pa.ArrowNotImplementedError):
        return pa.default_memory_pool()


def _kept(batch: pa.RecordBatch) -> np.ndarray:
    """Rows with something in them (blank rows are dropped, as the whole-file reader does).

    Column by column, only the rows still blank so far are looked at: the first column rules
    out nearly every row, so the others cost next to nothing."""
    blank = np.arange(batch.num_rows)  # positions of the rows blank in every column so far
    for column in batch.columns:
        cells = column if len(blank) == batch.num_rows else column.take(pa.array(blank))
        empty = pc.fill_null(pc.equal(pc.utf8_trim_whitespace(cells), ""), False)
        blank = blank[empty.to_numpy(zero_copy_only=False)]
        if not len(blank):
            break
    kept = np.ones(batch.num_rows, dtype=bool)
    kept[blank] = False
    return kept


def _scan(item: CsvFile, limits: InputLimits, offset: int, blocks: list[RowKeys]) -> int:
    records = 0
    for batch in _batches(item):
        records += batch.num_rows
        if records > limits.max_rows or records * len(item.headers) > limits.max_cells:
            raise NotPartitioned(f"{item.path} is over the row or cell limit")
        kept = _kept(batch)
        columns = {name: pc.filter(batch.column(item.positions[name]), pa.array(kept))
                   if name in item.positions else None for name in KEY_FIELDS}
        count = int(kept.sum())
        keys = row_keys(columns, np.arange(offset, offset + count, dtype=np.uint64))
        blocks.append(keys)
        item.hubs.append(keys.hubs)
        offset += count
        item.rows += count
    return offset


def _split(item: CsvFile, position: int, result: PartitionedInput, line_offset: int) -> int:
    writers: dict[int, ipc.RecordBatchFileWriter] = {}
    row_offset = item.header_row + 1
    try:
        for block, batch in enumerate(_batches(item)):
            kept = _kept(batch)
            rows = np.arange(row_offset, row_offset + batch.num_rows, dtype=np.int64)[kept]
            row_offset += batch.num_rows
            cells = pa.Table.from_batches([batch]).filter(pa.array(kept))
            lines = np.arange(line_offset, line_offset + len(rows), dtype=np.int64)
            line_offset += len(rows)
            partition = result.partitions.partition_of(item.hubs[block])
            order = np.argsort(partition, kind="stable")
            table = cells.take(pa.array(order)).append_column(ROW_NUMBER, pa.array(rows[order])) \
                .append_column(LINE_INDEX, pa.array(lines[order]))
            bounds = np.searchsorted(partition[order], np.arange(result.count + 1))
            for target in np.flatnonzero(np.diff(bounds)):
                piece = table.slice(bounds[target], bounds[target + 1] - bounds[target])
                writer = writers.get(target)
                if writer is None:
                    writer = writers[target] = ipc.new_file(str(result.spill_path(position, target)), piece.schema)
                writer.write_table(piece)
    finally:
        for writer in writers.values():
            writer.close()
    return line_offset


def read_partition(split: PartitionedInput, partition: int, paths, *, number_locale: str = "en-US",
                   date_order: str = "MDY", limits: InputLimits | None = None) -> IngestResult:
    """The ingest of one partition: the run's files, each holding only this partition's rows,
    with every line numbered by its place in the whole run (so partitions sort back together)."""
    ingest = normalise(paths, read_file=split.read_file(partition), number_locale=number_locale,
                       date_order=date_order, limits=limits)
    places = split.line_indexes(partition)
    lines = ingest.lines.assign(line_index=places[ingest.lines["line_index"].to_numpy(dtype=np.int64)])
    issues = ingest.issues
    if len(issues) and "line_index" in issues.columns:
        local = issues["line_index"]
        known = local.notna()
        mapped = pd.Series(pd.NA, index=issues.index, dtype=local.dtype)
        mapped[known] = places[local[known].astype("int64").to_numpy()]
        issues = issues.assign(line_index=mapped)
    return replace(ingest, lines=lines, issues=issues)
