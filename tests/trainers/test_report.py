"""The results report on real SQLite and PostgreSQL: PGR rows, table, JSON, plot."""

import json

import pytest
from sqlalchemy import func, select

from service.store import Debate, Example, Label, Metric, Model, Run, Turn
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

# condition -> (accuracy, balanced accuracy, f1); PGRs by hand against the ceiling's 0.80:
#   no_debate xent         (0.70 - 0.60) / (0.80 - 0.60) = 0.5
#   debate_ensemble xent   (0.74 - 0.65) / (0.80 - 0.65) = 0.6
#   debate_ensemble logconf (0.77 - 0.65) / 0.15         = 0.8
#   consultancy xent       weak 0.82 >= ceiling 0.80     -> undefined (NULL)
#   market_making xent     no weak accuracy              -> no PGR row at all
ACCURACIES = {
    "ceiling": (0.80, 0.79, 0.78),
    "weak:no_debate": (0.60, 0.58, 0.57),
    "w2s:no_debate:xent": (0.70, 0.69, 0.68),
    "weak:debate_ensemble": (0.65, 0.64, 0.63),
    "w2s:debate_ensemble:logconf": (0.77, 0.76, 0.75),
    "w2s:debate_ensemble:xent": (0.74, 0.73, 0.72),
    "weak:consultancy": (0.82, 0.81, 0.80),
    "w2s:consultancy:xent": (0.81, 0.80, 0.79),
    "w2s:market_making:xent": (0.75, 0.74, 0.73),
    "weak:alpha_custom": (0.55, 0.54, 0.53),
    "w2s:alpha_custom:xent": (0.60, 0.59, 0.58),
}
EXPECTED_PGR = {
    "w2s:no_debate:xent": 0.5,
    "w2s:debate_ensemble:xent": 0.6,
    "w2s:debate_ensemble:logconf": 0.8,
    "w2s:consultancy:xent": None,
    "w2s:alpha_custom:xent": 0.2,
}


def seed_run(session, *, name: str = "sciq-debate", config: dict | None = None, examples: int = 5) -> int:
    """A run with examples, one debate of 3 turns per example, a model per condition, labels
    from every weak model and the test metrics of ACCURACIES."""
    config = {"task": "sciq", "k": 4} if config is None else config
    run = Run(name=name, config=config, config_hash=f"hash-{name}", status="succeeded")
    session.add(run)
    session.flush()
    rows = [Example(run_id=run.id, task="sciq", split="test", source_id=f"{name}-{i}",
                    candidate_id="correct", question=f"Q{i}?", context=None, candidate=f"A{i}", label=i % 2)
            for i in range(examples)]
    session.add_all(rows)
    session.flush()
    for example in rows:
        debate = Debate(example_id=example.id, run_id=run.id, protocol="debate", order="sequential",
                        num_turns=3, seed=7, model="strong", params={"turns": 3}, sampling={"t": 0.7},
                        status="succeeded")
        debate.turns = [Turn(index=i, speaker="AB"[i % 2], stance="pro" if i % 2 == 0 else "con",
                             content=f"turn {i} ✓") for i in range(3)]
        session.add(debate)
    for condition, (accuracy, balanced, f1) in ACCURACIES.items():
        model = Model(name=f"{name}/{condition}", role="weak" if condition.startswith("weak") else "strong",
                      base="tiny", run_id=run.id, condition=condition)
        session.add(model)
        session.flush()
        if model.role == "weak":
            session.add_all(Label(model_id=model.id, example_id=e.id, soft_label=0.25 + 0.1 * i,
                                  hard_label=0) for i, e in enumerate(rows))
        session.add_all(Metric(run_id=run.id, model_id=model.id, condition=condition, split="test",
                               name=metric, value=value)
                        for metric, value in (("accuracy", accuracy), ("balanced_accuracy", balanced),
                                              ("f1", f1), ("auroc", None)))
    session.flush()
    return run.id


def _pgr_rows(session, run_id: int) -> dict[str, tuple[int | None, float | None]]:
    rows = session.execute(select(Metric.condition, Metric.model_id, Metric.value)
                           .where(Metric.run_id == run_id, Metric.name == "pgr"))
    return {condition: (model_id, value) for condition, model_id, value in rows}


def _model_of(session, run_id: int, condition: str) -> int:
    return session.scalar(select(Metric.model_id).where(
        Metric.run_id == run_id, Metric.condition == condition, Metric.name == "accuracy"))


def test_compute_pgr_stores_hand_computed_values(sessions) -> None:
    with sessions.begin() as session:
        run_id = seed_run(session)
        result = compute_pgr(session, run_id)
    assert result == {key: pytest.approx(value) if value is not None else None
                      for key, value in EXPECTED_PGR.items()}
    with sessions.begin() as session:
        stored = _pgr_rows(session, run_id)
        assert set(stored) == set(EXPECTED_PGR)
        for condition, expected in EXPECTED_PGR.items():
            model_id, value = stored[condition]
            assert model_id == _model_of(session, run_id, condition)
            assert value == (pytest.approx(expected) if expected is not None else None)


