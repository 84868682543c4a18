"""The results report of an experiment run: PGR per condition, a Markdown table, JSON, a PNG plot.

Reads the run's test `metrics` rows (written by the pipeline) and nothing else:

* `weak:<c>`          the weak model (ensemble or single) of weak condition `<c>`
* `w2s:<c>:<loss>`    the strong model finetuned on `<c>`'s weak labels with strong loss `<loss>`
* `ceiling`           the strong model finetuned on ground truth

each with `accuracy`, `balanced_accuracy`, `f1` (weighted) and `auroc`. `compute_pgr` adds one
`pgr` row per `w2s:` condition (NULL where undefined); the rest only reads, so a report can be
rebuilt at any time, also for a run that is still going.
"""

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from sqlalchemy import select
from sqlalchemy.orm import Session

from service.store import Metric, Run
from trainers.files import replacing, write_text_atomic
from trainers.metrics import pgr
from trainers.pipeline.budgets import ingest_notes

SPLIT = "test"
CEILING = "ceiling"
# Lang et al. 2025's order: the plain baseline first, then debate variants, then the ablations.
CONDITION_ORDER = ("no_debate", "single_debate", "debate_ensemble", "finetune_ensemble",
                   "consultancy", "market_making")
# Burns et al. 2023's order: the plain loss first, then the two confidence losses.
LOSS_ORDER = ("xent", "logconf", "product")
MISSING = "—"

# condition -> metric name -> (model_id, value); the latest row wins if a model was re-trained.
TestMetrics = dict[str, dict[str, tuple[int | None, float | None]]]


@dataclass(frozen=True)
class ReportRow:
    """One line of the table: a weak condition and the strong loss trained on its labels."""

    condition: str
    loss: str | None
    weak_accuracy: float | None
    w2s_accuracy: float | None
    ceiling_accuracy: float | None
    pgr: float | None
    w2s_balanced_accuracy: float | None = None
    w2s_f1: float | None = None
    weak_balanced_accuracy: float | None = None
    weak_f1: float | None = None
    ceiling_balanced_accuracy: float | None = None
    ceiling_f1: float | None = None


@dataclass(frozen=True)
class Report:
    run_id: int
    name: str
    status: str
    task: str | None
    rows: list[ReportRow] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _test_metrics(session: Session, run_id: int) -> TestMetrics:
    """All test metrics of the run; ordered by id so a later row (a re-trained model) wins."""
    rows = session.execute(
        select(Metric.condition, Metric.name, Metric.model_id, Metric.value)
        .where(Metric.run_id == run_id, Metric.split == SPLIT)
        .order_by(Metric.id))
    found: TestMetrics = {}
    for condition, name, model_id, value in rows:
        found.setdefault(condition, {})[name] = (model_id, value)
    return found


def _value(metrics: TestMetrics, condition: str, name: str) -> float | None:
    return metrics.get(condition, {}).get(name, (None, None))[1]


def _w2s_parts(condition: str) -> tuple[str, str] | None:
    """`w2s:<c>:<loss>` -> (c, loss); the loss is the last part so `<c>` may hold colons."""
    if not condition.startswith("w2s:") or condition.count(":") < 2:
        return None
    weak, _, loss = condition.removeprefix("w2s:").rpartition(":")
    return weak, loss


def _upsert_metric(session: Session, run_id: int, model_id: int | None, condition: str,
                   name: str, value: float | None) -> None:
    """Update-or-insert on the metrics unique key; `IS` also matches a NULL model_id,
    which the unique constraint itself would not (NULLs are distinct in SQL)."""
    existing = session.scalars(select(Metric).where(
        Metric.run_id == run_id, Metric.model_id.is_(None) if model_id is None else Metric.model_id == model_id,
        Metric.condition == condition, Metric.split == SPLIT, Metric.name == name)).first()
    if existing is None:
        session.add(Metric(run_id=run_id, model_id=model_id, condition=condition, split=SPLIT,
                           name=name, value=value))
    else:
        existing.value = value
    session.flush()


