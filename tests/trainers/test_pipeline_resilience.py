"""A run survives a worker killed mid-training and a Ctrl-C of `w2s run`: it resumes, nothing is lost or doubled.
Weak members trained concurrently (`w2s worker --processes N`) get the labels they get one after another.

These runs need no vLLM (no-debate condition, nothing published), so they use real workers in
real subprocesses on a real SQLite file and are killed with real signals.
"""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from service.run_cli import worker_env
from service.settings import Settings
from service.store import make_engine, make_session_factory
from service.store.migrate import upgrade
from service.store.models import Job, Label, Model
from tests.support.checks import kill_group, wait_for
from trainers.jobs import pipeline_handlers
from trainers.pipeline import parse_run_config, submit_run
from trainers.worker import Worker

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
CONFIG = {
    "task": "synthetic",
    "splits": {"weak_train": 40, "strong_train": 16, "test": 16},
    "conditions": ["no_debate"],
    # The default (testbed) models read one token per character: room for the word problems.
    "weak": {"train": {"epochs": 20, "batch_size": 8, "max_length": 256, "checkpoint_every": 2}},
    "strong": {"publish": False, "train": {"epochs": 1, "batch_size": 8, "max_length": 256}},
}


@pytest.fixture
def settings(tmp_path: Path, testbed_artifacts: Path) -> Settings:
    url = f"sqlite:///{tmp_path / 'w2s.db'}"
    upgrade(url)
    # Nothing here talks to vLLM; a dead address makes sure of it.
    return Settings(database_url=url, vllm_base_url="http://127.0.0.1:9", artifacts_dir=testbed_artifacts)


def _env(settings: Settings) -> dict[str, str]:
    return {
        **os.environ,
        "W2S_DATABASE_URL": settings.database_url,
        "W2S_VLLM_BASE_URL": settings.vllm_base_url,
        "W2S_ARTIFACTS_DIR": str(settings.artifacts_dir),
        "PYTHONPATH": str(ROOT),
    }


def _start_run(settings: Settings, config: dict) -> sessionmaker[Session]:
    """Submit the run and ingest its examples in this process; the weak jobs are left queued."""
    sessions = make_session_factory(make_engine(settings.database_url))
    with sessions.begin() as session:
        submit_run(session, parse_run_config(config), strong_model="strong")
    Worker(sessions, {"ingest": pipeline_handlers(worker_env(settings))["ingest"]}).run(max_jobs=1)
    return sessions


def _job(sessions: sessionmaker[Session], kind: str) -> Job:
    with sessions() as session:
        return session.scalars(select(Job).where(Job.kind == kind)).one()


def _weak_checkpointed(sessions: sessionmaker[Session], settings: Settings) -> bool:
    """Whether the weak job has written a training checkpoint (it checkpoints every 2 steps)."""
    with sessions() as session:
        job_id = session.scalar(select(Job.id).where(Job.kind == "weak"))
    return job_id is not None and any((settings.artifacts_dir / "jobs" / str(job_id) / "checkpoint").glob("step-*"))


