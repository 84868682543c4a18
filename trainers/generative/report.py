"""The generative report: mean score per condition over the run's training seeds with a 95% interval, PGR on
that score with its interval and direction, and example generations side by side. Numbers come from
`generations` rows and go to `metrics`.

Intervals are the classification report's (`trainers.confidence`): a paired bootstrap over seeds and test
examples, on (seeds, examples) arrays of scores instead of 0/1 correctness. PGR = (score_w2s - score_weak) /
(score_ceiling - score_weak), the same ratio whichever way the score points; it is undefined (None) unless the
ceiling beats the weak model in the task's direction (for toxicity: lower) by a gap whose interval stays above
zero. Scores where lower is better are negated for that test, which leaves PGR itself unchanged.

Only seeds whose every condition has a scored test generation for every test example are counted, so a
report of a run still going (read through the API) shows the seeds that are done.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from service.store.models import Example, Generation, Metric, Model
from trainers.confidence import accuracy_estimate, w2s_estimates
from trainers.generative.config import GenerativeRunConfig
from trainers.generative.plan import generative_model_name
from trainers.generative.rows import split_examples_of
from trainers.generative.tasks import get_generative_task
from trainers.jobs.run_rows import write_metrics
from trainers.scorers import Scored, build_scorer

SCORE_CHUNK = 64
SCORER = "scorer"  # metric condition of the scorer's own quality


class ConditionScore(BaseModel):
    condition: str
    n: int  # test examples
    seeds: int
    mean: float  # over seeds and test examples
    ci_low: float
    ci_high: float
    per_seed: dict[int, float]  # seed -> its model's mean score
    pgr: float | None = None  # W2S conditions only; None there: undefined
    pgr_ci_low: float | None = None
    pgr_ci_high: float | None = None


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
    seeds: list[int]  # the seeds counted (every condition scored)
    conditions: list[ConditionScore]
    examples: list[ExampleRow]  # outputs of the first counted seed


def score_run(sessions: sessionmaker[Session], run_id: int, config: GenerativeRunConfig) -> float | None:
    """Score every unscored test generation of the run's conditions; the local scorer's held-out AUROC."""
    from trainers.scorers.local import train_toxicity_scorer  # torch: workers only, not the API's reports

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


def _condition_models(session: Session, run_id: int, config: GenerativeRunConfig) -> dict[int, tuple[str, int]]:
    """model id -> (the condition, the seed) it is, for the models trained so far."""
    wanted = {generative_model_name(run_id, c, s): (c, s) for s in config.seeds for c in config.conditions()}
    rows = session.execute(select(Model.id, Model.name).where(Model.name.in_(wanted)))
    return {model_id: wanted[name] for model_id, name in rows}


def _test_generations(session: Session, run_id: int, config: GenerativeRunConfig) -> list[tuple[Generation, Example]]:
    ids = list(_condition_models(session, run_id, config))
    rows = session.execute(
        select(Generation, Example)
        .join(Example, Generation.example_id == Example.id)
        .where(Generation.model_id.in_(ids), Example.split == "test")
    )
    return [(generation, example) for generation, example in rows]


def _complete_seeds(scores: dict[tuple[str, int], dict[int, float]], config: GenerativeRunConfig, tests: list[int]):  # noqa: ANN202
    """The seeds with a score for every (condition, test example); none before ingest."""
    if not tests:
        return []
    return [
        seed for seed in config.seeds if all(len(scores.get((c, seed), {})) == len(tests) for c in config.conditions())
    ]


def build_generative_report(session: Session, run_id: int, config: GenerativeRunConfig) -> GenerativeReport:
    """The report from the rows as they are (nothing written): scored generations and the scorer's metric."""
    task = get_generative_task(config.task)
    condition_of = _condition_models(session, run_id, config)
    scores: dict[tuple[str, int], dict[int, float]] = {}
    texts: dict[tuple[str, int], dict[int, str]] = {}
    examples = {example.id: example for example in split_examples_of(session, run_id, "test")}
    for generation, example in _test_generations(session, run_id, config):
        key = condition_of[generation.model_id]
        texts.setdefault(key, {})[example.id] = generation.text
        if generation.score is not None:
            scores.setdefault(key, {})[example.id] = generation.score
    tests = sorted(examples)
    seeds = _complete_seeds(scores, config, tests)
    arrays = {
        c: np.array([[scores[(c, s)][i] for i in tests] for s in seeds], dtype=float) for c in config.conditions()
    }
    rows = [_condition_score(c, arrays, seeds, task.lower_is_better) for c in config.conditions()] if seeds else []
    shown = tests[: config.examples_in_report] if seeds else []
    return GenerativeReport(
        run_id=run_id,
        task=config.task,
        score_name=task.score_name,
        lower_is_better=task.lower_is_better,
        scorer=config.scorer_spec.kind,
        scorer_heldout_auroc=_scorer_quality(session, run_id),
        seeds=seeds,
        conditions=rows,
        examples=[
            ExampleRow(
                prompt=examples[i].question,
                reference=examples[i].candidate,
                outputs={c: texts[(c, seeds[0])][i] for c in config.conditions()},
            )
            for i in shown
        ],
    )