def compute_pgr(session: Session, run_id: int) -> dict[str, float | None]:
    """Store PGR (a fraction, NULL when undefined) for every `w2s:` condition whose own,
    weak and ceiling test accuracies exist; re-running updates the same rows."""
    metrics = _test_metrics(session, run_id)
    ceiling = _value(metrics, CEILING, "accuracy")
    result: dict[str, float | None] = {}
    for condition, names in sorted(metrics.items()):
        parts = _w2s_parts(condition)
        if parts is None:
            continue
        model_id, w2s = names.get("accuracy", (None, None))
        weak = _value(metrics, f"weak:{parts[0]}", "accuracy")
        if None in (w2s, weak, ceiling):
            continue
        result[condition] = pgr(weak, w2s, ceiling)
        _upsert_metric(session, run_id, model_id, condition, "pgr", result[condition])
    return result


def _position(value: str | None, order: tuple[str, ...]) -> tuple[int, str]:
    """Known names in their fixed order, unknown ones after them alphabetically; None first."""
    if value is None:
        return (-1, "")
    return (order.index(value), "") if value in order else (len(order), value)


def _row_key(pair: tuple[str, str | None]) -> tuple[tuple[int, str], tuple[int, str]]:
    return _position(pair[0], CONDITION_ORDER), _position(pair[1], LOSS_ORDER)


def _row(metrics: TestMetrics, condition: str, loss: str | None) -> ReportRow:
    weak, w2s = f"weak:{condition}", f"w2s:{condition}:{loss}"
    values = {name: (_value(metrics, weak, name), _value(metrics, w2s, name) if loss else None,
                     _value(metrics, CEILING, name))
              for name in ("accuracy", "balanced_accuracy", "f1")}
    weak_acc, w2s_acc, ceiling_acc = values["accuracy"]
    defined = None not in values["accuracy"]
    return ReportRow(
        condition=condition, loss=loss, weak_accuracy=weak_acc, w2s_accuracy=w2s_acc,
        ceiling_accuracy=ceiling_acc, pgr=pgr(weak_acc, w2s_acc, ceiling_acc) if defined else None,
        weak_balanced_accuracy=values["balanced_accuracy"][0], w2s_balanced_accuracy=values["balanced_accuracy"][1],
        ceiling_balanced_accuracy=values["balanced_accuracy"][2],
        weak_f1=values["f1"][0], w2s_f1=values["f1"][1], ceiling_f1=values["f1"][2])


def _note(row: ReportRow) -> str | None:
    """Why a row has no PGR, in words a reader can act on."""
    label = f"{row.condition} ({row.loss})"
    if row.loss is None:
        return f"{row.condition}: no strong model trained on its weak labels yet"
    missing = [name for name, value in (("weak", row.weak_accuracy), ("w2s", row.w2s_accuracy),
                                        ("ceiling", row.ceiling_accuracy)) if value is None]
    if missing:
        return f"PGR missing for {label}: no test accuracy for {', '.join(missing)}"
    if row.pgr is None:
        return (f"PGR undefined for {label}: the ceiling ({_percent(row.ceiling_accuracy)}%) "
                f"does not beat the weak model ({_percent(row.weak_accuracy)}%)")
    return None


def build_report(session: Session, run_id: int) -> Report:
    """The report of one run from its stored metrics; PGR is recomputed from the accuracies
    so the report is right even before `compute_pgr` ran."""
    run = session.get(Run, run_id)
    if run is None:
        raise LookupError(f"run {run_id} not found")
    metrics = _test_metrics(session, run_id)
    pairs = {parts for parts in map(_w2s_parts, metrics) if parts}
    weak_only = {c.removeprefix("weak:") for c in metrics if c.startswith("weak:")} - {c for c, _ in pairs}
    keys = sorted([*pairs, *((c, None) for c in weak_only)], key=_row_key)
    rows = [_row(metrics, condition, loss) for condition, loss in keys]
    notes = [note for note in map(_note, rows) if note] + ingest_notes(session, run_id)
    task = (run.config or {}).get("task")
    return Report(run_id=run.id, name=run.name, status=run.status,
                  task=task if isinstance(task, str) else None, rows=rows, notes=notes)


def _percent(value: float | None) -> str:
    return MISSING if value is None else f"{100 * value:.1f}"


MARKDOWN_COLUMNS = (
    ("Condition", "condition"), ("Loss", "loss"), ("Weak acc", "weak_accuracy"),
    ("W2S acc", "w2s_accuracy"), ("Ceiling acc", "ceiling_accuracy"), ("PGR (%)", "pgr"),
    ("Weak bal. acc", "weak_balanced_accuracy"), ("W2S bal. acc", "w2s_balanced_accuracy"),
    ("Ceiling bal. acc", "ceiling_balanced_accuracy"), ("Weak F1", "weak_f1"), ("W2S F1", "w2s_f1"),
    ("Ceiling F1", "ceiling_f1"),
)


