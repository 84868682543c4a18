"""`w2s run`, `w2s report`, `w2s export` and `w2s demo`: experiments from the command line.

w2s run configs/demo.yaml             submit (or resume) the run, execute it with in-process
                                      workers, show progress per stage, print the results table
w2s run configs/toxicity.yaml         the same for a generative run (`kind: generative`): its report's table
w2s run CONFIG --detach               submit and return; `w2s worker --kind ...` processes run it
w2s report RUN [--format markdown|json]
w2s export RUN --format jsonl|parquet [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from sqlalchemy.orm import Session, sessionmaker

from service.settings import Settings
from service.store import Run, make_engine, make_session_factory, migrate
from service.store.db import masked_url
from service.store.runs import StageProgress, refresh_run, run_stages
from service.strong_server import strong_model
from trainers.jobs.env import WorkerEnv
from trainers.jobs.payloads import JOB_KINDS
from trainers.pipeline import RunConfigError, load_run_config, parse_run_config
from trainers.runs import AnyRunConfig, load_any_run_config, run_report_json, run_report_markdown, submit_any_run
from trainers.strong.launch import Launch

# In-process workers: debates and refinements (network-bound), training (CPU/GPU-bound) and the light
# steps each get a thread, so debates of one condition overlap training of another. Every job kind,
# classification and generative, is in one group.
WORKER_GROUPS = (
    ("debate", "refine_labels", "gen_refine"),
    ("weak", "strong", "gen_weak", "gen_strong"),
    ("ingest", "ensemble", "report", "gen_ingest", "gen_report"),
)
FINAL = ("succeeded", "failed", "cancelled")


def run_command(args: argparse.Namespace, settings: Settings) -> int:
    try:
        config = load_any_run_config(args.config, data_dir=args.data_dir)
    except RunConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return execute(config, settings, detach=args.detach, workers=not args.no_workers)[0]


def preflight(config: AnyRunConfig, settings: Settings) -> list[str]:
    """What would make the run fail that can be seen before starting vLLM (a minute or more):
    unreadable data, model checkpoints that are not there."""
    from trainers.generative import load_generative_examples
    from trainers.generative.config import GenerativeRunConfig
    from trainers.tasks import TaskDataError, load_examples

    problems = []
    load = load_generative_examples if isinstance(config, GenerativeRunConfig) else load_examples
    if config.data_dir is not None:
        try:
            load(config.task, data_dir=Path(config.data_dir), seed=config.seed, limit=20)
        except TaskDataError as exc:
            problems.append(f"data: {exc}")
    if settings.strong_model_path is not None and not settings.strong_model_path.exists():
        problems.append(f"W2S_STRONG_MODEL_PATH: no checkpoint at {settings.strong_model_path}")
    weak = config.weak.model
    if weak and weak.startswith((".", "/", "~")) and not Path(weak).expanduser().exists():
        problems.append(f"weak.model: no checkpoint at {weak}")
    return problems


def execute(
    config: AnyRunConfig,
    settings: Settings,
    *,
    detach: bool = False,
    workers: bool = True,
    console: Console | None = None,
) -> tuple[int, int]:
    """Submit (or resume) the run; unless detached, run it to the end and print its report.

    Returns (exit code, run id); run id 0 when the checks before the start failed (nothing written).
    """
    console = console or Console()
    problems = [] if detach or not workers else preflight(config, settings)
    if problems:  # seconds now instead of after the vLLM start-up; nothing is written
        print("error: the run cannot start:\n  " + "\n  ".join(problems), file=sys.stderr)
        return 2, 0
    migrate.upgrade(settings.database_url)
    sessions = make_session_factory(make_engine(settings.database_url))
    with sessions.begin() as session:
        run, created = submit_any_run(session, config, strong_model=config.strong.model or settings.strong_model)
        run_id = run.id
    console.print(
        f"run {run_id} {'created' if created else 'resumed (same config)'} in {masked_url(settings.database_url)}"
    )
    if detach:
        console.print(f"follow it: w2s report {run_id}   or GET /v1/runs/{run_id}")
        return 0, run_id
    if not workers or _all_done(sessions, run_id):  # a finished run: just its table, no vLLM start-up
        return follow(sessions, run_id, console), run_id
    with strong_model(settings) as ready, in_process_workers(ready, sessions, run_id):
        code = follow(sessions, run_id, console)
    track_run_metrics(settings, sessions, run_id)
    return code, run_id


def track_run_metrics(settings: Settings, sessions: sessionmaker[Session], run_id: int) -> None:
    """The run's metrics rows to the tracker (W2S_TRACKING), if one is on."""
    from sqlalchemy import select

    from service.store.models import Metric
    from trainers.tracking import make_tracker

    tracker = make_tracker(settings.tracking, settings.tracking_path())
    with sessions() as session:
        rows = session.execute(
            select(Metric.condition, Metric.name, Metric.value).where(
                Metric.run_id == run_id, Metric.value.is_not(None)
            )
        ).all()
    tracker.log_metrics(run_id, {f"{condition}/{name}": value for condition, name, value in rows})
    tracker.close()


