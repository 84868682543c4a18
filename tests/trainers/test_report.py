"""The results report on real SQLite and PostgreSQL: accuracies from test labels, means over
seeds, bootstrap intervals, PGR rows, table, JSON, plot."""

import json

import numpy as np
import pytest
from sqlalchemy import func, select

from service.store import Example, Label, Metric, Model, Run
from trainers.classification_metrics import binary_metrics
from trainers.report import (
    Report,
    build_report,
    compute_pgr,
    plot_pgr,
    report_from_json,
    report_json,
    report_markdown,
    write_report_files,
)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
N = 100  # test examples per run
GOLD = [int(i % 3 != 0) for i in range(N)]  # imbalanced, so balanced accuracy and F1 differ from accuracy

# condition -> test accuracy of seed 0 and seed 1. A model is right on the first accuracy * N
# test examples, so a seed's models are nested (paired as strongly as can be). PGRs by hand
# from the means over seeds (ceiling 0.81):
#   no_debate xent          (0.71 - 0.61) / (0.81 - 0.61) = 0.5
#   debate_ensemble xent    (0.75 - 0.66) / (0.81 - 0.66) = 0.6
#   debate_ensemble logconf (0.78 - 0.66) / 0.15          = 0.8
#   consultancy xent        weak 0.82 >= ceiling 0.81     -> undefined (NULL)
#   market_making xent      no weak model                 -> no PGR row at all
#   alpha_custom xent       (0.61 - 0.56) / (0.81 - 0.56) = 0.2
ACCURACIES = {
    "ceiling": (0.80, 0.82),
    "weak:no_debate": (0.60, 0.62),
    "w2s:no_debate:xent": (0.70, 0.72),
    "weak:debate_ensemble": (0.65, 0.67),
    "w2s:debate_ensemble:logconf": (0.77, 0.79),
    "w2s:debate_ensemble:xent": (0.74, 0.76),
    "weak:consultancy": (0.82, 0.82),
    "w2s:consultancy:xent": (0.81, 0.81),
    "w2s:market_making:xent": (0.75, 0.75),
    "weak:alpha_custom": (0.55, 0.57),
    "w2s:alpha_custom:xent": (0.60, 0.62),
}
EXPECTED_PGR = {
    "w2s:no_debate:xent": 0.5,
    "w2s:debate_ensemble:xent": 0.6,
    "w2s:debate_ensemble:logconf": 0.8,
    "w2s:consultancy:xent": None,
    "w2s:alpha_custom:xent": 0.2,
}


def nested(accuracy: float) -> list[int]:
    """Right (1) on the first round(accuracy * N) test examples, wrong after."""
    return [int(i < round(accuracy * N)) for i in range(N)]


def soft_labels(correct: list[int]) -> list[float]:
    """P(label 1) that is right where `correct` says so, with confidences that vary (for AUROC)."""
    soft = []
    for i, (gold, right) in enumerate(zip(GOLD, correct, strict=True)):
        confidence = 0.1 * (i % 4)
        soft.append(0.6 + confidence if (gold if right else 1 - gold) else 0.4 - confidence)
    return soft


def make_run(session, *, name: str = "sciq-debate", config: dict | None = None) -> tuple[int, list[int]]:
    """A run with N labelled test examples (GOLD) and one strong_train example; (run id, test example ids)."""
    run = Run(
        name=name, config={"task": "sciq"} if config is None else config, config_hash=f"hash-{name}", status="succeeded"
    )
    session.add(run)
    session.flush()
    rows = [
        Example(
            run_id=run.id,
            task="sciq",
            split="test",
            source_id=f"{name}-{i}",
            candidate_id="correct",
            question=f"Q{i}?",
            context=None,
            candidate=f"A{i}",
            label=label,
        )
        for i, label in enumerate(GOLD)
    ]
    rows.append(
        Example(
            run_id=run.id,
            task="sciq",
            split="strong_train",
            source_id=f"{name}-train",
            candidate_id="correct",
            question="Q?",
            context=None,
            candidate="A",
            label=1,
        )
    )
    session.add_all(rows)
    session.flush()
    return run.id, [row.id for row in rows]


def add_model(session, run_id: int, example_ids: list[int], condition: str, correct: list[int]) -> int:
    """A model under seeded metric condition `condition` (`s0/weak:c`): its test labels (plus a
    wrong label on the strong_train example, which the report must not count) and its metric rows."""
    model = Model(
        name=f"run{run_id}/{condition}",
        role="strong" if "weak:" not in condition else "weak",
        base="tiny",
        run_id=run_id,
        condition=condition,
    )
    session.add(model)
    session.flush()
    soft = [*soft_labels(correct), 0.0]
    session.add_all(
        Label(model_id=model.id, example_id=example_id, soft_label=p, hard_label=int(p >= 0.5))
        for example_id, p in zip(example_ids, soft, strict=True)
    )
    metrics = binary_metrics(GOLD, soft[:N])
    session.add_all(
        Metric(run_id=run_id, model_id=model.id, condition=condition, split="test", name=name, value=metrics[name])
        for name in ("accuracy", "balanced_accuracy", "f1", "auroc")
    )
    session.flush()
    return model.id


