"""The debate REST API over real HTTP (uvicorn on loopback) against a real vLLM and real SQLite."""

from collections.abc import Iterator

import httpx
import pytest

from service.settings import Settings
from service.store.migrate import upgrade
from tests.support.api_server import running_api
from tests.support.checks import sql_rows

pytestmark = pytest.mark.vllm

EXAMPLE = {
    "question": "What do plants absorb from the air?",
    "candidate_answer": "Carbon dioxide",
    "context": "Plants take in carbon dioxide through their leaves.",
    "label": 1,
}
FAST = {"sampling": {"max_tokens": 16, "temperature": 0.8}}


def _settings(database_url: str, vllm_url: str, **extra) -> Settings:  # noqa: ANN003
    return Settings(_env_file=None, database_url=database_url, vllm_base_url=vllm_url, strong_model="strong", **extra)


@pytest.fixture
def sqlite_url(tmp_path) -> str:  # noqa: ANN001
    url = f"sqlite:///{tmp_path / 'api.db'}"
    upgrade(url)
    return url


@pytest.fixture
def api(vllm_server, sqlite_url: str) -> Iterator[httpx.Client]:  # noqa: ANN001
    with (
        running_api(_settings(sqlite_url, vllm_server.base_url)) as url,
        httpx.Client(base_url=url, timeout=120) as client,
    ):
        yield client


def test_post_debate_runs_stores_and_returns_it(api: httpx.Client, sqlite_url: str) -> None:
    response = api.post("/v1/debates", json={**EXAMPLE, **FAST, "task": "passage_question", "seed": 7})
    assert response.status_code == 201, response.text
    [debate] = response.json()["data"]
    assert debate["status"] == "succeeded" and debate["seed"] == 7 and debate["model"] == "strong"
    assert [(t["speaker"], t["stance"]) for t in debate["turns"]] == [
        ("A", "correct"),
        ("B", "incorrect"),
        ("A", "correct"),
    ]
    assert all(t["completion_tokens"] > 0 and t["prompt_tokens"] > 0 for t in debate["turns"])
    assert debate["completion_tokens"] == sum(t["completion_tokens"] for t in debate["turns"])

    fetched = api.get(f"/v1/debates/{debate['id']}").json()
    assert fetched["turns"] == debate["turns"] and fetched["example"]["candidate"] == "Carbon dioxide"
    # Readable with plain SQL, turn by turn.
    rows = sql_rows(
        sqlite_url,
        "SELECT t.speaker, t.stance, t.content, e.question FROM turns t "
        f"JOIN debates d ON d.id = t.debate_id JOIN examples e ON e.id = d.example_id "
        f'WHERE d.id = {debate["id"]} ORDER BY t."index"',
    )
    assert [row[2] for row in rows] == [t["content"] for t in debate["turns"]]
    assert rows[0][3] == EXAMPLE["question"]


def test_n_samples_gives_one_debate_per_seed_with_swap_recorded(api: httpx.Client) -> None:
    body = {**EXAMPLE, **FAST, "n_samples": 3, "seed": 10, "swap": True}
    debates = api.post("/v1/debates", json=body).json()["data"]
    assert [d["seed"] for d in debates] == [10, 11, 12]
    assert all(d["swap"] and d["turns"][0]["stance"] == "incorrect" for d in debates)
    assert len({d["turns"][0]["content"] for d in debates}) > 1


@pytest.mark.parametrize(
    ("patch", "param", "needle"),
    [
        ({"turns": 0}, "body.turns", "greater than or equal to 1"),
        ({"question": ""}, "body.question", "at least 1 character"),
        ({"sampling": {"top_p": 2}}, "body.sampling.top_p", "less than or equal to 1"),
        ({"protocol": "shouting"}, "body.protocol", "debate"),
        ({"colour": "blue"}, "body.colour", "Extra inputs"),
        ({"protocol": "market_making"}, "body", "weak_prediction"),
    ],
)
def test_bad_input_is_a_422_naming_the_field(
    api: httpx.Client, sqlite_url: str, patch: dict, param: str, needle: str
) -> None:
    response = api.post("/v1/debates", json={**EXAMPLE, **patch})
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["type"] == "invalid_request" and error["code"] == 422
    assert error["param"] == param and needle in error["message"]
    assert sql_rows(sqlite_url, "SELECT count(*) FROM examples") == [(0,)]


