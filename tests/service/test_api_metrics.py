"""GET /metrics: what operators watch, read from the database (jobs, queue age, heartbeats,
debates and tokens, training steps), on a real API over a real database."""

import httpx
from prometheus_client.parser import text_string_to_metric_families

from service.settings import Settings
from service.store import Run
from service.store.jobs import claim_job, enqueue_job, heartbeat
from service.store.models import Debate, Example
from tests.support.api_server import running_api


def _samples(base_url: str) -> dict[tuple[str, tuple], float]:
    text = httpx.get(f"{base_url}/metrics").text
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_metrics_report_jobs_queue_age_heartbeats_training_and_debates(
    migrated_url: str,
    sessions,  # noqa: ANN001
    tmp_path,
) -> None:  # noqa: ANN001
    with sessions.begin() as session:
        run = Run(config={}, config_hash="m" * 64)
        example = Example(task="t", source_id="s", candidate_id="c", question="q?", candidate="a", label=1)
        session.add_all([run, example])
        session.flush()
        session.add(
            Debate(
                example_id=example.id,
                protocol="debate",
                order="sequential",
                num_turns=3,
                seed=0,
                model="strong",
                status="succeeded",
                prompt_tokens=100,
                completion_tokens=30,
            )
        )
        enqueue_job(session, "debate", run_id=run.id)
        enqueue_job(session, "strong", run_id=run.id)
    with sessions.begin() as session:
        claimed = claim_job(session, ("strong",), "gpu-1:42", 60.0)
        heartbeat(session, claimed.id, "gpu-1:42", 60.0, {"done": 7, "total": 20, "eta_s": 30.0, "loss": 0.25})
    settings = Settings(database_url=migrated_url, vllm_base_url="", artifacts_dir=tmp_path)
    with running_api(settings) as url:
        samples = _samples(url)
    assert samples[("w2s_jobs", (("kind", "debate"), ("status", "queued")))] == 1
    assert samples[("w2s_jobs", (("kind", "strong"), ("status", "running")))] == 1
    assert samples[("w2s_queue_oldest_age_seconds", (("kind", "debate"),))] >= 0
    assert ("w2s_queue_oldest_age_seconds", (("kind", "strong"),)) not in samples  # nothing of it queued
    assert 0 <= samples[("w2s_worker_heartbeat_age_seconds", (("kind", "strong"), ("worker", "gpu-1:42")))] < 60
    job = str(claimed.id)
    assert samples[("w2s_training_step", (("job", job), ("kind", "strong")))] == 7
    assert samples[("w2s_training_loss", (("job", job), ("kind", "strong")))] == 0.25
    assert samples[("w2s_debates_stored_total", (("status", "succeeded"),))] == 1
    assert samples[("w2s_debate_tokens_stored_total", (("kind", "completion"),))] == 30
    assert samples[("w2s_debate_tokens_stored_total", (("kind", "prompt"),))] == 100
