"""The strong job behind the OpenAI-compatible fine-tuning API, with the real worker handler.

Jobs are created with the official `openai` client against our API on loopback and run by a
`Worker` with the pipeline's strong handler on a tiny model: in this process, or under
`torchrun` (2 processes on one "machine", as DDP replicas or FSDP shards, or 1 process on each of
2 "machines" that meet at a rendezvous on loopback). CPU + gloo here; the same code runs NCCL on GPUs.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import httpx
import openai
import pytest
from safetensors.torch import load_file
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from service.local_vllm import LocalVLLM, find_free_port
from service.run_cli import worker_env
from service.settings import Settings
from service.store import Job, ModelVersion, make_engine, make_session_factory
from service.store.db import utcnow
from service.store.migrate import upgrade
from tests.support.api_server import running_api
from tests.trainers.test_training import keyword_set
from trainers.jobs import pipeline_handlers
from trainers.jobs.strong_job import follow_strong_jobs, launch_dir
from trainers.strong.launch import Launch
from trainers.worker import Worker

ADAPTER = "adapter_model.safetensors"


def jsonl(n: int, seed: int) -> bytes:
    inputs, targets = keyword_set(n, seed=seed)
    return b"".join(json.dumps({"prompt": i.text, "label": t}).encode() + b"\n" for i, t in zip(inputs, targets))


@contextmanager
def fine_tuning_api(
    tmp_path: Path, model_dir: Path, vllm: LocalVLLM | None = None
) -> Iterator[tuple[openai.OpenAI, Settings, sessionmaker[Session]]]:
    url = f"sqlite:///{tmp_path / 'w2s.db'}"
    upgrade(url)
    settings = Settings(
        _env_file=None,
        database_url=url,
        strong_model=vllm.served_name if vllm else "strong",
        vllm_base_url=vllm.base_url if vllm else "http://127.0.0.1:9",
        strong_model_path=model_dir,
        artifacts_dir=tmp_path / "artifacts",
    )
    with running_api(settings) as api:
        client = openai.OpenAI(base_url=f"{api}/v1", api_key="unused", max_retries=0, timeout=60)
        yield client, settings, make_session_factory(make_engine(url))
        client.close()


def upload(client: openai.OpenAI, content: bytes) -> str:
    return client.files.create(file=("data.jsonl", content), purpose="fine-tune").id


def strong_worker(
    settings: Settings, sessions: sessionmaker[Session], launch: Launch = Launch(), lease_s: float = 60.0
) -> Worker:
    handler = pipeline_handlers(worker_env(settings, launch))["strong"]
    return Worker(sessions, {"strong": handler}, lease_s=lease_s)


def job_row(sessions: sessionmaker[Session], public_id: str) -> Job:
    with sessions() as session:
        return session.get(Job, int(public_id.removeprefix("ftjob-")))


@pytest.mark.vllm
def test_fine_tune_evaluates_every_n_steps_publishes_and_a_version_can_be_finetuned_further(
    vllm_server: LocalVLLM, tiny_model_dir: Path, tmp_path: Path
) -> None:
    with fine_tuning_api(tmp_path, tiny_model_dir, vllm_server) as (client, settings, sessions):
        train, valid = upload(client, jsonl(32, seed=0)), upload(client, jsonl(16, seed=1))
        job = client.fine_tuning.jobs.create(
            model=vllm_server.served_name,
            training_file=train,
            validation_file=valid,
            seed=3,
            hyperparameters={"n_epochs": 2, "batch_size": 8},
            extra_body={"eval_every": 2},
        )
        assert strong_worker(settings, sessions).run_one()
        done = client.fine_tuning.jobs.retrieve(job.id)
        assert done.status == "succeeded", done.error
        served = httpx.get(f"{vllm_server.base_url}/v1/models", timeout=30).json()["data"]
        assert done.fine_tuned_model in {entry["id"] for entry in served}

        # 8 steps: evaluations after 2, 4 and 6 (the finished model is evaluated once, at the end).
        metrics = [e for e in client.fine_tuning.jobs.list_events(job.id, limit=100).data if e.type == "metrics"]
        assert sorted(e.data["step"] for e in metrics) == [2, 4, 6]
        assert all(0.0 <= e.data["valid_accuracy"] <= 1.0 and "train_loss" in e.data for e in metrics)
        result = job_row(sessions, job.id).result
        assert [entry["step"] for entry in result["evaluations"]] == [2, 4, 6]
        assert result["metrics"]["n"] == 16 and result["steps"] == 8

        # Fine-tuning the published version continues its adapter: with a vanishing learning rate the
        # new adapter is the old one (a fresh LoRA would start with B = 0), and it records its parent.
        child = client.fine_tuning.jobs.create(
            model=done.fine_tuned_model,
            training_file=train,
            hyperparameters={"n_epochs": 1, "batch_size": 8, "learning_rate_multiplier": 1e-6},
        )
        assert strong_worker(settings, sessions).run_one()
        continued = client.fine_tuning.jobs.retrieve(child.id)
        assert continued.status == "succeeded", continued.error
        with sessions() as session:
            versions = {v.served_name: v for v in session.scalars(select(ModelVersion))}
        parent, grown = versions[done.fine_tuned_model], versions[continued.fine_tuned_model]
        assert grown.parent_id == parent.id
        before, after = (load_file(Path(v.adapter_path) / ADAPTER) for v in (parent, grown))
        assert before.keys() == after.keys()
        assert all(after[name].allclose(before[name], atol=1e-6) for name in before)
        assert any(name.endswith("lora_B.weight") and before[name].abs().max() > 1e-3 for name in before)


def saved_adapter(settings: Settings, public_id: str) -> dict:
    return load_file(settings.artifacts_dir / "fine_tunes" / f"ft-job{public_id.removeprefix('ftjob-')}" / ADAPTER)


@pytest.mark.slow
def test_torchrun_on_two_processes_sharded_and_on_two_machines_trains_like_one_process(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    with fine_tuning_api(tmp_path, tiny_model_dir) as (client, settings, sessions):
        train, valid = upload(client, jsonl(40, seed=0)), upload(client, jsonl(12, seed=1))

        def create() -> str:
            return client.fine_tuning.jobs.create(
                model="strong",
                training_file=train,
                validation_file=valid,
                seed=5,
                hyperparameters={"n_epochs": 2, "batch_size": 8},
                extra_body={"publish": False, "eval_every": 4},
            ).id

        single, pair, sharded = create(), create(), create()
        assert strong_worker(settings, sessions).run_one()
        assert strong_worker(settings, sessions, Launch(nproc_per_node=2)).run_one()
        assert strong_worker(settings, sessions, Launch(nproc_per_node=2, sharding="fsdp")).run_one()

        # Two "machines": node 0 claims the job and launches; node 1 follows the queue and joins.
        port = find_free_port()
        nodes = create()
        stop = threading.Event()
        follower = threading.Thread(
            target=follow_strong_jobs,
            args=(sessions, worker_env(settings, Launch(nnodes=2, node_rank=1, master_port=port)), stop),
            kwargs={"poll_s": 0.2},
        )
        follower.start()
        try:
            assert strong_worker(settings, sessions, Launch(nnodes=2, master_port=port)).run_one()
        finally:
            stop.set()
            follower.join(timeout=60)
        assert not follower.is_alive()

        rows = {
            name: job_row(sessions, public)
            for name, public in (("single", single), ("pair", pair), ("sharded", sharded), ("nodes", nodes))
        }
        assert {name: row.status for name, row in rows.items()} == dict.fromkeys(rows, "succeeded"), {
            name: row.error for name, row in rows.items()
        }
        assert [rows[name].result["processes"] for name in rows] == [1, 2, 2, 2]
        expected = saved_adapter(settings, single)
        for other in (pair, sharded, nodes):
            weights = saved_adapter(settings, other)
            assert all(weights[name].allclose(expected[name], atol=1e-4) for name in expected)
        for name in ("pair", "sharded", "nodes"):
            result, reference = rows[name].result, rows["single"].result
            assert result["final_loss"] == pytest.approx(reference["final_loss"], abs=1e-4)
            assert [e["step"] for e in result["evaluations"]] == [e["step"] for e in reference["evaluations"]] == [4, 8]
            assert result["metrics"]["auroc"] == pytest.approx(reference["metrics"]["auroc"], abs=1e-3)
        events = [e.message for e in client.fine_tuning.jobs.list_events(pair, limit=100).data]
        assert "Training on 2 processes (1 node(s) x 2, DDP)" in events
        events = [e.message for e in client.fine_tuning.jobs.list_events(sharded, limit=100).data]
        assert "Training on 2 processes (1 node(s) x 2, FSDP)" in events


@pytest.mark.slow
def test_a_follower_leaves_a_launch_whose_node_0_died_and_joins_the_next(tiny_model_dir: Path, tmp_path: Path) -> None:
    with fine_tuning_api(tmp_path, tiny_model_dir) as (client, settings, sessions):
        train = upload(client, jsonl(16, seed=0))
        dead, live = (
            client.fine_tuning.jobs.create(
                model="strong",
                training_file=train,
                extra_body={"publish": False},
                hyperparameters={"n_epochs": 1, "batch_size": 8},
            ).id
            for _ in range(2)
        )
        # Node 0 claimed `dead`, wrote its launch and died: the job is running on a lease nobody renews.
        port, dead_id = find_free_port(), int(dead.removeprefix("ftjob-"))
        with sessions.begin() as session:
            session.execute(
                update(Job)
                .where(Job.id == dead_id)
                .values(status="running", lease_owner="gone", lease_expires_at=utcnow() + timedelta(seconds=6))
            )
        follower_env = worker_env(settings, Launch(nnodes=2, node_rank=1, master_port=port))
        stale = launch_dir(follower_env, dead_id)
        stale.mkdir(parents=True)
        (stale / "launch.json").write_text(
            json.dumps(
                {"nnodes": 2, "master_addr": "127.0.0.1", "master_port": port, "tag": f"job {dead_id} launch gone"}
            )
        )
        stop = threading.Event()
        follower = threading.Thread(
            target=follow_strong_jobs, args=(sessions, follower_env, stop), kwargs={"poll_s": 0.2}
        )
        follower.start()
        stale_ranks: list[int] = []  # rank processes ever started for the dead launch (there must be none)
        watcher = threading.Thread(target=watch_ranks, args=(stale.resolve(), stale_ranks, stop))
        watcher.start()
        try:
            deadline = time.monotonic() + 60
            while not rank_processes(stale.resolve()):  # the follower is waiting to join the dead launch
                assert time.monotonic() < deadline, "the follower never joined the dead launch"
                time.sleep(0.2)
            # Node 0 (restarted) claims the next job at the same address: the waiting node must not
            # take part with the dead job's spec, must leave once the lease runs out, and join this one.
            assert strong_worker(settings, sessions, Launch(nnodes=2, master_port=port)).run_one()
        finally:
            stop.set()
            follower.join(timeout=60)
            watcher.join(timeout=10)
        assert not follower.is_alive()
        assert stale_ranks == []
        row = job_row(sessions, live)
        assert (row.status, row.result["processes"]) == ("succeeded", 2), row.error
        assert rank_processes(stale.resolve()) == []


def rank_processes(work_dir: Path) -> list[int]:
    """Processes whose command line names the launch dir (torchrun and its ranks)."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and str(work_dir) in (proc / "cmdline").read_bytes().decode(errors="replace"):
                found.append(int(proc.name))
        except OSError:
            continue
    return found


