"""Hostile and careless clients (issue 15): every probe is a 4xx that writes nothing, on SQLite and PostgreSQL.

The API runs on a real uvicorn on loopback; the strong model is a scripted loopback server where a test
needs to count or hold its requests (what a real vLLM cannot be made to do on cue).
"""

import logging
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from service.api.limits import MAX_ID
from service.api.main import create_app
from service.settings import Settings
from service.store import make_engine, make_session_factory
from service.store.jobs import claim_job, enqueue_job, fail_job
from service.store.migrate import upgrade
from tests.debate.loopback import Reply, completion_body, loopback_server
from tests.support.api_server import running_api
from tests.support.checks import sql_rows
from trainers.worker import Worker

RUN = {"task": "synthetic", "splits": {"weak_train": 8, "strong_train": 8, "test": 8}, "conditions": ["no_debate"]}
EXAMPLE = {"question": "Is ice cold?", "candidate_answer": "Yes"}
TOO_BIG = "99999999999999999999"  # > 2**64
DEAD_VLLM = "http://127.0.0.1:9"  # nothing listens: a request that reached the strong model would be a 503
ROW_TABLES = ("runs", "jobs", "examples", "debates", "files")


def _settings(database_url: str, tmp_path: Path, **extra) -> Settings:  # noqa: ANN003
    return Settings(_env_file=None, database_url=database_url, vllm_base_url=DEAD_VLLM, artifacts_dir=tmp_path, **extra)


@pytest.fixture
def api(database_url: str, tmp_path: Path) -> Iterator[httpx.Client]:
    upgrade(database_url)
    with running_api(_settings(database_url, tmp_path)) as url, httpx.Client(base_url=url, timeout=30) as client:
        yield client


def _row_counts(database_url: str) -> dict[str, int]:
    return {table: sql_rows(database_url, f"SELECT count(*) FROM {table}")[0][0] for table in ROW_TABLES}


def _rejected(response: httpx.Response, status: int, param: str) -> None:
    assert response.status_code == status, response.text
    assert response.json()["error"]["param"] == param, response.json()


# --- 1. ids beyond 64 bits ------------------------------------------------------------------------


def test_ids_beyond_64_bits_are_a_422_naming_the_field(api: httpx.Client, database_url: str) -> None:
    for method, path, param in [
        ("GET", f"/v1/runs/{TOO_BIG}", "path.run_id"),
        ("GET", f"/v1/runs/{TOO_BIG}/report.png", "path.run_id"),
        ("POST", f"/v1/runs/{TOO_BIG}/cancel", "path.run_id"),
        ("GET", f"/v1/runs?before={TOO_BIG}", "query.before"),
        ("GET", f"/v1/jobs/{TOO_BIG}", "path.job_id"),
        ("POST", f"/v1/jobs/{TOO_BIG}/retry", "path.job_id"),
        ("GET", f"/v1/debates/{TOO_BIG}", "path.debate_id"),
        ("GET", f"/v1/debates?cursor={TOO_BIG}", "query.cursor"),
        ("GET", f"/v1/debates?batch_id={TOO_BIG}", "query.batch_id"),
        ("GET", "/v1/debates/export.jsonl?batch_id=-18446744073709551617", "query.batch_id"),
        ("GET", f"/v1/debate-batches/{TOO_BIG}", "path.batch_id"),
        ("GET", f"/ui/runs/{TOO_BIG}", "path.run_id"),
        ("GET", f"/ui/runs?page={TOO_BIG}", "query.page"),
        ("GET", f"/ui/debates/{TOO_BIG}", "path.debate_id"),
        ("GET", f"/ui/debates?run_id={TOO_BIG}", "query.run_id"),
        ("GET", f"/ui/debates?seed={TOO_BIG}", "query.seed"),
        ("GET", f"/ui/debates?page={TOO_BIG}", "query.page"),
    ]:
        _rejected(api.request(method, path), 422, param)
    too_big_seed = api.post("/v1/debates", json={**EXAMPLE, "seed": 2**40})  # debates.seed is 32-bit
    _rejected(too_big_seed, 422, "body.seed")
    assert api.get(f"/v1/runs/{MAX_ID}").status_code == 404  # the largest id is merely absent
    assert api.get(f"/v1/files/file-{TOO_BIG}").status_code == 404
    assert api.get(f"/v1/fine_tuning/jobs?after=ftjob-{MAX_ID + 1}").status_code == 422
    assert _row_counts(database_url) == dict.fromkeys(ROW_TABLES, 0)


# --- 2 and 6. an unexpected error: one shape, no traceback, the connection kept -----------------------


