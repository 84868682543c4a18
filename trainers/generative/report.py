"""The generative report: mean score per condition with a bootstrap interval, PGR on that score with its
direction, and example generations side by side. Numbers come from `generations` rows and go to `metrics`.

PGR = (score_w2s - score_weak) / (score_ceiling - score_weak): the same ratio whichever way the score points,
but defined only when the ceiling beats the weak model in the task's direction (for toxicity, lower).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from service.store.models import Example, Generation
from trainers.generative.config import GenerativeRunConfig
from trainers.generative.plan import generative_model_name
from trainers.generative.tasks import get_generative_task
from trainers.jobs.run_rows import model_by_name, write_metrics
from trainers.scorers import Scored, build_scorer
from trainers.scorers.local import train_toxicity_scorer

BOOTSTRAP = 2000
SCORE_CHUNK = 64


class ConditionScore(BaseModel):
    condition: str
    n: int
    mean: float
    ci_low: float
    ci_high: float
    pgr: float | None = None  # W2S conditions only


class ExampleRow(BaseModel):
    prompt: str
    reference: str
    outputs: dict[str, str]


class GenerativeReport(BaseModel):
    run_id: int
    task: str
    score_name: str
    lower_is_better: bool
    scorer: str
    scorer_heldout_auroc: float | None
    conditions: list[ConditionScore]
    examples: list[ExampleRow]


def score_run(sessions: sessionmaker[Session], run_id: int, config: GenerativeRunConfig) -> float | None:
    """Score every unscored test generation of the run's conditions; the local scorer's held-out AUROC."""
    spec = config.scorer_spec
    data_dir = Path(config.data_dir) if config.data_dir else None
    api_key = os.environ.get(spec.api_key_env) if spec.api_key_env else None
    if spec.kind == "local" and spec.checkpoint is None and data_dir is not None:
        fit = train_toxicity_scorer(data_dir)
        scorer, quality = fit.scorer, fit.heldout_auroc
    else:
        scorer, quality = build_scorer(spec, data_dir=data_dir, api_key=api_key), None
    with sessions() as session:
        todo = [
            (g.id, Scored(e.question, g.text, e.candidate))
            for g, e in _test_generations(session, run_id, config)
            if g.score is None
        ]
    for start in range(0, len(todo), SCORE_CHUNK):
        chunk = todo[start : start + SCORE_CHUNK]
        values = scorer.score([item for _, item in chunk])
        with sessions.begin() as session:
            for (generation_id, _), value in zip(chunk, values, strict=True):
                session.get(Generation, generation_id).score = float(value)
    return quality


def _condition_models(session: Session, run_id: int, config: GenerativeRunConfig) -> dict[int, str]:
    """model id -> the condition it is."""
    return {model_by_name(session, generative_model_name(run_id, c)).id: c for c in config.conditions()}


def _test_generations(session: Session, run_id: int, config: GenerativeRunConfig) -> list[tuple[Generation, Example]]:
    ids = list(_condition_models(session, run_id, config))
    rows = session.execute(
        select(Generation, Example)
        .join(Example, Generation.example_id == Example.id)
        .where(Generation.model_id.in_(ids), Example.split == "test")
    )
    return [(generation, example) for generation, example in rows]


def bootstrap_interval(values: np.ndarray, *, seed: int = 0) -> tuple[float, float]:
    """95% percentile interval of the mean over test examples."""
    rng = np.random.default_rng(seed)
    means = values[rng.integers(0, len(values), size=(BOOTSTRAP, len(values)))].mean(axis=1)
    return float(np.quantile(means, 0.025)), float(np.quantile(means, 0.975))


def generative_pgr(weak: float, w2s: float, ceiling: float, *, lower_is_better: bool) -> float | None:
    """None when the ceiling does not beat the weak model in the score's direction."""
    gap = (weak - ceiling) if lower_is_better else (ceiling - weak)
    if gap <= 0:
        return None
    return (w2s - weak) / (ceiling - weak)


