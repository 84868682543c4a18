"""The `w2s` command line.

    w2s db upgrade|downgrade|current     migrate the database at W2S_DATABASE_URL
    w2s make-tiny-model DIR [...]        write a tiny random Llama + tokenizer (no downloads)
    w2s strong up                        start a local vLLM on the strong model, print its URL
    w2s strong republish                 reload published finetuned versions after vLLM restarted
    w2s serve [--with-worker]            the REST API (and a local vLLM if none is configured)
    w2s worker --kind debate [...]       claim and run jobs of these kinds (or --kind all)
    w2s run CONFIG [--detach]            an experiment from a YAML config (see service/run_cli.py)
    w2s report RUN / w2s export RUN      its results table / its rows as JSONL or parquet
    w2s demo                             the embedded default, end to end (see README)
"""

import argparse
import os
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path


from debate.pool import resolve_targets
from service.settings import Settings
from service.store import make_engine
from service import run_cli
from service.strong_server import republish_versions, strong_model
from service.store import migrate
from trainers.pipeline.plan import JOB_KINDS
from trainers.strong.launch import Launch


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    # SIGTERM unwinds like Ctrl-C, so a local vLLM (its own process group) is always stopped.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        return args.func(args, Settings())
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="w2s", description="debate-augmented weak-to-strong supervision")
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    db = commands.add_parser("db", help="database migrations").add_subparsers(required=True, metavar="ACTION")
    up = db.add_parser("upgrade", help="migrate to the newest schema (or --revision)")
    up.add_argument("--revision", default="head")
    up.set_defaults(func=_db_upgrade)
    down = db.add_parser("downgrade", help="migrate down to --revision (default: base = empty)")
    down.add_argument("--revision", default="base")
    down.set_defaults(func=_db_downgrade)
    db.add_parser("current", help="print the current revision").set_defaults(func=_db_current)

    tiny = commands.add_parser("make-tiny-model", help="write a tiny random Llama model + tokenizer")
    tiny.add_argument("dir", type=Path)
    tiny.add_argument("--layers", type=int, default=2)
    tiny.add_argument("--hidden", type=int, default=128)
    tiny.add_argument("--heads", type=int, default=2)
    tiny.add_argument("--vocab", type=int, default=2048)
    tiny.add_argument("--seed", type=int, default=0)
    tiny.set_defaults(func=_make_tiny_model)

    strong = commands.add_parser("strong", help="the strong model server").add_subparsers(required=True, metavar="ACTION")
    strong.add_parser("up", help="start a local vLLM (tiny model if none configured) and wait").set_defaults(func=_strong_up)
    strong.add_parser("republish", help="reload published finetuned versions into the vLLM at W2S_VLLM_BASE_URL "
                                        "(after it restarted)").set_defaults(func=_strong_republish)

    serve = commands.add_parser("serve", help="run the REST API")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--with-worker", action="store_true", help="also run a debate worker in this process")
    serve.set_defaults(func=_serve)

    worker = commands.add_parser("worker", help="claim and run jobs from the queue")
    worker.add_argument("--kind", action="append", choices=[*JOB_KINDS, "all"], required=True,
                        help="job kind to serve (repeatable; 'all' = every kind)")
    worker.add_argument("--lease-s", type=float, default=60.0)
    worker.add_argument("--max-in-flight", type=int, default=64, help="debate requests in flight per worker")
    worker.add_argument("--exit-when-idle", action="store_true", help="stop when no job is claimable")
    multi = worker.add_argument_group("strong jobs on several GPUs / machines (torchrun; see README)")
    multi.add_argument("--nproc-per-node", default="auto", metavar="N|auto",
                       help="training processes per strong job on this machine; auto = the visible CUDA GPUs "
                            "(CUDA_VISIBLE_DEVICES), or 1 without CUDA")
    multi.add_argument("--nnodes", type=int, default=1, help="machines that train each strong job together")
    multi.add_argument("--node-rank", type=int, default=0,
                       help="this machine's place: 0 claims jobs, 1.. join node 0's launches")
    multi.add_argument("--master-addr", help="node 0's address, reachable from every node (needed with --nnodes > 1)")
    multi.add_argument("--master-port", type=int, default=29500)
    multi.add_argument("--sharding", choices=["ddp", "fsdp"], default="ddp",
                       help="ddp: every process holds the whole model; fsdp: each holds a slice of weights, "
                            "gradients and optimizer state (for models that do not fit one GPU)")
    worker.set_defaults(func=_worker)

    run_cli.add_commands(commands)
    run_cli.add_demo_command(commands)
    return parser


def _db_upgrade(args: argparse.Namespace, settings: Settings) -> int:
    migrate.upgrade(settings.database_url, args.revision)
    return 0


def _db_downgrade(args: argparse.Namespace, settings: Settings) -> int:
    migrate.downgrade(settings.database_url, args.revision)
    return 0


def _db_current(_args: argparse.Namespace, settings: Settings) -> int:
    migrate.current(settings.database_url)
    return 0