def seed_run(
    session,
    *,
    name: str = "sciq-debate",
    config: dict | None = None,
    accuracies: dict[str, tuple[float, ...]] = ACCURACIES,
) -> int:
    """A run with a model per condition and seed whose test labels have `accuracies`."""
    run_id, example_ids = make_run(session, name=name, config=config)
    for condition, per_seed in accuracies.items():
        for seed, accuracy in enumerate(per_seed):
            add_model(session, run_id, example_ids, f"s{seed}/{condition}", nested(accuracy))
    return run_id


def _pgr_rows(session, run_id: int) -> dict[str, dict[str, float | None]]:
    rows = session.execute(
        select(Metric.condition, Metric.name, Metric.model_id, Metric.value).where(
            Metric.run_id == run_id, Metric.name.like("pgr%")
        )
    )
    found: dict[str, dict[str, float | None]] = {}
    for condition, name, model_id, value in rows:
        assert model_id is None, "PGR over seeds belongs to no single model"
        found.setdefault(condition, {})[name] = value
    return found


def _rows(report: Report) -> dict[tuple[str, str | None], object]:
    return {(row.condition, row.loss): row for row in report.rows}


def test_compute_pgr_stores_hand_computed_values_with_intervals(sessions) -> None:
    with sessions.begin() as session:
        run_id = seed_run(session)
        result = compute_pgr(session, run_id)
    assert result == {key: pytest.approx(value) if value is not None else None for key, value in EXPECTED_PGR.items()}
    with sessions.begin() as session:
        stored = _pgr_rows(session, run_id)
    assert set(stored) == set(EXPECTED_PGR)
    for condition, expected in EXPECTED_PGR.items():
        if expected is None:
            assert stored[condition] == {"pgr": None, "pgr_ci_low": None, "pgr_ci_high": None}
        else:
            assert stored[condition]["pgr"] == pytest.approx(expected)
            assert stored[condition]["pgr_ci_low"] <= stored[condition]["pgr"] <= stored[condition]["pgr_ci_high"]


def test_compute_pgr_twice_updates_and_never_duplicates(sessions) -> None:
    with sessions.begin() as session:
        run_id = seed_run(session)
        compute_pgr(session, run_id)
    with sessions.begin() as session:
        # A re-trained W2S model of seed 1 labels differently: the next compute_pgr must update.
        model_id = session.scalar(
            select(Model.id).where(Model.condition == "s1/w2s:no_debate:xent", Model.run_id == run_id)
        )
        for label in session.scalars(select(Label).where(Label.model_id == model_id)):
            label.soft_label = 1.0 - label.soft_label  # right on 28 of 100 instead of 72
        assert compute_pgr(session, run_id)["w2s:no_debate:xent"] == pytest.approx((0.49 - 0.61) / 0.20)
    with sessions.begin() as session:
        counts = dict(
            session.execute(
                select(Metric.condition, func.count())
                .where(Metric.run_id == run_id, Metric.name.like("pgr%"))
                .group_by(Metric.condition)
            ).all()
        )
        assert counts == dict.fromkeys(EXPECTED_PGR, 3)


def test_pgr_of_one_run_ignores_another_runs_rows(sessions) -> None:
    with sessions.begin() as session:
        first = seed_run(session, name="one")
        second = seed_run(session, name="two", accuracies={**ACCURACIES, "ceiling": (0.90, 0.92)})
        assert compute_pgr(session, first)["w2s:no_debate:xent"] == pytest.approx(0.5)
        assert compute_pgr(session, second)["w2s:no_debate:xent"] == pytest.approx(0.10 / 0.30)


def test_accuracies_come_from_test_labels_not_from_metric_values(sessions) -> None:
    with sessions.begin() as session:
        run_id = seed_run(session)
        session.execute(Metric.__table__.update().where(Metric.run_id == run_id).values(value=0.0))
        row = _rows(build_report(session, run_id))[("no_debate", "xent")]
    assert (row.weak_accuracy.value, row.w2s_accuracy.value, row.ceiling_accuracy.value) == pytest.approx(
        (0.61, 0.71, 0.81)
    )
    assert row.examples == N  # the strong_train example (labelled wrong by every model) is not counted


