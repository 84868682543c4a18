"""Run export on real SQLite and PostgreSQL: every table, only the run's rows, JSONL = parquet."""

import json
from datetime import datetime

import pyarrow.parquet as pq
import pytest
from sqlalchemy import func, select

from service.store import Debate, Example, Label, Metric, Model, Run, Turn
from trainers import export
from trainers.export import export_run

TABLES = ("run", "examples", "debates", "turns", "labels", "models", "metrics")
JSON_COLUMNS = {"run": ("config",), "debates": ("params", "sampling")}

# condition -> (accuracy, balanced accuracy, f1) of the metric rows
ACCURACIES = {
    "ceiling": (0.80, 0.79, 0.78),
    "weak:no_debate": (0.60, 0.58, 0.57),
    "w2s:no_debate:xent": (0.70, 0.69, 0.68),
    "weak:debate_ensemble": (0.65, 0.64, 0.63),
    "w2s:debate_ensemble:logconf": (0.77, 0.76, 0.75),
    "w2s:debate_ensemble:xent": (0.74, 0.73, 0.72),
    "weak:consultancy": (0.82, 0.81, 0.80),
    "w2s:consultancy:xent": (0.81, 0.80, 0.79),
    "w2s:market_making:xent": (0.75, 0.74, 0.73),
    "weak:alpha_custom": (0.55, 0.54, 0.53),
    "w2s:alpha_custom:xent": (0.60, 0.59, 0.58),
}


def seed_run(session, *, name: str = "sciq-debate", config: dict | None = None, examples: int = 5) -> int:
    """A run with a row in every exported table: examples, one debate of 3 turns per example, a
    model per condition, labels from every weak model and the test metrics of ACCURACIES."""
    config = {"task": "sciq", "k": 4} if config is None else config
    run = Run(name=name, config=config, config_hash=f"hash-{name}", status="succeeded")
    session.add(run)
    session.flush()
    rows = [
        Example(
            run_id=run.id,
            task="sciq",
            split="test",
            source_id=f"{name}-{i}",
            candidate_id="correct",
            question=f"Q{i}?",
            context=None,
            candidate=f"A{i}",
            label=i % 2,
        )
        for i in range(examples)
    ]
    session.add_all(rows)
    session.flush()
    for example in rows:
        debate = Debate(
            example_id=example.id,
            run_id=run.id,
            protocol="debate",
            order="sequential",
            num_turns=3,
            seed=7,
            model="strong",
            params={"turns": 3},
            sampling={"t": 0.7},
            status="succeeded",
        )
        debate.turns = [
            Turn(index=i, speaker="AB"[i % 2], stance="pro" if i % 2 == 0 else "con", content=f"turn {i} ✓")
            for i in range(3)
        ]
        session.add(debate)
    for condition, (accuracy, balanced, f1) in ACCURACIES.items():
        model = Model(
            name=f"{name}/{condition}",
            role="weak" if condition.startswith("weak") else "strong",
            base="tiny",
            run_id=run.id,
            condition=condition,
        )
        session.add(model)
        session.flush()
        if model.role == "weak":
            session.add_all(
                Label(model_id=model.id, example_id=e.id, soft_label=0.25 + 0.1 * i, hard_label=0)
                for i, e in enumerate(rows)
            )
        session.add_all(
            Metric(run_id=run.id, model_id=model.id, condition=condition, split="test", name=metric, value=value)
            for metric, value in (("accuracy", accuracy), ("balanced_accuracy", balanced), ("f1", f1), ("auroc", None))
        )
    session.flush()
    return run.id


def _sql_counts(session, run_id: int) -> dict[str, int]:
    """The same rows counted straight in SQL, independently of export's queries."""

    def count(statement) -> int:
        return session.scalar(select(func.count()).select_from(statement.subquery()))

    return {
        "run": count(select(Run.id).where(Run.id == run_id)),
        "examples": count(select(Example.id).where(Example.run_id == run_id)),
        "debates": count(select(Debate.id).where(Debate.run_id == run_id)),
        "turns": count(select(Turn.id).join(Debate).where(Debate.run_id == run_id)),
        "labels": count(select(Label.id).join(Example).where(Example.run_id == run_id)),
        "models": count(select(Model.id).where(Model.run_id == run_id)),
        "metrics": count(select(Metric.id).where(Metric.run_id == run_id)),
    }


