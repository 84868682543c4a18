"""Generative runs on the real job queue: weak generations survive a kill, refinement through a real vLLM,
and toxicity and refinement runs end to end with their reports."""

from __future__ import annotations

import argparse
import hashlib
import json
import math
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from sqlalchemy import func, select

from debate.admin import VLLMAdmin
from service.local_vllm import LocalVLLM
from service.run_cli import report_command, run_command
from service.settings import Settings
from service.store import Generation, Intent, Job, Model, make_engine, make_session_factory
from tests.support.shared_data import shared_data_dir
from trainers.generative.config import parse_generative_config
from trainers.generative.plan import GENERATIVE_JOB_KINDS, submit_generative_run
from trainers.jobs import pipeline_handlers
from trainers.jobs.env import WorkerEnv
from trainers.worker import JobContext, Worker

SMALL_TRAIN = {"epochs": 2, "lr": 0.001, "batch_size": 8, "max_length": 32}


def _config(**fields: object):  # noqa: ANN202
    return parse_generative_config(
        {
            "kind": "generative",
            "task": "testbed_qa",
            "max_new_tokens": 6,
            "weak": {"train": SMALL_TRAIN},
            "strong": {"train": SMALL_TRAIN},
            **fields,
        }
    )


def _run(sessions, config, env: WorkerEnv, handlers: dict | None = None) -> int:  # noqa: ANN001
    with sessions.begin() as session:
        run, _ = submit_generative_run(session, config, strong_model="strong")
        run_id = run.id
    handlers = handlers or {
        kind: handler for kind, handler in pipeline_handlers(env).items() if kind in GENERATIVE_JOB_KINDS
    }
    Worker(sessions, handlers, retry_backoff_s=0.1).run(exit_when_idle=True)
    return run_id


def _model_id(session, name: str) -> int:  # noqa: ANN001
    return session.scalars(select(Model.id).where(Model.name == name)).one()


@pytest.mark.slow
def test_weak_generations_land_once_per_example_after_a_killed_job(
    migrated_url: str, tmp_path: Path, testbed_weak_dir: Path
) -> None:
    sessions = make_session_factory(make_engine(migrated_url))
    # Only the weak model is used: the strong checkpoint is never read by these two job kinds.
    env = WorkerEnv(artifacts_dir=tmp_path, strong_checkpoint=tmp_path / "no-strong", strong_is_built_in=False)
    handlers = pipeline_handlers(env)
    kills = []

    def killed_after_first_chunk(ctx: JobContext) -> dict | None:
        """The worker is stopped once a chunk of generations is committed (its job goes back in the queue)."""
        report = ctx.report

        def stop_after_generating(done: int, total: int, **extra: object) -> None:
            report(done, total, **extra)
            if extra.get("stage") == "generating":
                kills.append(done)
                ctx.stopping.set()

        ctx.report = stop_after_generating
        return handlers["gen_weak"](ctx)

    config = _config(
        splits={"weak_train": 16, "strong_train": 40, "test": 40},
        refinement={"methods": []},
        weak={"model": str(testbed_weak_dir), "train": SMALL_TRAIN},
    )
    run_id = _run(sessions, config, env, {"gen_ingest": handlers["gen_ingest"], "gen_weak": killed_after_first_chunk})
    Worker(sessions, {"gen_weak": handlers["gen_weak"]}).run(exit_when_idle=True)  # a new worker resumes the job
    with sessions() as session:
        weak = _model_id(session, f"run{run_id}-gen-weak")
        count, distinct = session.execute(
            select(func.count(), func.count(Generation.example_id.distinct())).where(Generation.model_id == weak)
        ).one()
        job = session.scalars(select(Job).where(Job.run_id == run_id, Job.kind == "gen_weak")).one()
    assert kills == [32]  # the first attempt committed one chunk, then stopped
    assert (count, distinct) == (80, 80)
    assert job.status == "succeeded" and job.result["generated"] == 48  # only the missing ones


@pytest.fixture
def testbed_env(
    testbed_artifacts: Path, testbed_strong_dir: Path, testbed_vllm_server: LocalVLLM
) -> Iterator[WorkerEnv]:
    yield WorkerEnv(
        artifacts_dir=testbed_artifacts,
        strong_checkpoint=testbed_strong_dir,
        strong_is_built_in=False,
        vllm_base_urls=(testbed_vllm_server.base_url,),
    )
    # Each database's run 1 publishes the same served names: the session's vLLM forgets this test's adapters.
    with VLLMAdmin(testbed_vllm_server.base_url) as admin:
        for name in set(admin.served_roots()) - {testbed_vllm_server.served_name}:
            admin.unload_adapter(name)


def _succeeded(sessions, run_id: int) -> None:  # noqa: ANN001
    with sessions() as session:
        jobs = session.scalars(select(Job).where(Job.run_id == run_id)).all()
    assert {job.kind: job.status for job in jobs if job.status != "succeeded"} == {}, [j.error for j in jobs]


