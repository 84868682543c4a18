"""What `w2s run` prints at the end and `w2s report` prints: the results table with its intervals."""

import argparse
import io
import json

import pytest
from rich.console import Console

from service.run_cli import print_report, report_command
from service.settings import Settings
from tests.trainers.test_report import seed_run


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