def _jsonl(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


@pytest.fixture
def two_runs(sessions) -> tuple[int, int]:
    """The run to export and a second run whose rows must stay out of the export."""
    with sessions.begin() as session:
        return seed_run(session, name="exported", examples=7), seed_run(session, name="other", examples=3)


def test_jsonl_has_every_table_with_the_sql_row_counts(sessions, two_runs, tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(export, "CHUNK_ROWS", 2)  # several chunks per table: streaming is exercised
    run_id, _ = two_runs
    with sessions.begin() as session:
        paths = export_run(session, run_id, tmp_path / "jsonl")
        counts = _sql_counts(session, run_id)
    assert set(paths) == set(TABLES)
    assert {table: len(_jsonl(path)) for table, path in paths.items()} == counts
    assert counts["examples"] == 7 and counts["turns"] == 21 and counts["labels"] == 7 * 4  # 4 weak models
    assert {row["source_id"] for row in _jsonl(paths["examples"])} == {f"exported-{i}" for i in range(7)}
    assert sorted(p.name for p in (tmp_path / "jsonl").iterdir()) == sorted(f"{t}.jsonl" for t in TABLES)


def test_rows_are_plain_json(sessions, two_runs, tmp_path) -> None:
    run_id, _ = two_runs
    with sessions.begin() as session:
        paths = export_run(session, run_id, tmp_path)
    run = _jsonl(paths["run"])[0]
    assert run["config"] == {"task": "sciq", "k": 4} and run["finished_at"] is None
    datetime.fromisoformat(run["created_at"])
    turn = _jsonl(paths["turns"])[0]
    assert (turn["index"], turn["speaker"], turn["content"]) == (0, "A", "turn 0 ✓")
    labels = _jsonl(paths["labels"])
    assert all(label["model_name"].startswith("exported/weak:") for label in labels)
    assert _jsonl(paths["debates"])[0]["params"] == {"turns": 3}


def test_parquet_holds_the_same_rows_as_jsonl(sessions, two_runs, tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(export, "CHUNK_ROWS", 3)
    run_id, _ = two_runs
    with sessions.begin() as session:
        jsonl = export_run(session, run_id, tmp_path / "jsonl")
        parquet = export_run(session, run_id, tmp_path / "parquet", fmt="parquet")
    assert set(parquet) == set(TABLES)
    for table in TABLES:
        rows = pq.read_table(parquet[table]).to_pylist()
        for row in rows:  # JSON columns are JSON text in parquet
            for column in JSON_COLUMNS.get(table, ()):
                row[column] = json.loads(row[column])
        assert rows == _jsonl(jsonl[table]), table


def test_parquet_types_come_from_the_sql_columns(sessions, two_runs, tmp_path) -> None:
    run_id, _ = two_runs
    with sessions.begin() as session:
        paths = export_run(session, run_id, tmp_path, fmt="parquet")
    metrics = pq.read_schema(paths["metrics"])
    assert str(metrics.field("value").type) == "double" and str(metrics.field("run_id").type) == "int64"
    assert str(pq.read_schema(paths["debates"]).field("swap").type) == "bool"
    # auroc is NULL in every row, and still a double column
    values = [row["value"] for row in pq.read_table(paths["metrics"]).to_pylist() if row["name"] == "auroc"]
    assert values and all(value is None for value in values)


def test_run_without_rows_exports_empty_files(sessions, tmp_path) -> None:
    with sessions.begin() as session:
        run = Run(name="empty", config={}, config_hash="h")
        session.add(run)
        session.flush()
        jsonl = export_run(session, run.id, tmp_path / "jsonl")
        parquet = export_run(session, run.id, tmp_path / "parquet", fmt="parquet")
    assert len(_jsonl(jsonl["run"])) == 1 and pq.read_table(parquet["run"]).num_rows == 1
    assert jsonl["turns"].read_text() == "" and pq.read_table(parquet["turns"]).num_rows == 0


def test_bad_format_raises_and_writes_nothing(sessions, two_runs, tmp_path) -> None:
    run_id, _ = two_runs
    with pytest.raises(ValueError, match="jsonl, parquet"), sessions.begin() as session:
        export_run(session, run_id, tmp_path / "out", fmt="csv")
    assert not (tmp_path / "out").exists()


def test_unknown_run_raises(sessions, tmp_path) -> None:
    with pytest.raises(LookupError, match="run 999"), sessions.begin() as session:
        export_run(session, 999, tmp_path)