def test_report_rows_are_ordered_and_average_every_metric_over_seeds(sessions) -> None:
    with sessions.begin() as session:
        report = build_report(session, seed_run(session))
    assert (report.name, report.status, report.task) == ("sciq-debate", "succeeded", "sciq")
    assert [(row.condition, row.loss) for row in report.rows] == [
        ("no_debate", "xent"),
        ("debate_ensemble", "xent"),
        ("debate_ensemble", "logconf"),
        ("consultancy", "xent"),
        ("market_making", "xent"),
        ("alpha_custom", "xent"),
    ]
    row = report.rows[2]
    assert (row.seeds, row.examples) == ([0, 1], N)
    assert (row.weak_accuracy.value, row.w2s_accuracy.value, row.ceiling_accuracy.value) == pytest.approx(
        (0.66, 0.78, 0.81)
    )
    assert row.pgr.value == pytest.approx(0.8)
    for role, condition in (
        ("weak", "weak:debate_ensemble"),
        ("w2s", "w2s:debate_ensemble:logconf"),
        ("ceiling", "ceiling"),
    ):
        per_seed = [binary_metrics(GOLD, soft_labels(nested(accuracy))) for accuracy in ACCURACIES[condition]]
        for name in ("balanced_accuracy", "f1", "auroc"):
            assert getattr(row, f"{role}_{name}") == pytest.approx(np.mean([m[name] for m in per_seed])), (role, name)
    assert row.weak_balanced_accuracy != pytest.approx(row.weak_accuracy.value)  # a different number


def test_seeds_aggregate_as_the_mean_of_per_seed_accuracies(sessions) -> None:
    accuracies = {
        "weak:no_debate": (0.50, 0.60, 0.70),
        "w2s:no_debate:xent": (0.60, 0.80, 0.70),
        "ceiling": (0.90, 0.80, 0.85),
    }
    with sessions.begin() as session:
        row = build_report(session, seed_run(session, accuracies=accuracies)).rows[0]
    assert row.seeds == [0, 1, 2]
    assert row.weak_accuracy.value == pytest.approx(0.60) and row.w2s_accuracy.value == pytest.approx(0.70)
    assert row.ceiling_accuracy.value == pytest.approx(0.85) and row.pgr.value == pytest.approx(0.10 / 0.25)
    # seeds disagree by 10-20 points: the intervals cover that spread, not only example noise
    assert row.w2s_accuracy.low < 0.63 and row.w2s_accuracy.high > 0.77


def test_a_seed_without_all_three_models_is_left_out_with_a_note(sessions) -> None:
    accuracies = {"weak:no_debate": (0.60, 0.50), "w2s:no_debate:xent": (0.70,), "ceiling": (0.80, 0.90)}
    with sessions.begin() as session:
        report = build_report(session, seed_run(session, accuracies=accuracies))
    row = report.rows[0]
    assert row.seeds == [0] and row.weak_accuracy.value == pytest.approx(0.60) and row.pgr.value == pytest.approx(0.5)
    assert report.notes == [
        "no_debate (xent): seed(s) 1 left out: they lack a weak / w2s / ceiling model with test labels yet"
    ]


def test_undefined_and_missing_pgr_are_none_with_a_note(sessions) -> None:
    with sessions.begin() as session:
        report = build_report(session, seed_run(session))
    rows = _rows(report)
    consultancy, market_making = rows[("consultancy", "xent")], rows[("market_making", "xent")]
    assert consultancy.pgr is None and consultancy.pgr_undefined and consultancy.gap.low <= 0
    assert market_making.pgr is None and not market_making.pgr_undefined and market_making.weak_accuracy is None
    assert report.notes == [
        "PGR undefined for consultancy (xent): the ceiling-weak gap (-1.0 points, 95% CI -4.0 to +0.0) "
        "is not significantly above zero",
        "PGR missing for market_making (xent): no test labels for weak",
    ]


def test_weak_condition_without_strong_model_and_missing_task(sessions) -> None:
    with sessions.begin() as session:
        run_id, example_ids = make_run(session, config={"seed": 1})
        add_model(session, run_id, example_ids, "s0/weak:single_debate", nested(0.7))
        report = build_report(session, run_id)
    assert report.task is None
    assert [(row.condition, row.loss) for row in report.rows] == [("single_debate", None)]
    assert report.rows[0].weak_accuracy.value == pytest.approx(0.7) and report.rows[0].pgr is None
    assert report.notes == ["single_debate: no strong model trained on its weak labels yet"]
    assert "Task: — ·" in report_markdown(report)


