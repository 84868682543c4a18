"""The results report of an experiment run: weak / W2S / ceiling accuracy and PGR per condition,
averaged over the run's training seeds with 95% confidence intervals; Markdown, JSON, a PNG plot.

What it reads. For every training seed s the pipeline writes test `metrics` rows whose
condition carries the seed (`trainers.pipeline.plan.seed_condition`):

* `s<s>/weak:<c>`          the weak model (ensemble or single) of weak condition `<c>`
* `s<s>/w2s:<c>:<loss>`    the strong model finetuned on `<c>`'s weak labels with strong loss `<loss>`
* `s<s>/ceiling`           the strong model finetuned on ground truth
* `s<s>/w2s:<c>:refined_<m>:<loss>`  with `refinement`: the strong model finetuned on `<c>`'s weak labels
                           after the served strong model refined them by method `<m>`; its row's weak
                           model is `<c>`'s, so its PGR measures what refinement adds to the same supervision

and the `labels` of those models (one soft label per test example). The report finds the models
through those rows, then scores their test labels (hard = soft >= 0.5) against `examples.label`
itself: an interval needs every example's outcome, not only each model's accuracy.

What it computes, per weak condition x loss, over the seeds that have all three models: mean
accuracies, PGR = (w2s − weak) / (ceiling − weak) of those means, and 95% intervals of each from
a paired bootstrap over seeds and test examples (`trainers.confidence`). PGR is undefined (None,
"undefined"; never a number) unless the ceiling-weak gap is significantly above zero. Balanced
accuracy, weighted F1 and AUROC are means over the same seeds.

What it writes. `compute_pgr` stores per W2S condition, over all seeds, the rows
`w2s:<c>:<loss>` (no seed prefix, no model) `pgr` (NULL when undefined), `pgr_ci_low` and
`pgr_ci_high`. With refinement, the report also lists the accuracy on strong_train of the labels
the strong model learnt from, before and after refinement (`s<s>/labels:...` rows on that split,
written by the refine job), averaged over seeds. The rest only reads, so a report can be rebuilt at
any time, also for a run that is still going.
"""

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from sqlalchemy import select
from sqlalchemy.orm import Session

from service.store import Example, Label, Metric, Run
from trainers.atomic_files import replacing, write_text_atomic
from trainers.classification_metrics import binary_metrics
from trainers.confidence import LEVEL, REPLICATES, Estimate, accuracy_estimate, w2s_estimates
from trainers.pipeline.budgets import ingest_notes
from trainers.pipeline.plan import split_seed_condition, weak_condition_of

SPLIT = "test"
LABELS_SPLIT = "strong_train"  # where the refine job scores the labels the strong model learns from
CEILING = "ceiling"
# Lang et al. 2025's order: the plain baseline first, then debate variants, then the ablations.
CONDITION_ORDER = ("no_debate", "single_debate", "debate_ensemble", "finetune_ensemble", "consultancy", "market_making")
# Burns et al. 2023's order: the plain loss first, then the two confidence losses.
LOSS_ORDER = ("xent", "logconf", "product")
ROLES = ("weak", "w2s", "ceiling")
SCORES = ("balanced_accuracy", "f1", "auroc")
MISSING = "—"
UNDEFINED = "undefined"

# metric condition without its seed -> seed -> model id
SeedModels = dict[str, dict[int, int]]


@dataclass(frozen=True)
class ReportRow:
    """One line of the table: a weak condition and the strong loss trained on its labels (None: none yet)."""

    condition: str
    loss: str | None
    seeds: list[int]  # the seeds averaged: those that have every model of the row
    examples: int  # test examples every one of those models labelled
    weak_accuracy: Estimate | None
    w2s_accuracy: Estimate | None
    ceiling_accuracy: Estimate | None
    gap: Estimate | None  # ceiling - weak accuracy
    pgr: Estimate | None  # None: missing (see `pgr_undefined`) or undefined
    weak_balanced_accuracy: float | None = None
    w2s_balanced_accuracy: float | None = None
    ceiling_balanced_accuracy: float | None = None
    weak_f1: float | None = None
    w2s_f1: float | None = None
    ceiling_f1: float | None = None
    weak_auroc: float | None = None
    w2s_auroc: float | None = None
    ceiling_auroc: float | None = None

    @property
    def pgr_undefined(self) -> bool:
        """All three accuracies exist, but the ceiling does not beat the weak model significantly."""
        return self.pgr is None and None not in (self.weak_accuracy, self.w2s_accuracy, self.ceiling_accuracy)


