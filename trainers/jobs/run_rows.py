"""Reading and writing a run's rows, idempotently: a retried step overwrites, never duplicates."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from debate import Turn as SpokenTurn
from service.store.models import Debate, Example, Label, Metric, Model, Run, Turn
from trainers.pipeline.config import RunConfig
from trainers.tasks import TaskExample
from trainers.worker import PermanentJobError


def load_run(session: Session, run_id: int) -> tuple[Run, RunConfig]:
    run = session.get(Run, run_id)
    if run is None:
        raise PermanentJobError(f"run {run_id} does not exist (deleted?)")
    fields = {key: value for key, value in run.config.items() if key != "resolved"}
    return run, RunConfig.model_validate(fields)


def run_examples(session: Session, run_id: int, split: str | None = None) -> list[Example]:
    """The run's examples in id order (the order debate shards are cut in)."""
    query = select(Example).where(Example.run_id == run_id).order_by(Example.id)
    if split is not None:
        query = query.where(Example.split == split)
    return list(session.scalars(query))


def task_example(example: Example) -> TaskExample:
    return TaskExample(
        task=example.task,
        source_id=example.source_id,
        candidate_id=example.candidate_id,
        question=example.question,
        candidate=example.candidate,
        label=int(example.label or 0),
        context=example.context,
    )


def transcripts(session: Session, run_id: int, protocol: str, seed: int) -> dict[int, list[SpokenTurn]]:
    """example id -> turns of the run's succeeded debate with this protocol and seed."""
    debates = session.scalars(
        select(Debate).where(
            Debate.run_id == run_id, Debate.protocol == protocol, Debate.seed == seed, Debate.status == "succeeded"
        )
    )
    columns = [column.key for column in Turn.__table__.columns if column.key not in ("id", "debate_id")]
    return {
        debate.example_id: [SpokenTurn.from_dict({c: getattr(turn, c) for c in columns}) for turn in debate.turns]
        for debate in debates
    }


def get_or_create_model(session: Session, name: str, **fields: Any) -> Model:
    """The model row called `name`, its other fields (re)set to `fields`."""
    model = session.scalars(select(Model).where(Model.name == name)).one_or_none()
    if model is None:
        model = Model(name=name, **fields)
        session.add(model)
    else:
        for key, value in fields.items():
            setattr(model, key, value)
    session.flush()
    return model


def model_by_name(session: Session, name: str) -> Model:
    model = session.scalars(select(Model).where(Model.name == name)).one_or_none()
    if model is None:
        raise PermanentJobError(f"no model called {name!r}: the step that trains it has not succeeded")
    return model


def model_labels(session: Session, model_id: int) -> dict[int, float]:
    """example id -> soft label of model `model_id`."""
    return dict(session.execute(select(Label.example_id, Label.soft_label).where(Label.model_id == model_id)).all())


def write_labels(session: Session, model_id: int, soft_labels: Mapping[int, float]) -> None:
    """Upsert one label row per example (hard label = soft >= 0.5)."""
    existing = {label.example_id: label for label in session.scalars(select(Label).where(Label.model_id == model_id))}
    for example_id, soft in soft_labels.items():
        label = existing.get(example_id) or Label(model_id=model_id, example_id=example_id)
        label.soft_label, label.hard_label = float(soft), int(soft >= 0.5)
        session.add(label)
    session.flush()


def write_metrics(
    session: Session,
    run_id: int | None,
    model_id: int | None,
    condition: str,
    values: Mapping[str, float | None],
    split: str = "test",
) -> None:
    """Upsert metric rows (run, model, condition, split, name) -> value."""
    for name, value in values.items():
        metric = session.scalars(
            select(Metric).where(
                Metric.run_id == run_id,
                Metric.model_id == model_id,
                Metric.condition == condition,
                Metric.split == split,
                Metric.name == name,
            )
        ).one_or_none()
        if metric is None:
            metric = Metric(run_id=run_id, model_id=model_id, condition=condition, split=split, name=name)
            session.add(metric)
        metric.value = None if value is None else float(value)
    session.flush()


def scores(metrics: Mapping[str, Any]) -> dict[str, float | None]:
    """`binary_metrics` output without its example count: the values that go into `metrics` rows."""
    return {name: value for name, value in metrics.items() if name != "n"}


def labelled(examples: Sequence[Example]) -> tuple[list[int], list[int]]:
    """(example ids, ground-truth labels)."""
    return [example.id for example in examples], [int(example.label or 0) for example in examples]
