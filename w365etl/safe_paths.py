"""Where a run's files land (report step and inbox step): never outside their folder.

The report folder is ``OUT/<run_id>/`` and the inbox moves files into ``archive/``,
``rejected/`` and ``duplicates/``. Run ids, business dates and file names reach these paths
from outside (a Prefect deployment's JSON parameters, ``w365etl report RUN_ID``, whatever
names people give the files they drop in the inbox), so each is checked or made to fit here:

* a run id is one plain path segment (letters, digits, ``.``, ``_``, ``-``; not ``.``/``..``);
* a business date is a real date (a deployment passes it as ``YYYY-MM-DD`` text);
* a file name that gets a suffix (``.error.txt``, ``.1``) still fits the file system's limit
  on one name (255 bytes on ext4 and APFS) — a very long name is shortened in its middle,
  never the suffix the inbox relies on.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

#: bytes in one path segment on ext4, APFS, NTFS (UTF-16 units there; bytes are the stricter bound)
NAME_MAX_BYTES = 255
_RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


class UnsafePath(ValueError):
    """A value that would put a file outside its folder (exit status 2: nothing was done)."""


def check_run_id(run_id: str) -> str:
    """``run_id`` as one safe path segment, else ``UnsafePath`` naming it."""
    if not isinstance(run_id, str) or not _RUN_ID.fullmatch(run_id) or set(run_id) == {"."}:
        raise UnsafePath(f"run id {run_id!r} is not a run id (letters, digits, '.', '_', '-'; at most 64)")
    return run_id


def report_folder(out_dir: Path, run_id: str) -> Path:
    """``out_dir/run_id``, proven to be inside ``out_dir`` (symbolic links resolved)."""
    folder = Path(out_dir) / check_run_id(run_id)
    root = Path(out_dir).resolve()
    if not folder.resolve().is_relative_to(root):
        raise UnsafePath(f"report folder {folder} would be outside {root}")
    return folder


def business_date(value: dt.date | str | None, *, today: dt.date | None = None) -> dt.date:
    """The run's as-of date: a date, ``YYYY-MM-DD`` text (a deployment's JSON parameter), or
    today when not given; anything else is ``UnsafePath`` (it names folders of the archive)."""
    if value is None or value == "":
        return today or dt.date.today()
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value.strip())
        except ValueError:
            pass
    raise UnsafePath(f"as-of {value!r} is not a date in the form YYYY-MM-DD")


def fitting_name(name: str, *, room: int = 0) -> str:
    """``name``, shortened when needed so that ``room`` more bytes still fit one file name
    (``NAME_MAX_BYTES``, UTF-8): the middle of the stem gives way to ``…``; the extension and
    the start and end of the stem stay."""
    limit = NAME_MAX_BYTES - room
    if len(name.encode("utf-8")) <= limit:
        return name
    stem, dot, extension = name.rpartition(".")
    if not dot or not stem or len(extension) > 16:
        stem, extension = name, ""
    tail = ("." + extension) if extension else ""
    budget = limit - len(tail.encode("utf-8")) - len("…".encode("utf-8"))
    encoded = stem.encode("utf-8")
    head = encoded[:budget - budget // 3].decode("utf-8", errors="ignore")
    end = encoded[len(encoded) - budget // 3:].decode("utf-8", errors="ignore") if budget // 3 else ""
    return head + "…" + end + tail


def is_inside(path: Path, folder: Path) -> bool:
    """``path`` (resolved) lies in ``folder`` (resolved)."""
    return Path(path).resolve().is_relative_to(Path(folder).resolve())


__all__ = ["NAME_MAX_BYTES", "UnsafePath", "business_date", "check_run_id", "fitting_name", "is_inside",
           "report_folder"]