def test_input_longer_than_the_context_window_is_rejected_and_nothing_stored(
    api: httpx.Client, sqlite_url: str
) -> None:
    long_context = " ".join(["photosynthesis happens in chloroplasts"] * 400)
    response = api.post("/v1/debates", json={**EXAMPLE, **FAST, "context": long_context})
    assert response.status_code == 422
    assert response.json()["error"]["type"] == "context_too_long"
    assert "context" in response.json()["error"]["message"]
    assert sql_rows(sqlite_url, "SELECT count(*) FROM debates") == [(0,)]


def test_unknown_model_is_a_404_in_the_error_shape(api: httpx.Client) -> None:
    response = api.post("/v1/debates", json={**EXAMPLE, **FAST, "model": "no-such-model"})
    assert response.status_code == 404
    assert response.json()["error"]["type"] == "model_not_found"


def test_list_filters_paginates_and_exports(api: httpx.Client) -> None:
    api.post("/v1/debates", json={**EXAMPLE, **FAST, "n_samples": 3})
    api.post("/v1/debates", json={**EXAMPLE, **FAST, "protocol": "consultancy", "consultant_side": "incorrect"})
    first = api.get("/v1/debates", params={"limit": 2, "protocol": "debate"}).json()
    assert len(first["data"]) == 2 and first["data"][0]["turns"] is None
    second = api.get("/v1/debates", params={"limit": 2, "protocol": "debate", "cursor": first["next_cursor"]}).json()
    assert len(second["data"]) == 1 and second["next_cursor"] is None
    ids = [d["id"] for d in first["data"] + second["data"]]
    assert ids == sorted(ids) and len(set(ids)) == 3

    consultancy = api.get("/v1/debates", params={"protocol": "consultancy", "include_turns": True}).json()["data"]
    assert [(t["speaker"], t["stance"]) for t in consultancy[0]["turns"]] == [("consultant", "incorrect")] * 3

    lines = api.get("/v1/debates/export.jsonl").text.splitlines()
    assert len(lines) == 4
    record = httpx.Response(200, content=lines[0]).json()
    assert record["example"]["question"] == EXAMPLE["question"] and len(record["turns"]) == 3


def test_missing_debate_is_a_404_in_the_error_shape(api: httpx.Client) -> None:
    response = api.get("/v1/debates/999999")
    assert response.status_code == 404
    assert response.json() == {
        "error": {"message": "no debate with id 999999", "type": "not_found", "code": 404, "param": None}
    }


def test_healthz_and_metrics(api: httpx.Client) -> None:
    health = api.get("/healthz")
    assert health.status_code == 200 and health.json()["checks"]["strong_model"]["ok"] is True
    api.post("/v1/debates", json={**EXAMPLE, **FAST})
    metrics = api.get("/metrics").text
    assert 'w2s_debates_total{protocol="debate",status="succeeded"} 1.0' in metrics
    assert 'w2s_http_requests_total{method="POST",route="/v1/debates",status="201"} 1.0' in metrics
    assert "w2s_debate_tokens_total" in metrics
    assert api.get("/docs").status_code == 200


def test_api_keys_guard_every_data_endpoint(vllm_server, sqlite_url: str) -> None:  # noqa: ANN001
    settings = _settings(sqlite_url, vllm_server.base_url, api_keys=["k-one", "k-two"])
    with running_api(settings) as url, httpx.Client(base_url=url) as client:
        missing = client.get("/v1/debates")
        assert missing.status_code == 401 and missing.json()["error"]["type"] == "unauthorized"
        assert missing.headers["www-authenticate"] == "Bearer"
        wrong = client.get("/v1/debates", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 403 and wrong.json()["error"]["type"] == "forbidden"
        assert client.post("/v1/debate-batches", json={}).status_code == 401
        assert client.get("/v1/debates", headers={"Authorization": "Bearer k-two"}).status_code == 200
        assert client.get("/healthz").status_code == 200


def test_strong_model_down_is_a_503_naming_the_url(sqlite_url: str) -> None:
    from service.local_vllm import find_free_port

    dead = f"http://127.0.0.1:{find_free_port()}"
    with running_api(_settings(sqlite_url, dead)) as url, httpx.Client(base_url=url, timeout=60) as client:
        response = client.post("/v1/debates", json={**EXAMPLE, **FAST})
        assert response.status_code == 503
        assert response.json()["error"]["type"] == "strong_model_unavailable"
        assert dead in response.json()["error"]["message"]
        health = client.get("/healthz")
        assert health.status_code == 503 and health.json()["checks"]["strong_model"]["ok"] is False
    assert sql_rows(sqlite_url, "SELECT count(*) FROM debates") == [(0,)]