def _make_tiny_model(args: argparse.Namespace, _settings: Settings) -> int:
    from trainers.tiny_model import make_tiny_model

    try:
        path = make_tiny_model(args.dir, layers=args.layers, hidden=args.hidden, heads=args.heads,
                               vocab=args.vocab, seed=args.seed)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"tiny model written to {path}")
    return 0


def _strong_up(_args: argparse.Namespace, settings: Settings) -> int:
    with strong_model(settings) as ready:
        print(f"export W2S_VLLM_BASE_URL={ready.vllm_base_url}   # in other shells; Ctrl-C stops vLLM", flush=True)
        threading.Event().wait()
    return 0


def _strong_republish(_args: argparse.Namespace, settings: Settings) -> int:
    from trainers.strong.publish import PublishError

    if not settings.vllm_targets():
        print("error: set W2S_VLLM_BASE_URL (or W2S_VLLM_BASE_URLS) to the vLLM to reload the adapters into",
              file=sys.stderr)
        return 2
    try:
        replicas = resolve_targets(settings.vllm_targets())
        loaded = [name for url in replicas for name in republish_versions(settings, url)]
    except PublishError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"republished {len(loaded)} version(s){': ' + ', '.join(loaded) if loaded else ' (vLLM had them all)'}")
    return 0


def _serve(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    migrate.upgrade(settings.database_url)
    with strong_model(settings) as ready:
        stop = threading.Event()
        if args.with_worker:
            threading.Thread(target=_make_worker(ready, ["debate"]).run, kwargs={"stop": stop}, daemon=True).start()
        print(f"API on http://{args.host}:{args.port} (docs: /docs)", flush=True)
        # By import string: nothing imports service.api (DESIGN.md); the app reads W2S_* itself.
        os.environ["W2S_VLLM_BASE_URL"] = ready.vllm_base_url
        uvicorn.run("service.api.main:app_from_env", factory=True, host=args.host, port=args.port, log_level="info")
        stop.set()
    return 0


def _make_worker(settings: Settings, kinds: Sequence[str], lease_s: float = 60.0, max_in_flight: int = 64,  # noqa: ANN202
                 launch: Launch = Launch()):
    from trainers.jobs import pipeline_handlers
    from trainers.worker import Worker

    handlers = pipeline_handlers(run_cli.worker_env(settings, launch), max_in_flight=max_in_flight)
    kinds = JOB_KINDS if "all" in kinds else kinds
    return Worker(_sessions(settings), {kind: handlers[kind] for kind in kinds}, lease_s=lease_s)


def _sessions(settings: Settings):  # noqa: ANN202 - sessionmaker
    from service.store import make_session_factory

    return make_session_factory(make_engine(settings.database_url))


def _launch(args: argparse.Namespace) -> Launch:
    """The worker's torchrun settings; ValueError with a message for the user."""
    if args.nproc_per_node == "auto":
        import torch

        nproc = max(1, torch.cuda.device_count())
    elif args.nproc_per_node.isdigit():
        nproc = int(args.nproc_per_node)
    else:
        raise ValueError(f"--nproc-per-node {args.nproc_per_node!r}: pass a count or 'auto'")
    if args.nnodes > 1 and not args.master_addr:
        raise ValueError("--nnodes > 1 needs --master-addr: node 0's address, the same on every node")
    if args.node_rank > 0 and args.kind != ["strong"]:
        raise ValueError("--node-rank > 0 joins node 0's strong-job launches: serve --kind strong only")
    return Launch(nproc_per_node=nproc, nnodes=args.nnodes, node_rank=args.node_rank,
                  master_addr=args.master_addr or "127.0.0.1", master_port=args.master_port, sharding=args.sharding)


def _worker(args: argparse.Namespace, settings: Settings) -> int:
    if not settings.vllm_targets() and {"debate", "strong", "all"} & set(args.kind):
        print("error: debate and strong jobs talk to the strong model: set W2S_VLLM_BASE_URL (or _URLS) "
              "(e.g. from `w2s strong up`)", file=sys.stderr)
        return 2
    try:
        launch = _launch(args)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    stop = threading.Event()
    # SIGTERM (systemd, Kubernetes): finish the job in hand, claim no more.
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    if launch.node_rank > 0:
        from trainers.jobs.strong_job import follow_strong_jobs

        print(f"node {launch.node_rank} of {launch.nnodes}: joining strong jobs launched by "
              f"{launch.master_addr}:{launch.master_port} ({launch.nproc_per_node} process(es) here)", flush=True)
        joined = follow_strong_jobs(_sessions(settings), run_cli.worker_env(settings, launch), stop)
        print(f"node {launch.node_rank} stopping after {joined} launch(es)", flush=True)
        return 0
    worker = _make_worker(settings, args.kind, args.lease_s, args.max_in_flight, launch)
    processes = f"; strong jobs on {launch.nproc_per_node * launch.nnodes} processes" if launch.distributed else ""
    print(f"worker {worker.owner} serving {', '.join(worker.kinds)} from {settings.database_url}{processes}", flush=True)
    done = worker.run(stop=stop, exit_when_idle=args.exit_when_idle)
    print(f"worker {worker.owner} stopping after {done} job(s)", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