def _scorer_quality(session: Session, run_id: int) -> float | None:
    return session.scalars(
        select(Metric.value).where(Metric.run_id == run_id, Metric.condition == SCORER, Metric.name == "heldout_auroc")
    ).first()


def _condition_score(
    condition: str, arrays: dict[str, np.ndarray], seeds: list[int], lower_is_better: bool
) -> ConditionScore:
    values = arrays[condition]
    estimate = accuracy_estimate(values)  # a mean with its paired bootstrap interval; scores work as 0/1 do
    pgr = None
    if condition.startswith("w2s"):
        sign = -1.0 if lower_is_better else 1.0  # "the ceiling beats weak" becomes "is higher" either way
        pgr = w2s_estimates(sign * arrays["weak"], sign * values, sign * arrays["ceiling"]).pgr
    return ConditionScore(
        condition=condition,
        n=values.shape[1],
        seeds=len(seeds),
        mean=estimate.value,
        ci_low=estimate.low,
        ci_high=estimate.high,
        per_seed={seed: float(row.mean()) for seed, row in zip(seeds, values, strict=True)},
        pgr=None if pgr is None else pgr.value,
        pgr_ci_low=None if pgr is None else pgr.low,
        pgr_ci_high=None if pgr is None else pgr.high,
    )


def write_scorer_quality(session: Session, run_id: int, quality: float | None) -> None:
    write_metrics(session, run_id, None, SCORER, {"heldout_auroc": quality})


def write_generative_metrics(session: Session, run_id: int, report: GenerativeReport) -> None:
    """`gen/<condition>` over all seeds (mean_score, ci_low, ci_high; pgr, pgr_ci_low, pgr_ci_high for W2S
    conditions) and `gen/s<seed>/<condition>` mean_score per seed, with its model."""
    rows = session.execute(select(Model.id, Model.name).where(Model.run_id == run_id))
    model_ids = {name: model_id for model_id, name in rows}
    for row in report.conditions:
        values = {"mean_score": row.mean, "ci_low": row.ci_low, "ci_high": row.ci_high}
        if row.condition.startswith("w2s"):
            values |= {"pgr": row.pgr, "pgr_ci_low": row.pgr_ci_low, "pgr_ci_high": row.pgr_ci_high}
        write_metrics(session, run_id, None, f"gen/{row.condition}", values)
        for seed, mean in row.per_seed.items():
            model_id = model_ids[generative_model_name(run_id, row.condition, seed)]
            write_metrics(session, run_id, model_id, f"gen/s{seed}/{row.condition}", {"mean_score": mean})


def generative_markdown(report: GenerativeReport) -> str:
    direction = "lower is better" if report.lower_is_better else "higher is better"
    quality = f", held-out AUROC {report.scorer_heldout_auroc:.3f}" if report.scorer_heldout_auroc else ""
    seeds = ", ".join(map(str, report.seeds)) or "none complete yet"
    lines = [
        f"# Generative W2S: run {report.run_id} ({report.task})",
        "",
        f"Score: {report.score_name} ({direction}), scorer `{report.scorer}`{quality}. Seeds: {seeds}.",
        "Means over seeds and test examples; [95% CI] from a paired bootstrap over seeds and test examples.",
        "PGR = (w2s - weak) / (ceiling - weak) on that score; undefined unless the ceiling beats weak "
        f"({direction}) by a gap whose interval excludes 0.",
        "",
    ]
    headers, rows = generative_table(report)
    lines += [_markdown_row(headers), "|---|" + "---:|" * 3 + "---|---:|---|"]
    lines += [_markdown_row(cells) for cells in rows]
    conditions = [row.condition for row in report.conditions]
    lines += [
        "",
        f"## Example generations (test split, seed {report.seeds[0] if report.seeds else '-'})",
        "",
        "| prompt | reference | " + " | ".join(conditions) + " |",
        "|" + "---|" * (len(conditions) + 2),
    ]
    for example in report.examples:
        cells = [example.prompt, example.reference, *(example.outputs[c] for c in conditions)]
        lines.append(_markdown_row([_cell(cell) for cell in cells]))
    return "\n".join(lines) + "\n"


def generative_table(report: GenerativeReport) -> tuple[list[str], list[list[str]]]:
    """Headers and cells of the score table (the Markdown report and the run's page)."""
    headers = ["condition", "seeds", "n", "mean", "95% CI", "PGR", "PGR 95% CI"]
    rows = [
        [row.condition, str(row.seeds), str(row.n), f"{row.mean:.3f}", f"[{row.ci_low:.3f}, {row.ci_high:.3f}]"]
        + _pgr_cells(row)
        for row in report.conditions
    ]
    return headers, rows


def _pgr_cells(row: ConditionScore) -> list[str]:
    if not row.condition.startswith("w2s"):
        return ["", ""]
    if row.pgr is None:
        return ["undefined", ""]
    return [f"{row.pgr:.2f}", f"[{row.pgr_ci_low:.2f}, {row.pgr_ci_high:.2f}]"]


def _markdown_row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ").strip()[:120] or "(empty)"