def test_markdown_shows_intervals_undefined_and_every_metric(sessions) -> None:
    with sessions.begin() as session:
        report = build_report(session, seed_run(session))
    markdown = report_markdown(report)
    tables = [line for line in markdown.splitlines() if line.startswith("| ")]
    assert tables[0] == "| Condition | Loss | Seeds | Examples | Weak acc | W2S acc | Ceiling acc | PGR (%) |"
    row = report.rows[0]
    pgr = row.pgr
    assert (
        f"| no_debate | xent | 2 | 100 | 61.0 [{100 * row.weak_accuracy.low:.1f}, {100 * row.weak_accuracy.high:.1f}] |"
    ) in markdown
    assert f"| 50.0 [{100 * pgr.low:.1f}, {100 * pgr.high:.1f}] |" in markdown
    assert "| consultancy | xent | 2 | 100 | 82.0 [" in markdown and markdown.count("| undefined |") == 1
    assert "| market_making | xent | 2 | 100 | — | 75.0 [" in markdown and "81.0 [73.0, 88.5] | — |" in markdown
    assert (
        "| Condition | Loss | Weak Bal. acc | W2S Bal. acc | Ceiling Bal. acc | Weak F1 (weighted) | "
        "W2S F1 (weighted) | Ceiling F1 (weighted) | Weak AUROC | W2S AUROC | Ceiling AUROC |"
    ) in tables
    assert f"| no_debate | xent | {100 * row.weak_balanced_accuracy:.1f} |" in markdown
    assert "- PGR undefined for consultancy (xent)" in markdown


def test_json_round_trips(sessions, tmp_path) -> None:
    with sessions.begin() as session:
        report = build_report(session, seed_run(session))
    data = json.loads(json.dumps(report_json(report)))
    assert data["rows"][0]["pgr"]["value"] == pytest.approx(0.5) and data["rows"][3]["pgr"] is None
    assert set(data["rows"][0]["w2s_accuracy"]) == {"value", "low", "high"}
    assert report_from_json(data) == report
    paths = write_report_files(report, tmp_path / "out")
    assert report_from_json(json.loads(paths["json"].read_text())) == report
    assert paths["markdown"].read_text() == report_markdown(report)


def test_report_is_the_same_every_time_it_is_built(sessions) -> None:
    with sessions.begin() as session:
        run_id = seed_run(session)
        assert build_report(session, run_id) == build_report(session, run_id)


def test_plot_is_a_png_and_files_are_renamed_into_place(sessions, tmp_path) -> None:
    with sessions.begin() as session:
        report = build_report(session, seed_run(session))
    out = tmp_path / "report"
    paths = write_report_files(report, out)
    assert set(paths) == {"markdown", "json", "plot"}
    png = paths["plot"].read_bytes()
    assert paths["plot"].name == "pgr.png" and png.startswith(PNG_SIGNATURE) and len(png) > 1000
    assert sorted(p.name for p in out.iterdir()) == ["pgr.png", "report.json", "report.md"]


def test_plot_of_a_report_without_results_is_still_a_png(tmp_path) -> None:
    path = plot_pgr(Report(run_id=1, name="", status="queued", task=None), tmp_path / "empty.png")
    assert path.read_bytes().startswith(PNG_SIGNATURE)


def test_unknown_run_is_reported(sessions) -> None:
    with pytest.raises(LookupError, match="run 999"), sessions.begin() as session:
        build_report(session, 999)


def test_a_refined_row_follows_its_condition_and_measures_pgr_against_the_same_weak_model(sessions) -> None:
    accuracies = {
        "ceiling": (0.80, 0.82),
        "weak:no_debate": (0.60, 0.62),
        "w2s:no_debate:xent": (0.70, 0.72),
        "w2s:no_debate:refined_icl:xent": (0.78, 0.80),  # (0.79 - 0.61) / (0.81 - 0.61) = 0.9
        "weak:debate_ensemble": (0.65, 0.67),
        "w2s:debate_ensemble:xent": (0.74, 0.76),
    }
    with sessions.begin() as session:
        run_id = seed_run(session, accuracies=accuracies)
        for seed, (before, after) in enumerate(((0.6, 0.9), (0.62, 0.94))):
            for condition, value in (("no_debate", before), ("no_debate:refined_icl", after)):
                name = f"s{seed}/labels:{condition}"
                session.add(Metric(run_id=run_id, condition=name, split="strong_train", name="accuracy", value=value))
        report = build_report(session, run_id)
        assert compute_pgr(session, run_id)["w2s:no_debate:refined_icl:xent"] == pytest.approx(0.9)
    assert [(row.condition, row.loss) for row in report.rows] == [
        ("no_debate", "xent"),
        ("no_debate:refined_icl", "xent"),
        ("debate_ensemble", "xent"),
    ]
    refined = report.rows[1]
    assert refined.weak_accuracy.value == pytest.approx(0.61) and refined.pgr.value == pytest.approx(0.9)
    assert report.label_accuracy == pytest.approx({"no_debate": 0.61, "no_debate:refined_icl": 0.92})
    assert "| no_debate:refined_icl | 92.0 |" in report_markdown(report)
    assert report_from_json(json.loads(json.dumps(report_json(report)))) == report
