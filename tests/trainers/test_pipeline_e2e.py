"""A whole run on the synthetic task through REST + workers + the real vLLM, checked against SQL.

The report's numbers are recomputed here independently, from the label rows and the
examples' ground truth, and published adapters must be served by vLLM and argue debates.
"""

from pathlib import Path

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from service.local_vllm import LocalVLLM
from service.run_cli import worker_env
from service.settings import Settings
from service.store import make_engine, make_session_factory
from service.store.migrate import upgrade
from service.store.models import Example, Label, Model, ModelVersion
from tests.support.api_server import running_api
from trainers.jobs import pipeline_handlers
from trainers.pipeline.plan import condition_model_name, strong_model_name
from trainers.worker import Worker

pytestmark = [pytest.mark.vllm, pytest.mark.slow]

CONFIG = {
    "name": "e2e",
    "task": "synthetic",
    "seed": 3,
    "splits": {"weak_train": 12, "strong_train": 12, "test": 12},
    "ensemble_size": 2,
    "conditions": ["no_debate", "debate_ensemble", "market_making"],
    "debate": {"turns": 2, "word_limit": 20, "max_tokens": 16, "shard_size": 20},
    "weak": {"train": {"epochs": 1, "batch_size": 8, "max_length": 256}},
    "strong": {"losses": ["xent"], "train": {"epochs": 1, "batch_size": 8, "max_length": 192}},
}


@pytest.fixture
def settings(tmp_path: Path, vllm_server: LocalVLLM, tiny_model_dir: Path) -> Settings:
    url = f"sqlite:///{tmp_path / 'w2s.db'}"
    upgrade(url)
    return Settings(
        database_url=url,
        vllm_base_url=vllm_server.base_url,
        strong_model=vllm_server.served_name,
        strong_model_path=tiny_model_dir,
        artifacts_dir=tmp_path / "artifacts",
    )


def _accuracy(session: Session, model_name: str, run_id: int) -> float:
    rows = session.execute(
        select(Label.hard_label, Example.label)
        .join(Example, Example.id == Label.example_id)
        .join(Model, Model.id == Label.model_id)
        .where(Model.name == model_name, Example.run_id == run_id, Example.split == "test")
    ).all()
    assert len(rows) == CONFIG["splits"]["test"]
    return sum(hard == gold for hard, gold in rows) / len(rows)


def test_run_end_to_end(settings: Settings, vllm_server: LocalVLLM) -> None:
    sessions: sessionmaker[Session] = make_session_factory(make_engine(settings.database_url))
    with running_api(settings) as api:
        created = httpx.post(f"{api}/v1/runs", json=CONFIG, timeout=30)
        assert created.status_code == 201, created.text
        run_id = created.json()["id"]
        assert httpx.post(f"{api}/v1/runs", json=CONFIG, timeout=30).json()["id"] == run_id  # same config, same run

        Worker(sessions, pipeline_handlers(worker_env(settings)), lease_s=60).run(exit_when_idle=True)

        run = httpx.get(f"{api}/v1/runs/{run_id}", timeout=30).json()
        assert run["status"] == "succeeded", run
        assert {stage["kind"] for stage in run["stages"]} == {
            "ingest",
            "debate",
            "weak",
            "ensemble",
            "strong",
            "report",
        }
        assert all(stage["done"] == stage["total"] for stage in run["stages"])
        report = httpx.get(f"{api}/v1/runs/{run_id}/report", timeout=30).json()
        png = httpx.get(f"{api}/v1/runs/{run_id}/report.png", timeout=30)
        assert png.status_code == 200 and png.content.startswith(b"\x89PNG")

    with sessions() as session:
        ceiling = _accuracy(session, strong_model_name(run_id, "s0/ceiling"), run_id)
        rows = {row["condition"]: row for row in report["rows"]}
        assert set(rows) == set(CONFIG["conditions"])
        for condition, row in rows.items():
            weak = _accuracy(session, condition_model_name(run_id, 0, condition), run_id)
            w2s = _accuracy(session, strong_model_name(run_id, f"s0/w2s:{condition}:xent"), run_id)
            assert row["seeds"] == [0]
            assert row["weak_accuracy"]["value"] == pytest.approx(weak)
            assert row["w2s_accuracy"]["value"] == pytest.approx(w2s)
            assert row["ceiling_accuracy"]["value"] == pytest.approx(ceiling)
            if row["gap"]["low"] > 0:  # the ceiling beats the weak model beyond example noise
                assert row["pgr"]["value"] == pytest.approx((w2s - weak) / (ceiling - weak))
            else:
                assert row["pgr"] is None
        versions = session.scalars(select(ModelVersion)).all()
        assert len(versions) == len(CONFIG["conditions"]) + 1 and all(v.published_at for v in versions)

    served = {model["id"] for model in httpx.get(f"{vllm_server.base_url}/v1/models", timeout=30).json()["data"]}
    assert {version.served_name for version in versions} <= served
    with running_api(settings) as api:  # a debate argued by a finetuned version
        debate = httpx.post(
            f"{api}/v1/debates",
            timeout=120,
            json={
                "question": "What is 2 + 2?",
                "candidate_answer": "4",
                "model": versions[0].served_name,
                "turns": 1,
                "sampling": {"max_tokens": 8},
            },
        )
        assert debate.status_code == 201, debate.text
        stored = debate.json()["data"][0]
        assert (stored["model"], stored["model_version_id"]) == (versions[0].served_name, versions[0].id)