def _failing_app(settings: Settings) -> FastAPI:
    app = create_app(settings)

    def boom() -> None:
        raise RuntimeError("secret detail from /srv/app/module.py")

    app.add_api_route("/boom", boom)
    return app


def _get(sock: socket.socket, path: str) -> bytes:
    """One keep-alive HTTP/1.1 request on an open socket; the whole response (it has a content-length)."""
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: test\r\n\r\n".encode())
    data = b""
    while b"\r\n\r\n" not in data or len(data.split(b"\r\n\r\n", 1)[1]) < _length(data):
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"the server closed the connection after {data[:200]!r}")
        data += chunk
    return data


def _length(data: bytes) -> int:
    for line in data.split(b"\r\n\r\n", 1)[0].split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value)
    return 0


def test_a_500_keeps_the_connection_and_its_traceback_stays_in_the_log(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = _settings(f"sqlite:///{tmp_path / 'w2s.db'}", tmp_path)
    upgrade(settings.database_url)
    with caplog.at_level(logging.ERROR), running_api(settings, _failing_app(settings)) as url:
        host, port = url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=10) as sock:
            for _ in range(5):
                failed = _get(sock, "/boom")
                assert failed.startswith(b"HTTP/1.1 500") and b'"type":"internal_error"' in failed
                assert b"secret detail" not in failed and b"Traceback" not in failed
                assert _get(sock, "/v1/runs").startswith(b"HTTP/1.1 200")  # same connection, still served
    assert "secret detail from /srv/app/module.py" in caplog.text and "Traceback" in caplog.text


# --- 3. NUL characters ------------------------------------------------------------------------------


def test_nul_characters_are_rejected_before_any_work(api: httpx.Client, database_url: str) -> None:
    _rejected(api.post("/v1/debates", json={**EXAMPLE, "question": "Is ice\x00 cold?"}), 422, "body.question")
    _rejected(api.post("/v1/runs", json={**RUN, "name": "a\x00b"}), 422, "body.name")
    batch = {"examples": [EXAMPLE, {**EXAMPLE, "context": "\x00"}]}
    _rejected(api.post("/v1/debate-batches", json=batch), 422, "body.examples.1.context")
    _rejected(
        api.post("/v1/debate-batches", json={**batch, "examples": [{**EXAMPLE, "source\x00": "x"}]}),
        422,
        "body.examples.0.source\x00",
    )
    _rejected(api.get("/v1/debates", params={"protocol": "debate\x00"}), 422, "query.protocol")
    _rejected(_upload_named(api, b"a\x00.jsonl"), 422, "body.file")  # httpx would escape it; sent raw
    assert _row_counts(database_url) == dict.fromkeys(ROW_TABLES, 0)


def _upload_named(api: httpx.Client, filename: bytes) -> httpx.Response:
    body = (
        b'--x\r\nContent-Disposition: form-data; name="purpose"\r\n\r\nfine-tune\r\n'
        b'--x\r\nContent-Disposition: form-data; name="file"; filename="' + filename + b'"\r\n'
        b'Content-Type: application/jsonl\r\n\r\n{"prompt": "p", "label": 1}\n\r\n--x--\r\n'
    )
    return api.post("/v1/files", content=body, headers={"content-type": "multipart/form-data; boundary=x"})


# --- 4. server-side paths ---------------------------------------------------------------------------


def test_run_paths_must_lie_under_the_operators_roots(api: httpx.Client, database_url: str, tmp_path: Path) -> None:
    (tmp_path / "models" / "weak").mkdir(parents=True)
    (tmp_path / "data" / "synthetic").mkdir(parents=True)
    for body, param in [
        ({"data_dir": "/etc"}, "body.data_dir"),
        ({"data_dir": str(tmp_path / "data" / ".." / "..")}, "body.data_dir"),
        ({"data_dir": str(tmp_path / "models" / "weak")}, "body.data_dir"),  # a model root is not a data root
        ({"weak": {"model": "/etc"}}, "body.weak.model"),
        ({"weak": {"model": "gpt2"}}, "body.weak.model"),  # a hub id: the worker would download
        ({"strong": {"checkpoint": "/root"}}, "body.strong.checkpoint"),
    ]:
        response = api.post("/v1/runs", json={**RUN, **body})
        _rejected(response, 422, param)
        assert "passwd" not in response.text  # nothing about what is there
    assert _row_counts(database_url)["runs"] == 0
    allowed = {
        **RUN,
        "data_dir": str(tmp_path / "data" / "synthetic"),
        "weak": {"model": str(tmp_path / "models" / "weak")},
    }
    assert api.post("/v1/runs", json=allowed).status_code == 201


