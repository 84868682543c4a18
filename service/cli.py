"""The `w2s` command line.

w2s db upgrade|downgrade|current     migrate the database at W2S_DATABASE_URL
w2s make-tiny-model DIR [...]        write a tiny random Llama + tokenizer (no downloads)
w2s strong up                        start a local vLLM on the strong model, print its URL
w2s strong republish                 reload published finetuned versions after vLLM restarted
w2s serve [--start-vllm]             the REST API (read-only without a strong model)
w2s worker --kind debate [...]       claim and run jobs of these kinds (or --kind all)
w2s worker --kind weak --processes 4 four such workers on this machine (weak members train concurrently)
w2s run CONFIG [--detach]            an experiment from a YAML config (see service/run_cli.py)
w2s report RUN / w2s export RUN      its results table / its rows as JSONL or parquet
w2s demo                             the embedded default, end to end (see README)
"""

from __future__ import annotations

import argparse
import importlib
import os
import re
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from functools import cache
from importlib.metadata import version
from pathlib import Path
from typing import TYPE_CHECKING

from service.settings import Settings

if TYPE_CHECKING:
    from trainers.strong.launch import Launch
    from trainers.worker import Worker

# Only the standard library and the settings at import time: `w2s --help` must answer in well
# under a second, so torch, transformers, SQLAlchemy and Alembic load inside the commands.

Command = Callable[[argparse.Namespace, Settings], int]


class UserError(Exception):
    """Something the user can fix; printed as one line, exit code 2."""


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # `worker --processes N` repeats it in its children
    # SIGTERM unwinds like Ctrl-C, so a local vLLM (its own process group) is always stopped.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        return args.func(args, _settings())
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        message = _user_error(exc)
        if message is None:
            raise
        print(f"error: {message}", file=sys.stderr)
        return 2


def _settings() -> Settings:
    from pydantic import ValidationError

    try:
        return Settings()
    except ValidationError as exc:
        first = exc.errors()[0]
        raise UserError(f"W2S_{str(first['loc'][0]).upper()}: {first['msg']}") from exc


def _user_error(exc: Exception) -> str | None:
    """The one line to print for an error the user caused (bad setting, revision, URL), else None."""
    from alembic.util import CommandError
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError, OperationalError

    if isinstance(exc, UserError | CommandError):
        return str(exc)
    if isinstance(exc, ArgumentError | NoSuchModuleError):
        return f"W2S_DATABASE_URL: {exc} (e.g. sqlite:///w2s.db or postgresql+psycopg://user:pass@host/db)"
    if isinstance(exc, OperationalError):
        return f"cannot reach the database at W2S_DATABASE_URL: {str(exc.orig).strip().splitlines()[0]}"
    return None


def _lazy(module: str, function: str) -> Command:
    """A command implemented in `module`, imported only when that command runs."""

    def command(args: argparse.Namespace, settings: Settings) -> int:
        return getattr(importlib.import_module(module), function)(args, settings)

    return command


class _JobKinds(Sequence[str]):
    """The job kinds, read from the pipeline only when `--kind` is parsed or `worker --help` is shown."""

    @staticmethod
    @cache
    def _kinds() -> tuple[str, ...]:
        from trainers.jobs.payloads import JOB_KINDS

        return (*JOB_KINDS, "all")

    def __getitem__(self, index):  # noqa: ANN001, ANN204 - Sequence protocol
        return self._kinds()[index]

    def __len__(self) -> int:
        return len(self._kinds())

    def __iter__(self) -> Iterator[str]:
        return iter(self._kinds())


def _environment_help() -> str:
    lines = [
        f"  W2S_{name.upper():<24} {_first_sentence(field.description)}"
        for name, field in Settings.model_fields.items()
    ]
    return "environment (or a .env file in the working directory):\n" + "\n".join(lines)


