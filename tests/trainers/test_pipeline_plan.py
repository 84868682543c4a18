"""Run configs and the DAG a config becomes: validation with field paths, jobs, dependencies, resubmission."""

from pathlib import Path

import pytest
import yaml
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from service.store.models import Job, JobDependency, Run
from trainers.generative.config import is_generative
from trainers.pipeline import RunConfigError, load_run_config, parse_run_config, submit_run
from trainers.pipeline.plan import Member, RunSeed, condition_members, run_seeds, split_seed_condition

# Generative configs (`kind: generative`) are parsed by tests/trainers/test_generative_units.py.
CONFIGS = sorted(
    path
    for path in (Path(__file__).resolve().parents[2] / "configs").glob("*.yaml")
    if not is_generative(yaml.safe_load(path.read_text()))
)
SMALL = {
    "task": "synthetic",
    "splits": {"weak_train": 10, "strong_train": 10, "test": 10},
    "ensemble_size": 2,
    "debate": {"shard_size": 12},
}


def test_there_are_example_configs() -> None:
    assert len(CONFIGS) >= 3


@pytest.mark.parametrize("path", CONFIGS, ids=lambda path: path.name)
def test_every_shipped_config_parses(path: Path) -> None:
    config = load_run_config(path)
    assert config.conditions and config.strong.losses


@pytest.mark.parametrize(
    ("change", "path"),
    [
        ({"splits": {"weak_train": 10, "strong_train": 10}}, "splits"),
        ({"weak": {"train": {"lr": -1}}}, "weak.train.lr"),
        ({"debate": {"turns": 0}}, "debate.turns"),
        ({"conditions": ["no_debate", "telepathy"]}, "conditions.1"),
        ({"strong": {"losses": ["xent"], "lr": 1}}, "strong.lr"),
        ({"task": "nope"}, "task"),
        ({"strong": {"head": "linear"}}, "strong"),  # publish needs the LM head
    ],
)
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
    seed = RunSeed(0, 3, 0)
    assert condition_members("no_debate", seed) == [seed.naive] == [Member(0, "none", 0, 0)]
    assert [m.debate_seed for m in condition_members("debate_ensemble", seed)] == [0, 1, 2]
    assert {m.debate_seed for m in condition_members("finetune_ensemble", seed)} == {0}
    assert [m.train_seed for m in condition_members("finetune_ensemble", seed)] == [0, 1, 2]
    # the single-debate model is also the ensembles' first member: trained once
    assert condition_members("single_debate", seed)[0] == condition_members("finetune_ensemble", seed)[0]


def test_each_seed_owns_its_training_seeds_and_shares_debates_unless_resampled() -> None:
    shared = run_seeds(parse_run_config({**SMALL, "seeds": [0, 5]}))
    assert [(s.value, s.debate_base) for s in shared] == [(0, 0), (5, 0)]
    later = condition_members("finetune_ensemble", shared[1])
    assert [m.train_seed for m in later] == [10, 11] and {m.debate_seed for m in later} == {0}
    assert condition_members("no_debate", shared[1]) == [Member(5, "none", 0, 10)]
    resampled = run_seeds(parse_run_config({**SMALL, "seeds": 2, "debate": {"resample_per_seed": True}}))
    assert [m.debate_seed for m in condition_members("debate_ensemble", resampled[1])] == [2, 3]


@pytest.mark.parametrize(("seeds", "expected"), [(3, (0, 1, 2)), ([4, 2], (4, 2)), (None, (0,))])
def test_seeds_are_a_list_or_a_count(seeds: int | list[int] | None, expected: tuple[int, ...]) -> None:
    config = parse_run_config({**SMALL, **({} if seeds is None else {"seeds": seeds})})
    assert config.seeds == expected


@pytest.mark.parametrize("seeds", [0, [], [1, 1], [-1], "three"])
def test_bad_seeds_are_named(seeds: object) -> None:
    with pytest.raises(RunConfigError, match="\n  seeds"):
        parse_run_config({**SMALL, "seeds": seeds})


def test_seeded_conditions_round_trip() -> None:
    assert split_seed_condition("s12/w2s:debate_ensemble:xent") == (12, "w2s:debate_ensemble:xent")
    assert split_seed_condition("w2s:debate_ensemble:xent") is None and split_seed_condition("sx/ceiling") is None


def _jobs(session: Session, run_id: int) -> dict[str, Job]:
    return {
        job.idempotency_key.split(":", 1)[1]: job for job in session.scalars(select(Job).where(Job.run_id == run_id))
    }


