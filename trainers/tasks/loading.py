"""Read a task's source rows (local JSONL dir or the Hugging Face hub) and make its examples.

Both sources yield (source_id, row) pairs with source_id = "<file stem or split>:<row
index>", so a local copy named after the hub's splits (sciq/train.jsonl, ...) gives the
same ids and examples as the hub. Which original split a row came from does not matter
here: `split_examples` makes our own splits.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from pathlib import Path

from trainers.tasks.catalog import get_task
from trainers.tasks.rows import SourceRow, convert_rows
from trainers.tasks.schema import Task, TaskDataError, TaskExample
from trainers.tasks.synthetic import synthetic_examples
from trainers.tasks.testbed import arithmetic_claims

BUILT_IN = {"synthetic": synthetic_examples, "testbed": arithmetic_claims}  # made from the seed, no files


def load_examples(
    name: str,
    *,
    data_dir: Path | None = None,
    seed: int = 0,
    limit: int | None = None,
    size: int = 600,
) -> list[TaskExample]:
    """Every example of task `name`, the same list for the same (name, rows, seed).

    data_dir: a directory of JSONL files in the dataset's original fields; every *.jsonl
    in it is read, in sorted file order. None: the hub (all splits, sorted by name).
    limit: read only the first `limit` source rows (quick runs). size: synthetic only.
    """
    task = get_task(name)
    if limit is not None and limit < 0:
        raise TaskDataError(f"limit must be >= 0, got {limit}")
    if name in BUILT_IN:
        if data_dir is not None:
            raise TaskDataError(f"the {name} task is made from the seed and reads no files; drop --data-dir")
        return BUILT_IN[name](seed, size if limit is None else min(size, limit))
    rows = local_rows(Path(data_dir), name) if data_dir is not None else hub_rows(task)
    return list(convert_rows(name, itertools.islice(rows, limit), seed))


def local_rows(data_dir: Path, task: str) -> Iterator[SourceRow]:
    """(file_stem:index, row) for every line of every *.jsonl in `data_dir`, files sorted.

    Checks the directory now, not at the first row, so a wrong path fails even when
    nothing is read (limit=0).
    """
    files = sorted(data_dir.glob("*.jsonl")) if data_dir.is_dir() else []
    if not files:
        raise TaskDataError(
            f"{task}: no *.jsonl files in {data_dir}; --data-dir must be a directory of JSONL "
            "files in the dataset's original fields (see docs/DATA.md)"
        )
    return _jsonl_rows(files)


def hub_rows(task: Task) -> Iterator[SourceRow]:
    """(split:index, row) for every row of every split of the task's hub dataset."""
    if task.hub_id is None:
        raise TaskDataError(f"{task.name} has no Hugging Face hub source; pass --data-dir with its JSONL files")
    import datasets  # slow to import; only this path needs it

    try:
        splits = datasets.load_dataset(task.hub_id, task.hub_config)
    except (OSError, RuntimeError) as exc:  # offline / not found / script-based datasets
        raise TaskDataError(
            f"{task.name}: could not load {task.hub_id!r} from the Hugging Face hub ({exc}); "
            "pass --data-dir with a directory of its JSONL files instead"
        ) from exc
    return ((f"{split}:{index}", row) for split in sorted(splits) for index, row in enumerate(splits[split]))


def _jsonl_rows(files: list[Path]) -> Iterator[SourceRow]:
    for path in files:
        with path.open(encoding="utf-8") as lines:
            for index, line in enumerate(lines):
                if line.strip():  # a trailing blank line is not a row
                    yield f"{path.stem}:{index}", _parse_line(line, path, index)


def _parse_line(line: str, path: Path, index: int) -> dict:
    """One JSON object; a broken line is reported with its file and line number."""
    try:
        row = json.loads(line)
    except json.JSONDecodeError as exc:
        raise TaskDataError(f"{path}:{index + 1} is not valid JSON ({exc.msg}); expected JSON Lines") from exc
    if not isinstance(row, dict):
        raise TaskDataError(f"{path}:{index + 1} is not a JSON object")
    return row
