"""The generative report over training seeds, from real rows in a real database: means over seeds and test
examples with paired-bootstrap intervals, PGR in the score's direction with its interval, only complete seeds."""

from __future__ import annotations

import numpy as np
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from service.api.page_views import run_detail
from service.store import Job, JobDependency, Metric
from service.store.debate_rows import add_example
from trainers.generative.config import GenerativeRunConfig, parse_generative_config
from trainers.generative.plan import generative_model_name, submit_generative_run
from trainers.generative.report import build_generative_report, generative_markdown, write_generative_metrics
from trainers.generative.rows import write_generations
from trainers.jobs.run_rows import get_or_create_model
from trainers.runs import run_report_json, run_report_markdown

TESTS = 40


def _config(task: str, seeds: object) -> GenerativeRunConfig:
    return parse_generative_config(
        {"kind": "generative", "task": task, "seeds": seeds, "refinement": {"methods": ["icl"]}}
    )


def _store_scores(
    sessions: sessionmaker[Session], config: GenerativeRunConfig, scores: dict[tuple[str, int], np.ndarray]
) -> int:
    """A run whose (condition, seed) models scored each test example as given."""
    with sessions.begin() as session:
        run, _ = submit_generative_run(session, config, strong_model="strong")
        examples = [
            add_example(
                session,
                run_id=run.id,
                task=config.task,
                source_id=str(i),
                candidate_id="reference",
                question=f"q{i}",
                candidate=f"a{i}",
                split="test",
            ).id
            for i in range(TESTS)
        ]
        for (condition, seed), values in scores.items():
            model = get_or_create_model(
                session,
                generative_model_name(run.id, condition, seed),
                role="strong",
                base="testbed",
                run_id=run.id,
                seed=seed,
            )
            texts = {example: f"{condition} {seed}" for example in examples}
            write_generations(session, run.id, model.id, texts, scores=dict(zip(examples, values, strict=True)))
        return run.id


def _draws(probability: float, seed: int) -> np.ndarray:
    return (np.random.default_rng(seed).random(TESTS) < probability).astype(float)


CHANCES = {"weak": 0.2, "w2s": 0.5, "w2s_refined:icl": 0.6, "ceiling": 0.8}


def test_means_intervals_and_pgr_over_the_complete_seeds(sessions: sessionmaker[Session]) -> None:
    config = _config("testbed_qa", 3)
    scores = {(c, s): _draws(p, 10 * s + i) for s in (0, 1) for i, (c, p) in enumerate(CHANCES.items())}
    scores[("weak", 2)] = _draws(0.2, 99)  # seed 2 has no other model yet: not counted
    run_id = _store_scores(sessions, config, scores)
    with sessions.begin() as session:
        report = build_generative_report(session, run_id, config)
        write_generative_metrics(session, run_id, report)
        metrics = {(m.condition, m.name): m.value for m in session.scalars(select(Metric))}
    assert report.seeds == [0, 1] and not report.lower_is_better
    rows = {row.condition: row for row in report.conditions}
    means = {c: np.mean([scores[(c, s)] for s in (0, 1)]) for c in CHANCES}
    for condition, row in rows.items():
        assert row.n == TESTS and row.seeds == 2 and row.mean == pytest.approx(means[condition])
        assert row.ci_low < row.mean < row.ci_high
        assert row.per_seed[1] == pytest.approx(scores[(condition, 1)].mean())
    expected = (means["w2s"] - means["weak"]) / (means["ceiling"] - means["weak"])
    assert rows["w2s"].pgr == pytest.approx(expected) and rows["w2s"].pgr_ci_low < expected < rows["w2s"].pgr_ci_high
    assert rows["weak"].pgr is None and rows["ceiling"].pgr is None
    assert metrics[("gen/w2s", "pgr")] == pytest.approx(expected)
    assert metrics[("gen/s1/ceiling", "mean_score")] == pytest.approx(scores[("ceiling", 1)].mean())
    assert ("gen/s2/weak", "mean_score") not in metrics
    assert "| w2s | 2 | 40 |" in generative_markdown(report)


def test_pgr_follows_a_score_where_lower_is_better(sessions: sessionmaker[Session]) -> None:
    """Toxicity: the ceiling is less toxic than weak, so PGR is defined, and equal to the higher-is-better one."""
    config = _config("toxicity", 2)
    scores = {(c, s): 1 - _draws(p, 10 * s + i) for s in (0, 1) for i, (c, p) in enumerate(CHANCES.items())}
    run_id = _store_scores(sessions, config, scores)
    with sessions() as session:
        report = build_generative_report(session, run_id, config)
    rows = {row.condition: row for row in report.conditions}
    means = {c: np.mean([scores[(c, s)] for s in (0, 1)]) for c in CHANCES}
    assert report.lower_is_better and means["ceiling"] < means["weak"]
    expected = (means["w2s"] - means["weak"]) / (means["ceiling"] - means["weak"])
    assert expected > 0 and rows["w2s"].pgr == pytest.approx(expected)


