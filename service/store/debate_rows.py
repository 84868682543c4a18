"""Examples and debates as rows: get-or-create examples, store debate outcomes idempotently.

A debate's `dedupe_key` hashes (example, full spec): a retried job that re-runs a debate
finds its row instead of adding a second one.
"""

import hashlib
import json
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from debate import DebateFailure, DebateOutcome, DebateSpec
from service.store.db import utcnow
from service.store.models import Debate, Example, ModelVersion, Turn


def add_example(
    session: Session,
    *,
    run_id: int | None,
    task: str,
    source_id: str,
    candidate_id: str,
    question: str,
    candidate: str,
    context: str | None = None,
    label: int | None = None,
    split: str | None = None,
) -> Example:
    """The example with this (run, task, source_id, candidate_id), created if missing."""
    existing = session.scalars(
        select(Example).where(
            Example.run_id.is_(None) if run_id is None else Example.run_id == run_id,
            Example.task == task,
            Example.source_id == source_id,
            Example.candidate_id == candidate_id,
        )
    ).first()
    if existing is not None:
        return existing
    example = Example(
        run_id=run_id,
        task=task,
        source_id=source_id,
        candidate_id=candidate_id,
        question=question,
        context=context,
        candidate=candidate,
        label=label,
        split=split,
    )
    session.add(example)
    session.flush()
    return example


def content_id(*parts: str | None) -> str:
    """A short stable id for content that has no id of its own (ad-hoc API examples)."""
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()[:32]


def debate_key(example_id: int, spec: DebateSpec) -> str:
    canonical = json.dumps({"example_id": example_id, "spec": spec.to_dict()}, sort_keys=True)
    return hashlib.sha256(canonical.encode()).hexdigest()


def find_debate(session: Session, example_id: int, spec: DebateSpec) -> Debate | None:
    return session.scalars(select(Debate).where(Debate.dedupe_key == debate_key(example_id, spec))).one_or_none()


def save_debate(session: Session, example_id: int, outcome: DebateOutcome, *, run_id: int | None = None) -> Debate:
    """Write (or overwrite a failed earlier attempt of) the debate and all its turns."""
    spec = outcome.spec
    debate = find_debate(session, example_id, spec)
    if debate is not None and debate.status == "succeeded":
        return debate
    if debate is None:
        debate = Debate(example_id=example_id, dedupe_key=debate_key(example_id, spec))
        session.add(debate)
    failed = isinstance(outcome, DebateFailure)
    debate.run_id = run_id
    debate.protocol, debate.order, debate.num_turns = spec.protocol, spec.order, spec.turns
    debate.seed, debate.swap, debate.model = spec.seed, spec.swap, spec.model
    # A finetuned strong model is served under its version's name: link the debate to that version.
    debate.model_version_id = session.scalar(select(ModelVersion.id).where(ModelVersion.served_name == spec.model))
    debate.params = protocol_params(spec)
    debate.sampling = spec.to_dict()["sampling"]
    debate.status = "failed" if failed else "succeeded"
    debate.error = f"{outcome.error_type}: {outcome.message}" if failed else None
    debate.prompt_tokens = sum(turn.prompt_tokens for turn in outcome.turns)
    debate.completion_tokens = sum(turn.completion_tokens for turn in outcome.turns)
    debate.latency_s = None if failed else outcome.latency_s
    debate.finished_at = utcnow()
    if debate.turns:  # a failed earlier attempt: delete its turns before inserting the new ones
        debate.turns.clear()
        session.flush()
    debate.turns = [Turn(**turn.to_dict()) for turn in outcome.turns]
    session.flush()
    return debate


_SPEC_COLUMNS = {
    "question",
    "candidate_answer",
    "context",
    "protocol",
    "order",
    "turns",
    "seed",
    "swap",
    "model",
    "sampling",
}


def protocol_params(spec: DebateSpec) -> dict[str, Any]:
    """What of the spec has no column of its own (task framing, word limit, sides...)."""
    return {key: value for key, value in spec.to_dict().items() if key not in _SPEC_COLUMNS}


def spec_of(debate: Debate, example: Example) -> DebateSpec:
    """Rebuild the spec a stored debate was run with."""
    return DebateSpec.from_dict(
        {
            **debate.params,
            "question": example.question,
            "candidate_answer": example.candidate,
            "context": example.context,
            "protocol": debate.protocol,
            "order": debate.order,
            "turns": debate.num_turns,
            "seed": debate.seed,
            "swap": debate.swap,
            "model": debate.model,
            "sampling": debate.sampling,
        }
    )
