"""`w2s run`, `w2s report`, `w2s export` and `w2s demo`: experiments from the command line.

    w2s run configs/demo.yaml             submit (or resume) the run, execute it with in-process
                                          workers, show progress per stage, print the results table
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
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from sqlalchemy.orm import Session, sessionmaker

from service.settings import Settings
from service.strong_server import strong_model
from service.store import Run, make_engine, make_session_factory, migrate
from service.store.runs import refresh_run, run_stages
from trainers.jobs import WorkerEnv
from trainers.pipeline import JOB_KINDS, RunConfig, RunConfigError, load_run_config, parse_run_config, submit_run
from trainers.strong.launch import Launch

# In-process workers: debates (network-bound), training (CPU/GPU-bound) and the light steps
# each get a thread, so debates of one condition overlap training of another.
WORKER_GROUPS = (("debate",), ("weak", "strong"), ("ingest", "ensemble", "report"))
FINAL = ("succeeded", "failed", "cancelled")


def add_commands(commands: argparse._SubParsersAction) -> None:
    run = commands.add_parser("run", help="run an experiment from a YAML config")
    run.add_argument("config", type=Path)
    run.add_argument("--detach", action="store_true", help="submit and return; external workers run it")
    run.add_argument("--no-workers", action="store_true", help="follow progress only; external workers run it")
    run.set_defaults(func=run_command)

    report = commands.add_parser("report", help="print a run's results table")
    report.add_argument("run_id", type=int)
    report.add_argument("--format", choices=("markdown", "json"), default="markdown")
    report.set_defaults(func=report_command)

    export = commands.add_parser("export", help="write a run's examples, debates, turns, labels, metrics to files")
    export.add_argument("run_id", type=int)
    export.add_argument("--format", choices=("jsonl", "parquet"), default="jsonl")
    export.add_argument("--out", type=Path, help="directory (default: ARTIFACTS/runs/RUN/export)")
    export.set_defaults(func=export_command)


def run_command(args: argparse.Namespace, settings: Settings) -> int:
    try:
        config = load_run_config(args.config)
    except RunConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return execute(config, settings, detach=args.detach, workers=not args.no_workers)[0]


def execute(config: RunConfig, settings: Settings, *, detach: bool = False, workers: bool = True,
            console: Console | None = None) -> tuple[int, int]:
    """Submit (or resume) the run; unless detached, run it to the end and print its report.

    Returns (exit code, run id).
    """
    console = console or Console()
    migrate.upgrade(settings.database_url)
    sessions = make_session_factory(make_engine(settings.database_url))
    with sessions.begin() as session:
        run, created = submit_run(session, config, strong_model=config.strong.model or settings.strong_model)
        run_id = run.id
    console.print(f"run {run_id} {'created' if created else 'resumed (same config)'} in {settings.database_url}")
    if detach:
        console.print(f"follow it: w2s report {run_id}   or GET /v1/runs/{run_id}")
        return 0, run_id
    if not workers or _all_done(sessions, run_id):  # a finished run: just its table, no vLLM start-up
        return follow(sessions, run_id, console), run_id
    with strong_model(settings) as ready, in_process_workers(ready, sessions):
        return follow(sessions, run_id, console), run_id


def _all_done(sessions: sessionmaker[Session], run_id: int) -> bool:
    with sessions() as session:
        return all(stage.jobs.keys() == {"succeeded"} for stage in run_stages(session, run_id, JOB_KINDS))


@contextmanager
def in_process_workers(settings: Settings, sessions: sessionmaker[Session]) -> Iterator[None]:
    """Worker threads for every job kind; on exit (Ctrl-C included) they stop and hand back their jobs."""
    from transformers.utils import logging as hf_logging

    from trainers.jobs import pipeline_handlers
    from trainers.worker import Worker

    # Model-loading reports and save progress bars would bury the stage progress.
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    handlers = pipeline_handlers(worker_env(settings))
    stop = threading.Event()
    threads = [
        threading.Thread(target=Worker(sessions, {kind: handlers[kind] for kind in kinds}, lease_s=60.0).run,
                         kwargs={"stop": stop}, daemon=True, name=f"worker-{'+'.join(kinds)}")
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


def worker_env(settings: Settings, launch: Launch = Launch()) -> WorkerEnv:
    return WorkerEnv(artifacts_dir=settings.artifacts_dir.resolve(), strong_checkpoint=settings.strong_checkpoint().resolve(),
                     strong_is_built_in=settings.strong_model_path is None,
                     vllm_base_urls=tuple(settings.vllm_targets()), vllm_pool_affinity=settings.vllm_pool_affinity,
                     vllm_health_interval_s=settings.vllm_health_interval_s,
                     vllm_api_key=settings.vllm_api_key or None, launch=launch)


def follow(sessions: sessionmaker[Session], run_id: int, console: Console, poll_s: float = 0.5) -> int:
    """Progress bars per stage until the run ends; then the results table. Exit code 0 iff it succeeded."""
    columns = (TextColumn("{task.description:<9}"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[note]}"),
               TimeElapsedColumn())
    with Progress(*columns, console=console, transient=False) as progress:
        bars: dict[str, int] = {}
        while True:
            with sessions.begin() as session:
                status = refresh_run(session, session.get(Run, run_id)).status
                stages = run_stages(session, run_id, JOB_KINDS)
            for stage in stages:
                if stage.kind not in bars:
                    bars[stage.kind] = progress.add_task(stage.kind, total=stage.total, note="")
                note = ", ".join(f"{n} {s}" for s, n in sorted(stage.jobs.items()) if s != "succeeded")
                progress.update(bars[stage.kind], completed=stage.done, total=stage.total, note=note)
            if status in FINAL:
                break
            time.sleep(poll_s)
    return print_report(sessions, run_id, console, status, stages)


def print_report(sessions: sessionmaker[Session], run_id: int, console: Console, status: str, stages: Sequence) -> int:
    from trainers.report import build_report, report_markdown

    for stage in stages:
        for error in stage.errors:
            console.print(f"[red]{stage.kind} failed:[/red] {error}")
    with sessions() as session:
        print(report_markdown(build_report(session, run_id)), flush=True)  # plain: a table must not be re-wrapped
    console.print(f"run {run_id}: {status}")
    return 0 if status == "succeeded" else 1


def report_command(args: argparse.Namespace, settings: Settings) -> int:
    from trainers.report import build_report, report_json, report_markdown

    sessions = make_session_factory(make_engine(settings.database_url))
    with sessions() as session:
        if session.get(Run, args.run_id) is None:
            print(f"error: no run {args.run_id} in {settings.database_url}", file=sys.stderr)
            return 2
        report = build_report(session, args.run_id)
    print(json.dumps(report_json(report), indent=2) if args.format == "json" else report_markdown(report))
    return 0


def export_command(args: argparse.Namespace, settings: Settings) -> int:
    from trainers.export import export_run

    out = args.out or settings.artifacts_dir / "runs" / str(args.run_id) / "export"
    sessions = make_session_factory(make_engine(settings.database_url))
    with sessions() as session:
        if session.get(Run, args.run_id) is None:
            print(f"error: no run {args.run_id} in {settings.database_url}", file=sys.stderr)
            return 2
        files = export_run(session, args.run_id, out, fmt=args.format)
    for name, path in files.items():
        print(f"{name}: {path}")
    return 0


DEMO_CONFIG = Path(__file__).resolve().parents[1] / "configs" / "demo.yaml"


def add_demo_command(commands: argparse._SubParsersAction) -> None:
    demo = commands.add_parser("demo", help="embedded default: the whole pipeline on SQLite + a local vLLM + tiny models")
    demo.add_argument("--config", type=Path, default=DEMO_CONFIG, help="run config (default: configs/demo.yaml)")
    demo.add_argument("--task", help="override the config's task (e.g. sciq)")
    demo.add_argument("--data-dir", help="override the config's data_dir (e.g. ../shared/data/sciq)")
    demo.set_defaults(func=demo_command)


def demo_command(args: argparse.Namespace, settings: Settings) -> int:
    try:
        config = load_run_config(args.config)
        overrides = {key: value for key, value in (("task", args.task), ("data_dir", args.data_dir)) if value}
        if overrides:
            config = parse_run_config({**config.model_dump(mode="json"), **overrides})
    except RunConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    console = Console()
    started = time.monotonic()
    code, run_id = execute(config, settings, console=console)
    print(f"\ndemo finished in {time.monotonic() - started:.0f}s. Everything is in the database and on disk:")
    database = settings.database_url.removeprefix("sqlite:///")
    print(f"  report:  {settings.artifacts_dir / 'runs' / str(run_id)}/report.md, pgr.png")
    print(f"  SQL:     sqlite3 {database} \"SELECT condition, name, round(value, 3) FROM metrics "
          f"WHERE run_id = {run_id} AND split = 'test' ORDER BY condition, name\"")
    print(f"           sqlite3 {database} \"SELECT d.id, t.speaker, t.stance, substr(t.content, 1, 60) FROM turns t "
          f"JOIN debates d ON d.id = t.debate_id WHERE d.run_id = {run_id} LIMIT 6\"")
    print(f"  API:     .venv/bin/w2s serve   then   curl localhost:8000/v1/runs/{run_id}/report?format=markdown")
    print(f"  browser: .venv/bin/w2s serve   then open   http://localhost:8000/ui/runs/{run_id}")
    print("  again:   .venv/bin/w2s demo   (same config: resumes/reuses the run instead of redoing it)")
    return code