# --- 5. sizes -----------------------------------------------------------------------------------------


def _declared_only(url: str, path: str, length: int, content_type: str) -> bytes:
    """Send headers announcing `length` body bytes and none of them: the answer must come anyway."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(
            f"POST {path} HTTP/1.1\r\nHost: t\r\nContent-Type: {content_type}\r\n"
            f"Content-Length: {length}\r\n\r\n".encode()
        )
        return sock.recv(65536)


def test_sizes_are_bounded(database_url: str, tmp_path: Path) -> None:
    upgrade(database_url)
    settings = _settings(
        database_url,
        tmp_path,
        max_request_bytes=10_000,
        max_upload_bytes=20_000,
        max_string_chars=500,
        max_debate_tokens=4096,
    )
    with running_api(settings) as url, httpx.Client(base_url=url, timeout=30) as api:
        _rejected(api.post("/v1/runs", json={**RUN, "name": "n" * 201}), 422, "body.name")
        _rejected(api.get("/v1/debates", params={"model": "m" * 501}), 422, "query.model")
        _rejected(api.post("/v1/debates", json={**EXAMPLE, "question": "q" * 501}), 422, "body.question")
        # Refused from the headers alone: no byte of these bodies is ever sent.
        assert _declared_only(url, "/v1/runs", 10**10, "application/json").startswith(b"HTTP/1.1 413")
        assert _declared_only(url, "/v1/files", 10**9, "multipart/form-data; boundary=x").startswith(b"HTTP/1.1 413")

        def chunks() -> Iterator[bytes]:
            yield b'{"name": "'
            for _ in range(20):
                yield b"x" * 1000

        chunked = api.post("/v1/runs", content=chunks(), headers={"content-type": "application/json"})
        assert chunked.status_code == 413 and chunked.json()["error"]["code"] == 413
        greedy = {**EXAMPLE, "n_samples": 32, "turns": 20, "sampling": {"max_tokens": 8192}}
        _rejected(api.post("/v1/debates", json=greedy), 422, "body.n_samples")  # before any strong-model call
        _rejected(api.get("/v1/files", params={"limit": 10_000}), 422, "query.limit")
    assert _row_counts(database_url) == dict.fromkeys(ROW_TABLES, 0)


# --- 6. tracebacks stay on the server -------------------------------------------------------------------


def test_job_errors_reach_clients_without_traceback(
    api: httpx.Client, database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    run_id = api.post("/v1/runs", json=RUN).json()["id"]
    sessions = make_session_factory(make_engine(database_url))

    def broken(_ctx) -> None:  # noqa: ANN001
        raise ValueError("the data has no label column")

    with caplog.at_level(logging.WARNING, logger="trainers.worker"):
        Worker(sessions, {"ingest": broken}, retry_backoff_s=0).run(exit_when_idle=True)
    job = api.get(f"/v1/jobs/{_ingest_job(database_url)}").json()
    assert job["status"] == "failed" and job["error"] == "ValueError: the data has no label column"
    run = api.get(f"/v1/runs/{run_id}").json()
    assert run["stages"][0]["errors"] == ["ValueError: the data has no label column"]
    assert "Traceback" not in str(sql_rows(database_url, "SELECT message, data FROM job_events"))
    assert "Traceback" in caplog.text and "test_hardening.py" in caplog.text  # for the operator


def _ingest_job(database_url: str) -> int:
    return sql_rows(database_url, "SELECT id FROM jobs WHERE kind = 'ingest'")[0][0]


# --- 8. a retry keeps the job's history ----------------------------------------------------------------------


def test_retry_keeps_the_attempt_count(api: httpx.Client, database_url: str) -> None:
    sessions = make_session_factory(make_engine(database_url))
    with sessions.begin() as session:
        job_id = enqueue_job(session, "noop", max_attempts=2).id
    for _ in range(2):
        with sessions.begin() as session:
            claim_job(session, ["noop"], "w", 60)
            fail_job(session, job_id, "w", "boom", backoff_s=0)
    retried = api.post(f"/v1/jobs/{job_id}/retry").json()
    assert (retried["status"], retried["attempts"], retried["max_attempts"]) == ("queued", 2, 5)


# --- 9. a 2xx means the row is committed -------------------------------------------------------------------


def test_a_created_run_is_committed_before_the_answer(api: httpx.Client, database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        with engine.connect() as conn:
            for seed in range(20):
                created = api.post("/v1/runs", json={**RUN, "seed": seed})
                assert created.status_code == 201
                seen = conn.exec_driver_sql(f"SELECT count(*) FROM runs WHERE id = {created.json()['id']}").scalar()
                conn.rollback()  # a fresh snapshot for the next read
                assert seen == 1, f"run {created.json()['id']} answered 201 before its commit"
    finally:
        engine.dispose()


# --- 10. an abandoned debate stops ---------------------------------------------------------------------


@pytest.fixture
def slow_strong_model() -> Iterator:
    """Answers every completion after 1 s."""
    with loopback_server([Reply(body=completion_body("An argument."), delay_s=1.0)], models=("strong",)) as server:
        yield server


def test_a_disconnected_client_stops_its_debate(slow_strong_model, tmp_path: Path) -> None:  # noqa: ANN001
    url = f"sqlite:///{tmp_path / 'w2s.db'}"
    upgrade(url)
    settings = _settings(url, tmp_path).model_copy(update={"vllm_base_url": slow_strong_model.base_url})
    with running_api(settings) as api:
        with pytest.raises(httpx.ReadTimeout):  # the client gives up while turn 1 is generated
            httpx.post(f"{api}/v1/debates", json={**EXAMPLE, "turns": 3}, timeout=0.5)
        time.sleep(3.5)  # the three turns would have been asked for by now
    assert len(slow_strong_model.received) < 3  # not every turn: the debate stopped with its client
    assert _row_counts(url)["debates"] == 0


def test_a_debate_past_the_timeout_is_stopped_and_not_stored(slow_strong_model, tmp_path: Path) -> None:  # noqa: ANN001
    url = f"sqlite:///{tmp_path / 'w2s.db'}"
    upgrade(url)
    settings = _settings(url, tmp_path, debate_timeout_s=1.5).model_copy(
        update={"vllm_base_url": slow_strong_model.base_url}
    )
    with running_api(settings) as api:
        answer = httpx.post(f"{api}/v1/debates", json={**EXAMPLE, "turns": 3}, timeout=30)
    assert answer.status_code == 504 and answer.json()["error"]["type"] == "timeout"
    assert len(slow_strong_model.received) < 3
    assert _row_counts(url)["debates"] == 0


# --- 11. /healthz is cheap and says nothing internal without a key ------------------------------------------


def test_healthz_is_cached_and_private(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'w2s.db'}"
    upgrade(url)
    with loopback_server([Reply(body=completion_body("ok"))], models=("strong",)) as strong:
        settings = _settings(url, tmp_path, api_keys=["k"], health_cache_s=60).model_copy(
            update={"vllm_base_url": strong.base_url}
        )
        with running_api(settings) as api, httpx.Client(base_url=api) as client:
            answers = [client.get("/healthz") for _ in range(20)]
            keyed = client.get("/healthz", headers={"Authorization": "Bearer k"})
        assert len(strong.received) == 1
    assert all(answer.status_code == 200 and answer.json() == {"status": "ok"} for answer in answers)
    strong_check = keyed.json()["checks"]["strong_model"]
    assert strong_check["ok"] is True and strong_check["url"].startswith(strong.base_url)


# --- 12. run status in SQL, timestamps, one error shape ---------------------------------------------------------


def test_run_status_is_stored_when_its_last_job_ends(api: httpx.Client, database_url: str) -> None:
    run_id = api.post("/v1/runs", json=RUN).json()["id"]
    sessions = make_session_factory(make_engine(database_url))
    kinds = {row[0] for row in sql_rows(database_url, f"SELECT DISTINCT kind FROM jobs WHERE run_id = {run_id}")}
    Worker(sessions, dict.fromkeys(kinds, lambda _ctx: None)).run(exit_when_idle=True)
    # Read straight from SQL: nobody asked the API about the run since it was created.
    ((status, finished_at),) = sql_rows(database_url, f"SELECT status, finished_at FROM runs WHERE id = {run_id}")
    assert status == "succeeded" and finished_at is not None


def test_timestamps_carry_their_utc_offset(api: httpx.Client) -> None:
    run = api.post("/v1/runs", json=RUN).json()
    assert run["created_at"].endswith(("Z", "+00:00")), run["created_at"]


def test_malformed_bodies_are_all_the_same_422(api: httpx.Client) -> None:
    broken_json = api.post("/v1/runs", content=b'{"task": ', headers={"content-type": "application/json"})
    broken_form = api.post(
        "/v1/files", content=b"--x\r\nnot a part", headers={"content-type": "multipart/form-data; boundary=x"}
    )
    for response in (broken_json, broken_form):
        assert response.status_code == 422, response.text
        assert response.json()["error"]["type"] == "invalid_request"
        assert response.json()["error"]["param"].startswith("body")