def test_pgr_is_undefined_when_the_ceiling_does_not_beat_weak_in_the_score_direction(
    sessions: sessionmaker[Session],
) -> None:
    config = _config("toxicity", 1)
    scores = {(c, 0): _draws(p, i) for i, (c, p) in enumerate(CHANCES.items())}  # the ceiling is MORE toxic
    run_id = _store_scores(sessions, config, scores)
    with sessions() as session:
        report = build_generative_report(session, run_id, config)
    assert [row.pgr for row in report.conditions] == [None] * 4
    assert "| w2s | 1 | 40 |" in generative_markdown(report) and "undefined" in generative_markdown(report)


def test_a_run_without_scored_generations_reports_no_seed_yet(sessions: sessionmaker[Session]) -> None:
    config = _config("testbed_qa", 2)
    run_id = _store_scores(sessions, config, {})
    with sessions() as session:
        report = build_generative_report(session, run_id, config)
    assert report.seeds == [] and report.conditions == [] and "none complete yet" in generative_markdown(report)


def _jobs(session: Session, run_id: int) -> dict[str, Job]:
    jobs = session.scalars(select(Job).where(Job.run_id == run_id))
    return {job.idempotency_key.removeprefix(f"run{run_id}:"): job for job in jobs}


def test_a_single_seed_run_keeps_the_steps_names_and_hash_it_had_before_seeds(sessions: sessionmaker[Session]) -> None:
    config = _config("testbed_qa", [0])
    assert "seeds" not in config.model_dump(mode="json")  # the stored config and its hash are unchanged
    with sessions.begin() as session:
        run, _ = submit_generative_run(session, config, strong_model="strong")
        jobs = _jobs(session, run.id)
    steps = ["gen_ingest", "gen_weak", "gen_strong:w2s", "gen_refine:icl", "gen_strong:w2s_refined:icl"]
    assert sorted(jobs) == sorted([*steps, "gen_strong:ceiling", "gen_report"])
    assert jobs["gen_strong:w2s"].payload["source"] == f"run{run.id}-gen-weak"


def test_every_seed_gets_its_own_weak_refinement_and_strong_steps(sessions: sessionmaker[Session]) -> None:
    config = _config("testbed_qa", [0, 3])
    with sessions.begin() as session:
        run, _ = submit_generative_run(session, config, strong_model="strong")
        jobs = _jobs(session, run.id)
        waits = set(
            session.scalars(select(JobDependency.depends_on_id).where(JobDependency.job_id == jobs["gen_report"].id))
        )
    seeded = {key for key in jobs if key.startswith("s3/")}
    assert seeded == {
        "s3/gen_weak",
        "s3/gen_strong:w2s",
        "s3/gen_refine:icl",
        "s3/gen_strong:w2s_refined:icl",
        "s3/gen_strong:ceiling",
    }
    assert jobs["s3/gen_strong:w2s"].payload == {
        "run_id": run.id,
        "condition": "w2s",
        "source": f"run{run.id}-gen-s3-weak",
        "seed": 3,
    }
    assert jobs["s3/gen_strong:w2s_refined:icl"].payload["source"] == f"run{run.id}-refine-s3-icl"
    assert jobs["s3/gen_refine:icl"].payload["seed"] == 3 and jobs["s3/gen_weak"].payload["seed"] == 3
    assert {jobs[key].id for key in seeded - {"s3/gen_refine:icl"}} <= waits and jobs["gen_strong:ceiling"].id in waits


def test_the_run_page_and_the_report_endpoints_show_the_generative_table(sessions: sessionmaker[Session]) -> None:
    config = _config("testbed_qa", 1)
    run_id = _store_scores(sessions, config, {(c, 0): _draws(p, i) for i, (c, p) in enumerate(CHANCES.items())})
    with sessions() as session:
        detail = run_detail(session, run_id)
        markdown, data = run_report_markdown(session, run_id), run_report_json(session, run_id)
    assert detail.table_headers[-2:] == ["PGR", "PGR 95% CI"]
    assert [cells[0] for cells in detail.table_rows] == ["weak", "w2s", "w2s_refined:icl", "ceiling"]
    assert "| ceiling | 1 | 40 |" in markdown and [row["condition"] for row in data["conditions"]][-1] == "ceiling"
