"""/v1/runs and /v1/jobs without workers: validation with field paths, resubmission, cancel, retry."""

from pathlib import Path

import httpx
import pytest

from service.settings import Settings
from service.store.migrate import upgrade
from tests.support.api_server import running_api

CONFIG = {"task": "synthetic", "splits": {"weak_train": 8, "strong_train": 8, "test": 8}, "conditions": ["no_debate"]}


@pytest.fixture
def api(database_url: str, tmp_path: Path):  # noqa: ANN201
    upgrade(database_url)
    settings = Settings(database_url=database_url, vllm_base_url="http://127.0.0.1:9", artifacts_dir=tmp_path)
    with running_api(settings) as url:
        yield url


def test_bad_config_is_a_422_naming_the_field(api: str) -> None:
    answer = httpx.post(f"{api}/v1/runs", json={**CONFIG, "weak": {"train": {"lr": 0}}})
    assert answer.status_code == 422
    assert answer.json()["error"]["param"] == "body.weak.train.lr"
    answer = httpx.post(f"{api}/v1/runs", json={**CONFIG, "typo": 1})
    assert answer.status_code == 422 and answer.json()["error"]["param"] == "body.typo"
    answer = httpx.post(f"{api}/v1/runs", json={**CONFIG, "strong": {"train": {"max_length": 32}}})
    assert answer.status_code == 422 and "strong.train.max_length=32" in answer.json()["error"]["message"]


def test_create_resubmit_cancel_and_retry(api: str) -> None:
    created = httpx.post(f"{api}/v1/runs", json=CONFIG)
    assert created.status_code == 201
    run = created.json()
    assert run["status"] == "queued" and run["notes"] == []  # nothing ingested, nothing dropped yet
    assert {stage["kind"] for stage in run["stages"]} == {"ingest", "weak", "ensemble", "strong", "report"}
    again = httpx.post(f"{api}/v1/runs", json=CONFIG)
    assert again.status_code == 200 and again.json()["id"] == run["id"]

    cancelled = httpx.post(f"{api}/v1/runs/{run['id']}/cancel").json()
    assert cancelled["status"] == "cancelled"
    assert all(set(stage["jobs"]) == {"cancelled"} for stage in cancelled["stages"])

    jobs = httpx.get(f"{api}/v1/runs/{run['id']}").json()
    assert jobs["status"] == "cancelled"
    retried = httpx.post(f"{api}/v1/jobs/1/retry")
    assert retried.status_code == 200 and retried.json()["status"] == "queued"
    assert httpx.post(f"{api}/v1/jobs/1/retry").status_code == 409  # queued: nothing to retry
    assert httpx.get(f"{api}/v1/runs/999").status_code == 404
    assert httpx.get(f"{api}/v1/runs/{run['id']}/report.png").status_code == 404  # no report job yet
    report = httpx.get(f"{api}/v1/runs/{run['id']}/report", params={"format": "markdown"})
    assert report.status_code == 200 and "Run" in report.text


def test_without_a_strong_model_reads_work_and_debates_answer_503(database_url: str, tmp_path: Path) -> None:
    upgrade(database_url)
    settings = Settings(database_url=database_url, vllm_base_url="", artifacts_dir=tmp_path)
    with running_api(settings) as url:
        assert httpx.post(f"{url}/v1/runs", json=CONFIG).status_code == 201
        assert httpx.get(f"{url}/v1/runs").status_code == 200
        assert httpx.get(f"{url}/v1/debates").status_code == 200
        debate = httpx.post(f"{url}/v1/debates", json={"question": "Is ice cold?", "candidate_answer": "Yes"})
        assert debate.status_code == 503 and "W2S_VLLM_BASE_URL" in debate.json()["error"]["message"]


GENERATIVE = {
    "kind": "generative",
    "task": "testbed_qa",
    "seeds": 2,
    "splits": {"weak_train": 4, "strong_train": 4, "test": 4},
}


def test_a_generative_config_is_a_run_like_any_other(api: str, tmp_path: Path) -> None:
    created = httpx.post(f"{api}/v1/runs", json=GENERATIVE)
    assert created.status_code == 201
    run = created.json()
    assert {stage["kind"] for stage in run["stages"]} == {
        "gen_ingest",
        "gen_weak",
        "gen_refine",
        "gen_strong",
        "gen_report",
    }
    assert run["config"]["kind"] == "generative" and run["config"]["seeds"] == [0, 1]
    again = httpx.post(f"{api}/v1/runs", json={**GENERATIVE, "seeds": [0, 1]})
    assert again.status_code == 200 and again.json()["id"] == run["id"]
    assert httpx.get(f"{api}/v1/runs/{run['id']}").json()["status"] == "queued"
    assert run["id"] in [listed["id"] for listed in httpx.get(f"{api}/v1/runs").json()]
    report = httpx.get(f"{api}/v1/runs/{run['id']}/report").json()
    assert report["task"] == "testbed_qa" and report["seeds"] == [] and report["conditions"] == []  # nothing ran
    markdown = httpx.get(f"{api}/v1/runs/{run['id']}/report", params={"format": "markdown"}).text
    assert "# Generative W2S" in markdown and "none complete yet" in markdown
    outside = httpx.post(f"{api}/v1/runs", json={**GENERATIVE, "data_dir": str(tmp_path)})
    assert outside.status_code == 422 and outside.json()["error"]["param"] == "body.data_dir"


@pytest.mark.parametrize(
    ("change", "param"),
    [
        ({"seeds": [1, 1]}, "body.seeds"),
        ({"refinement": {"methods": ["guess"]}}, "body.refinement.methods.0"),
        ({"weak": {"train": {"lr": 0}}}, "body.weak.train.lr"),
        ({"typo": 1}, "body.typo"),
    ],
)
def test_a_bad_generative_config_is_a_422_naming_the_field(api: str, change: dict, param: str) -> None:
    answer = httpx.post(f"{api}/v1/runs", json={**GENERATIVE, **change})
    assert answer.status_code == 422 and answer.json()["error"]["param"] == param
