"""The `w2s` command line.

    w2s db upgrade|downgrade|current     migrate the database at W2S_DATABASE_URL
    w2s make-tiny-model DIR [...]        write a tiny random Llama + tokenizer (no downloads)
    w2s demo                             the embedded default, end to end (see README)
"""

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import httpx
from sqlalchemy import inspect

from service.settings import Settings
from service.store import make_engine
from service.store import migrate


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
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

    demo = commands.add_parser("demo", help="embedded default: local vLLM on a tiny model + SQLite, end to end")
    demo.set_defaults(func=_demo)
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


def _demo(_args: argparse.Namespace, settings: Settings) -> int:
    """For now the smoke stage of the demo: migrate the DB, bring up the strong model, report health."""
    from service.local_vllm import start_local_vllm
    from trainers.tiny_model import ensure_tiny_model

    print(f"[1/3] migrating {settings.database_url}", flush=True)
    migrate.upgrade(settings.database_url)
    database = _database_health(settings.database_url)

    if settings.vllm_base_url:
        print(f"[2/3] using the strong model at {settings.vllm_base_url}", flush=True)
        health = _strong_model_health(settings.vllm_base_url, settings.strong_model)
    else:
        checkpoint = settings.strong_checkpoint()
        print(f"[2/3] starting a local vLLM on {checkpoint} (45-90 s on 2 CPU cores)", flush=True)
        ensure_tiny_model(checkpoint)
        log_path = settings.artifacts_dir / "logs" / "vllm.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with start_local_vllm(checkpoint, served_name=settings.strong_model, log_path=log_path,
                              max_model_len=settings.vllm_max_model_len,
                              timeout_s=settings.vllm_start_timeout_s) as server:
            health = _strong_model_health(server.base_url, settings.strong_model)
    print("[3/3] health", flush=True)
    print(json.dumps({"database": database, "strong_model": health}, indent=2))
    return 0 if health["ready"] else 1


def _database_health(url: str) -> dict:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            tables = sorted(set(inspect(conn).get_table_names()) - {"alembic_version"})
            revision = conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar()
    finally:
        engine.dispose()
    return {"url": url, "revision": revision, "tables": tables}


def _strong_model_health(base_url: str, model: str) -> dict:
    """One real 1-token completion: /health alone can answer 200 while the engine is broken."""
    started = time.perf_counter()
    try:
        response = httpx.post(f"{base_url}/v1/completions", timeout=60,
                              json={"model": model, "prompt": "Hello", "max_tokens": 1, "temperature": 0})
        response.raise_for_status()
        text = response.json()["choices"][0]["text"]
    except (httpx.HTTPError, KeyError, ValueError) as exc:
        return {"url": base_url, "model": model, "ready": False, "error": f"{type(exc).__name__}: {exc}"}
    latency = round(time.perf_counter() - started, 3)
    return {"url": base_url, "model": model, "ready": True, "one_token_latency_s": latency, "sample": text}


if __name__ == "__main__":
    raise SystemExit(main())