@dataclass(frozen=True)
class Report:
    run_id: int
    name: str
    status: str
    task: str | None
    rows: list[ReportRow] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    # condition (`c` or `c:refined_<m>`) -> accuracy of its labels on strong_train, mean over seeds
    label_accuracy: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Outcomes:
    """The run's labelled test examples (id order) and each model's soft labels on them."""

    gold: np.ndarray  # (examples,) 0/1
    soft: dict[int, np.ndarray]  # model id -> (examples,) soft labels, NaN where the model has none


def _seed_models(session: Session, run_id: int) -> SeedModels:
    """Which model is each seed's weak / W2S / ceiling model, from the per-seed test metric rows
    (in id order, so a later row wins)."""
    rows = session.execute(
        select(Metric.condition, Metric.model_id)
        .where(Metric.run_id == run_id, Metric.split == SPLIT, Metric.model_id.is_not(None))
        .order_by(Metric.id)
    )
    found: SeedModels = {}
    for condition, model_id in rows:
        parts = split_seed_condition(condition)
        if parts is not None:
            found.setdefault(parts[1], {})[parts[0]] = model_id
    return found


def _outcomes(session: Session, run_id: int, model_ids: set[int]) -> Outcomes:
    on_test = (Example.run_id == run_id, Example.split == SPLIT, Example.label.is_not(None))
    examples = session.execute(select(Example.id, Example.label).where(*on_test).order_by(Example.id)).all()
    position = {example_id: i for i, (example_id, _) in enumerate(examples)}
    soft = {model_id: np.full(len(examples), np.nan) for model_id in model_ids}
    labels = session.execute(
        select(Label.model_id, Label.example_id, Label.soft_label)
        .join(Example, Example.id == Label.example_id)
        .where(Label.model_id.in_(model_ids), *on_test)
    )
    for model_id, example_id, value in labels:
        soft[model_id][position[example_id]] = value
    return Outcomes(gold=np.array([label for _, label in examples], dtype=np.int64), soft=soft)


def _w2s_parts(condition: str) -> tuple[str, str] | None:
    """`w2s:<c>:<loss>` -> (c, loss); the loss is the last part so `<c>` may hold colons."""
    if not condition.startswith("w2s:") or condition.count(":") < 2:
        return None
    weak, _, loss = condition.removeprefix("w2s:").rpartition(":")
    return weak, loss


def _row(condition: str, loss: str | None, models: SeedModels, outcomes: Outcomes) -> tuple[ReportRow, list[str]]:
    """The row of `condition` x `loss` over the seeds that have all its models; notes on what is missing."""
    wanted = {"weak": f"weak:{weak_condition_of(condition)}", "w2s": f"w2s:{condition}:{loss}", "ceiling": CEILING}
    if loss is None:
        del wanted["w2s"]
    present = {role: models[name] for role, name in wanted.items() if name in models}
    seeds = sorted(set.intersection(*(set(by_seed) for by_seed in present.values()))) if present else []
    gold, soft = _paired(outcomes, present, seeds)
    correct = {role: (array >= 0.5) == gold for role, array in soft.items()}
    gap = pgr = None
    if len(correct) == len(ROLES):
        paired = w2s_estimates(correct["weak"], correct["w2s"], correct["ceiling"])
        accuracy = {"weak": paired.weak, "w2s": paired.w2s, "ceiling": paired.ceiling}
        gap, pgr = paired.gap, paired.pgr
    else:
        accuracy = {role: accuracy_estimate(array) for role, array in correct.items()}
    row = ReportRow(
        condition=condition,
        loss=loss,
        seeds=seeds if soft else [],
        examples=int(gold.size),
        weak_accuracy=accuracy.get("weak"),
        w2s_accuracy=accuracy.get("w2s"),
        ceiling_accuracy=accuracy.get("ceiling"),
        gap=gap,
        pgr=pgr,
        **_mean_scores(gold, soft),
    )
    return row, _notes(row, wanted, present, seeds)