def test_killed_worker_job_resumes_from_its_checkpoint(settings: Settings) -> None:
    sessions = make_session_factory(make_engine(settings.database_url))
    with sessions.begin() as session:
        run, _ = submit_run(session, parse_run_config(CONFIG), strong_model="strong")
        run_id = run.id
    handlers = pipeline_handlers(worker_env(settings))
    Worker(sessions, {"ingest": handlers["ingest"]}).run(max_jobs=1)
    worker = subprocess.Popen(
        [sys.executable, "-m", "service.cli", "worker", "--kind", "weak", "--lease-s", "3"],
        env=_env(settings),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(lambda: _weak_checkpointed(sessions, settings), timeout_s=120, what="a weak checkpoint", poll_s=0.02)
        worker.send_signal(signal.SIGKILL)  # no goodbye: only the lease can tell
        worker.wait(30)
    finally:
        worker.kill()
    assert _job(sessions, "weak").status == "running"

    Worker(sessions, handlers, lease_s=3).run(exit_when_idle=True)  # reaps the expired lease, resumes

    weak = _job(sessions, "weak")
    assert (weak.status, weak.attempts) == ("succeeded", 2)
    assert 2 <= weak.result["train"]["resumed_from_step"] < weak.result["train"]["steps"]
    with sessions() as session:
        labels = session.scalar(
            select(func.count()).select_from(Label).where(Label.model_id == weak.result["model_id"])
        )
        assert labels == sum(CONFIG["splits"].values())  # every example labelled exactly once
        statuses = set(session.scalars(select(Job.status).where(Job.run_id == run_id)))
    assert statuses == {"succeeded"}


def test_interrupted_run_resumes_without_redoing_finished_steps(settings: Settings, tmp_path: Path) -> None:
    config_path = tmp_path / "run.yaml"
    config_path.write_text(yaml.safe_dump(CONFIG))
    sessions = make_session_factory(make_engine(settings.database_url))
    command = [sys.executable, "-m", "service.cli", "run", str(config_path)]
    first = subprocess.Popen(command, env=_env(settings), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        wait_for(lambda: _weak_checkpointed(sessions, settings), timeout_s=120, what="a weak checkpoint", poll_s=0.02)
        first.send_signal(signal.SIGINT)  # Ctrl-C
        first.wait(60)
    finally:
        first.kill()
    assert first.returncode == 130
    ingest, weak = _job(sessions, "ingest"), _job(sessions, "weak")
    assert (weak.status, weak.attempts) == ("queued", 0)  # handed back, attempt not spent
    assert ingest.status == "succeeded"

    again = subprocess.run(command, env=_env(settings), capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stdout[-2000:] + again.stderr[-2000:]
    assert "resumed (same config)" in again.stdout and "| no_debate |" in again.stdout
    ingest_after, weak_after = _job(sessions, "ingest"), _job(sessions, "weak")
    assert (ingest_after.attempts, ingest_after.finished_at) == (1, ingest.finished_at)  # not redone
    assert weak_after.status == "succeeded" and weak_after.result["train"]["resumed_from_step"] >= 2
    report = json.loads(
        subprocess.run(
            [sys.executable, "-m", "service.cli", "report", "1", "--format", "json"],
            env=_env(settings),
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    assert [row["condition"] for row in report["rows"]] == ["no_debate"]


def _weak_jobs(sessions: sessionmaker[Session]) -> list[Job]:
    with sessions() as session:
        return list(session.scalars(select(Job).where(Job.kind == "weak").order_by(Job.id)))


def _labels(sessions: sessionmaker[Session]) -> dict[tuple[str, int], float]:
    """Every weak member's soft labels, by (model name, example id)."""
    with sessions() as session:
        rows = session.execute(select(Model.name, Label.example_id, Label.soft_label).join(Label)).all()
    return {(name, example): soft for name, example, soft in rows}


def _both_training_one_checkpointed(sessions: sessionmaker[Session], settings: Settings) -> bool:
    """Both weak jobs are running, on two different processes, and the first has a checkpoint."""
    jobs = _weak_jobs(sessions)
    owners = {job.lease_owner for job in jobs if job.status == "running"}
    first = settings.artifacts_dir / "jobs" / str(jobs[0].id) / "checkpoint"
    return len(owners) == 2 and any(first.glob("step-*"))


def test_concurrent_members_match_sequential_ones_and_a_killed_one_resumes(settings: Settings, tmp_path: Path) -> None:
    config = {**CONFIG, "seeds": [0, 1], "weak": {"train": {**CONFIG["weak"]["train"], "epochs": 8}}}
    sessions = _start_run(settings, config)
    command = ["worker", "--kind", "weak", "--processes", "2", "--lease-s", "3", "--exit-when-idle"]
    workers = subprocess.Popen(
        [sys.executable, "-m", "service.cli", *command],
        env=_env(settings),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        wait_for(lambda: _both_training_one_checkpointed(sessions, settings), 180, "two members training", 0.02)
        owner = _weak_jobs(sessions)[0].lease_owner
        os.kill(int(owner.rsplit(":", 1)[1]), signal.SIGKILL)  # one member's process dies; its lease expires
        output, _ = workers.communicate(timeout=600)  # the other process takes the member over and resumes it
    finally:
        kill_group(workers)
    assert workers.returncode == 1 and ("exit codes [-9, 0]" in output or "exit codes [0, -9]" in output), output
    killed, other = _weak_jobs(sessions)
    assert (killed.status, killed.attempts, other.status, other.attempts) == ("succeeded", 2, "succeeded", 1)
    assert 2 <= killed.result["train"]["resumed_from_step"] < killed.result["train"]["steps"]

    # The same run in a fresh database and artifacts dir, its members trained one after another here.
    alone = tmp_path / "alone"
    (alone / "artifacts").mkdir(parents=True)
    (alone / "artifacts" / "models").symlink_to(settings.artifacts_dir / "models", target_is_directory=True)
    url = f"sqlite:///{alone / 'w2s.db'}"
    upgrade(url)
    sequential = settings.model_copy(update={"database_url": url, "artifacts_dir": alone / "artifacts"})
    alone_sessions = _start_run(sequential, config)
    Worker(alone_sessions, {"weak": pipeline_handlers(worker_env(sequential))["weak"]}).run(exit_when_idle=True)
    expected = _labels(alone_sessions)
    assert len(expected) == 2 * sum(CONFIG["splits"].values())
    assert _labels(sessions) == expected