def _first_sentence(text: str) -> str:
    return re.split(r"\.\s+(?=[A-Z])", text)[0].rstrip(".")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="w2s",
        description="debate-augmented weak-to-strong supervision",
        epilog=_environment_help(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {version('debate-w2s')}")
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    db = commands.add_parser("db", help="database migrations").add_subparsers(required=True, metavar="ACTION")
    up = db.add_parser("upgrade", help="migrate to the newest schema (or --revision)")
    up.add_argument("--revision", default="head", help="Alembic revision to reach (default: head)")
    up.set_defaults(func=_db_upgrade)
    down = db.add_parser("downgrade", help="migrate down to --revision (default: base = drop every table)")
    down.add_argument("--revision", default="base", help="Alembic revision to go down to (default: base)")
    down.add_argument("--yes", action="store_true", help="do not ask before dropping every table (revision base)")
    down.set_defaults(func=_db_downgrade)
    db.add_parser("current", help="print the current revision").set_defaults(func=_db_current)

    tiny = commands.add_parser("make-tiny-model", help="write a tiny random Llama model + tokenizer")
    tiny.add_argument("dir", type=Path, help="directory to write the model and tokenizer into")
    tiny.add_argument("--layers", type=int, default=2, help="decoder layers (default: 2)")
    tiny.add_argument("--hidden", type=int, default=128, help="hidden size (default: 128)")
    tiny.add_argument("--heads", type=int, default=2, help="attention heads; hidden/heads must be >= 32 (default: 2)")
    tiny.add_argument("--vocab", type=int, default=2048, help="tokenizer vocabulary size (default: 2048)")
    tiny.add_argument("--seed", type=int, default=0, help="random seed of weights and tokenizer (default: 0)")
    tiny.set_defaults(func=_make_tiny_model)

    strong = commands.add_parser("strong", help="the strong model server")
    strong = strong.add_subparsers(required=True, metavar="ACTION")
    strong_up = strong.add_parser(
        "up", help="start a local vLLM (the testbed's strong model if none configured) and wait"
    )
    strong_up.add_argument(
        "--port",
        type=int,
        help="listen on this port (default: W2S_VLLM_PORT, else a free one), "
        "so workers' W2S_VLLM_BASE_URL stays valid across restarts",
    )
    strong_up.set_defaults(func=_strong_up)
    strong.add_parser(
        "republish", help="reload published finetuned versions into the vLLM at W2S_VLLM_BASE_URL (after it restarted)"
    ).set_defaults(func=_strong_republish)

    serve = commands.add_parser("serve", help="run the REST API")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8000, help="port to listen on (default: 8000)")
    serve.add_argument("--with-worker", action="store_true", help="also run a debate worker in this process")
    serve.add_argument(
        "--start-vllm",
        action="store_true",
        help="start a local vLLM when W2S_VLLM_BASE_URL is empty; without it, runs, reports and "
        "debates are served read-only and new debates answer 503",
    )
    serve.set_defaults(func=_serve)

    worker = commands.add_parser("worker", help="claim and run jobs from the queue")
    worker.add_argument(
        "--kind",
        action="append",
        choices=_JobKinds(),
        required=True,
        metavar="KIND",
        help="job kind to serve: %(choices)s (repeatable; 'all' = every kind)",
    )
    worker.add_argument(
        "--lease-s", type=float, default=60.0, help="seconds a claimed job stays ours without a heartbeat (default: 60)"
    )
    worker.add_argument("--max-in-flight", type=int, default=64, help="debate requests in flight per worker")
    worker.add_argument("--exit-when-idle", action="store_true", help="stop when no job is claimable")
    worker.add_argument("--run", type=int, metavar="RUN", help="claim only this run's jobs (default: any)")
    worker.add_argument(
        "--processes",
        type=int,
        default=1,
        metavar="N",
        help="run N workers on this machine, each its own process claiming one job at a time, so k weak "
        "members of a small model train concurrently on one GPU; not for strong jobs (default: 1)",
    )
    multi = worker.add_argument_group("strong jobs on several GPUs / machines (torchrun; see README)")
    multi.add_argument(
        "--nproc-per-node",
        default="auto",
        metavar="N|auto",
        help="training processes per strong job on this machine; auto = the visible CUDA GPUs "
        "(CUDA_VISIBLE_DEVICES), or 1 without CUDA",
    )
    multi.add_argument("--nnodes", type=int, default=1, help="machines that train each strong job together")
    multi.add_argument(
        "--node-rank", type=int, default=0, help="this machine's place: 0 claims jobs, 1.. join node 0's launches"
    )
    multi.add_argument("--master-addr", help="node 0's address, reachable from every node (needed with --nnodes > 1)")
    multi.add_argument("--master-port", type=int, default=29500, help="node 0's rendezvous port (default: 29500)")
    multi.add_argument(
        "--sharding",
        choices=["ddp", "fsdp"],
        default="ddp",
        help="ddp: every process holds the whole model; fsdp: each holds a slice of weights, "
        "gradients and optimizer state (for models that do not fit one GPU)",
    )
    worker.set_defaults(func=_worker)

    _add_run_commands(commands)
    return parser


