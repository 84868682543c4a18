"""The science on our own testbed, end to end: REST + workers + the real vLLM debating + SQLite.

Asserts the phenomena the papers report, with margins from measured spread (see the comments),
so the suite fails when the science breaks even if every job still succeeds:

* the strong ceiling beats the weak supervisor (latent knowledge);
* W2S beats the weak supervisor: PGR > 0 with its 95% interval above 0 (Burns et al.);
* weak models that read the debate transcripts label differently from those that do not (so a
  weak job that ignored transcripts fails here), and the transcripts are the strong model's
  computations;
* logconf trains a different student from xent (so a strong job that ignored the loss fails here).
"""

import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from service.local_vllm import LocalVLLM
from service.run_cli import in_process_workers
from service.settings import Settings
from service.store import make_engine, make_session_factory
from service.store.migrate import upgrade
from service.store.models import Debate, Example, Turn
from tests.support.api_server import running_api
from tests.support.checks import split_labels
from trainers.pipeline.plan import condition_model_name, strong_model_name

pytestmark = [pytest.mark.vllm, pytest.mark.slow]
ACTIVE = ("queued", "running")


def _config(weak_model: Path) -> dict:
    return {
        "name": "testbed-e2e",
        "task": "testbed",
        "seed": 0,
        "seeds": 1,
        # Smaller splits made W2S unstable across seeds (strong_train 800-1000: xent from 0.46 to 0.74);
        # these sizes gave xent 0.80-0.84 and logconf 0.87 over 4 seed-runs.
        "splits": {"weak_train": 1000, "strong_train": 2000, "test": 500},
        "ensemble_size": 1,
        "conditions": ["no_debate", "single_debate"],
        "debate": {"turns": 2, "word_limit": None, "max_tokens": 4, "shard_size": 1000},
        "weak": {
            "model": str(weak_model),
            "head": "likelihood",
            "train": {"epochs": 8, "lr": 1e-3, "batch_size": 32, "max_length": 192},
        },
        "strong": {
            "head": "likelihood",
            "lora": None,
            "publish": False,
            "losses": ["xent", "logconf"],
            "train": {"epochs": 1, "lr": 1e-4, "batch_size": 32, "max_length": 32},
        },
    }


@pytest.fixture
def settings(
    tmp_path: Path, testbed_vllm_server: LocalVLLM, testbed_strong_dir: Path, testbed_weak_dir: Path
) -> Settings:
    url = f"sqlite:///{tmp_path / 'w2s.db'}"
    upgrade(url)
    return Settings(
        database_url=url,
        vllm_base_url=testbed_vllm_server.base_url,
        strong_model=testbed_vllm_server.served_name,
        strong_model_path=testbed_strong_dir,
        artifacts_dir=tmp_path / "artifacts",
        model_roots=[testbed_weak_dir.parent],  # the API takes the weak model the operator allows
    )


def test_weak_to_strong_shows_on_the_testbed(settings: Settings, testbed_weak_dir: Path) -> None:
    config = _config(testbed_weak_dir)
    sessions: sessionmaker[Session] = make_session_factory(make_engine(settings.database_url))
    with running_api(settings) as api:
        created = httpx.post(f"{api}/v1/runs", json=config, timeout=30)
        assert created.status_code == 201, created.text
        run_id = created.json()["id"]
        with in_process_workers(settings, sessions):  # as `w2s run` runs it: debates overlap training
            deadline = time.monotonic() + 800
            while (status := httpx.get(f"{api}/v1/runs/{run_id}", timeout=30).json()["status"]) in ACTIVE:
                assert time.monotonic() < deadline, "the run did not finish in time"
                time.sleep(2)
        assert status == "succeeded"
        report = httpx.get(f"{api}/v1/runs/{run_id}/report", timeout=30).json()
    rows = {(row["condition"], row["loss"]): row for row in report["rows"]}

    # Measured on this config: weak ~0.66-0.70, ceiling ~0.95, W2S xent ~0.80, logconf ~0.85.
    plain = rows[("no_debate", "xent")]
    assert plain["gap"]["low"] > 0.1, plain  # the ceiling beats the weak model, far beyond noise
    assert plain["ceiling_accuracy"]["value"] >= 0.85, plain
    for loss in ("xent", "logconf"):
        row = rows[("no_debate", loss)]
        assert row["pgr"] is not None and row["pgr"]["value"] > 0.1 and row["pgr"]["low"] > 0, row

    with sessions() as session:
        naive = split_labels(session, condition_model_name(run_id, 0, "no_debate"), "test")
        debated = split_labels(session, condition_model_name(run_id, 0, "single_debate"), "test")
        xent = split_labels(session, strong_model_name(run_id, "s0/w2s:no_debate:xent"), "test")
        logconf = split_labels(session, strong_model_name(run_id, "s0/w2s:no_debate:logconf"), "test")
        speeches = session.execute(
            select(Example.question, Turn.content)
            .join(Debate, Debate.id == Turn.debate_id)
            .join(Example, Example.id == Debate.example_id)
            .where(Debate.run_id == run_id)
        ).all()
    # Same member seed, same data order: reading the transcripts is the only difference between them.
    assert len(naive) == len(debated) == 500
    changed = sum(abs(naive[i] - debated[i]) > 0.05 for i in naive)
    assert changed >= 50, f"only {changed} of 500 weak labels moved with the transcripts"
    assert max(abs(xent[i] - logconf[i]) for i in xent) > 0.01  # the loss decides what the student learns
    # Each speech is the strong model's own completion of the claim's question: "12+7=19".
    assert len(speeches) == 2 * 3500 and all(content.startswith(question) for question, content in speeches)
    assert sum(content.removeprefix(question).isdigit() for question, content in speeches) >= 0.9 * len(speeches)