def _paired(
    outcomes: Outcomes, present: dict[str, dict[int, int]], seeds: list[int]
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Gold labels and, per role, (seeds, examples) soft labels on the test examples that every
    model of every seed labelled: the bootstrap pairs them by position."""
    if not seeds:
        return np.zeros(0, dtype=np.int64), {}
    soft = {role: np.stack([outcomes.soft[by_seed[seed]] for seed in seeds]) for role, by_seed in present.items()}
    labelled = ~np.any([np.isnan(array).any(axis=0) for array in soft.values()], axis=0)
    if not labelled.any():
        return np.zeros(0, dtype=np.int64), {}
    return outcomes.gold[labelled], {role: array[:, labelled] for role, array in soft.items()}


def _mean_scores(gold: np.ndarray, soft: dict[str, np.ndarray]) -> dict[str, float | None]:
    """`<role>_<score>`: each of SCORES averaged over seeds (None if any seed has none, e.g. one class)."""
    means: dict[str, float | None] = {}
    for role, array in soft.items():
        per_seed = [binary_metrics(gold, row) for row in array]
        for name in SCORES:
            values = [metrics[name] for metrics in per_seed]
            means[f"{role}_{name}"] = None if None in values else float(np.mean(values))
    return means


def _notes(row: ReportRow, wanted: dict[str, str], present: dict[str, dict[int, int]], seeds: list[int]) -> list[str]:
    """Why a row has no PGR, or fewer seeds than were run, in words a reader can act on."""
    label = row.condition if row.loss is None else f"{row.condition} ({row.loss})"
    notes = [f"{label}: no strong model trained on its weak labels yet"] if row.loss is None else []
    left_out = sorted(set().union(*present.values()) - set(seeds))
    if left_out:
        notes.append(
            f"{label}: seed(s) {', '.join(map(str, left_out))} left out: they lack a "
            f"{' / '.join(wanted)} model with test labels yet"
        )
    missing = [role for role in wanted if role not in present]
    if row.loss is not None and missing:
        notes.append(f"PGR missing for {label}: no test labels for {', '.join(missing)}")
    elif present and not row.examples:
        notes.append(f"{label}: no seed has labelled test examples from every model yet")
    if row.pgr_undefined:
        gap = row.gap
        notes.append(
            f"PGR undefined for {label}: the ceiling-weak gap ({_points(gap.value)} points, "
            f"{LEVEL:.0%} CI {_points(gap.low)} to {_points(gap.high)}) is not significantly above zero"
        )
    return notes


def _points(value: float) -> str:
    return f"{100 * value:+.1f}"


def _position(value: str | None, order: tuple[str, ...]) -> tuple[int, str]:
    """Known names in their fixed order, unknown ones after them alphabetically; None first."""
    if value is None:
        return (-1, "")
    return (order.index(value), "") if value in order else (len(order), value)


def _row_key(pair: tuple[str, str | None]) -> tuple[tuple[int, str], str, tuple[int, str]]:
    """A weak condition's rows, then its refined rows, each by loss."""
    condition, loss = pair
    return _position(weak_condition_of(condition), CONDITION_ORDER), condition, _position(loss, LOSS_ORDER)


def _label_accuracy(session: Session, run_id: int) -> dict[str, float]:
    """Condition -> accuracy of the labels the strong model learnt from, on strong_train, mean over seeds."""
    rows = session.execute(
        select(Metric.condition, Metric.value).where(
            Metric.run_id == run_id, Metric.split == LABELS_SPLIT, Metric.name == "accuracy"
        )
    )
    by_condition: dict[str, list[float]] = {}
    for name, value in rows:
        parts = split_seed_condition(name)
        if parts and parts[1].startswith("labels:") and value is not None:
            by_condition.setdefault(parts[1].removeprefix("labels:"), []).append(value)
    ordered = sorted(by_condition, key=lambda condition: _row_key((condition, None)))
    return {condition: float(np.mean(by_condition[condition])) for condition in ordered}


def build_report(session: Session, run_id: int) -> Report:
    """The report of one run from its stored per-seed models and test labels."""
    run = session.get(Run, run_id)
    if run is None:
        raise LookupError(f"run {run_id} not found")
    models = _seed_models(session, run_id)
    pairs = {parts for parts in map(_w2s_parts, models) if parts}
    weak_only = {c.removeprefix("weak:") for c in models if c.startswith("weak:")} - {c for c, _ in pairs}
    keys = sorted([*pairs, *((c, None) for c in weak_only)], key=_row_key)
    outcomes = _outcomes(session, run_id, {model_id for by_seed in models.values() for model_id in by_seed.values()})
    built = [_row(condition, loss, models, outcomes) for condition, loss in keys]
    task = (run.config or {}).get("task")
    return Report(
        run_id=run.id,
        name=run.name,
        status=run.status,
        task=task if isinstance(task, str) else None,
        rows=[row for row, _ in built],
        notes=[note for _, notes in built for note in notes] + ingest_notes(session, run_id),
        label_accuracy=_label_accuracy(session, run_id),
    )


def _upsert_metric(
    session: Session, run_id: int, model_id: int | None, condition: str, name: str, value: float | None
) -> None:
    """Update-or-insert on the metrics unique key; `IS` also matches a NULL model_id,
    which the unique constraint itself would not (NULLs are distinct in SQL)."""
    existing = session.scalars(
        select(Metric).where(
            Metric.run_id == run_id,
            Metric.model_id.is_(None) if model_id is None else Metric.model_id == model_id,
            Metric.condition == condition,
            Metric.split == SPLIT,
            Metric.name == name,
        )
    ).first()
    if existing is None:
        session.add(Metric(run_id=run_id, model_id=model_id, condition=condition, split=SPLIT, name=name, value=value))
    else:
        existing.value = value
    session.flush()


def compute_pgr(session: Session, run_id: int) -> dict[str, float | None]:
    """Store PGR over seeds (a fraction; NULL when undefined) and its interval for every
    `w2s:<c>:<loss>` whose weak, W2S and ceiling models have test labels; re-running updates the
    same rows. Returns condition -> PGR."""
    result: dict[str, float | None] = {}
    for row in build_report(session, run_id).rows:
        if row.loss is None or None in (row.weak_accuracy, row.w2s_accuracy, row.ceiling_accuracy):
            continue
        condition = f"w2s:{row.condition}:{row.loss}"
        values = (None, None, None) if row.pgr is None else (row.pgr.value, row.pgr.low, row.pgr.high)
        for name, value in zip(("pgr", "pgr_ci_low", "pgr_ci_high"), values, strict=True):
            _upsert_metric(session, run_id, None, condition, name, value)
        result[condition] = values[0]
    return result


def _percent(value: float | None) -> str:
    return MISSING if value is None else f"{100 * value:.1f}"


def _interval_cell(estimate: Estimate | None) -> str:
    if estimate is None:
        return MISSING
    return f"{100 * estimate.value:.1f} [{100 * estimate.low:.1f}, {100 * estimate.high:.1f}]"


def _pgr_cell(row: ReportRow) -> str:
    return UNDEFINED if row.pgr_undefined else _interval_cell(row.pgr)


def _table(headers: list[str], rows: list[list[str]], text_columns: int) -> list[str]:
    lines = [
        "| " + " | ".join(headers) + " |",
        "|" + "|".join("---" if i < text_columns else "---:" for i in range(len(headers))) + "|",
    ]
    return lines + ["| " + " | ".join(cells) + " |" for cells in rows]


def accuracy_table(report: Report) -> tuple[list[str], list[list[str]]]:
    """The main table's headers and cells (percent, with intervals), as the Markdown report and the run page show it."""
    headers = ["Condition", "Loss", "Seeds", "Examples", "Weak acc", "W2S acc", "Ceiling acc", "PGR (%)"]
    return headers, [
        [
            row.condition,
            row.loss or MISSING,
            str(len(row.seeds)),
            str(row.examples),
            _interval_cell(row.weak_accuracy),
            _interval_cell(row.w2s_accuracy),
            _interval_cell(row.ceiling_accuracy),
            _pgr_cell(row),
        ]
        for row in report.rows
    ]


def report_markdown(report: Report) -> str:
    """Lang et al. 2025 Table 2's shape (weak / W2S / ceiling accuracy, PGR) with intervals,
    then Ye et al. 2024's balanced accuracy and weighted F1, and AUROC; percentages, one decimal."""
    title = f"# Run {report.run_id}" + (f": {report.name}" if report.name else "")
    lines = [title, "", f"Task: {report.task or MISSING} · status: {report.status} · split: {SPLIT}", ""]
    if not report.rows:
        lines.append("No test results stored for this run yet.")
    else:
        lines += [
            f"Means over seeds; [{LEVEL:.0%} CI] from a paired bootstrap over seeds and test examples "
            f"({REPLICATES} replicates). PGR is {UNDEFINED} when the ceiling-weak gap is not "
            f"significantly above zero.",
            "",
        ]
        lines += _table(*accuracy_table(report), 2)
        names = (("Bal. acc", "balanced_accuracy"), ("F1 (weighted)", "f1"), ("AUROC", "auroc"))
        lines += [
            "",
            *_table(
                [
                    "Condition",
                    "Loss",
                    *(f"{who} {header}" for header, _ in names for who in ("Weak", "W2S", "Ceiling")),
                ],
                [
                    [
                        row.condition,
                        row.loss or MISSING,
                        *(_percent(getattr(row, f"{role}_{name}")) for _, name in names for role in ROLES),
                    ]
                    for row in report.rows
                ],
                2,
            ),
        ]
    if report.label_accuracy:
        lines += [
            "",
            f"Accuracy of the labels the strong model learnt from ({LABELS_SPLIT}, mean over seeds), "
            "before and after the strong model refined them:",
            "",
            *_table(
                ["Labels", "Accuracy"],
                [[condition, _percent(value)] for condition, value in report.label_accuracy.items()],
                1,
            ),
        ]
    if report.notes:
        lines += ["", "Notes:", "", *(f"- {note}" for note in report.notes)]
    return "\n".join(lines) + "\n"


def report_json(report: Report) -> dict[str, Any]:
    """Plain dicts, lists, strings and floats (None for undefined): `json.dumps` takes it as is."""
    return asdict(report)


ESTIMATES = ("weak_accuracy", "w2s_accuracy", "ceiling_accuracy", "gap", "pgr")


def report_from_json(data: dict[str, Any]) -> Report:
    """The inverse of `report_json`, for reading a stored report.json back."""
    rows = [
        ReportRow(**{**row, **{name: row[name] and Estimate(**row[name]) for name in ESTIMATES}})
        for row in data["rows"]
    ]
    return Report(**{**data, "rows": rows, "notes": list(data["notes"])})


def plot_pgr(report: Report, path: Path) -> Path:
    """Two panels per condition x loss: weak / W2S / ceiling accuracy with their intervals, and
    PGR with its interval. An undefined PGR is a hatched bar over the whole axis marked
    "undefined", so that it is never mistaken for a PGR of zero."""
    path = Path(path)
    rows = [row for row in report.rows if row.loss is not None]
    figure = Figure(figsize=(max(5.0, 1.3 * len(rows) + 2), 7.5))
    FigureCanvasAgg(figure)  # Agg, without pyplot's global state or backend switching
    accuracy_axes, pgr_axes = figure.subplots(2, 1, sharex=True)
    _plot_accuracies(accuracy_axes, rows)
    _plot_pgrs(pgr_axes, rows)
    pgr_axes.set_xticks(range(len(rows)), [f"{row.condition}\n{row.loss}" for row in rows], fontsize=8)
    accuracy_axes.set_title(
        f"Run {report.run_id}" + (f" · {report.task}" if report.task else "") + f" · mean over seeds, {LEVEL:.0%} CI"
    )
    if not rows:
        pgr_axes.text(0.5, 0.5, "no W2S results yet", ha="center", va="center", transform=pgr_axes.transAxes)
    figure.tight_layout()
    with replacing(path) as tmp:
        figure.savefig(tmp, format="png", dpi=120)
    return path


def _error_bar(estimate: Estimate) -> list[list[float]]:
    return [[100 * (estimate.value - estimate.low)], [100 * (estimate.high - estimate.value)]]


def _plot_accuracies(axes: Axes, rows: list[ReportRow]) -> None:
    """Grouped bars per row; a missing accuracy says so instead of leaving an empty (zero) bar."""
    width = 0.27
    for i, (role, name, color) in enumerate(
        (("weak", "weak", "tab:grey"), ("w2s", "W2S", "tab:blue"), ("ceiling", "ceiling", "tab:green"))
    ):
        xs = np.arange(len(rows)) + (i - 1) * width
        estimates = [getattr(row, f"{role}_accuracy") for row in rows]
        known = [j for j, estimate in enumerate(estimates) if estimate is not None]
        if known:
            axes.bar(
                xs[known],
                [100 * estimates[j].value for j in known],
                width,
                color=color,
                label=name,
                yerr=np.hstack([_error_bar(estimates[j]) for j in known]),
                capsize=2,
            )
        for j in sorted(set(range(len(rows))) - set(known)):
            axes.text(xs[j], 2, "missing", ha="center", va="bottom", rotation=90, fontsize=8, color="grey")
    axes.set_ylim(0, 105)
    axes.set_ylabel("test accuracy (%)")
    if rows:
        axes.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))