def _add_run_commands(commands: argparse._SubParsersAction) -> None:
    run = commands.add_parser("run", help="run an experiment from a YAML config")
    run.add_argument("config", type=Path, help="run config (YAML; relative data_dir resolves from its directory)")
    run.add_argument("--detach", action="store_true", help="submit and return; external workers run it")
    run.add_argument("--no-workers", action="store_true", help="follow progress only; external workers run it")
    run.add_argument("--data-dir", help="directory of the task's JSONL files (overrides the config's data_dir)")
    run.set_defaults(func=_lazy("service.run_cli", "run_command"))

    report = commands.add_parser("report", help="print a run's results table")
    report.add_argument("run_id", type=int, help="the run's id (printed by `w2s run`)")
    report.add_argument("--format", choices=("markdown", "json"), default="markdown", help="output format")
    report.set_defaults(func=_lazy("service.run_cli", "report_command"))

    export = commands.add_parser("export", help="write a run's examples, debates, turns, labels, metrics to files")
    export.add_argument("run_id", type=int, help="the run's id")
    export.add_argument("--format", choices=("jsonl", "parquet"), default="jsonl", help="file format")
    export.add_argument("--out", type=Path, help="directory (default: ARTIFACTS/runs/RUN/export)")
    export.set_defaults(func=_lazy("service.run_cli", "export_command"))

    demo = commands.add_parser(
        "demo", help="the embedded default: the whole pipeline on SQLite, a local vLLM and the testbed's tiny models"
    )
    demo.add_argument("--config", type=Path, help="run config (default: the packaged configs/demo.yaml)")
    demo.add_argument("--task", help="override the config's task (e.g. sciq)")
    demo.add_argument("--data-dir", help="directory of the task's JSONL files (e.g. data/sciq; see docs/DATA.md)")
    demo.set_defaults(func=_lazy("service.run_cli", "demo_command"))


def _db_upgrade(args: argparse.Namespace, settings: Settings) -> int:
    from service.store import migrate

    migrate.upgrade(settings.database_url, args.revision)
    return 0


def _db_downgrade(args: argparse.Namespace, settings: Settings) -> int:
    from service.store import migrate

    if args.revision == "base" and not args.yes and not _confirm(f"drop every table of {settings.database_url}?"):
        raise UserError("not confirmed: `w2s db downgrade` to base drops every table; pass --yes to do it anyway")
    migrate.downgrade(settings.database_url, args.revision)
    return 0


def _confirm(question: str) -> bool:
    """Ask on a terminal; anywhere else (scripts, CI) the answer is no."""
    if not sys.stdin.isatty():
        return False
    return input(f"{question} [y/N] ").strip().lower() in {"y", "yes"}


def _db_current(_args: argparse.Namespace, settings: Settings) -> int:
    from service.store import migrate

    migrate.current(settings.database_url)
    return 0


def _make_tiny_model(args: argparse.Namespace, _settings: Settings) -> int:
    from trainers.tiny_model import make_tiny_model

    try:
        path = make_tiny_model(
            args.dir, layers=args.layers, hidden=args.hidden, heads=args.heads, vocab=args.vocab, seed=args.seed
        )
    except ValueError as exc:
        raise UserError(str(exc)) from exc
    print(f"tiny model written to {path}")
    return 0


def _strong_up(args: argparse.Namespace, settings: Settings) -> int:
    from service.strong_server import strong_model

    if args.port is not None:
        settings = settings.model_copy(update={"vllm_port": args.port})
    with strong_model(settings) as ready:
        print(f"export W2S_VLLM_BASE_URL={ready.vllm_base_url}   # in other shells; Ctrl-C stops vLLM", flush=True)
        threading.Event().wait()
    return 0