def _all_done(sessions: sessionmaker[Session], run_id: int) -> bool:
    with sessions() as session:
        return all(stage.jobs.keys() == {"succeeded"} for stage in run_stages(session, run_id, JOB_KINDS))


@contextmanager
def in_process_workers(
    settings: Settings, sessions: sessionmaker[Session], run_id: int | None = None
) -> Iterator[None]:
    """Worker threads for every job kind (of run `run_id` only, if given); on exit (Ctrl-C included)
    they stop and hand back their jobs."""
    from transformers.utils import logging as hf_logging

    from trainers.jobs import pipeline_handlers
    from trainers.tracking import make_tracker
    from trainers.worker import Worker

    # Model-loading reports and save progress bars would bury the stage progress.
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    handlers = pipeline_handlers(worker_env(settings))
    tracker = make_tracker(settings.tracking, settings.tracking_path())
    stop = threading.Event()
    threads = [
        threading.Thread(
            target=Worker(
                sessions, {kind: handlers[kind] for kind in kinds}, lease_s=60.0, run_id=run_id, tracker=tracker
            ).run,
            kwargs={"stop": stop},
            daemon=True,
            name=f"worker-{'+'.join(kinds)}",
        )
        for kinds in WORKER_GROUPS
    ]
    for thread in threads:
        thread.start()
    try:
        yield
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=30)
        tracker.close()


def worker_env(settings: Settings, launch: Launch = Launch()) -> WorkerEnv:
    return WorkerEnv(
        artifacts_dir=settings.artifacts_dir.resolve(),
        strong_checkpoint=settings.strong_checkpoint().resolve(),
        strong_is_built_in=settings.strong_model_path is None,
        vllm_base_urls=tuple(settings.vllm_targets()),
        vllm_pool_affinity=settings.vllm_pool_affinity,
        vllm_health_interval_s=settings.vllm_health_interval_s,
        vllm_api_key=settings.vllm_api_key or None,
        launch=launch,
    )


