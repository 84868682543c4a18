"""Debate batches: REST → jobs → `w2s worker` processes → rows, against real vLLM and both databases."""

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from service.settings import Settings
from service.store import make_engine, make_session_factory
from tests.support.api_server import CuttableProxy, running_api
from tests.support.checks import sql_rows, wait_for
from trainers.jobs.debate_job import debate_handler
from trainers.worker import Worker

pytestmark = [pytest.mark.vllm, pytest.mark.slow]

W2S = str(Path(sys.executable).parent / "w2s")


def _examples(count: int) -> list[dict]:
    return [
        {"question": f"Is {n} plus {n} equal to {2 * n + n % 2}?", "candidate_answer": "Yes", "label": int(n % 2 == 0)}
        for n in range(count)
    ]


def _batch_body(count: int, **extra) -> dict:  # noqa: ANN003
    return {"examples": _examples(count), "sampling": {"max_tokens": 12}, "name": "t", **extra}


def _worker_process(database_url: str, vllm_url: str, *args: str) -> subprocess.Popen:
    env = {**os.environ, "W2S_DATABASE_URL": database_url, "W2S_VLLM_BASE_URL": vllm_url}
    return subprocess.Popen(
        [W2S, "worker", "--kind", "debate", *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


@pytest.fixture
def api_for(vllm_server):  # noqa: ANN001, ANN201
    def start(database_url: str, vllm_url: str | None = None):  # noqa: ANN202
        settings = Settings(
            _env_file=None,
            database_url=database_url,
            strong_model="strong",
            vllm_base_url=vllm_url or vllm_server.base_url,
        )
        return running_api(settings)

    return start


def test_batch_of_200_debates_through_the_queue_and_a_worker(api_for, migrated_url: str, vllm_server) -> None:  # noqa: ANN001
    with api_for(migrated_url) as url, httpx.Client(base_url=url, timeout=60) as api:
        created = api.post("/v1/debate-batches", json=_batch_body(100, n_samples=2, shard_size=50))
        assert created.status_code == 202, created.text
        batch = created.json()
        assert batch["status"] == "queued" and batch["progress"]["total"] == 200 and batch["jobs"] == {"queued": 4}

        worker = _worker_process(migrated_url, vllm_server.base_url, "--exit-when-idle")
        output, _ = worker.communicate(timeout=600)
        assert worker.returncode == 0, output
        assert "after 4 job(s)" in output

        final = api.get(f"/v1/debate-batches/{batch['id']}").json()
        assert final["status"] == "succeeded" and final["jobs"] == {"succeeded": 4}
        assert final["progress"] == {"done": 200, "failed": 0, "total": 200, "eta_s": 0.0}
        listed, cursor = [], None
        while True:
            page = api.get("/v1/debates", params={"batch_id": batch["id"], "limit": 64, "cursor": cursor}).json()
            listed += page["data"]
            if not (cursor := page["next_cursor"]):
                break
        assert len(listed) == 200

    # Plain SQL: every debate has its three turns, one debate per (example, seed), none twice.
    per_debate = sql_rows(
        migrated_url,
        f"""
        SELECT d.example_id, d.seed, count(t.id), min(t.speaker), max(t.stance)
        FROM debates d JOIN turns t ON t.debate_id = d.id
        WHERE d.run_id = {batch["id"]} AND d.status = 'succeeded'
        GROUP BY d.example_id, d.seed""",
    )
    assert len(per_debate) == 200
    assert {row[2] for row in per_debate} == {3}
    assert sql_rows(migrated_url, f"SELECT status FROM runs WHERE id = {batch['id']}") == [("succeeded",)]


def test_batch_waits_for_an_unreachable_strong_model_and_loses_nothing(api_for, tmp_path, vllm_server) -> None:  # noqa: ANN001
    from service.store.migrate import upgrade

    database_url = f"sqlite:///{tmp_path / 'w2s.db'}"
    upgrade(database_url)
    proxy = CuttableProxy(int(vllm_server.base_url.rsplit(":", 1)[1]))
    proxy.up()
    engine = make_engine(database_url)
    worker = Worker(
        make_session_factory(engine),
        {"debate": debate_handler(proxy.url, max_in_flight=4, unavailable_wait_s=0.5)},
        lease_s=10,
        poll_s=0.2,
    )
    stop = threading.Event()
    thread = threading.Thread(target=worker.run, kwargs={"stop": stop}, daemon=True)
    stored = lambda: sql_rows(database_url, "SELECT count(*) FROM debates")[0][0]  # noqa: E731
    try:
        with api_for(database_url) as url, httpx.Client(base_url=url, timeout=60) as api:
            batch = api.post("/v1/debate-batches", json=_batch_body(30, shard_size=30)).json()
            thread.start()
            wait_for(lambda: stored() >= 3, 120, "the first debates")
            proxy.down()  # the strong model disappears mid-batch
            time.sleep(3)
            assert sql_rows(database_url, "SELECT status, attempts FROM jobs") == [("running", 1)]
            proxy.up()
            wait_for(
                lambda: api.get(f"/v1/debate-batches/{batch['id']}").json()["status"] == "succeeded",
                300,
                "the batch to finish",
            )
    finally:
        stop.set()
        proxy.down()
        thread.join(timeout=60)
        engine.dispose()
    assert sql_rows(database_url, "SELECT status, count(*) FROM debates GROUP BY status") == [("succeeded", 30)]
    assert sql_rows(database_url, "SELECT count(*) FROM turns") == [(90,)]
    assert sql_rows(database_url, "SELECT status, attempts FROM jobs") == [("succeeded", 1)]


def test_killed_worker_job_resumes_elsewhere_without_redoing_stored_debates(api_for, tmp_path, vllm_server) -> None:  # noqa: ANN001
    from service.store.migrate import upgrade

    database_url = f"sqlite:///{tmp_path / 'w2s.db'}"
    upgrade(database_url)
    with api_for(database_url) as url, httpx.Client(base_url=url, timeout=60) as api:
        batch = api.post("/v1/debate-batches", json=_batch_body(60, shard_size=60, sampling={"max_tokens": 24})).json()
        victim = _worker_process(database_url, vllm_server.base_url, "--lease-s", "3", "--max-in-flight", "4")
        wait_for(lambda: sql_rows(database_url, "SELECT count(*) FROM debates")[0][0] >= 5, 120, "some debates")
        os.kill(victim.pid, signal.SIGKILL)
        victim.wait()
        before = {row[0] for row in sql_rows(database_url, "SELECT id FROM debates")}

        survivor = _worker_process(database_url, vllm_server.base_url, "--lease-s", "3", "--exit-when-idle")
        wait_for(
            lambda: api.get(f"/v1/debate-batches/{batch['id']}").json()["status"] == "succeeded",
            300,
            "the batch to finish",
        )
        survivor.wait(timeout=60)
    after = sql_rows(database_url, "SELECT id, status FROM debates")
    assert len(after) == 60 and {status for _, status in after} == {"succeeded"}
    assert before <= {debate_id for debate_id, _ in after}  # stored debates were kept, not redone
    assert sql_rows(database_url, "SELECT status, attempts FROM jobs") == [("succeeded", 2)]


def test_batch_validation_and_unknown_batch(api_for, tmp_path) -> None:  # noqa: ANN001
    from service.store.migrate import upgrade

    database_url = f"sqlite:///{tmp_path / 'w2s.db'}"
    upgrade(database_url)
    with api_for(database_url) as url, httpx.Client(base_url=url) as api:
        empty = api.post("/v1/debate-batches", json={"examples": []})
        assert empty.status_code == 422 and empty.json()["error"]["param"] == "body.examples"
        bad = api.post("/v1/debate-batches", json={"examples": [{"question": "q", "candidate_answer": ""}]})
        assert bad.status_code == 422 and bad.json()["error"]["param"] == "body.examples.0.candidate_answer"
        assert api.get("/v1/debate-batches/12345").status_code == 404
    assert sql_rows(database_url, "SELECT count(*) FROM runs") == [(0,)]