def watch_ranks(work_dir: Path, found: list[int], stop: threading.Event) -> None:
    """Until `stop`: note every rank (not the torchrun agent) started for the launch in `work_dir`."""
    while not stop.is_set():
        for pid in rank_processes(work_dir):
            try:
                command = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
            except OSError:
                continue
            if "torch.distributed.run" not in command and pid not in found:
                found.append(pid)
        time.sleep(0.1)


@pytest.mark.slow
def test_cancelling_a_torchrun_job_stops_its_ranks(tiny_model_dir: Path, tmp_path: Path) -> None:
    with fine_tuning_api(tmp_path, tiny_model_dir) as (client, settings, sessions):
        job = client.fine_tuning.jobs.create(
            model="strong",
            training_file=upload(client, jsonl(32, seed=0)),
            hyperparameters={"n_epochs": 100, "batch_size": 8},
            extra_body={"publish": False},
        )
        worker = strong_worker(settings, sessions, Launch(nproc_per_node=2), lease_s=3.0)
        thread = threading.Thread(target=worker.run_one)
        thread.start()
        deadline = time.monotonic() + 180
        while (job_row(sessions, job.id).progress or {}).get("done", 0) < 2:
            assert time.monotonic() < deadline and thread.is_alive(), "the ranks never reported a step"
            time.sleep(0.5)
        work_dir = settings.artifacts_dir.resolve() / "jobs" / job.id.removeprefix("ftjob-") / "launch"
        assert rank_processes(work_dir)
        client.fine_tuning.jobs.cancel(job.id)
        thread.join(timeout=90)
        assert not thread.is_alive()
        assert client.fine_tuning.jobs.retrieve(job.id).status == "cancelled"
        assert rank_processes(work_dir) == []
        assert (job_row(sessions, job.id).progress or {})["done"] < 400
