"""Run configs and the DAG a config becomes: validation with field paths, jobs, dependencies, resubmission."""

from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from service.store.models import Job, JobDependency, Run
from trainers.pipeline import RunConfigError, load_run_config, parse_run_config, submit_run
from trainers.pipeline.plan import NAIVE, Member, condition_members

CONFIGS = sorted((Path(__file__).resolve().parents[2] / "configs").glob("*.yaml"))
SMALL = {"task": "synthetic", "splits": {"weak_train": 10, "strong_train": 10, "test": 10}, "ensemble_size": 2,
         "debate": {"shard_size": 12}}


def test_there_are_example_configs() -> None:
    assert len(CONFIGS) >= 3


@pytest.mark.parametrize("path", CONFIGS, ids=lambda path: path.name)
def test_every_shipped_config_parses(path: Path) -> None:
    config = load_run_config(path)
    assert config.conditions and config.strong.losses


@pytest.mark.parametrize(("change", "path"), [
    ({"splits": {"weak_train": 10, "strong_train": 10}}, "splits"),
    ({"weak": {"train": {"lr": -1}}}, "weak.train.lr"),
    ({"debate": {"turns": 0}}, "debate.turns"),
    ({"conditions": ["no_debate", "telepathy"]}, "conditions.1"),
    ({"strong": {"losses": ["xent"], "lr": 1}}, "strong.lr"),
    ({"task": "nope"}, "task"),
    ({"strong": {"head": "linear"}}, "strong"),  # publish needs the LM head
])
def test_bad_fields_are_named(change: dict, path: str) -> None:
    with pytest.raises(RunConfigError) as error:
        parse_run_config({**SMALL, **change})
    assert f"\n  {path}" in str(error.value), str(error.value)


def test_missing_file_and_bad_yaml_are_clear(tmp_path: Path) -> None:
    with pytest.raises(RunConfigError, match="cannot read"):
        load_run_config(tmp_path / "missing.yaml")
    (tmp_path / "bad.yaml").write_text("task: [unclosed\n")
    with pytest.raises(RunConfigError, match="not valid YAML"):
        load_run_config(tmp_path / "bad.yaml")


def test_condition_members_follow_the_paper() -> None:
    assert condition_members("no_debate", 4) == [NAIVE]
    assert [m.debate_seed for m in condition_members("debate_ensemble", 3)] == [0, 1, 2]
    assert {m.debate_seed for m in condition_members("finetune_ensemble", 3)} == {0}
    assert [m.train_seed for m in condition_members("finetune_ensemble", 3)] == [0, 1, 2]
    # the single-debate model is also the ensembles' first member: trained once
    assert condition_members("single_debate", 3)[0] == condition_members("finetune_ensemble", 3)[0]


def _jobs(session: Session, run_id: int) -> dict[str, Job]:
    return {job.idempotency_key.split(":", 1)[1]: job for job in session.scalars(select(Job).where(Job.run_id == run_id))}


def _parents(session: Session, job: Job) -> set[int]:
    return set(session.scalars(select(JobDependency.depends_on_id).where(JobDependency.job_id == job.id)))


def test_plan_builds_the_dag(sessions: sessionmaker[Session]) -> None:
    config = parse_run_config({**SMALL, "conditions": ["no_debate", "debate_ensemble", "market_making"],
                               "strong": {"losses": ["xent", "logconf"]}})
    with sessions.begin() as session:
        run, created = submit_run(session, config, strong_model="strong")
        assert created
        jobs = _jobs(session, run.id)
        kinds = sorted(job.kind for job in jobs.values())
        # 30 examples / shard 12 = 3 shards for each of debate s0, s1 and market-making s0, s1
        assert kinds.count("debate") == 12
        assert kinds.count("weak") == 5  # naive + 2 debate + 2 market-making members
        assert kinds.count("ensemble") == 3 and kinds.count("strong") == 3 * 2 + 1 and kinds.count("report") == 1
        ingest = jobs["ingest"].id
        assert _parents(session, jobs["debate:debate:s1:shard2"]) == {ingest}
        # market-making debates wait for the naive weak model's labels
        assert _parents(session, jobs["debate:market_making:s0:shard0"]) == {ingest, jobs["weak:none-t0"].id}
        assert _parents(session, jobs["weak:debate-d1-t0"]) == {ingest} | {jobs[f"debate:debate:s1:shard{i}"].id for i in range(3)}
        assert _parents(session, jobs["ensemble:debate_ensemble"]) == {jobs["weak:debate-d0-t0"].id, jobs["weak:debate-d1-t0"].id}
        assert _parents(session, jobs["strong:w2s:debate_ensemble:logconf"]) == {jobs["ensemble:debate_ensemble"].id}
        assert _parents(session, jobs["strong:ceiling"]) == {ingest}
        assert len(_parents(session, jobs["report"])) == 3 + 7
        assert jobs["debate:debate:s0:shard1"].payload == {"run_id": run.id, "protocol": "debate", "seed": 0,
                                                            "offset": 12, "limit": 12, "model": "strong"}
        assert jobs["weak:debate-d1-t0"].payload["member"] == {"context": "debate", "debate_seed": 1, "train_seed": 0}


def test_resubmitting_resumes_the_same_run(sessions: sessionmaker[Session]) -> None:
    config = parse_run_config(SMALL)
    with sessions.begin() as session:
        first, _ = submit_run(session, config, strong_model="strong")
        before = {key: job.id for key, job in _jobs(session, first.id).items()}
        failed = session.get(Job, before["weak:none-t0"])
        failed.status, failed.attempts, failed.error = "failed", 3, "boom"
    with sessions.begin() as session:
        again, created = submit_run(session, config.model_copy(update={"name": "renamed"}), strong_model="strong")
        assert not created and again.id == first.id
        assert {key: job.id for key, job in _jobs(session, again.id).items()} == before
        assert session.get(Job, before["weak:none-t0"]).status == "queued"  # failed steps go back in the queue
    with sessions.begin() as session:
        other, created = submit_run(session, config.model_copy(update={"seed": 1}), strong_model="strong")
        assert created and other.id != first.id
        assert session.scalar(select(Run.config).where(Run.id == other.id))["resolved"] == {"strong_model": "strong"}


def test_evaluation_frequency_does_not_make_another_run() -> None:
    plain = parse_run_config(SMALL).hash_fields()
    watched = parse_run_config({**SMALL, "name": "other", "strong": {"train": {"lr": 1e-3, "eval_every": 5}},
                                "weak": {"train": {"eval_every": 2}}}).hash_fields()
    assert watched == plain and "eval_every" not in plain["strong"]["train"]
    assert parse_run_config({**SMALL, "strong": {"train": {"lr": 1e-3, "epochs": 3}}}).hash_fields() != plain


def test_members_are_hashable_keys() -> None:
    assert Member("debate", 1, 0).key == "debate-d1-t0" and NAIVE.key == "none-t0"