def _strong_republish(_args: argparse.Namespace, settings: Settings) -> int:
    from debate.pool import resolve_targets
    from service.strong_server import republish_versions
    from trainers.strong.publish import PUBLISH_FAILURES

    if not settings.vllm_targets():
        raise UserError("set W2S_VLLM_BASE_URL (or W2S_VLLM_BASE_URLS) to the vLLM to reload the adapters into")
    try:
        replicas = resolve_targets(settings.vllm_targets())
        loaded = [name for url in replicas for name in republish_versions(settings, url)]
    except PUBLISH_FAILURES as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"republished {len(loaded)} version(s){': ' + ', '.join(loaded) if loaded else ' (vLLM had them all)'}")
    return 0


def _serve(args: argparse.Namespace, settings: Settings) -> int:
    from contextlib import nullcontext

    import uvicorn

    from service.store import migrate
    from service.strong_server import strong_model

    migrate.upgrade(settings.database_url)
    if args.with_worker and not (settings.vllm_base_url or args.start_vllm):
        raise UserError("--with-worker runs debates: set W2S_VLLM_BASE_URL or pass --start-vllm")
    needs_vllm = settings.vllm_base_url or args.start_vllm
    with strong_model(settings) if needs_vllm else nullcontext(settings) as ready:
        stop = threading.Event()
        if args.with_worker:
            threading.Thread(target=_make_worker(ready, ["debate"]).run, kwargs={"stop": stop}, daemon=True).start()
        if not ready.vllm_base_url:
            print(
                "no strong model (W2S_VLLM_BASE_URL is empty): serving stored runs, reports and debates "
                "read-only; new debates answer 503 (pass --start-vllm to start one)",
                flush=True,
            )
        print(f"API on http://{args.host}:{args.port} (docs: /docs)", flush=True)
        # By import string: nothing imports service.api (DESIGN.md); the app reads W2S_* itself.
        os.environ["W2S_VLLM_BASE_URL"] = ready.vllm_base_url
        uvicorn.run("service.api.main:app_from_env", factory=True, host=args.host, port=args.port, log_level="info")
        stop.set()
    return 0


def _make_worker(
    settings: Settings,
    kinds: Sequence[str],
    lease_s: float = 60.0,
    max_in_flight: int = 64,
    launch: Launch | None = None,
    run_id: int | None = None,
) -> Worker:
    from service.run_cli import worker_env
    from trainers.jobs import pipeline_handlers
    from trainers.jobs.payloads import JOB_KINDS
    from trainers.strong.launch import Launch
    from trainers.tracking import make_tracker
    from trainers.worker import Worker

    handlers = pipeline_handlers(worker_env(settings, launch or Launch()), max_in_flight=max_in_flight)
    kinds = JOB_KINDS if "all" in kinds else kinds
    return Worker(
        _sessions(settings),
        {kind: handlers[kind] for kind in kinds},
        lease_s=lease_s,
        run_id=run_id,
        tracker=make_tracker(settings.tracking, settings.tracking_path()),
    )


def _sessions(settings: Settings):  # noqa: ANN202 - sessionmaker
    from service.store import make_engine, make_session_factory

    return make_session_factory(make_engine(settings.database_url))


def _launch(args: argparse.Namespace) -> Launch:
    """The worker's torchrun settings; UserError with a message for the user."""
    from trainers.strong.launch import Launch

    if args.nproc_per_node == "auto":
        import torch

        nproc = max(1, torch.cuda.device_count())
    elif args.nproc_per_node.isdigit():
        nproc = int(args.nproc_per_node)
    else:
        raise UserError(f"--nproc-per-node {args.nproc_per_node!r}: pass a count or 'auto'")
    if args.nnodes > 1 and not args.master_addr:
        raise UserError("--nnodes > 1 needs --master-addr: node 0's address, the same on every node")
    if args.node_rank > 0 and args.kind != ["strong"]:
        raise UserError("--node-rank > 0 joins node 0's strong-job launches: serve --kind strong only")
    try:
        return Launch(
            nproc_per_node=nproc,
            nnodes=args.nnodes,
            node_rank=args.node_rank,
            master_addr=args.master_addr or "127.0.0.1",
            master_port=args.master_port,
            sharding=args.sharding,
        )
    except ValueError as exc:
        raise UserError(str(exc)) from exc


