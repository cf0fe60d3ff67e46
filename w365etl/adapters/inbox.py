"""The inbox: the folder the nightly schedule takes its order files from.

A run claims every file it takes by renaming it into ``processing/<run_id>/`` — a rename is
atomic, so two overlapping runs can never take the same file. After the run, imported files
move to ``archive/<date>/``, rejected ones to ``rejected/`` beside a ``.error.txt`` saying why,
and files already imported before (same sha256, whatever their name) to ``duplicates/<date>/``.
Reference files dropped in ``reference/`` are loaded first and archived the same way. A run
that died leaves its claim behind; the next run gives those files back to the inbox first.
A dry run claims and moves nothing.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from w365etl.safe_paths import fitting_name

ORDER_SUFFIXES = {".csv", ".xlsx", ".xlsm", ".txt"}
REFERENCE_FILES = ("products.csv", "provider_accounts.csv")
_WORK_FOLDERS = {"processing", "archive", "rejected", "duplicates", "reference"}
ERROR_SUFFIX = ".error.txt"


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass
class InboxBatch:
    """What one run took from the inbox."""

    root: Path
    run_id: str
    order_files: list[Path] = field(default_factory=list)
    reference_dir: Path | None = None
    is_claimed: bool = True

    @property
    def claim_dir(self) -> Path:
        return self.root / "processing" / self.run_id


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def recover_abandoned_claims(root: Path) -> list[Path]:
    """Give back to the inbox the files of runs that died while holding them."""
    returned: list[Path] = []
    processing = root / "processing"
    if not processing.is_dir():
        return returned
    for claim in sorted(processing.iterdir()):
        owner = claim / ".owner"
        try:
            pid = int(owner.read_text().strip())
        except (OSError, ValueError):
            pid = -1
        if pid > 0 and _pid_alive(pid):
            continue
        if claim.name.startswith(".") and pid < 0:
            continue  # a claim being set up by another run right now (its owner not written yet)
        for path in sorted(claim.rglob("*")):
            if path.is_file() and path.name != ".owner":
                relative = path.relative_to(claim)
                target = root / relative
                target.parent.mkdir(parents=True, exist_ok=True)
                os.replace(path, _free_name(target))
                returned.append(target)
        shutil.rmtree(claim, ignore_errors=True)
    return returned


def claim(root: Path, run_id: str, *, is_dry_run: bool) -> InboxBatch:
    """Take every order file (and reference file) now in the inbox for this run."""
    root.mkdir(parents=True, exist_ok=True)
    if is_dry_run:
        orders = sorted(path for path in root.iterdir() if _is_order_file(path))
        reference = root / "reference"
        has_reference = any((reference / name).is_file() for name in REFERENCE_FILES)
        return InboxBatch(root, run_id, orders, reference if has_reference else None, is_claimed=False)
    recover_abandoned_claims(root)
    batch = InboxBatch(root, run_id)
    # the claim appears with its owner in one rename: another run's recovery never sees a claim
    # without an owner (it would take it for a dead run's and give its files back meanwhile)
    staging = batch.claim_dir.with_name(f".{run_id}.claiming")
    staging.mkdir(parents=True, exist_ok=True)
    (staging / ".owner").write_text(str(os.getpid()))
    os.rename(staging, batch.claim_dir)
    for path in sorted(root.iterdir()):
        if _is_order_file(path):
            target = batch.claim_dir / path.name
            try:
                os.rename(path, target)  # atomic: the loser of a race gets FileNotFoundError
            except FileNotFoundError:
                continue
            batch.order_files.append(target)
    reference = root / "reference"
    for name in REFERENCE_FILES:
        source = reference / name
        if source.is_file():
            target = batch.claim_dir / "reference" / name
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.rename(source, target)
            except FileNotFoundError:
                continue
            batch.reference_dir = target.parent
    return batch


def settle(batch: InboxBatch, outcomes: dict[Path, tuple[str, str | None]], as_of_text: str) -> None:
    """Move each claimed file to where its outcome says: archive, rejected (with why), duplicates."""
    if not batch.is_claimed:
        return
    for path, (status, error) in outcomes.items():
        if not path.exists():
            continue
        if status == "rejected":
            # the name is kept when it fits; else shortened so that ``.error.txt`` fits beside it
            room = len(ERROR_SUFFIX)
            target = _free_name(batch.root / "rejected" / fitting_name(path.name, room=room), room=room)
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(path, target)
            target.with_name(target.name + ERROR_SUFFIX).write_text((error or "rejected") + "\n", encoding="utf-8")
        else:
            folder = "duplicates" if status == "duplicate" else "archive"
            target = _free_name(batch.root / folder / as_of_text / path.name)
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(path, target)
    if batch.reference_dir is not None and batch.reference_dir.is_dir():
        for path in sorted(batch.reference_dir.iterdir()):
            target = _free_name(batch.root / "archive" / as_of_text / "reference" / path.name)
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(path, target)
    shutil.rmtree(batch.claim_dir, ignore_errors=True)


def _is_order_file(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in ORDER_SUFFIXES and not path.name.startswith(".") \
        and path.name not in _WORK_FOLDERS


def _free_name(target: Path, *, room: int = 0) -> Path:
    """``name.csv``, else ``name.1.csv``, ``name.2.csv`` … — never overwrite an archived file
    (a name near the file system's limit is shortened to make room for the number, and for
    ``room`` more bytes)."""
    if not target.exists():
        return target
    for number in range(1, 10_000):
        stem = fitting_name(target.stem, room=len(f".{number}{target.suffix}") + room)
        candidate = target.with_name(f"{stem}.{number}{target.suffix}")
        if not candidate.exists():
            return candidate
    raise FileExistsError(target)


def release(batch: InboxBatch) -> None:
    """Give the claimed files back to the inbox untouched (the run could not start)."""
    if not batch.is_claimed or not batch.claim_dir.is_dir():
        return
    for path in sorted(batch.claim_dir.rglob("*")):
        if path.is_file() and path.name != ".owner":
            target = batch.root / path.relative_to(batch.claim_dir)
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(path, _free_name(target))
    shutil.rmtree(batch.claim_dir, ignore_errors=True)


def shown_path(batch: InboxBatch | None, path: str) -> str:
    """The name a person knows a claimed file by: its place in the inbox, not the claim folder."""
    if batch is None or not batch.is_claimed:
        return path
    claim = str(batch.claim_dir)
    return str(batch.root) + path[len(claim):] if path.startswith(claim) else path


def split_duplicates(batch: InboxBatch, imported: dict[str, str | None]) -> tuple[list[Path], list[dict]]:
    """The claimed files to read, and the records of those set aside as duplicates.

    A file whose sha256 a completed run already imported is a duplicate (a renamed copy too),
    and so is a second copy within the batch — except that an unchanged half of a header + lines
    pair is read again when the batch brings anything new, so its changed partner can join.
    """
    digests = {path: sha256_of(path) for path in batch.order_files}
    brings_new = any(digest not in imported for digest in digests.values())
    paths: list[Path] = []
    duplicates: list[dict] = []
    seen: set[str] = set()
    for path, digest in digests.items():
        again = digest in seen or (digest in imported and not (brings_new and imported[digest] == "header_lines"))
        seen.add(digest)
        if again:
            duplicates.append({"path": shown_path(batch, str(path)), "sha256": digest, "layout": None, "dialect": None,
                               "rows": 0, "status": "duplicate", "error": None, "unknown_columns": [], "sheets": []})
        else:
            paths.append(path)
    return paths, duplicates


def outcomes_by_path(batch: InboxBatch, files_records: list[dict]) -> dict[Path, tuple[str, str | None]]:
    """Claimed path → (status, error), from the run's file records (which show inbox paths)."""
    outcomes: dict[Path, tuple[str, str | None]] = {}
    for record in files_records:
        shown = Path(record["path"])
        claimed = batch.claim_dir / shown.relative_to(batch.root) if shown.is_relative_to(batch.root) else shown
        outcomes[claimed] = (record["status"], record.get("error"))
    return outcomes


def as_seen_in_inbox(batch: InboxBatch, ingest, line_issues):
    """Name every file by its inbox path in lines, issues and file records (not the claim folder)."""
    from dataclasses import replace

    import pandas as pd

    if not batch.is_claimed:
        return ingest, line_issues
    claim, root = str(batch.claim_dir), str(batch.root)

    def renamed(values: pd.Series) -> pd.Series:
        return values.astype("string").str.replace(claim, root, regex=False).astype(values.dtype)

    lines = ingest.lines.assign(file_path=renamed(ingest.lines["file_path"]),
                                order_file_path=renamed(ingest.lines["order_file_path"]))
    issues = line_issues.assign(file=renamed(line_issues["file"])) if "file" in line_issues else line_issues
    file_issues = ingest.file_issues.assign(file=renamed(ingest.file_issues["file"])) if len(ingest.file_issues) \
        else ingest.file_issues
    files = [replace(record, path=shown_path(batch, record.path)) for record in ingest.files]
    return replace(ingest, lines=lines, files=files, file_issues=file_issues), issues