def build_generative_report(
    session: Session, run_id: int, config: GenerativeRunConfig, quality: float | None
) -> GenerativeReport:
    task = get_generative_task(config.task)
    by_condition: dict[str, dict[int, Generation]] = {}
    examples: dict[int, Example] = {}
    condition_of = _condition_models(session, run_id, config)
    for generation, example in _test_generations(session, run_id, config):
        by_condition.setdefault(condition_of[generation.model_id], {})[example.id] = generation
        examples[example.id] = example
    means = {c: np.array([g.score for g in rows.values()], dtype=float) for c, rows in by_condition.items()}
    scores = [_condition_score(c, means, task.lower_is_better, config.seed) for c in config.conditions()]
    model_of = {condition: model_id for model_id, condition in condition_of.items()}
    for row in scores:
        write_metrics(
            session,
            run_id,
            model_of[row.condition],
            f"gen/{row.condition}",
            {"mean_score": row.mean, "ci_low": row.ci_low, "ci_high": row.ci_high, "pgr": row.pgr},
        )
    write_metrics(session, run_id, None, "scorer", {"heldout_auroc": quality})
    shown = sorted(examples)[: config.examples_in_report]
    rows = [
        ExampleRow(
            prompt=examples[i].question,
            reference=examples[i].candidate,
            outputs={c: by_condition[c][i].text for c in config.conditions()},
        )
        for i in shown
    ]
    return GenerativeReport(
        run_id=run_id,
        task=config.task,
        score_name=task.score_name,
        lower_is_better=task.lower_is_better,
        scorer=config.scorer_spec.kind,
        scorer_heldout_auroc=quality,
        conditions=scores,
        examples=rows,
    )


def _condition_score(condition: str, means: dict[str, np.ndarray], lower_is_better: bool, seed: int) -> ConditionScore:
    values = means[condition]
    low, high = bootstrap_interval(values, seed=seed)
    pgr = None
    if condition.startswith("w2s"):
        pgr = generative_pgr(
            means["weak"].mean(), values.mean(), means["ceiling"].mean(), lower_is_better=lower_is_better
        )
    return ConditionScore(
        condition=condition, n=len(values), mean=float(values.mean()), ci_low=low, ci_high=high, pgr=pgr
    )


def generative_markdown(report: GenerativeReport) -> str:
    direction = "lower is better" if report.lower_is_better else "higher is better"
    lines = [
        f"# Generative W2S: run {report.run_id} ({report.task})",
        "",
        f"Score: {report.score_name} ({direction}), scorer `{report.scorer}`"
        + (f", held-out AUROC {report.scorer_heldout_auroc:.3f}" if report.scorer_heldout_auroc else "")
        + ".",
        f"PGR = (w2s - weak) / (ceiling - weak) on that score; undefined (-) unless the ceiling beats weak "
        f"({direction}).",
        "",
        "| condition | n | mean | 95% CI | PGR |",
        "|---|---:|---:|---|---:|",
    ]
    for row in report.conditions:
        pgr = "-" if row.pgr is None else f"{row.pgr:.2f}"
        lines.append(f"| {row.condition} | {row.n} | {row.mean:.3f} | [{row.ci_low:.3f}, {row.ci_high:.3f}] | {pgr} |")
    conditions = [row.condition for row in report.conditions]
    lines += [
        "",
        "## Example generations (test split)",
        "",
        "| prompt | reference | " + " | ".join(conditions) + " |",
        "|" + "---|" * (len(conditions) + 2),
    ]
    for example in report.examples:
        cells = [example.prompt, example.reference, *(example.outputs[c] for c in conditions)]
        lines.append("| " + " | ".join(_cell(cell) for cell in cells) + " |")
    return "\n".join(lines) + "\n"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ").strip()[:120] or "(empty)"