def _plot_pgrs(axes: Axes, rows: list[ReportRow]) -> None:
    bounds = [100 * end for row in rows if row.pgr is not None for end in (row.pgr.low, row.pgr.high)]
    # Wide intervals (a barely significant gap) would flatten every other bar: clip the axis.
    low, high = max(-150.0, min([0.0, *bounds]) - 10), min(250.0, max([100.0, *bounds]) + 10)
    for x, row in enumerate(rows):
        if row.pgr is None:
            # Spanning the whole axis, so its height can never be read as a value.
            axes.bar(x, high - low, bottom=low, fill=False, hatch="//", edgecolor="lightgrey")
            axes.text(
                x,
                (low + high) / 2,
                UNDEFINED if row.pgr_undefined else "missing",
                ha="center",
                va="center",
                rotation=90,
                fontsize=8,
                color="grey",
            )
        else:
            value = 100 * row.pgr.value
            axes.bar(x, value, color="tab:blue" if value >= 0 else "tab:red", yerr=_error_bar(row.pgr), capsize=3)
            axes.annotate(
                f"{value:.1f}",
                (x, value),
                xytext=(4, 0),
                textcoords="offset points",
                fontsize=8,
                va="bottom" if value >= 0 else "top",
            )
    axes.set_ylim(low, high)
    axes.axhline(0, color="black", linewidth=0.8)
    axes.set_ylabel("PGR (%)")


def write_report_files(report: Report, out_dir: Path) -> dict[str, Path]:
    """report.md, report.json and pgr.png in `out_dir` (created if needed)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    return {
        "markdown": write_text_atomic(out_dir / "report.md", report_markdown(report)),
        "json": write_text_atomic(out_dir / "report.json", json.dumps(report_json(report), indent=2) + "\n"),
        "plot": plot_pgr(report, out_dir / "pgr.png"),
    }
