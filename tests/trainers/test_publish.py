"""Registering model versions (SQLite and PostgreSQL) and publishing LoRA adapters to a real vLLM.

Run: .venv/bin/python -m pytest tests/trainers/test_publish.py
(the vLLM tests start one server for the session: ~1 min on 2 CPU cores; -m "not vllm" skips them).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from debate import DebateSpec, SamplingParams, StrongModelClient, run_debate
from service.local_vllm import LocalVLLM, find_free_port
from service.store import Job, Model, ModelVersion, make_engine, make_session_factory, utcnow
from service.store.jobs import enqueue_job
from service.store.migrate import upgrade
from tests.support.api_server import CuttableProxy
from trainers.jobs.env import WorkerEnv
from trainers.jobs.strong_job import publish_waiting
from trainers.strong import (
    AdapterRejected,
    InvalidServedName,
    LoRAUpdatingDisabled,
    RepublishIncomplete,
    ServedNameTaken,
    VersionNotFound,
    VLLMUnreachable,
    default_served_name,
    publish_adapter,
    publish_version,
    register_version,
    republish_all,
)
from trainers.worker import JobContext, Worker

PROMPT = "Question: which gas do green plants take in? Answer:"


def _fake_adapter(directory: Path) -> Path:
    """Enough of an adapter directory for the database side, which never loads it."""
    directory.mkdir(parents=True)
    (directory / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA", "r": 8}))
    return directory


def _add_model(session: Session, name: str) -> Model:
    model = Model(name=name, role="strong", base="tiny", condition="w2s", seed=0)
    session.add(model)
    session.flush()
    return model


# --- the database side: SQLite and PostgreSQL ----------------------------------------------


def test_versions_count_up_with_distinct_served_names(sessions: sessionmaker[Session], tmp_path: Path) -> None:
    adapter = _fake_adapter(tmp_path / "adapter")
    with sessions.begin() as session:
        model = _add_model(session, "run1-strong")
        first = register_version(session, model, adapter)
        second = register_version(session, model, adapter, parent_id=first.id)
    with sessions.begin() as session:
        rows = session.scalars(select(ModelVersion).order_by(ModelVersion.version)).all()
        assert [(r.version, r.served_name, r.parent_id) for r in rows] == [
            (1, "run1-strong-v1", None),
            (2, "run1-strong-v2", first.id),
        ]
        assert all(r.adapter_path == str(adapter.resolve()) and r.published_at is None for r in rows)
    assert second.id != first.id


def test_versions_are_counted_per_model(sessions: sessionmaker[Session], tmp_path: Path) -> None:
    adapter = _fake_adapter(tmp_path / "adapter")
    with sessions.begin() as session:
        one, two = _add_model(session, "a"), _add_model(session, "b")
        assert [register_version(session, m, adapter).version for m in (one, two, one)] == [1, 1, 2]


def test_default_served_name_is_sanitised() -> None:
    assert default_served_name("run 3/strong: logconf (k=4)", 2) == "run-3-strong-logconf-k-4-v2"
    assert default_served_name("///", 1) == "model-v1"
    long_name = default_served_name("x" * 500, 12)
    assert len(long_name) == 200 and long_name.endswith("-v12")


def test_served_names_are_never_reused(sessions: sessionmaker[Session], tmp_path: Path) -> None:
    adapter = _fake_adapter(tmp_path / "adapter")
    with sessions.begin() as session:
        register_version(session, _add_model(session, "m1"), adapter, served_name="shared-name")
    with pytest.raises(ServedNameTaken, match="never re-used"), sessions.begin() as session:
        register_version(session, _add_model(session, "m2"), adapter, served_name="shared-name")
    with sessions.begin() as session:  # the failed registration left nothing behind
        assert session.scalars(select(Model.name)).all() == ["m1"]


def test_registration_refuses_bad_input(sessions: sessionmaker[Session], tmp_path: Path) -> None:
    adapter = _fake_adapter(tmp_path / "adapter")
    with sessions.begin() as session:
        model = _add_model(session, "m")
        with pytest.raises(InvalidServedName, match="only letters"):
            register_version(session, model, adapter, served_name="has space")
        with pytest.raises(AdapterRejected, match="save_pretrained"):
            register_version(session, model, tmp_path / "empty")
        with pytest.raises(VersionNotFound, match="parent"):
            register_version(session, model, adapter, parent_id=9999)
        assert register_version(session, model, adapter).version == 1  # the session is still usable


def test_failed_publish_leaves_published_at_unset(sessions: sessionmaker[Session], tmp_path: Path) -> None:
    with sessions.begin() as session:
        version_id = register_version(session, _add_model(session, "m"), _fake_adapter(tmp_path / "a")).id
    nobody = f"http://127.0.0.1:{find_free_port()}"
    with pytest.raises(VLLMUnreachable, match="server is running"):
        publish_version(sessions, version_id, nobody)
    with sessions.begin() as session:
        assert session.get(ModelVersion, version_id).published_at is None
    with pytest.raises(VersionNotFound, match="9999"):
        publish_version(sessions, 9999, nobody)


def _publishing_worker(
    sessions: sessionmaker[Session], version_id: int, base_url: str, tmp_path: Path
) -> tuple[Worker, int]:
    """A worker whose `strong` jobs do only the publish step of a strong job, and one such job."""
    env = WorkerEnv(
        artifacts_dir=tmp_path, strong_checkpoint=tmp_path, strong_is_built_in=False, vllm_base_urls=(base_url,)
    )
    with sessions.begin() as session:
        job_id = enqueue_job(session, "strong").id

    def publish(ctx: JobContext) -> dict[str, str]:
        return {"fine_tuned_model": publish_waiting(ctx, env, version_id, wait_s=0.2)}

    return Worker(sessions, {"strong": publish}, retry_backoff_s=0), job_id


def test_publishing_waits_out_an_unreachable_vllm_without_spending_attempts(
    sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    with sessions.begin() as session:
        version_id = register_version(session, _add_model(session, "m"), _fake_adapter(tmp_path / "a")).id
    worker, job_id = _publishing_worker(sessions, version_id, f"http://127.0.0.1:{find_free_port()}", tmp_path)
    stop = threading.Event()
    thread = threading.Thread(target=worker.run, kwargs={"stop": stop})
    thread.start()
    time.sleep(3)  # several refused publish attempts; 3 attempts of the job would be spent by now
    stop.set()
    thread.join(30)
    with sessions() as session:
        job = session.get(Job, job_id)
        assert (job.status, job.attempts, job.error) == ("queued", 0, None)  # handed back, nothing spent


# --- the vLLM side: a real server on loopback, SQLite only ----------------------------------


@pytest.mark.vllm
def test_a_strong_job_publishes_once_vllm_is_back(
    vllm_server: LocalVLLM, sqlite_sessions: sessionmaker[Session], lora_dir: Path, tmp_path: Path
) -> None:
    proxy = CuttableProxy(int(vllm_server.base_url.rsplit(":", 1)[1]))  # down (refusing) until up()
    version = _register(sqlite_sessions, "patient", lora_dir)
    worker, job_id = _publishing_worker(sqlite_sessions, version.id, proxy.url, tmp_path)
    thread = threading.Thread(target=worker.run, kwargs={"max_jobs": 1})
    thread.start()
    try:
        time.sleep(3)
        proxy.up()
        thread.join(120)
    finally:
        proxy.down()
    with sqlite_sessions() as session:
        job = session.get(Job, job_id)
        assert (job.status, job.attempts) == ("succeeded", 1)
        assert job.result["fine_tuned_model"] == version.served_name
    assert version.served_name in _listed(vllm_server)


@pytest.fixture
def sqlite_sessions(tmp_path: Path) -> Iterator[sessionmaker[Session]]:
    url = f"sqlite:///{tmp_path / 'w2s.db'}"
    upgrade(url)
    engine = make_engine(url)
    yield make_session_factory(engine)
    engine.dispose()


def _register(sessions: sessionmaker[Session], name: str, adapter: Path) -> ModelVersion:
    with sessions.begin() as session:
        return register_version(session, _add_model(session, name), adapter)


def _listed(server: LocalVLLM) -> dict[str, str]:
    cards = httpx.get(f"{server.base_url}/v1/models", timeout=30).json()["data"]
    return {card["id"]: card["root"] for card in cards}


def _greedy(server: LocalVLLM, model: str) -> str:
    body = {"model": model, "prompt": PROMPT, "max_tokens": 16, "temperature": 0}
    response = httpx.post(f"{server.base_url}/v1/completions", json=body, timeout=120)
    response.raise_for_status()
    return response.json()["choices"][0]["text"]


def _debate(server: LocalVLLM, model: str) -> Any:
    spec = DebateSpec(
        question="Which gas do green plants take in?",
        candidate_answer="Carbon dioxide",
        model=model,
        seed=1,
        sampling=SamplingParams(max_tokens=16),
    )

    async def go() -> Any:
        async with StrongModelClient(server.base_url) as client:
            return await run_debate(client, spec)

    return asyncio.run(go())


@pytest.mark.vllm
def test_published_adapter_is_served_and_changes_outputs(
    vllm_server: LocalVLLM, sqlite_sessions: sessionmaker[Session], lora_dir: Path
) -> None:
    version = _register(sqlite_sessions, "served-strong", lora_dir)
    assert version.published_at is None
    published = publish_version(sqlite_sessions, version.id, vllm_server.base_url)
    assert published.published_at is not None
    with sqlite_sessions.begin() as session:
        assert session.get(ModelVersion, version.id).published_at == published.published_at
    assert _listed(vllm_server)["served-strong-v1"] == str(lora_dir.resolve())
    assert _greedy(vllm_server, "served-strong-v1") != _greedy(vllm_server, vllm_server.served_name)
    result = _debate(vllm_server, "served-strong-v1")
    assert len(result.turns) == 3 and all(turn.content for turn in result.turns)


@pytest.mark.vllm
def test_republish_all_reloads_what_vllm_forgot(
    vllm_server: LocalVLLM, sqlite_sessions: sessionmaker[Session], lora_dir: Path
) -> None:
    published = _register(sqlite_sessions, "forgotten", lora_dir)
    unpublished = _register(sqlite_sessions, "never-published", lora_dir)
    publish_version(sqlite_sessions, published.id, vllm_server.base_url)
    unload = httpx.post(
        f"{vllm_server.base_url}/v1/unload_lora_adapter", json={"lora_name": published.served_name}, timeout=30
    )
    assert unload.status_code == 200 and published.served_name not in _listed(vllm_server)

    assert republish_all(sqlite_sessions, vllm_server.base_url) == [published.served_name]
    assert published.served_name in _listed(vllm_server)
    assert unpublished.served_name not in _listed(vllm_server)
    assert republish_all(sqlite_sessions, vllm_server.base_url) == []  # already listed: skipped


@pytest.mark.vllm
def test_w2s_strong_republish_reloads_this_databases_versions(
    vllm_server: LocalVLLM, sqlite_sessions: sessionmaker[Session], lora_dir: Path, tmp_path: Path
) -> None:
    version = _register(sqlite_sessions, "restarted", lora_dir)
    publish_version(sqlite_sessions, version.id, vllm_server.base_url)
    httpx.post(
        f"{vllm_server.base_url}/v1/unload_lora_adapter", json={"lora_name": version.served_name}, timeout=30
    ).raise_for_status()
    w2s = [str(Path(sys.executable).parent / "w2s"), "strong", "republish"]
    env = {**os.environ, "W2S_DATABASE_URL": f"sqlite:///{tmp_path / 'w2s.db'}"}
    done = subprocess.run(
        w2s,
        env={**env, "W2S_VLLM_BASE_URL": vllm_server.base_url},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0 and f"republished 1 version(s): {version.served_name}" in done.stdout, done.stderr
    assert version.served_name in _listed(vllm_server)
    no_server = subprocess.run(
        w2s, env={**env, "W2S_VLLM_BASE_URL": ""}, cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert no_server.returncode == 2 and "set W2S_VLLM_BASE_URL" in no_server.stderr


@pytest.mark.vllm
def test_publishing_again_is_harmless_but_a_name_keeps_its_path(
    vllm_server: LocalVLLM, lora_dir: Path, tmp_path: Path
) -> None:
    publish_adapter(vllm_server.base_url, "twice", lora_dir)
    publish_adapter(vllm_server.base_url, "twice", lora_dir)  # a retry after a lost response
    other = tmp_path / "other"
    other.symlink_to(lora_dir, target_is_directory=True)
    with pytest.raises(AdapterRejected, match="never re-used"):
        publish_adapter(vllm_server.base_url, "twice", other)
    assert _listed(vllm_server)["twice"] == str(lora_dir)


@pytest.mark.vllm
def test_bad_adapter_path_is_refused_clearly(vllm_server: LocalVLLM, tmp_path: Path) -> None:
    with pytest.raises(AdapterRejected, match="refused to load adapter 'bad-path'.*saved by peft"):
        publish_adapter(vllm_server.base_url, "bad-path", tmp_path / "no-such-adapter")
    assert "bad-path" not in _listed(vllm_server)


@pytest.mark.vllm
def test_server_without_runtime_lora_loading_is_named(vllm_server: LocalVLLM, lora_dir: Path) -> None:
    # vLLM without VLLM_ALLOW_RUNTIME_LORA_UPDATING has no such route: FastAPI's 404 "Not Found",
    # exactly what the same server answers under a prefix it does not serve.
    with pytest.raises(LoRAUpdatingDisabled, match="VLLM_ALLOW_RUNTIME_LORA_UPDATING=True"):
        publish_adapter(f"{vllm_server.base_url}/elsewhere", "nowhere", lora_dir)


@pytest.mark.vllm
def test_republish_all_loads_the_rest_and_names_what_it_could_not(
    vllm_server: LocalVLLM, sqlite_sessions: sessionmaker[Session], lora_dir: Path, tmp_path: Path
) -> None:
    good = _register(sqlite_sessions, "survivor", lora_dir)
    publish_version(sqlite_sessions, good.id, vllm_server.base_url)
    gone = _register(sqlite_sessions, "deleted-adapter", _fake_adapter(tmp_path / "gone"))
    with sqlite_sessions.begin() as session:  # published once, then its directory was cleaned up
        session.get(ModelVersion, gone.id).published_at = utcnow()
    shutil.rmtree(tmp_path / "gone")
    httpx.post(f"{vllm_server.base_url}/v1/unload_lora_adapter", json={"lora_name": good.served_name}, timeout=30)

    with pytest.raises(RepublishIncomplete, match="deleted-adapter-v1") as caught:
        republish_all(sqlite_sessions, vllm_server.base_url)
    assert caught.value.loaded == [good.served_name]
    assert list(caught.value.failures) == [gone.served_name]
    assert good.served_name in _listed(vllm_server)
