"""The ingest job on a BoolQ-format directory with the tiny models' real tokenizers: labels keep the file's
yes rate, examples over either model's length budget are dropped and counted, hopeless budgets fail clearly."""

import json
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from transformers import AutoTokenizer

from service.run_cli import worker_env
from service.settings import Settings
from service.store import make_engine, make_session_factory
from service.store.migrate import upgrade
from service.store.models import Example, Job
from trainers.jobs import pipeline_handlers
from trainers.pipeline import parse_run_config, submit_run
from trainers.pipeline.budgets import PROMPT_SUFFIX, ingest_notes
from trainers.report import build_report
from trainers.training import ClassifierInput, InputTooLong, encode_inputs
from trainers.worker import Worker

SENTENCE = "the river runs to the sea and the water is cold."


def boolq_row(i: int, *, yes: bool, sentences: int = 1) -> dict:
    """One row in BoolQ's own fields; `sentences` sets the passage length."""
    return {
        "question": f"is statement {i} true",
        "title": f"Title {i}",
        "answer": yes,
        "passage": " ".join([SENTENCE] * sentences),
    }


def write_rows(directory: Path, rows: list[dict]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "validation.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return directory


@pytest.fixture
def settings(tmp_path: Path, testbed_artifacts: Path) -> Settings:
    url = f"sqlite:///{tmp_path / 'w2s.db'}"
    upgrade(url)
    return Settings(database_url=url, vllm_base_url="http://127.0.0.1:9", artifacts_dir=testbed_artifacts)


def ingest(settings: Settings, config: dict) -> tuple[sessionmaker[Session], Job]:
    """Submit the run and run its ingest job only; the finished job."""
    sessions = make_session_factory(make_engine(settings.database_url))
    with sessions.begin() as session:
        submit_run(session, parse_run_config(config), strong_model="strong")
    Worker(sessions, {"ingest": pipeline_handlers(worker_env(settings))["ingest"]}).run(max_jobs=1)
    with sessions() as session:
        return sessions, session.scalars(select(Job).where(Job.kind == "ingest")).one()


SPLITS = {"weak_train": 64, "strong_train": 64, "test": 64}


@pytest.mark.slow
def test_boolq_with_default_settings_keeps_the_files_yes_rate(settings: Settings, tmp_path: Path) -> None:
    rows = [boolq_row(i, yes=i % 8 < 5) for i in range(240)]  # 62.5% yes, BoolQ's prior
    config = {"task": "boolq", "data_dir": str(write_rows(tmp_path / "boolq", rows)), "splits": SPLITS}
    sessions, job = ingest(settings, config)
    assert job.status == "succeeded", job.error
    assert job.result["dropped"]["dropped"] == 0
    with sessions() as session:
        labels = list(session.scalars(select(Example.label)))
        assert ingest_notes(session, job.run_id) == []
    assert len(labels) == 192
    assert abs(sum(labels) / len(labels) - 0.625) <= 0.07


@pytest.mark.slow
def test_examples_over_either_budget_are_dropped_counted_and_reported(
    settings: Settings, tmp_path: Path, tiny_model_dir: Path
) -> None:
    # Sizes in the tiny (BPE) tokenizer, BOS included; both models are the tiny one here. 200 short
    # rows (46 tokens) fit both models. 30 "no" rows of 7 sentences (120 tokens) fit the weak model's
    # text limit (256 - 64 for the transcript) and the strong model's 128, but not with its 12-token
    # prompt suffix. 10 "yes" rows of 15 sentences (232 tokens) fit neither: 256 only without the
    # transcript's room.
    rows = (
        [boolq_row(i, yes=i % 8 < 5) for i in range(200)]
        + [boolq_row(200 + i, yes=False, sentences=7) for i in range(30)]
        + [boolq_row(230 + i, yes=True, sentences=15) for i in range(10)]
    )
    config = {
        "task": "boolq",
        "data_dir": str(write_rows(tmp_path / "boolq", rows)),
        "splits": SPLITS,
        "weak": {"model": str(tiny_model_dir), "train": {"max_length": 256}},
        "strong": {"train": {"max_length": 128}},
    }
    settings = settings.model_copy(update={"strong_model_path": tiny_model_dir})
    sessions, job = ingest(settings, config)
    assert job.status == "succeeded", job.error
    dropped = job.result["dropped"]
    assert (dropped["examples"], dropped["dropped"]) == (240, 40)
    assert dropped["too_long_for"] == {"weak.train.max_length": 10, "strong.train.max_length": 40}
    assert dropped["kept_balance"]["positive_fraction"] == 125 / 200
    assert dropped["dropped_balance"]["positive_fraction"] == 10 / 40

    with sessions() as session:
        examples = list(session.scalars(select(Example)))
        notes = ingest_notes(session, job.run_id)
        report_notes = build_report(session, job.run_id).notes
    assert len(examples) == 192 and {e.context for e in examples} == {SENTENCE}  # only the short rows
    assert len(notes) == 1 and notes[0] in report_notes
    assert notes[0].startswith("ingest dropped 40 of 240 examples (16.7%)") and "strong.train.max_length" in notes[0]
    # What ingest kept, the strong model's own encoding takes; what it dropped, it refuses.
    strong = AutoTokenizer.from_pretrained(worker_env(settings).strong_model_path(None))
    text = {e.source_id: f"Passage: {e.context}\nQuestion: {e.question}\nProposed answer: yes" for e in examples}
    encode_inputs(strong, [ClassifierInput(t) for t in text.values()], max_length=128, prompt_suffix=PROMPT_SUFFIX)
    long_row = rows[200]
    with pytest.raises(InputTooLong):
        encode_inputs(
            strong,
            [
                ClassifierInput(
                    f"Passage: {long_row['passage']}\nQuestion: {long_row['question']}\nProposed answer: yes"
                )
            ],
            max_length=128,
            prompt_suffix=PROMPT_SUFFIX,
        )


@pytest.mark.slow
def test_a_strong_budget_smaller_than_the_examples_fails_ingest_naming_the_field(
    settings: Settings, tmp_path: Path
) -> None:
    rows = [boolq_row(i, yes=i % 2 == 0, sentences=7) for i in range(240)]
    config = {
        "task": "boolq",
        "data_dir": str(write_rows(tmp_path / "boolq", rows)),
        "splits": SPLITS,
        "strong": {"train": {"max_length": 128}},
    }
    _, job = ingest(settings, config)
    assert job.status == "failed"
    assert "too few examples fit the models' length budgets" in job.error
    assert "240 too long for strong.train.max_length" in job.error and "only 0" in job.error
