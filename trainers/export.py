"""Export one run's rows to files: one JSONL or parquet file per table, for analysis off the database.

Rows are streamed in chunks (`yield_per`; a server-side cursor on PostgreSQL), so a run of
millions of turns exports in bounded memory. Columns stay plain: datetimes as ISO strings,
JSON columns as objects in JSONL and as JSON text in parquet (one fixed string type, whatever
the shape of the config). Each file is written to a temp name and renamed, so a reader never
sees half a file.
"""

import json
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from sqlalchemy import JSON, Select, or_, select
from sqlalchemy.orm import Session

from service.store import Debate, Example, Label, Metric, Model, Run, Turn
from trainers.atomic_files import replacing

FORMATS = ("jsonl", "parquet")
CHUNK_ROWS = 1000
# Parquet type per column's Python type; everything else (text, datetimes, JSON) is a string.
ARROW_TYPES = {bool: pa.bool_(), int: pa.int64(), float: pa.float64()}


def _run_tables(run_id: int) -> dict[str, Select]:
    """The run's rows per table. Labels and models are found through the run's examples and
    metrics too, so the export holds every model its labels and metrics refer to."""
    run_labels = select(Label.model_id).join(Example, Label.example_id == Example.id).where(Example.run_id == run_id)
    run_metrics = select(Metric.model_id).where(Metric.run_id == run_id)
    return {
        "run": select(*Run.__table__.c).where(Run.id == run_id),
        "examples": select(*Example.__table__.c).where(Example.run_id == run_id).order_by(Example.id),
        "debates": select(*Debate.__table__.c).where(Debate.run_id == run_id).order_by(Debate.id),
        "turns": select(*Turn.__table__.c)
        .join(Debate, Turn.debate_id == Debate.id)
        .where(Debate.run_id == run_id)
        .order_by(Turn.debate_id, Turn.index),
        "labels": select(*Label.__table__.c, Model.name.label("model_name"))
        .join(Model, Label.model_id == Model.id)
        .join(Example, Label.example_id == Example.id)
        .where(Example.run_id == run_id)
        .order_by(Label.id),
        "models": select(*Model.__table__.c)
        .where(or_(Model.run_id == run_id, Model.id.in_(run_labels), Model.id.in_(run_metrics)))
        .order_by(Model.id),
        "metrics": select(*Metric.__table__.c).where(Metric.run_id == run_id).order_by(Metric.id),
    }


def _json_columns(statement: Select) -> set[str]:
    return {column.name for column in statement.selected_columns if isinstance(column.type, JSON)}


def _arrow_schema(statement: Select) -> pa.Schema:
    """From the SQL column types, not the data: a column that is NULL in the first chunk
    still gets its real type, and an empty table still gets a schema."""
    return pa.schema(
        [(column.name, ARROW_TYPES.get(column.type.python_type, pa.string())) for column in statement.selected_columns]
    )


def _plain(row: dict[str, Any], json_columns: set[str], json_as_text: bool) -> dict[str, Any]:
    out = {}
    for key, value in row.items():
        if isinstance(value, datetime):
            value = value.isoformat()
        elif json_as_text and key in json_columns and value is not None:
            value = json.dumps(value, sort_keys=True)
        out[key] = value
    return out


def _chunks(session: Session, statement: Select, json_as_text: bool) -> Iterator[list[dict[str, Any]]]:
    json_columns = _json_columns(statement)
    result = session.execute(statement.execution_options(yield_per=CHUNK_ROWS))
    for partition in result.mappings().partitions():
        yield [_plain(dict(row), json_columns, json_as_text) for row in partition]


def _write_jsonl(session: Session, statement: Select, path: Path) -> None:
    with path.open("w", encoding="utf-8") as out:
        for chunk in _chunks(session, statement, json_as_text=False):
            out.writelines(json.dumps(row, ensure_ascii=False) + "\n" for row in chunk)


def _write_parquet(session: Session, statement: Select, path: Path) -> None:
    schema = _arrow_schema(statement)
    with pq.ParquetWriter(path, schema) as writer:
        for chunk in _chunks(session, statement, json_as_text=True):
            writer.write_table(pa.Table.from_pylist(chunk, schema=schema))


def export_run(session: Session, run_id: int, out_dir: Path, *, fmt: str = "jsonl") -> dict[str, Path]:
    """Write the run's run, examples, debates, turns, labels, models and metrics rows to
    `out_dir/<table>.<fmt>`; returns table -> path."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown export format {fmt!r}: choose one of {', '.join(FORMATS)}")
    if session.get(Run, run_id) is None:
        raise LookupError(f"run {run_id} not found")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    write = _write_jsonl if fmt == "jsonl" else _write_parquet
    paths = {}
    for table, statement in _run_tables(run_id).items():
        path = out_dir / f"{table}.{fmt}"
        with replacing(path) as tmp:
            write(session, statement, tmp)
        paths[table] = path
    return paths