def _parents(session: Session, job: Job) -> set[int]:
    return set(session.scalars(select(JobDependency.depends_on_id).where(JobDependency.job_id == job.id)))


def test_plan_builds_the_dag(sessions: sessionmaker[Session]) -> None:
    config = parse_run_config(
        {
            **SMALL,
            "conditions": ["no_debate", "debate_ensemble", "market_making"],
            "strong": {"losses": ["xent", "logconf"]},
        }
    )
    with sessions.begin() as session:
        run, created = submit_run(session, config, strong_model="strong")
        assert created
        jobs = _jobs(session, run.id)
        kinds = sorted(job.kind for job in jobs.values())
        # 30 examples / shard 12 = 3 shards for each of debate d0, d1 and market-making d0, d1
        assert kinds.count("debate") == 12
        assert kinds.count("weak") == 5  # naive + 2 debate + 2 market-making members
        assert kinds.count("ensemble") == 3 and kinds.count("strong") == 3 * 2 + 1 and kinds.count("report") == 1
        ingest = jobs["ingest"].id
        assert _parents(session, jobs["debate:debate:d1:shard2"]) == {ingest}
        # market-making debates wait for the naive weak model's labels
        assert _parents(session, jobs["debate:market_making:d0:shard0"]) == {ingest, jobs["weak:s0-none-t0"].id}
        assert _parents(session, jobs["weak:s0-debate-d1-t0"]) == {ingest} | {
            jobs[f"debate:debate:d1:shard{i}"].id for i in range(3)
        }
        assert _parents(session, jobs["s0/ensemble:debate_ensemble"]) == {
            jobs["weak:s0-debate-d0-t0"].id,
            jobs["weak:s0-debate-d1-t0"].id,
        }
        assert _parents(session, jobs["s0/strong:w2s:debate_ensemble:logconf"]) == {
            jobs["s0/ensemble:debate_ensemble"].id
        }
        assert _parents(session, jobs["s0/strong:ceiling"]) == {ingest}
        assert len(_parents(session, jobs["report"])) == 3 + 7
        assert jobs["debate:debate:d0:shard1"].payload == {
            "run_id": run.id,
            "protocol": "debate",
            "seed": 0,
            "offset": 12,
            "limit": 12,
            "model": "strong",
        }
        assert jobs["weak:s0-debate-d1-t0"].payload["member"] == {
            "seed": 0,
            "context": "debate",
            "debate_seed": 1,
            "train_seed": 0,
        }
        ceiling = jobs["s0/strong:ceiling"].payload
        assert (ceiling["condition"], ceiling["seed"]) == ("s0/ceiling", 0)


def test_resubmitting_resumes_the_same_run(sessions: sessionmaker[Session]) -> None:
    config = parse_run_config(SMALL)
    with sessions.begin() as session:
        first, _ = submit_run(session, config, strong_model="strong")
        before = {key: job.id for key, job in _jobs(session, first.id).items()}
        failed = session.get(Job, before["weak:s0-none-t0"])
        failed.status, failed.attempts, failed.error = "failed", 3, "boom"
    with sessions.begin() as session:
        again, created = submit_run(session, config.model_copy(update={"name": "renamed"}), strong_model="strong")
        assert not created and again.id == first.id
        assert {key: job.id for key, job in _jobs(session, again.id).items()} == before
        assert session.get(Job, before["weak:s0-none-t0"]).status == "queued"  # failed steps go back in the queue
    with sessions.begin() as session:
        other, created = submit_run(session, config.model_copy(update={"seed": 1}), strong_model="strong")
        assert created and other.id != first.id
        assert session.scalar(select(Run.config).where(Run.id == other.id))["resolved"] == {"strong_model": "strong"}


def test_evaluation_frequency_does_not_make_another_run() -> None:
    plain = parse_run_config(SMALL).hash_fields()
    watched = parse_run_config(
        {
            **SMALL,
            "name": "other",
            "strong": {"train": {"lr": 1e-3, "eval_every": 5}},
            "weak": {"train": {"eval_every": 2}},
        }
    ).hash_fields()
    assert watched == plain and "eval_every" not in plain["strong"]["train"]
    assert parse_run_config({**SMALL, "strong": {"train": {"lr": 1e-3, "epochs": 3}}}).hash_fields() != plain


def test_members_are_hashable_keys() -> None:
    assert Member(2, "debate", 1, 4).key == "s2-debate-d1-t4" and RunSeed(0, 4, 0).naive.key == "s0-none-t0"


