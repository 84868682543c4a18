"""Refinement of a classification run's weak labels by the served strong model (Somerstep et al.).

The prompts and parsing by construction; the plan's jobs and names; and a whole testbed run through
the queue with the real vLLM serving the pretrained strong model: the refined labels are the served
model's own answers (stored beside them), one intent is stored per batch, their accuracy on
strong_train is recorded, and the strong model trained on them is another student than the one
trained on the raw weak labels. Whether refinement helps on the testbed is measured, not asserted:
see README ("Refinement").
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from service.local_vllm import LocalVLLM
from service.run_cli import in_process_workers
from service.settings import Settings
from service.store import make_engine, make_session_factory
from service.store.migrate import upgrade
from service.store.models import Example, Generation, Intent, Job, JobDependency, Metric, Model, Run
from tests.support.checks import split_labels
from trainers.hyperparameters import RefineSettings
from trainers.pipeline import parse_run_config, submit_run
from trainers.pipeline.plan import condition_model_name, refined_labels_name, strong_model_name
from trainers.refine_labels import Claim, demonstrations, refine_claims, verdict
from trainers.report import build_report, report_markdown

CLAIMS = [
    Claim(1, "1+1=", "2", 0.9),
    Claim(2, "2+2=", "5", 0.8),
    Claim(3, "3+3=", "6", 0.1),
    Claim(4, "4+4=", "8", 0.7),
]


def test_bare_demonstrations_are_the_claims_the_weak_supervisor_accepted() -> None:
    assert [pair.output for pair in demonstrations(CLAIMS, "bare")] == ["2", "5", "8"]
    instruct = demonstrations(CLAIMS, "instruct")
    assert [pair.output for pair in instruct] == [" Yes", " Yes", " No", " Yes"]
    assert "Proposed answer: 5" in instruct[1].prompt


def test_verdicts_read_the_first_word() -> None:
    assert [verdict(text) for text in (" Yes.", "no, because", "YES", " maybe", "")] == [1.0, 0.0, 1.0, None, None]


def _scripted(answers: dict[str, str], asked: list[str]):  # noqa: ANN202 - a trainers.generative.refine.Complete
    def complete(prompts: list[str], max_tokens: int, stop: list[str]) -> list[str]:
        asked.extend(prompts)
        return [answers.get(prompt.rsplit("\n", 1)[-1], "") for prompt in prompts]

    return complete


def test_icl_labels_each_claim_by_the_strong_models_own_answer() -> None:
    asked: list[str] = []
    complete = _scripted({"1+1=": "2", "2+2=": "4", "3+3=": "6", "4+4=": "8"}, asked)
    refined = refine_claims(CLAIMS, "icl", RefineSettings(batch_size=2, prompt_style="bare"), complete)
    # The strong model corrects claim 2 (weak said yes to 2+2=5) and claim 3 (weak said no to 3+3=6).
    assert refined.labels == {1: 1.0, 2: 0.0, 3: 1.0, 4: 1.0} and refined.unparsed == 0
    assert asked[:2] == ["2+2=5\n1+1=", "1+1=2\n2+2="]  # the batch's other accepted claims, never itself
    assert asked[2:] == ["4+4=8\n3+3=", "4+4="] and refined.intents == []  # 3+3=6 was rejected: not shown


def test_intent_and_refine_states_one_intent_per_batch_then_labels_with_it() -> None:
    asked: list[str] = []
    complete = _scripted({"In one sentence, the supervisor's intent is:": " sums are right", "Answer:": "No"}, asked)
    settings = RefineSettings(methods=("intent",), batch_size=2, prompt_style="instruct")
    refined = refine_claims(CLAIMS, "intent", settings, complete)
    assert len(refined.intents) == 2 and refined.intent_of == {1: 0, 2: 0, 3: 1, 4: 1}
    assert all("In one sentence, the supervisor's intent is:" in prompt for prompt in asked[:2])
    assert refined.intents == ["sums are right"] * 2
    assert asked[2].startswith("Answer following the supervisor's intent: sums are right\n")
    assert refined.labels == {1: 0.0, 2: 0.0, 3: 0.0, 4: 0.0}


def test_an_unreadable_answer_keeps_the_weak_label() -> None:
    refined = refine_claims(CLAIMS, "icl", RefineSettings(batch_size=4), lambda prompts, *_: ["perhaps"] * len(prompts))
    assert refined.labels == {claim.example_id: claim.weak for claim in CLAIMS} and refined.unparsed == 4


SMALL = {
    "task": "synthetic",
    "splits": {"weak_train": 10, "strong_train": 10, "test": 10},
    "ensemble_size": 2,
    "conditions": ["no_debate", "debate_ensemble"],
    "strong": {"losses": ["xent", "logconf"]},
}


def test_refinement_plans_a_refine_job_per_condition_and_method_and_strong_jobs_on_its_labels(
    sessions: sessionmaker[Session],
) -> None:
    config = parse_run_config({**SMALL, "seeds": 2, "refinement": {"methods": ["icl", "intent"]}})
    with sessions.begin() as session:
        run, _ = submit_run(session, config, strong_model="strong")
        jobs = {
            job.idempotency_key.split(":", 1)[1]: job
            for job in session.scalars(select(Job).where(Job.run_id == run.id))
        }
        refine = jobs["s1/refine:debate_ensemble:icl"]
        assert refine.kind == "refine_labels"
        assert refine.payload == {"run_id": run.id, "seed": 1, "condition": "debate_ensemble", "method": "icl"}
        parents = set(session.scalars(select(JobDependency.depends_on_id).where(JobDependency.job_id == refine.id)))
        assert parents == {jobs["s1/ensemble:debate_ensemble"].id}
        strong = jobs["s1/strong:w2s:debate_ensemble:refined_icl:logconf"]
        assert strong.payload["train"] == {
            "labels_model_name": refined_labels_name(run.id, 1, "debate_ensemble", "icl")
        }
        assert strong.payload["condition"] == "s1/w2s:debate_ensemble:refined_icl:logconf"
        kinds = [job.kind for job in jobs.values()]
        # 2 seeds x 2 conditions x 2 methods refinements; each trains 2 losses beside the 2 unrefined ones
        assert kinds.count("refine_labels") == 8 and kinds.count("strong") == 2 * (2 * 3 * 2 + 1)


def test_without_refinement_a_config_keeps_its_hash_and_its_jobs(sessions: sessionmaker[Session]) -> None:
    plain = parse_run_config(SMALL)
    assert "refinement" not in plain.hash_fields()
    assert parse_run_config({**SMALL, "refinement": {}}).hash_fields() != plain.hash_fields()
    with sessions.begin() as session:
        run, _ = submit_run(session, plain, strong_model="strong")
        kinds = set(session.scalars(select(Job.kind).where(Job.run_id == run.id)))
    assert "refine_labels" not in kinds


def test_bad_refinement_fields_are_named() -> None:
    from trainers.pipeline import RunConfigError

    with pytest.raises(RunConfigError, match="refinement.methods.0"):
        parse_run_config({**SMALL, "refinement": {"methods": ["telepathy"]}})
    with pytest.raises(RunConfigError, match="refinement.batch_size"):
        parse_run_config({**SMALL, "refinement": {"batch_size": 1}})


def _testbed_config(weak_model: Path) -> dict:
    return {
        "name": "testbed-refinement",
        "task": "testbed",
        "seeds": 1,
        "splits": {"weak_train": 200, "strong_train": 200, "test": 100},
        "ensemble_size": 1,
        "conditions": ["no_debate"],
        "weak": {
            "model": str(weak_model),
            "head": "likelihood",
            "train": {"epochs": 2, "lr": 1e-3, "batch_size": 32, "max_length": 192},
        },
        "strong": {
            "head": "likelihood",
            "lora": None,
            "publish": False,
            "losses": ["xent"],
            "train": {"epochs": 1, "lr": 1e-4, "batch_size": 32, "max_length": 32},
        },
        "refinement": {"methods": ["icl", "intent"], "batch_size": 8, "prompt_style": "bare", "intent_tokens": 8},
    }


@pytest.mark.vllm
@pytest.mark.slow
def test_a_testbed_run_trains_the_strong_model_on_what_the_served_strong_model_answered(
    tmp_path: Path, testbed_vllm_server: LocalVLLM, testbed_strong_dir: Path, testbed_weak_dir: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'w2s.db'}"
    upgrade(url)
    settings = Settings(
        database_url=url,
        vllm_base_url=testbed_vllm_server.base_url,
        strong_model=testbed_vllm_server.served_name,
        strong_model_path=testbed_strong_dir,
        artifacts_dir=tmp_path / "artifacts",
    )
    sessions: sessionmaker[Session] = make_session_factory(make_engine(url))
    config = parse_run_config(_testbed_config(testbed_weak_dir))
    with sessions.begin() as session:
        run_id = submit_run(session, config, strong_model=settings.strong_model)[0].id
    with in_process_workers(settings, sessions, run_id):
        deadline = time.monotonic() + 600
        while (status := _status(sessions, run_id)) in ("queued", "running"):
            assert time.monotonic() < deadline, "the run did not finish in time"
            time.sleep(2)
    assert status == "succeeded", _failures(sessions, run_id)

    with sessions() as session:
        train = session.execute(
            select(Example.id, Example.candidate, Example.label).where(
                Example.run_id == run_id, Example.split == "strong_train"
            )
        ).all()
        weak = split_labels(session, condition_model_name(run_id, 0, "no_debate"), "strong_train")
        for method in ("icl", "intent"):
            name = refined_labels_name(run_id, 0, "no_debate", method)
            refined, answers = split_labels(session, name, "strong_train"), _answers(session, name)
            # Bare style: a claim is right when the strong model's own answer is its candidate.
            assert refined == {i: float(answers[i].strip() == candidate) for i, candidate, _ in train}
            assert sum((refined[i] >= 0.5) != (weak[i] >= 0.5) for i in refined) >= 10  # it rewrote the supervision
            accuracy = session.scalar(
                select(Metric.value).where(
                    Metric.run_id == run_id,
                    Metric.split == "strong_train",
                    Metric.condition == f"s0/labels:no_debate:refined_{method}",
                    Metric.name == "accuracy",
                )
            )
            assert accuracy == pytest.approx(sum((refined[i] >= 0.5) == label for i, _, label in train) / len(train))
        intents = session.scalars(select(Intent.text).where(Intent.run_id == run_id)).all()
        linked = session.scalar(select(func.count()).select_from(Generation).where(Generation.intent_id.is_not(None)))
        plain = split_labels(session, strong_model_name(run_id, "s0/w2s:no_debate:xent"), "test")
        on_refined = split_labels(session, strong_model_name(run_id, "s0/w2s:no_debate:refined_icl:xent"), "test")
        report = build_report(session, run_id)
    assert len(intents) == 200 // 8 and linked == 200  # one intent per batch, each answer linked to its own
    assert max(abs(plain[i] - on_refined[i]) for i in plain) > 0.01  # the refined labels made another student
    rows = {(row.condition, row.loss) for row in report.rows}
    assert {("no_debate", "xent"), ("no_debate:refined_icl", "xent"), ("no_debate:refined_intent", "xent")} <= rows
    assert set(report.label_accuracy) == {"no_debate", "no_debate:refined_icl", "no_debate:refined_intent"}
    assert "before and after" in report_markdown(report)


def _answers(session: Session, name: str) -> dict[int, str]:
    rows = session.execute(
        select(Generation.example_id, Generation.text)
        .join(Model, Model.id == Generation.model_id)
        .where(Model.name == name)
    )
    return dict(rows.all())


def _status(sessions: sessionmaker[Session], run_id: int) -> str:
    with sessions() as session:
        return session.get(Run, run_id).status


def _failures(sessions: sessionmaker[Session], run_id: int) -> list[str]:
    with sessions() as session:
        jobs = session.scalars(select(Job).where(Job.run_id == run_id, Job.status != "succeeded"))
        return [f"{job.kind} {job.status}: {job.error}" for job in jobs]