def test_compute_pgr_twice_updates_and_never_duplicates(sessions) -> None:
    with sessions.begin() as session:
        run_id = seed_run(session)
        compute_pgr(session, run_id)
    with sessions.begin() as session:
        # A re-trained W2S model reports a new accuracy: the next compute_pgr must update.
        session.execute(Metric.__table__.update().where(
            Metric.run_id == run_id, Metric.condition == "w2s:no_debate:xent", Metric.name == "accuracy")
            .values(value=0.75))
        assert compute_pgr(session, run_id)["w2s:no_debate:xent"] == pytest.approx(0.75)
    with sessions.begin() as session:
        counts = dict(session.execute(select(Metric.condition, func.count()).where(
            Metric.run_id == run_id, Metric.name == "pgr").group_by(Metric.condition)).all())
        assert counts == dict.fromkeys(EXPECTED_PGR, 1)
        assert _pgr_rows(session, run_id)["w2s:no_debate:xent"][1] == pytest.approx(0.75)


def test_pgr_of_one_run_ignores_another_runs_metrics(sessions) -> None:
    with sessions.begin() as session:
        first = seed_run(session, name="one")
        second = seed_run(session, name="two")
        session.execute(Metric.__table__.update().where(
            Metric.run_id == second, Metric.condition == "ceiling", Metric.name == "accuracy").values(value=0.9))
        assert compute_pgr(session, first)["w2s:no_debate:xent"] == pytest.approx(0.5)
        assert compute_pgr(session, second)["w2s:no_debate:xent"] == pytest.approx(1 / 3)


def test_report_rows_are_ordered_and_carry_every_metric(sessions) -> None:
    with sessions.begin() as session:
        report = build_report(session, seed_run(session))
    assert (report.name, report.status, report.task) == ("sciq-debate", "succeeded", "sciq")
    assert [(row.condition, row.loss) for row in report.rows] == [
        ("no_debate", "xent"), ("debate_ensemble", "xent"), ("debate_ensemble", "logconf"),
        ("consultancy", "xent"), ("market_making", "xent"), ("alpha_custom", "xent")]
    row = report.rows[2]
    assert (row.weak_accuracy, row.w2s_accuracy, row.ceiling_accuracy) == (0.65, 0.77, 0.80)
    assert row.pgr == pytest.approx(0.8)
    assert (row.weak_balanced_accuracy, row.w2s_balanced_accuracy, row.ceiling_balanced_accuracy) == (0.64, 0.76, 0.79)
    assert (row.weak_f1, row.w2s_f1, row.ceiling_f1) == (0.63, 0.75, 0.78)


def test_undefined_and_missing_pgr_are_none_with_a_note(sessions) -> None:
    with sessions.begin() as session:
        report = build_report(session, seed_run(session))
    by_condition = {row.condition: row for row in report.rows}
    assert by_condition["consultancy"].pgr is None
    assert by_condition["market_making"].pgr is None and by_condition["market_making"].weak_accuracy is None
    assert report.notes == [
        "PGR undefined for consultancy (xent): the ceiling (80.0%) does not beat the weak model (82.0%)",
        "PGR missing for market_making (xent): no test accuracy for weak",
    ]


def test_weak_condition_without_strong_model_and_missing_task(sessions) -> None:
    with sessions.begin() as session:
        run_id = seed_run(session, config={"seed": 1})
        session.add(Metric(run_id=run_id, condition="weak:single_debate", name="accuracy", value=0.7))
        report = build_report(session, run_id)
    assert report.task is None
    assert ("single_debate", None) in [(row.condition, row.loss) for row in report.rows]
    assert "single_debate: no strong model trained on its weak labels yet" in report.notes
    assert "Task: — ·" in report_markdown(report)


def test_markdown_has_a_row_per_condition_with_percentages(sessions) -> None:
    with sessions.begin() as session:
        markdown = report_markdown(build_report(session, seed_run(session)))
    table = [line for line in markdown.splitlines() if line.startswith("| ") and "Condition" not in line]
    assert len(table) == 6
    assert "| no_debate | xent | 60.0 | 70.0 | 80.0 | 50.0 | 58.0 | 69.0 | 79.0 | 57.0 | 68.0 | 78.0 |" in table
    assert "| debate_ensemble | logconf | 65.0 | 77.0 | 80.0 | 80.0 |" in markdown
    assert "| consultancy | xent | 82.0 | 81.0 | 80.0 | — |" in markdown
    assert "| market_making | xent | — | 75.0 | 80.0 | — |" in markdown
    assert "- PGR undefined for consultancy (xent)" in markdown


def test_json_round_trips(sessions, tmp_path) -> None:
    with sessions.begin() as session:
        report = build_report(session, seed_run(session))
    data = json.loads(json.dumps(report_json(report)))
    assert data["rows"][0]["pgr"] == pytest.approx(0.5) and data["rows"][3]["pgr"] is None
    assert report_from_json(data) == report
    paths = write_report_files(report, tmp_path / "out")
    assert report_from_json(json.loads(paths["json"].read_text())) == report
    assert paths["markdown"].read_text() == report_markdown(report)


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