def _counts(jobs: dict[str, Job]) -> dict[str, int]:
    kinds = [job.kind for job in jobs.values()]
    return {kind: kinds.count(kind) for kind in ("debate", "weak", "ensemble", "strong")}


def test_three_seeds_plan_three_times_the_training_jobs(sessions: sessionmaker[Session]) -> None:
    base = {
        **SMALL,
        "conditions": ["no_debate", "debate_ensemble", "market_making"],
        "strong": {"losses": ["xent", "logconf"]},
    }
    with sessions.begin() as session:
        one = _jobs(session, submit_run(session, parse_run_config(base), strong_model="strong")[0].id)
        three = _jobs(session, submit_run(session, parse_run_config({**base, "seeds": 3}), strong_model="strong")[0].id)
        assert _parents(session, three["s2/strong:w2s:debate_ensemble:xent"]) == {
            three["s2/ensemble:debate_ensemble"].id
        }
        assert _parents(session, three["s1/ensemble:no_debate"]) == {three["weak:s1-none-t2"].id}
    assert _counts(one) == {"debate": 12, "weak": 5, "ensemble": 3, "strong": 7}
    # debates are shared by the seeds; everything trained is per seed
    assert _counts(three) == {"debate": 12, "weak": 15, "ensemble": 9, "strong": 21}
    strong = {job.payload["condition"]: job.payload["seed"] for job in three.values() if job.kind == "strong"}
    assert strong["s2/w2s:market_making:logconf"] == 2 and strong["s1/ceiling"] == 1
    assert len({tuple(job.payload["member"].values()) for job in three.values() if job.kind == "weak"}) == 15
    trained = {job.payload["member"]["train_seed"] for job in three.values() if job.kind == "weak"}
    assert trained == {0, 2, 4}  # k = 2: seed s trains with seed 2s
    # without resampling every seed's market-making debates argue against the first seed's naive model
    assert {
        job.payload["weak_model_member"]["seed"]
        for job in three.values()
        if job.kind == "debate" and job.payload["protocol"] == "market_making"
    } == {0}


def test_resampled_debates_are_new_debates_per_seed(sessions: sessionmaker[Session]) -> None:
    config = parse_run_config(
        {**SMALL, "seeds": 2, "conditions": ["market_making"], "debate": {"shard_size": 30, "resample_per_seed": True}}
    )
    with sessions.begin() as session:
        jobs = _jobs(session, submit_run(session, config, strong_model="strong")[0].id)
        debates = {key: job.payload for key, job in jobs.items() if job.kind == "debate"}
        assert sorted(debates) == [f"debate:market_making:d{d}:shard0" for d in range(4)]
        # each seed's market-making argues against its own naive model
        assert [debates[f"debate:market_making:d{d}:shard0"]["weak_model_member"]["seed"] for d in range(4)] == [
            0,
            0,
            1,
            1,
        ]
        assert _parents(session, jobs["debate:market_making:d2:shard0"]) == {
            jobs["ingest"].id,
            jobs["weak:s1-none-t2"].id,
        }


def test_seeds_are_part_of_the_hash_and_the_same_seeds_reuse_the_run(sessions: sessionmaker[Session]) -> None:
    def hashed(**change: object) -> dict:
        return parse_run_config({**SMALL, **change}).hash_fields()

    assert hashed(seeds=3) == hashed(seeds=[0, 1, 2]) != hashed()
    assert hashed(seeds=3, debate={"resample_per_seed": True}) != hashed(seeds=3)
    with sessions.begin() as session:
        first, _ = submit_run(session, parse_run_config({**SMALL, "seeds": 3}), strong_model="strong")
        before = {key: job.id for key, job in _jobs(session, first.id).items()}
    with sessions.begin() as session:
        again, created = submit_run(session, parse_run_config({**SMALL, "seeds": [0, 1, 2]}), strong_model="strong")
        assert not created and again.id == first.id
        assert {key: job.id for key, job in _jobs(session, again.id).items()} == before


def test_data_dir_is_relative_to_the_config_file_or_given(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "run.yaml").write_text("task: sciq\ndata_dir: ../data/sciq\n")
    monkeypatch.chdir(tmp_path / "configs")  # anywhere but the clone's root
    assert load_run_config(Path("run.yaml")).data_dir == str(tmp_path / "data" / "sciq")
    monkeypatch.chdir(tmp_path)
    given = load_run_config(Path("configs/run.yaml"), data_dir="elsewhere")
    assert given.data_dir == str(tmp_path / "elsewhere")
