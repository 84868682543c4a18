"""Optional experiment tracking: a worker's training curves and a run's metrics as TensorBoard
event files (read back here record by record), and nothing at all when tracking is off."""

import struct
from pathlib import Path

from tensorboardX.proto.event_pb2 import Event

from service.store import Run
from service.store.jobs import enqueue_job
from trainers.tracking import NullTracker, TensorBoardTracker, make_tracker
from trainers.worker import JobContext, Worker


def _scalars(log_dir: Path) -> dict[str, list[tuple[int, float]]]:
    """tag -> [(step, value)] from every TFRecord event file under `log_dir`."""
    found: dict[str, list[tuple[int, float]]] = {}
    for path in sorted(log_dir.rglob("events.out.tfevents.*")):
        data = path.read_bytes()
        offset = 0
        while offset < len(data):
            (length,) = struct.unpack_from("<Q", data, offset)
            event = Event.FromString(data[offset + 12 : offset + 12 + length])
            offset += 12 + length + 4  # length, its crc, the record, its crc
            for value in event.summary.value:
                found.setdefault(value.tag, []).append((event.step, value.simple_value))
    return found


def _train(ctx: JobContext) -> dict:
    for step in (1, 2, 3):
        ctx.report(step, 3, loss=1.0 / step, lr=0.01, evaluation={"accuracy": 0.5 + step / 10})
    ctx.report(3, 3, stage="predict")  # no loss: not a training step
    return {}


def _run_one_training_job(sessions, tracker) -> tuple[int, int]:  # noqa: ANN001
    with sessions.begin() as session:
        run = Run(config={}, config_hash="t" * 64)
        session.add(run)
        session.flush()
        job_id = enqueue_job(session, "weak", run_id=run.id).id
        run_id = run.id
    assert Worker(sessions, {"weak": _train}, tracker=tracker).run(max_jobs=1) == 1
    return run_id, job_id


def test_tensorboard_gets_each_training_step_and_the_run_metrics(sessions, tmp_path: Path) -> None:  # noqa: ANN001
    tracker = make_tracker("tensorboard", tmp_path / "tb")
    assert isinstance(tracker, TensorBoardTracker)
    run_id, job_id = _run_one_training_job(sessions, tracker)
    tracker.log_metrics(run_id, {"w2s:debate_ensemble:xent/accuracy": 0.81})
    tracker.close()
    scalars = _scalars(tmp_path / "tb" / f"run{run_id}")
    prefix = f"weak/job{job_id}"
    assert [step for step, _ in scalars[f"{prefix}/loss"]] == [1, 2, 3]
    assert [round(value, 3) for _, value in scalars[f"{prefix}/loss"]] == [1.0, 0.5, 0.333]
    assert [round(value, 2) for _, value in scalars[f"{prefix}/valid_accuracy"]] == [0.6, 0.7, 0.8]
    assert len(scalars[f"{prefix}/lr"]) == 3
    assert round(scalars["metrics/w2s_debate_ensemble_xent/accuracy"][0][1], 2) == 0.81  # TensorBoard tags: no ":"


def test_tracking_is_off_by_default_and_writes_nothing(sessions, tmp_path: Path) -> None:  # noqa: ANN001
    tracker = make_tracker("none", tmp_path / "tb")
    assert isinstance(tracker, NullTracker)
    _run_one_training_job(sessions, tracker)
    assert not (tmp_path / "tb").exists()
