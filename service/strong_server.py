"""The strong model's server for a command: the configured one, or a local vLLM started for it."""

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import inspect
from sqlalchemy.engine import make_url

from service.settings import Settings
from service.store import make_engine, make_session_factory


@contextmanager
def strong_model(settings: Settings) -> Iterator[Settings]:
    """Settings whose strong model answers: the configured replicas, or a local vLLM started here."""
    if settings.vllm_targets():
        yield settings
        return
    from service.local_vllm import start_local_vllm
    from trainers.testbed import STRONG, ensure_testbed_model, read_spec

    checkpoint = settings.strong_checkpoint()
    if settings.strong_model_path is None and read_spec(checkpoint) != STRONG:
        print(
            f"pretraining the testbed's strong model into {checkpoint} (once; about 2 minutes on 2 CPU cores)",
            flush=True,
        )
        ensure_testbed_model(checkpoint, STRONG)
    log_path = settings.artifacts_dir / "logs" / "vllm.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    print(f"starting a local vLLM on {checkpoint} (45-90 s on 2 CPU cores; log: {log_path})", flush=True)
    with start_local_vllm(
        checkpoint,
        served_name=settings.strong_model,
        port=settings.vllm_port,
        log_path=log_path,
        enable_lora=True,
        max_model_len=settings.vllm_max_model_len,
        timeout_s=settings.vllm_start_timeout_s,
        on_wait=_report_start_up,
    ) as server:
        print(f"vLLM ready at {server.base_url} serving {settings.strong_model!r}", flush=True)
        _republish_after_start(settings, server.base_url)
        yield settings.model_copy(update={"vllm_base_url": server.base_url})


def _report_start_up(elapsed_s: float, last_log_line: str) -> None:
    print(f"  vLLM starting ({elapsed_s:.0f}s): {last_log_line[-150:] or 'no log output yet'}", flush=True)


def republish_versions(settings: Settings, base_url: str) -> list[str]:
    """Load every published version of this database that the vLLM at `base_url` does not list
    (vLLM forgets runtime-loaded adapters when it restarts) and record that replica's versions;
    the served names loaded now.

    A database that does not exist yet (or has no schema) has nothing to republish; an SQLite
    file is not created by asking.
    """
    from trainers.strong.replicas import sync_replica

    url = make_url(settings.database_url)
    if url.get_backend_name() == "sqlite" and not (url.database and Path(url.database).is_file()):
        return []
    engine = make_engine(settings.database_url)
    try:
        if not inspect(engine).has_table("model_versions"):
            return []
        return sync_replica(make_session_factory(engine), base_url, api_key=settings.vllm_api_key or None)
    finally:
        engine.dispose()


def _republish_after_start(settings: Settings, base_url: str) -> None:
    """A fresh local vLLM: put back the adapters published before; a failure is a warning, not fatal."""
    from trainers.strong.publish import PUBLISH_FAILURES

    try:
        loaded = republish_versions(settings, base_url)
    except PUBLISH_FAILURES as exc:
        print(f"warning: could not republish every finetuned version: {exc}", file=sys.stderr, flush=True)
        return
    if loaded:
        print(f"republished {len(loaded)} finetuned version(s): {', '.join(loaded)}", flush=True)
