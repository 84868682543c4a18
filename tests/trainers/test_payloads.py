"""Typed job payloads: validated when enqueued (no row is written) and when claimed (the job fails at once,
naming the field, instead of a KeyError retried max_attempts times). SQLite and PostgreSQL.
"""

from __future__ import annotations

import pytest
from pydantic import ValidationError
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from service.store.jobs import enqueue_job
from service.store.models import Job
from trainers.errors import InvalidPayload
from trainers.generative.config import parse_generative_config
from trainers.generative.plan import submit_generative_run
from trainers.jobs.ensemble_job import ensemble_handler
from trainers.jobs.payloads import (
    JOB_KINDS,
    DebateItemsPayload,
    DebateShardPayload,
    FineTunePayload,
    Member,
    RunStrongPayload,
    WeakPayload,
    enqueue,
    jobs_using_file,
    parse_payload,
)
from trainers.pipeline import parse_run_config, submit_run
from trainers.worker import Worker

SMALL = {
    "task": "synthetic",
    "splits": {"weak_train": 10, "strong_train": 10, "test": 10},
    "ensemble_size": 2,
    "conditions": ["no_debate", "single_debate", "market_making"],
    "debate": {"shard_size": 12},
    "refinement": {"methods": ["icl"]},
}
GENERATIVE = {"kind": "generative", "task": "testbed_qa"}


def test_every_job_a_run_plans_parses_as_its_kind(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        submit_run(session, parse_run_config(SMALL), strong_model="strong")
        submit_generative_run(session, parse_generative_config(GENERATIVE), strong_model="strong")
        jobs = session.scalars(select(Job)).all()
        parsed = [parse_payload(job.kind, job.payload) for job in jobs]
    assert {job.kind for job in jobs} == set(JOB_KINDS)
    assert all(type(payload).KIND == job.kind for job, payload in zip(jobs, parsed, strict=True))
    shards = [payload for payload in parsed if isinstance(payload, DebateShardPayload)]
    assert {shard.weak_model_member is None for shard in shards} == {True, False}  # debate and market_making
    # each condition, raw and refined, + ceiling
    assert sum(isinstance(payload, RunStrongPayload) for payload in parsed) == 3 * 2 + 1
    assert not any(isinstance(payload, FineTunePayload | DebateItemsPayload) for payload in parsed)


def test_a_bad_payload_is_refused_before_a_row_exists(sessions: sessionmaker[Session]) -> None:
    with pytest.raises(ValidationError, match="member.debate_seed"):
        WeakPayload(run_id=1, member={"seed": 0, "context": "none", "debate_seed": "zero", "train_seed": 0})
    with pytest.raises(ValidationError, match="extra"):  # a typo is an error, not an ignored key
        WeakPayload(run_id=1, member=Member(0, "none", 0, 0), memebr=None)
    with sessions.begin() as session:
        enqueue(session, WeakPayload(run_id=1, member=Member(0, "none", 0, 0)))
        assert session.scalar(select(func.count(Job.id))) == 1


def test_a_row_whose_payload_no_longer_parses_fails_at_once_naming_the_field(
    sessions: sessionmaker[Session],
) -> None:
    with sessions.begin() as session:  # as older code (or a hand-written row) left it: no "members"
        job_id = enqueue_job(session, "ensemble", {"run_id": 1, "condition": "no_debate", "seed": 0}, max_attempts=3).id
    assert Worker(sessions, {"ensemble": ensemble_handler(None)}, owner="w").run_one()
    with sessions() as session:
        job = session.get(Job, job_id)
        assert (job.status, job.attempts) == ("failed", 1)  # not retried: retrying cannot fix a payload
        first_line = job.error.splitlines()[0]
    assert first_line.startswith("InvalidPayload: the payload of this 'ensemble' job does not parse (members: ")


def test_parse_payload_tells_the_strong_shapes_apart() -> None:
    run_step = {
        "run_id": 1,
        "condition": "s0/ceiling",
        "seed": 0,
        "loss": "xent",
        "base_model": "strong",
        "train": {"ground_truth": True},
        "validation": {"split": "test"},
    }
    fine_tune = {
        "run_id": None,
        "condition": "fine_tune",
        "base_model": "strong",
        "train": {"file_id": 3},
        "validation": None,
        "parent_version_id": None,
        "publish": True,
        "suffix": None,
        "hyperparameters": {
            "n_epochs": "auto",
            "batch_size": 8,
            "learning_rate_multiplier": "auto",
            "loss": "xent",
            "head": "lm",
            "lora": {"r": 8, "alpha": 16.0, "dropout": 0.0},
            "seed": 3,
            "eval_every": 0,
        },
    }
    assert isinstance(parse_payload("strong", run_step), RunStrongPayload)
    assert parse_payload("strong", fine_tune).model_dump(mode="json") == fine_tune  # the stored shape round-trips
    with pytest.raises(InvalidPayload, match="unknown job kind 'teleport'"):
        parse_payload("teleport", {})
    with pytest.raises(InvalidPayload, match="publish needs head 'lm'"):  # valid fields, invalid together
        parse_payload("strong", {**fine_tune, "hyperparameters": {**fine_tune["hyperparameters"], "head": "linear"}})


def test_jobs_using_a_file_read_the_typed_payloads(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        submit_run(session, parse_run_config(SMALL), strong_model="strong")  # strong jobs without files
        enqueue_job(session, "strong", {"garbage": True})
        fine_tune = {
            "run_id": None,
            "base_model": "strong",
            "train": {"file_id": 7},
            "validation": {"file_id": 8},
            "hyperparameters": {"seed": 0, "head": "linear"},
            "publish": False,
        }
        job_id = enqueue(session, FineTunePayload.model_validate(fine_tune)).id
        assert jobs_using_file(session, 7) == jobs_using_file(session, 8) == [job_id]
        assert jobs_using_file(session, 9) == []