def report_markdown(report: Report) -> str:
    """Lang et al. 2025 Table 2's shape (weak / W2S / ceiling accuracy, PGR), plus Ye et al.
    2024's balanced accuracy and weighted F1; all as percentages with one decimal."""
    title = f"# Run {report.run_id}" + (f": {report.name}" if report.name else "")
    lines = [title, "", f"Task: {report.task or MISSING} · status: {report.status} · split: {SPLIT}", ""]
    lines.append("| " + " | ".join(header for header, _ in MARKDOWN_COLUMNS) + " |")
    lines.append("|" + "|".join("---" if attr in ("condition", "loss") else "---:"
                                for _, attr in MARKDOWN_COLUMNS) + "|")
    for row in report.rows:
        cells = [getattr(row, attr) if attr in ("condition", "loss") else _percent(getattr(row, attr))
                 for _, attr in MARKDOWN_COLUMNS]
        lines.append("| " + " | ".join(cell or MISSING for cell in cells) + " |")
    if not report.rows:
        lines += ["", "No test metrics stored for this run yet."]
    if report.notes:
        lines += ["", "Notes:", "", *(f"- {note}" for note in report.notes)]
    return "\n".join(lines) + "\n"


def report_json(report: Report) -> dict[str, Any]:
    """Plain dicts, lists, strings and floats (None for undefined): `json.dumps` takes it as is."""
    return asdict(report)


def report_from_json(data: dict[str, Any]) -> Report:
    """The inverse of `report_json`, for reading a stored report.json back."""
    rows = [ReportRow(**row) for row in data["rows"]]
    return Report(**{**data, "rows": rows, "notes": list(data["notes"])})


def plot_pgr(report: Report, path: Path) -> Path:
    """A bar of PGR (%) per condition and loss; an undefined PGR is a hatched empty bar marked
    "undefined" so that a missing bar is never mistaken for a PGR of zero."""
    path = Path(path)
    rows = [row for row in report.rows if row.loss is not None]
    figure = Figure(figsize=(max(4.0, 1.1 * len(rows) + 1.5), 4.0))
    FigureCanvasAgg(figure)  # Agg, without pyplot's global state or backend switching
    axes = figure.add_subplot()
    values = [100 * row.pgr for row in rows if row.pgr is not None]
    # Undefined bars span the whole axis, so their height can never be read as a value.
    low, high = min([0.0, *values]) - 10, max([100.0, *values]) + 10
    for x, row in enumerate(rows):
        if row.pgr is None:
            axes.bar(x, high - low, bottom=low, fill=False, hatch="//", edgecolor="lightgrey")
            axes.text(x, (low + high) / 2, "undefined", ha="center", va="center", rotation=90,
                      fontsize=8, color="grey")
        else:
            axes.bar(x, 100 * row.pgr, color="tab:blue" if row.pgr >= 0 else "tab:red")
            axes.annotate(f"{100 * row.pgr:.1f}", (x, 100 * row.pgr), ha="center",
                          va="bottom" if row.pgr >= 0 else "top", fontsize=8)
    axes.set_ylim(low, high)
    axes.axhline(0, color="black", linewidth=0.8)
    axes.set_xticks(range(len(rows)), [f"{row.condition}\n{row.loss}" for row in rows], fontsize=8)
    axes.set_ylabel("PGR (%)")
    axes.set_title(f"Run {report.run_id}" + (f" · {report.task}" if report.task else ""))
    if not rows:
        axes.text(0.5, 0.5, "no W2S results yet", ha="center", va="center", transform=axes.transAxes)
    figure.tight_layout()
    with replacing(path) as tmp:
        figure.savefig(tmp, format="png", dpi=120)
    return path


def write_report_files(report: Report, out_dir: Path) -> dict[str, Path]:
    """report.md, report.json and pgr.png in `out_dir` (created if needed)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    return {
        "markdown": write_text_atomic(out_dir / "report.md", report_markdown(report)),
        "json": write_text_atomic(out_dir / "report.json", json.dumps(report_json(report), indent=2) + "\n"),
        "plot": plot_pgr(report, out_dir / "pgr.png"),
    }
