"""Generations and intents as rows, written idempotently: one generation per (model, example), one intent per
(model, batch); a retried step overwrites, never duplicates."""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.store.models import Example, Generation, Intent


def generated_texts(session: Session, model_id: int) -> dict[int, Generation]:
    """example id -> the model's generation row."""
    rows = session.scalars(select(Generation).where(Generation.model_id == model_id))
    return {row.example_id: row for row in rows}


def write_generations(
    session: Session,
    run_id: int,
    model_id: int,
    texts: Mapping[int, str],
    *,
    scores: Mapping[int, float] | None = None,
    intents: Mapping[int, int] | None = None,
) -> None:
    """Upsert the text (and score, intent) of each example id in `texts`."""
    existing = generated_texts(session, model_id)
    for example_id, text in texts.items():
        row = existing.get(example_id) or Generation(run_id=run_id, model_id=model_id, example_id=example_id)
        row.text = text
        if scores is not None:
            row.score = float(scores[example_id])
        if intents is not None:
            row.intent_id = intents[example_id]
        session.add(row)
    session.flush()


def write_intent(session: Session, run_id: int, model_id: int, batch: int, text: str) -> int:
    """Upsert the intent the model inferred from batch `batch`; its id."""
    row = session.scalars(select(Intent).where(Intent.model_id == model_id, Intent.batch == batch)).one_or_none()
    if row is None:
        row = Intent(run_id=run_id, model_id=model_id, batch=batch)
        session.add(row)
    row.text = text
    session.flush()
    return row.id


def split_examples_of(session: Session, run_id: int, split: str) -> list[Example]:
    return list(
        session.scalars(select(Example).where(Example.run_id == run_id, Example.split == split).order_by(Example.id))
    )
