"""Publish model versions' LoRA adapters to vLLM: the database side (`service.store.model_versions`)
then the server side (`debate.admin.VLLMAdmin`), never inside one transaction.

    with sessions.begin() as session:
        version = register_version(session, model, adapter_dir)
    publish_version(sessions, version.id, "http://127.0.0.1:8000")   # now served as version.served_name
    ...
    republish_all(sessions, "http://127.0.0.1:8000")                  # after vLLM restarted

Errors (`PUBLISH_FAILURES` catches them all): the store's `VersionError`s (`VersionNotFound`,
`NoAdapter`), the admin client's `StrongModelError`s (`VLLMUnreachable` — worth a retry —,
`LoRAUpdatingDisabled`, `AdapterRejected`), and this package's `PublishError`s (`RepublishIncomplete`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from debate.admin import DEFAULT_TIMEOUT_S, VLLMAdmin
from debate.errors import AdapterRejected, LoRAUpdatingDisabled, StrongModelError, VLLMUnreachable
from service.store.errors import VersionError
from service.store.model_versions import mark_published, published_adapters, servable_version
from service.store.models import ModelVersion
from trainers.errors import PublishError, RepublishIncomplete

# What publishing raises on purpose, from the three packages it spans.
PUBLISH_FAILURES: tuple[type[Exception], ...] = (StrongModelError, VersionError, PublishError)


def publish_version(
    session_factory: sessionmaker[Session], version_id: int, base_url: str, *, api_key: str | None = None
) -> ModelVersion:
    """Load version `version_id`'s adapter into vLLM, then record `published_at` (first publish only).

    The HTTP calls happen between two short transactions, never inside one: a slow vLLM
    must not hold database locks. `session_factory` should keep attributes after commit
    (`service.store.make_session_factory` does), since the returned row is detached.
    """
    with session_factory.begin() as session:
        served_name, adapter_path = servable_version(session, version_id)
    publish_adapter(base_url, served_name, Path(adapter_path), api_key=api_key)
    with session_factory.begin() as session:
        return mark_published(session, version_id)


def republish_all(session_factory: sessionmaker[Session], base_url: str, *, api_key: str | None = None) -> list[str]:
    """Reload every published version's adapter that vLLM does not list (it forgets them on restart).

    Returns the served names loaded now, oldest version first. An adapter the server
    refuses (`AdapterRejected`, e.g. its directory was deleted) does not stop the others;
    `RepublishIncomplete` then names each one. Any other error (server down, no runtime
    LoRA loading, wrong API key) is about the server and stops at once.
    """
    with session_factory.begin() as session:
        adapters = published_adapters(session)
    with VLLMAdmin(base_url, api_key=api_key) as admin:
        listed = admin.served_roots()
        loaded, failures = _load_missing(admin, [(name, path) for name, path in adapters if name not in listed])
    if failures:
        details = "; ".join(f"{name}: {message}" for name, message in failures.items())
        raise RepublishIncomplete(
            f"reloaded {len(loaded)} adapter(s) {loaded} but {len(failures)} failed: {details}",
            loaded=loaded,
            failures=failures,
        )
    return loaded


def publish_adapter(
    base_url: str,
    served_name: str,
    adapter_path: Path,
    *,
    api_key: str | None = None,
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> None:
    """Load the adapter in `adapter_path` into vLLM as `served_name` and check it answers (see VLLMAdmin)."""
    with VLLMAdmin(base_url, api_key=api_key, timeout_s=timeout_s) as admin:
        admin.load_adapter(served_name, str(Path(adapter_path).absolute()))


def _load_missing(admin: VLLMAdmin, missing: Sequence[tuple[str, str]]) -> tuple[list[str], dict[str, str]]:
    """Load each (served name, path); collect per-adapter failures, stop on server-wide ones."""
    loaded: list[str] = []
    failures: dict[str, str] = {}
    for name, path in missing:
        try:
            admin.load_adapter(name, path)
        except AdapterRejected as exc:  # about this adapter; other errors are about the server and stop all
            failures[name] = str(exc)
            continue
        loaded.append(name)
    return loaded, failures


__all__ = [
    "PUBLISH_FAILURES",
    "AdapterRejected",
    "LoRAUpdatingDisabled",
    "PublishError",
    "RepublishIncomplete",
    "VLLMUnreachable",
    "publish_adapter",
    "publish_version",
    "republish_all",
]