def follow(sessions: sessionmaker[Session], run_id: int, console: Console, poll_s: float = 0.5) -> int:
    """Progress bars per stage until the run ends; then the results table. Exit code 0 iff it succeeded."""
    columns = (
        TextColumn("{task.description:<9}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[note]}"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=False) as progress:
        bars: dict[str, int] = {}
        while True:
            with sessions.begin() as session:
                status = refresh_run(session, session.get(Run, run_id)).status
                stages = run_stages(session, run_id, JOB_KINDS)
            for stage in stages:
                if stage.kind not in bars:
                    bars[stage.kind] = progress.add_task(stage.kind, total=stage.total, note="")
                progress.update(bars[stage.kind], completed=stage.done, total=stage.total, note=stage_note(stage))
            if status in FINAL:
                break
            time.sleep(poll_s)
    return print_report(sessions, run_id, console, status, stages)


def stage_note(stage: StageProgress) -> str:
    """Jobs not yet done, the stage's ETA, and the step and loss of its running training jobs."""
    parts = [f"{n} {status}" for status, n in sorted(stage.jobs.items()) if status != "succeeded"]
    if stage.eta_s is not None:
        parts.append(f"ETA {timedelta(seconds=round(stage.eta_s))}")
    parts += [
        f"step {job.get('done')}/{job.get('total')} loss {job['loss']:.4f}"
        for job in stage.running
        if isinstance(job.get("loss"), int | float)
    ]
    return ", ".join(parts)


def print_report(sessions: sessionmaker[Session], run_id: int, console: Console, status: str, stages: Sequence) -> int:
    for stage in stages:
        for error in stage.errors:
            console.print(f"[red]{stage.kind} failed:[/red] {error}")
    with sessions() as session:
        print(run_report_markdown(session, run_id), flush=True)  # plain: a table must not be re-wrapped
    console.print(f"run {run_id}: {status}")
    return 0 if status == "succeeded" else 1


def report_command(args: argparse.Namespace, settings: Settings) -> int:
    sessions = make_session_factory(make_engine(settings.database_url))
    with sessions() as session:
        if session.get(Run, args.run_id) is None:
            print(f"error: no run {args.run_id} in {masked_url(settings.database_url)}", file=sys.stderr)
            return 2
        if args.format == "json":
            print(json.dumps(run_report_json(session, args.run_id), indent=2))
        else:
            print(run_report_markdown(session, args.run_id))
    return 0


def export_command(args: argparse.Namespace, settings: Settings) -> int:
    from trainers.export import export_run

    out = args.out or settings.artifacts_dir / "runs" / str(args.run_id) / "export"
    sessions = make_session_factory(make_engine(settings.database_url))
    with sessions() as session:
        if session.get(Run, args.run_id) is None:
            print(f"error: no run {args.run_id} in {masked_url(settings.database_url)}", file=sys.stderr)
            return 2
        files = export_run(session, args.run_id, out, fmt=args.format)
    for name, path in files.items():
        print(f"{name}: {path}")
    return 0


DEMO_CONFIG = Path(__file__).resolve().parents[1] / "configs" / "demo.yaml"


def demo_command(args: argparse.Namespace, settings: Settings) -> int:
    try:
        config = load_run_config(args.config or DEMO_CONFIG, data_dir=args.data_dir)
        if args.task:
            config = parse_run_config({**config.model_dump(mode="json"), "task": args.task})
    except RunConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    console = Console()
    started = time.monotonic()
    code, run_id = execute(config, settings, console=console)
    if not run_id:
        return code
    print(f"\ndemo finished in {time.monotonic() - started:.0f}s. Everything is in the database and on disk:")
    for line in demo_hints(settings, run_id):
        print(line)
    return code


def demo_hints(settings: Settings, run_id: int) -> list[str]:
    """Commands to look at the run that work from any directory: absolute paths, only files that exist."""
    w2s = Path(sys.executable).parent / "w2s"
    env = f"W2S_DATABASE_URL={masked_url(settings.database_url)}"
    database = settings.database_url.removeprefix("sqlite:///")
    if database != settings.database_url:
        database = str(Path(database).resolve())
        env = f"W2S_DATABASE_URL=sqlite:///{database}"
    run_dir = (settings.artifacts_dir / "runs" / str(run_id)).resolve()
    reports = [str(run_dir / name) for name in ("report.md", "report.json", "pgr.png") if (run_dir / name).is_file()]
    lines = [f"  report:  {', '.join(reports)}"] if reports else [f"  report:  none yet ({env} {w2s} report {run_id})"]
    if database != settings.database_url:
        lines += [
            f'  SQL:     sqlite3 {database} "SELECT condition, name, round(value, 3) FROM metrics '
            f"WHERE run_id = {run_id} AND split = 'test' ORDER BY condition, name\"",
            f'           sqlite3 {database} "SELECT d.id, t.speaker, t.stance, substr(t.content, 1, 60) '
            f'FROM turns t JOIN debates d ON d.id = t.debate_id WHERE d.run_id = {run_id} LIMIT 6"',
        ]
    lines += [
        f"  API:     {env} {w2s} serve   then   curl localhost:8000/v1/runs/{run_id}/report?format=markdown",
        f"  browser: {env} {w2s} serve   then open   http://localhost:8000/ui/runs/{run_id}",
        f"  again:   {w2s} demo   (in {Path.cwd()}: same config, resumes/reuses the run instead of redoing it)",
    ]
    return lines