def _worker(args: argparse.Namespace, settings: Settings) -> int:
    from service.run_cli import worker_env

    if not settings.vllm_targets() and {"debate", "refine_labels", "gen_refine", "strong", "all"} & set(args.kind):
        raise UserError(
            "debate, refinement and strong jobs talk to the strong model: set W2S_VLLM_BASE_URL (or "
            "W2S_VLLM_BASE_URLS), e.g. from `w2s strong up`"
        )
    launch = _launch(args)
    if args.processes != 1:
        return _worker_processes(args)
    stop = threading.Event()
    # SIGTERM (systemd, Kubernetes): finish the job in hand, claim no more.
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    if launch.node_rank > 0:
        from trainers.jobs.strong_job import follow_strong_jobs

        print(
            f"node {launch.node_rank} of {launch.nnodes}: joining strong jobs launched by "
            f"{launch.master_addr}:{launch.master_port} ({launch.nproc_per_node} process(es) here)",
            flush=True,
        )
        joined = follow_strong_jobs(_sessions(settings), worker_env(settings, launch), stop)
        print(f"node {launch.node_rank} stopping after {joined} launch(es)", flush=True)
        return 0
    worker = _make_worker(settings, args.kind, args.lease_s, args.max_in_flight, launch, run_id=args.run)
    processes = f"; strong jobs on {launch.nproc_per_node * launch.nnodes} processes" if launch.distributed else ""
    from service.store.db import masked_url

    only = f" (run {args.run} only)" if args.run is not None else ""
    say_line(
        f"worker {worker.owner} serving {', '.join(worker.kinds)}{only} from {masked_url(settings.database_url)}"
        f"{processes}"
    )
    done = worker.run(stop=stop, exit_when_idle=args.exit_when_idle)
    say_line(f"worker {worker.owner} stopping after {done} job(s)")
    return 0


def _worker_processes(args: argparse.Namespace) -> int:
    """`worker --processes N`: N children, each this very command with `--processes 1`.

    Each child is a worker of its own (its own owner name, CUDA context, RNG and leases), so every job
    keeps its seed, checkpoints, cancellation and resume exactly as with one worker. SIGTERM is passed
    on (each child finishes or hands back its job); Ctrl-C reaches the children from the terminal.
    """
    if args.processes < 1:
        raise UserError(f"--processes {args.processes}: pass 1 or more")
    if {"strong", "all"} & set(args.kind):
        raise UserError(
            "--processes > 1 is not for strong jobs: each trains on every GPU of the machine; "
            "serve them from a worker of their own"
        )
    import subprocess

    command = [sys.executable, "-m", "service.cli", *args.argv, "--processes", "1"]  # the last one counts
    env = _child_environment(args.processes)
    children = [subprocess.Popen(command, env=env) for _ in range(args.processes)]
    signal.signal(signal.SIGTERM, lambda *_: [child.send_signal(signal.SIGTERM) for child in children])
    try:
        codes = [child.wait() for child in children]
    except KeyboardInterrupt:
        for child in children:  # they had the Ctrl-C too: let them finish handing back their jobs
            child.wait()
        raise
    say_line(f"{args.processes} worker processes stopped with exit codes {codes}")
    return 0 if not any(codes) else 1


def say_line(line: str) -> None:
    """Print one line in one write: the workers of `--processes N` share stdout, and an unbuffered stdout
    (PYTHONUNBUFFERED, as in containers) gets `print`'s text and newline as two writes, which interleave."""
    sys.stdout.write(f"{line}\n")
    sys.stdout.flush()


def _child_environment(processes: int) -> dict[str, str]:
    """The children share the CPU cores instead of each starting a thread per core (set OMP_NUM_THREADS to
    choose otherwise)."""
    threads = os.environ.get("OMP_NUM_THREADS") or str(max(1, (os.cpu_count() or 1) // processes))
    return {**os.environ, "OMP_NUM_THREADS": threads}


if __name__ == "__main__":
    raise SystemExit(main())
