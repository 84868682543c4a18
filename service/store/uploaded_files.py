"""Uploaded training files: JSONL validated line by line, stored under `files_dir`, one row each.

A line is one example: `{"prompt": str, "label": float in [0, 1], ...}` where `prompt` is the
text the classifier reads and `label` the probability that the candidate is correct (soft weak
labels allowed), or a chat conversation `{"messages": [...]}` whose last (assistant) message is the
label (`service.store.chat_examples`). Blank lines are skipped (`read_examples` skips them too);
other keys are kept.

Never half-written: the upload is staged under a temporary name, renamed to `file-<id>.jsonl`
inside the transaction that inserts the row, and removed again if that transaction fails. A
crash between the rename and the commit can leave a file without a row, never a row without
its file; the next upload that gets the same id overwrites it.
"""

import json
import math
import os
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, BinaryIO

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from service.store.chat_examples import chat_problem, chat_to_example
from service.store.errors import FileInUse, FileNotFound, FileTooLarge, InvalidFile
from service.store.models import File

# (session, file id) -> ids of the queued or running jobs that read the file
FileUsers = Callable[[Session, int], list[int]]


def check_example(raw: bytes, line: int) -> bool:
    """Validate one JSONL line; False for a blank line, True for an example, InvalidFile otherwise."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidFile(f"line {line}: not UTF-8 ({exc.reason} at byte {exc.start})", line) from exc
    if not text.strip():
        return False
    try:
        example = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidFile(f"line {line}: not valid JSON ({exc.msg} at column {exc.colno})", line) from exc
    problem = _example_problem(example)
    if problem:
        raise InvalidFile(f"line {line}: {problem}", line)
    return True


def _example_problem(example: Any) -> str | None:
    if not isinstance(example, dict):
        return (
            f'expected a JSON object {{"prompt": ..., "label": ...}} or {{"messages": [...]}}, '
            f"got {type(example).__name__}"
        )
    if "messages" in example and "prompt" not in example:
        return chat_problem(example)
    missing = [key for key in ("prompt", "label") if key not in example]
    if missing:
        return f"missing {' and '.join(repr(key) for key in missing)}"
    if not isinstance(example["prompt"], str) or not example["prompt"].strip():
        return '"prompt" must be a non-empty string (the text the classifier reads)'
    label = example["label"]
    if isinstance(label, bool) or not isinstance(label, int | float) or not math.isfinite(label) or not 0 <= label <= 1:
        return f'"label" must be a number in [0, 1] (the probability that the candidate is correct), got {label!r}'
    return None


def _stage(source: BinaryIO, staged: Path, max_bytes: int) -> tuple[int, int]:
    """Copy `source` to `staged`, validating each line; returns (bytes, examples)."""
    size = examples = 0
    with staged.open("wb") as out:
        for number, raw in enumerate(source, start=1):
            size += len(raw)
            if size > max_bytes:
                raise FileTooLarge(f"file is larger than the limit of {max_bytes} bytes (W2S_MAX_UPLOAD_BYTES)")
            examples += check_example(raw, number)
            out.write(raw)
        out.flush()
        os.fsync(out.fileno())
    if examples == 0:
        raise InvalidFile(
            'file has no examples: expected JSON lines {"prompt": str, "label": float in [0, 1]} '
            'or {"messages": [..., {"role": "assistant", "content": "Yes"}]}'
        )
    return size, examples


def save_file(
    sessions: sessionmaker[Session],
    files_dir: Path,
    source: BinaryIO,
    *,
    filename: str,
    purpose: str,
    max_bytes: int,
) -> File:
    """Validate and store an upload; commits its row (with the file in place) or leaves nothing."""
    files_dir.mkdir(parents=True, exist_ok=True)
    staged = files_dir.resolve() / f".upload-{uuid.uuid4().hex}.part"
    try:
        try:
            size, examples = _stage(source, staged, max_bytes)
        except InvalidFile as exc:
            raise InvalidFile(f"invalid training file {filename!r}: {exc}", exc.line) from exc
        return _insert(sessions, staged, File(filename=filename, purpose=purpose, bytes=size, lines=examples, path=""))
    finally:
        staged.unlink(missing_ok=True)


def _insert(sessions: sessionmaker[Session], staged: Path, row: File) -> File:
    """Insert the row and move the staged bytes to `file-<id>.jsonl` in one transaction."""
    final: Path | None = None
    try:
        with sessions.begin() as session:
            session.add(row)
            session.flush()
            final = staged.parent / f"file-{row.id}.jsonl"
            row.path = str(final)
            os.replace(staged, final)  # before the commit: a committed row always has its file
    except BaseException:
        if final is not None:
            final.unlink(missing_ok=True)
        raise
    return row


def get_file(session: Session, file_id: int, *, lock: bool = False, share: bool = False) -> File:
    """The file row; `lock` (delete) / `share` (a job is about to use it) lock it on PostgreSQL."""
    query = select(File).where(File.id == file_id)
    if lock or share:
        query = query.with_for_update(read=share and not lock)
    row = session.scalars(query).one_or_none()
    if row is None:
        raise FileNotFound(f"no file with id file-{file_id}")
    return row


def list_files(
    session: Session,
    *,
    after_id: int | None = None,
    limit: int = 10_000,
    newest_first: bool = True,
    purpose: str | None = None,
) -> Sequence[File]:
    """A page of files (`limit + 1` rows tell the caller whether there are more)."""
    query = select(File).order_by(File.id.desc() if newest_first else File.id).limit(limit)
    if after_id is not None:
        query = query.where(File.id < after_id if newest_first else File.id > after_id)
    if purpose is not None:
        query = query.where(File.purpose == purpose)
    return session.scalars(query).all()


def delete_file(sessions: sessionmaker[Session], file_id: int, users: FileUsers) -> None:
    """Delete the row, then the bytes; refuses (FileInUse) while `users` names a queued/running job using it.

    What uses a file is the job kinds' business (`trainers.jobs.payloads.jobs_using_file`), not the store's.
    """
    with sessions.begin() as session:
        row = get_file(session, file_id, lock=True)
        job_ids = users(session, file_id)
        if job_ids:
            names = ", ".join(f"ftjob-{job_id}" for job_id in job_ids)
            raise FileInUse(
                f"file-{file_id} is used by queued or running fine-tuning job(s) {names}; "
                "cancel them or wait until they finish"
            )
        path = Path(row.path)
        session.delete(row)
    path.unlink(missing_ok=True)


def read_file_rows(session: Session, file_id: int) -> list[dict[str, Any]]:
    """The examples of stored file `file_id` as `{"prompt", "label", ...}` (FileNotFound if it was deleted)."""
    return [
        example if "prompt" in example else chat_to_example(example)
        for example in read_examples(get_file(session, file_id).path)
    ]


def read_examples(path: str | Path) -> Iterator[dict[str, Any]]:
    """The examples of a stored file (validated at upload), blank lines skipped."""
    with Path(path).open("rb") as lines:
        for raw in lines:
            if raw.strip():
                yield json.loads(raw)
