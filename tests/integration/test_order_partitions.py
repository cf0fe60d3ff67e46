"""Partitioned reading of real CSV files (issue 7): the partitions read back are the file.

Every partition of a split export, read back through the ingest, gives exactly the lines and
issues the whole-file reader gives — same values, same file path and spreadsheet row in every
message, same run-wide order — however the file is encoded and however its cells are quoted.
What the streaming reader cannot reproduce exactly is refused (``NotPartitioned``) so the run
reads the file whole and gets the whole-file reader's own messages.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from w365etl.adapters.order_files import read_order_files
from w365etl.adapters.order_partitions import NotPartitioned, _kept, read_partition, split_files
from w365etl.ingest.tables import InputLimits
from w365etl.synthetic_orders import FLAT_HEADERS, generate_orders

LIMITS = InputLimits()


def _rows(lines: int = 1200, seed: int = 11) -> list[list[str]]:
    export = generate_orders(lines, seed)
    return export.orders[FLAT_HEADERS].astype(str).to_numpy().tolist()


def _write(path: Path, rows: list[list[str]], *, delimiter: str = ",", encoding: str = "utf-8",
           prefix: str = "", blank_every: int = 0) -> Path:
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=delimiter, lineterminator="\r\n")
    writer.writerow(FLAT_HEADERS)
    for number, row in enumerate(rows):
        writer.writerow(row)
        if blank_every and number % blank_every == blank_every - 1:
            buffer.write(delimiter * (len(FLAT_HEADERS) - 1) + "\r\n")  # a blank row: dropped, still counted
    path.write_bytes((prefix + buffer.getvalue()).encode(encoding))
    return path


def _with_awkward_cells(rows: list[list[str]]) -> list[list[str]]:
    rows = [list(row) for row in rows]
    name = FLAT_HEADERS.index("Name (Order)")
    quantity = FLAT_HEADERS.index("Quantity")
    rows[3][name] = 'Renewal, "phase 2"\nsecond line'  # quoted: delimiter, quotes and a newline
    rows[5][quantity] = "twelve"                      # an INVALID_VALUE issue on a partitioned line
    rows[7][name] = "Café crème"                        # a character cp1252 and UTF-8 write differently
    return rows


def _whole_and_partitioned(paths: list[Path], partition_lines: int):
    whole = read_order_files(paths, limits=LIMITS)
    split = split_files(paths, partition_lines=partition_lines, limits=LIMITS)
    try:
        parts = [read_partition(split, partition, paths, limits=LIMITS) for partition in range(split.count)]
        count = split.count
    finally:
        split.close()
    assert not split.folder.exists()  # the spill folder goes with the run
    return whole, parts, count


def _same_lines(whole, parts) -> None:
    lines = pd.concat([part.lines for part in parts], ignore_index=True).sort_values("line_index")
    pd.testing.assert_frame_equal(lines.reset_index(drop=True), whole.lines.reset_index(drop=True))
    issues = pd.concat([part.issues for part in parts], ignore_index=True)
    key = ["line_index", "reason_code", "column"]
    pd.testing.assert_frame_equal(issues.sort_values(key).reset_index(drop=True),
                                  whole.issues.sort_values(key).reset_index(drop=True), check_dtype=False)
    assert sum(record.rows for part in parts for record in part.files) == sum(record.rows for record in whole.files)
    assert {record.sha256 for part in parts for record in part.files} == {record.sha256 for record in whole.files}


@pytest.mark.parametrize("encoding, delimiter, prefix", [
    ("utf-8", ",", ""), ("utf-8", ";", "\ufeff"), ("cp1252", ",", ""), ("utf-8", ",", "\r\n\r\n"),
])
def test_partitions_read_back_are_the_file(tmp_path, encoding, delimiter, prefix):
    path = _write(tmp_path / "orders.csv", _with_awkward_cells(_rows()), delimiter=delimiter, encoding=encoding,
                  prefix=prefix, blank_every=50)
    whole, parts, count = _whole_and_partitioned([path], partition_lines=150)
    assert count >= 3
    assert not whole.file_issues.size
    assert whole.lines["order_name"].str.contains("\n").any()  # the quoted newline survived both ways
    _same_lines(whole, parts)


def test_two_files_of_one_run_are_numbered_across_both(tmp_path):
    rows = _rows(1200, seed=5)
    first = _write(tmp_path / "a.csv", rows[:700])
    second = _write(tmp_path / "b.csv", rows[700:])
    whole, parts, count = _whole_and_partitioned([first, second], partition_lines=200)
    assert count >= 2
    _same_lines(whole, parts)
    # a partition's lines keep their place in the whole run: the second file comes after the first
    for part in parts:
        in_second = part.lines["file_path"] == str(second)
        if in_second.any() and (~in_second).any():
            assert part.lines.loc[in_second, "line_index"].min() > part.lines.loc[~in_second, "line_index"].max()


@pytest.mark.parametrize("case", ["ragged", "short", "nul", "mixed", "orders_table", "xlsx", "blank_header", "small"])
def test_what_the_streaming_reader_cannot_reproduce_is_read_whole(tmp_path, case):
    rows = _rows(120)
    path = tmp_path / "orders.csv"
    partition_lines = 10
    if case == "ragged":
        rows[30] = rows[30] + ["an extra cell"]
        _write(path, rows)
    elif case == "short":
        rows[30] = rows[30][:-3]
        _write(path, rows)
    elif case == "nul":
        _write(path, rows)
        path.write_bytes(path.read_bytes().replace(b"Quantity", b"Quan\x00tity", 1))
    elif case == "mixed":
        _write(path, rows)
        path.write_bytes(path.read_bytes() + "x,Café\r\n".encode("utf-8") + "y,Café\r\n".encode("cp1252"))
    elif case == "orders_table":  # no Quantity: half of an orders + lines pair
        frame = pd.DataFrame(rows, columns=FLAT_HEADERS).drop(columns=["Quantity"])
        frame.to_csv(path, index=False)
    elif case == "xlsx":
        path = tmp_path / "orders.xlsx"
        path.write_bytes(b"PK\x03\x04")
    elif case == "blank_header":
        frame = pd.DataFrame(rows, columns=FLAT_HEADERS)
        frame.insert(3, "", "")
        frame.to_csv(path, index=False)
    elif case == "small":
        _write(path, rows)
        partition_lines = 10_000
    with pytest.raises(NotPartitioned):
        split_files([path], partition_lines=partition_lines, limits=LIMITS)


def test_a_file_over_a_limit_is_left_to_the_whole_file_reader(tmp_path):
    path = _write(tmp_path / "orders.csv", _rows(120))
    with pytest.raises(NotPartitioned):
        split_files([path], partition_lines=10, limits=InputLimits(max_rows=50))
    with pytest.raises(NotPartitioned):
        split_files([path], partition_lines=10, limits=InputLimits(max_file_bytes=1000))


def test_waiting_lines_join_the_partition_of_their_order_or_customer(tmp_path):
    rows = _rows(1200, seed=3)
    path = _write(tmp_path / "orders.csv", rows)
    frame = pd.DataFrame(rows, columns=FLAT_HEADERS)
    waiting = pd.DataFrame({
        "order_number": [frame["Order ID"].iloc[10], "SO-NOT-IN-FILE", "SO-ALONE"],
        "order_id": [pd.NA, pd.NA, pd.NA],
        "customer_id": [pd.NA, pd.NA, pd.NA],
        "customer_name": ["someone else", frame["Potential Customer (Order)"].iloc[1100], "Nobody Known"],
        "line_id": [pd.NA, pd.NA, pd.NA],
    })
    split = split_files([path], partition_lines=150, limits=LIMITS, waiting=waiting)
    try:
        assert split.count >= 3
        lines = read_order_files([path], limits=LIMITS).lines
        partition_of_line = np.empty(len(lines), dtype=int)
        for partition in range(split.count):
            partition_of_line[split.line_indexes(partition)] = partition
        assert split.waiting_partition[0] == partition_of_line[10]    # its order is in the file
        assert split.waiting_partition[1] == partition_of_line[1100]   # its customer is in the file
        assert 0 <= split.waiting_partition[2] < split.count          # on its own, still somewhere
        assert split.partitions.lines_per_partition.sum() == len(lines) + len(waiting)
    finally:
        split.close()


def test_a_spill_folder_that_cannot_be_made_leaves_the_files_to_be_read_whole(tmp_path):
    path = _write(tmp_path / "orders.csv", _rows(1200))
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the spill folder should go")
    with pytest.raises(NotPartitioned, match="spill folder"):
        split_files([path], partition_lines=150, limits=LIMITS, spill_dir=blocker / "spill")
    # a spill folder that does not exist yet is made
    split = split_files([path], partition_lines=150, limits=LIMITS, spill_dir=tmp_path / "new" / "spill")
    try:
        assert split.folder.parent == tmp_path / "new" / "spill" and split.count >= 3
    finally:
        split.close()


def test_only_files_big_enough_are_scanned(tmp_path):
    path = _write(tmp_path / "orders.csv", _rows(1200))
    size = path.stat().st_size
    from w365etl.adapters.order_partitions import MIN_ROW_BYTES, may_partition

    assert may_partition([path], size // MIN_ROW_BYTES)
    assert not may_partition([path], size // MIN_ROW_BYTES + 1)
    assert not may_partition([path, tmp_path / "orders.xlsx"], 1)  # a workbook: read whole
    assert not may_partition([tmp_path / "missing.csv"], 1)          # the reader says what is wrong


def test_a_killed_runs_spill_folder_is_removed_by_the_next_partitioned_run(tmp_path):
    """A run removes its spill folder however it ends — except when it is killed. The next
    partitioned run removes such a folder (its owner process is gone from this machine, boot and
    process namespace) and leaves alone the folder of a run still going, of another machine or
    container (same process number, another process space), and anything it does not recognise."""
    import os
    import subprocess
    import sys

    from w365etl.adapters.order_partitions import owner_record

    spill = tmp_path / "spill"
    spill.mkdir()
    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                              text=True, check=True)
    gone_pid = int(finished.stdout)  # a process that has ended
    *space, my_pid = owner_record().split()
    assert my_pid == str(os.getpid()) and len(space) == 3  # machine, boot, process namespace (Linux)
    other_container = [space[0], space[1], "pid:[1]"]
    folders = {}
    for name, owner in [("killed", [*space, str(gone_pid)]), ("running", [*space, my_pid]),
                        ("other-container", [*other_container, str(gone_pid)]),
                        ("other-machine", ["another-host", space[1], space[2], str(gone_pid)]),
                        ("blank-owner", [" "]), ("unowned", None)]:
        folder = spill / f"w365etl-partitions-{name}"
        folder.mkdir()
        (folder / "p00000-f000.arrow").write_bytes(b"spilled rows")
        if owner is not None:
            (folder / "owner").write_text("\n".join(owner) + "\n", encoding="utf-8")
        folders[name] = folder
    path = _write(tmp_path / "orders.csv", _rows(1200))
    split = split_files([path], partition_lines=150, limits=LIMITS, spill_dir=spill)
    try:
        assert not folders["killed"].exists()
        assert all(folders[name].exists()
                   for name in ("running", "other-container", "other-machine", "blank-owner", "unowned"))
        # this run's own folder names its owner, so a later run can tell whether it still runs
        assert (split.folder / "owner").read_text(encoding="utf-8") == owner_record()
    finally:
        split.close()


def test_a_row_is_blank_only_when_every_cell_is_blank():
    """SPEC §2.1 blank rows are dropped: the scan rules rows out column by column, so a row
    blank in its first columns but not in a later one is kept, and whitespace counts as blank."""
    batch = pa.RecordBatch.from_pydict({
        "Order": ["SO-1", " ", "", "\t", "", "SO-2"],
        "Customer": ["", " ", "", "  ", "", ""],
        "Quantity": ["", "", "3", " ", "", "1"],
    })
    assert _kept(batch).tolist() == [True, False, True, False, False, True]
