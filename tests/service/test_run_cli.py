"""What `w2s run` prints at the end and `w2s report` prints: the results table with its intervals."""

import argparse
import io
import json
from pathlib import Path

import pytest
from rich.console import Console

from service.run_cli import WORKER_GROUPS, demo_hints, print_report, report_command, stage_note
from service.settings import Settings
from service.store.runs import StageProgress
from tests.trainers.test_report import seed_run
from trainers.jobs.payloads import JOB_KINDS


def test_run_prints_the_table_with_intervals_and_undefined_pgr(sessions, capsys) -> None:  # noqa: ANN001
    with sessions.begin() as session:
        run_id = seed_run(session)
    console = Console(file=io.StringIO())
    assert print_report(sessions, run_id, console, "succeeded", []) == 0
    out = capsys.readouterr().out
    assert "| no_debate | xent | 2 | 100 | 61.0 [" in out  # the mean over two seeds and its interval
    assert "| consultancy | xent |" in out and "| undefined |" in out
    assert "PGR undefined for consultancy (xent)" in out
    assert f"run {run_id}: succeeded" in console.file.getvalue()


def test_report_command_prints_markdown_and_json(migrated_url: str, sessions, capsys, tmp_path) -> None:  # noqa: ANN001
    with sessions.begin() as session:
        run_id = seed_run(session)
    settings = Settings(database_url=migrated_url, artifacts_dir=tmp_path)
    assert report_command(argparse.Namespace(run_id=run_id, format="markdown"), settings) == 0
    assert "| undefined |" in capsys.readouterr().out
    assert report_command(argparse.Namespace(run_id=run_id, format="json"), settings) == 0
    rows = {row["condition"] + ":" + row["loss"]: row for row in json.loads(capsys.readouterr().out)["rows"]}
    assert rows["consultancy:xent"]["pgr"] is None
    pgr = rows["no_debate:xent"]["pgr"]
    assert pgr["low"] < pgr["value"] < pgr["high"] and pgr["value"] == pytest.approx(0.5)


def test_stage_note_shows_eta_and_the_step_and_loss_of_running_training_jobs() -> None:
    stage = StageProgress(
        "strong",
        {"running": 1, "queued": 2, "succeeded": 3},
        10,
        40,
        75.4,
        [],
        [{"done": 12, "total": 40, "eta_s": 75.4, "loss": 0.31234}, {"done": 0, "total": 1}],
    )
    assert stage_note(stage) == "2 queued, 1 running, ETA 0:01:15, step 12/40 loss 0.3123"


def test_demo_hints_use_absolute_paths_and_name_only_reports_that_exist(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    settings = Settings(database_url="sqlite:///w2s.db", artifacts_dir=Path("artifacts"))
    (tmp_path / "artifacts" / "runs" / "3").mkdir(parents=True)
    (tmp_path / "artifacts" / "runs" / "3" / "report.md").write_text("| table |")
    text = "\n".join(demo_hints(settings, 3))
    assert str(tmp_path / "artifacts" / "runs" / "3" / "report.md") in text
    assert "pgr.png" not in text and "report.json" not in text
    assert f"sqlite3 {tmp_path / 'w2s.db'} " in text and f"W2S_DATABASE_URL=sqlite:///{tmp_path / 'w2s.db'} " in text


def test_in_process_workers_serve_every_job_kind_generative_ones_included() -> None:
    served = [kind for group in WORKER_GROUPS for kind in group]
    assert sorted(served) == sorted(JOB_KINDS) and {"gen_weak", "gen_refine", "gen_strong"} <= set(served)