@pytest.mark.vllm
@pytest.mark.slow
def test_refinement_run_infers_intents_and_trains_on_the_refined_outputs(
    migrated_url: str, testbed_env: WorkerEnv
) -> None:
    sessions = make_session_factory(make_engine(migrated_url))
    config = _config(
        splits={"weak_train": 24, "strong_train": 24, "test": 24},
        refinement={"methods": ["icl", "intent"], "batch_size": 8, "prompt_style": "bare", "intent_tokens": 8},
    )
    run_id = _run(sessions, config, testbed_env)
    _succeeded(sessions, run_id)
    with sessions() as session:
        weak = {
            g.example_id: g.text
            for g in session.scalars(
                select(Generation).where(Generation.model_id == _model_id(session, f"run{run_id}-gen-weak"))
            )
        }
        intent_model = _model_id(session, f"run{run_id}-refine-intent")
        intents = session.scalars(select(Intent).where(Intent.model_id == intent_model)).all()
        refined = session.scalars(
            select(Generation).where(Generation.model_id == intent_model).order_by(Generation.example_id)
        ).all()
        strong_job = session.scalars(
            select(Job).where(Job.idempotency_key == f"run{run_id}:gen_strong:w2s_refined:intent")
        ).one()
    # One intent per batch; a bare-text model may state an empty one (it reads no instructions).
    assert sorted(intent.batch for intent in intents) == list(range(math.ceil(24 / 8)))
    assert len(refined) == 24 and {g.intent_id for g in refined} == {i.id for i in intents}
    assert sum(g.text != weak[g.example_id] for g in refined) > 0
    digest = hashlib.sha256(json.dumps([g.text for g in refined]).encode()).hexdigest()
    assert strong_job.result["targets_sha256"] == digest
    assert strong_job.result["served_name"]  # its test outputs came from vLLM
    report = (testbed_env.run_dir(run_id) / "report.md").read_text()
    for condition in config.conditions():
        assert f"| {condition} |" in report


@pytest.mark.vllm
@pytest.mark.slow
def test_toxicity_run_end_to_end_reports_every_condition(migrated_url: str, testbed_env: WorkerEnv) -> None:
    sessions = make_session_factory(make_engine(migrated_url))
    config = _config(
        task="toxicity",
        data_dir=str(shared_data_dir("real_toxicity_prompts")),
        max_new_tokens=12,
        splits={"weak_train": 16, "strong_train": 16, "test": 16},
        weak={"train": {**SMALL_TRAIN, "max_length": 96}},
        strong={"train": {**SMALL_TRAIN, "max_length": 96}},
        refinement={"methods": ["icl", "intent"], "batch_size": 4, "intent_tokens": 12},
    )
    run_id = _run(sessions, config, testbed_env)
    _succeeded(sessions, run_id)
    report = json.loads((testbed_env.run_dir(run_id) / "report.json").read_text())
    assert [row["condition"] for row in report["conditions"]] == config.conditions()
    assert report["lower_is_better"] and report["scorer_heldout_auroc"] >= 0.8
    for row in report["conditions"]:
        assert row["n"] == 16 and 0 <= row["ci_low"] <= row["mean"] <= row["ci_high"] <= 1
    assert len(report["examples"]) == 5
    assert "| prompt | reference | weak | w2s |" in (testbed_env.run_dir(run_id) / "report.md").read_text()


@pytest.mark.vllm
@pytest.mark.slow
def test_w2s_run_executes_a_generative_config_with_two_seeds(
    tmp_path: Path, testbed_env: WorkerEnv, testbed_strong_dir: Path, testbed_vllm_server: LocalVLLM, capsys
) -> None:  # noqa: ANN001
    """`w2s run CONFIG` on a generative config: in-process workers serve the gen_* jobs, the report's table ends it."""
    config = {
        "kind": "generative",
        "task": "testbed_qa",
        "seeds": 2,
        "splits": {"weak_train": 8, "strong_train": 8, "test": 8},
        "max_new_tokens": 4,
        "weak": {"train": SMALL_TRAIN},
        "strong": {"train": SMALL_TRAIN},
        "refinement": {"methods": ["icl"], "batch_size": 4, "prompt_style": "bare"},
    }
    path = tmp_path / "generative.yaml"
    path.write_text(yaml.safe_dump(config))
    url = f"sqlite:///{tmp_path / 'w2s.db'}"
    settings = Settings(
        database_url=url,
        vllm_base_url=testbed_vllm_server.base_url,
        strong_model=testbed_vllm_server.served_name,
        strong_model_path=testbed_strong_dir,
        artifacts_dir=testbed_env.artifacts_dir,
    )
    args = argparse.Namespace(config=path, data_dir=None, detach=False, no_workers=False)
    assert run_command(args, settings) == 0
    out = capsys.readouterr().out
    assert "# Generative W2S: run 1 (testbed_qa)" in out and "Seeds: 0, 1." in out
    for condition in ("weak", "w2s", "w2s_refined:icl", "ceiling"):
        assert f"| {condition} | 2 | 8 |" in out
    assert (testbed_env.run_dir(1) / "report.md").is_file()
    sessions = make_session_factory(make_engine(url))
    with sessions() as session:
        assert _model_id(session, "run1-gen-s1-w2s_refined-icl") and _model_id(session, "run1-gen-weak")
    assert report_command(argparse.Namespace(run_id=1, format="json"), settings) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["seeds"] == [0, 1] and [row["seeds"] for row in report["conditions"]] == [2, 2, 2, 2]
