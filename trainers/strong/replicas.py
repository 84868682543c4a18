"""Adapters on every replica of a vLLM pool, and a record of which replica has which version.

    publish_everywhere(sessions, version.id, ["http://vllm-0:8000", "http://vllm-1:8000"])
    sync_replica(sessions, "http://vllm-1:8000")     # a replica back from a restart: load what it lacks

Both write `replica_adapters` (`service.store.replica_adapters`). A replica that cannot be
reached while a version is published is skipped: the pool (`debate.pool.ReplicaPool`) keeps it
out until it answers, and runs `sync_replica` on it before it takes debates again.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from sqlalchemy.orm import Session, sessionmaker

from debate.pool import resolve_targets
from service.store import ModelVersion
from service.store.replica_adapters import add_loaded, published_versions, replace_loaded
from trainers.strong.publish import RepublishIncomplete, VLLMUnreachable, publish_version, republish_all

log = logging.getLogger(__name__)


def publish_everywhere(
    session_factory: sessionmaker[Session], version_id: int, targets: Sequence[str], *, api_key: str | None = None
) -> ModelVersion:
    """Publish version `version_id` on every replica that answers and record each; raise if none did."""
    published: ModelVersion | None = None
    unreachable: dict[str, str] = {}
    for url in resolve_targets(targets):
        try:
            published = publish_version(session_factory, version_id, url, api_key=api_key)
        except VLLMUnreachable as exc:
            unreachable[url] = str(exc)
            continue
        with session_factory.begin() as session:
            add_loaded(session, url, version_id)
    details = "; ".join(f"{url}: {message}" for url, message in unreachable.items())
    if published is None:
        raise VLLMUnreachable(
            f"no replica of the strong model could be reached to publish version {version_id}: {details}",
            url=", ".join(unreachable),
        )
    if unreachable:
        log.warning(
            "version %s published, except on unreachable replicas (loaded when they return): %s", version_id, details
        )
    return published


def sync_replica(session_factory: sessionmaker[Session], url: str, *, api_key: str | None = None) -> list[str]:
    """Load every published version `url` lacks and record what it now serves; the served names loaded now.

    Adapters the replica refuses are left out of the record (the pool then routes debates naming
    them to other replicas) and `RepublishIncomplete` is raised after recording the rest; errors
    about the server itself propagate before anything is recorded.
    """
    with session_factory.begin() as session:
        versions = published_versions(session)  # read first: a version published later records itself
    try:
        loaded = republish_all(session_factory, url, api_key=api_key)
    except RepublishIncomplete as exc:
        _record(session_factory, url, versions, refused=exc.failures)
        raise
    _record(session_factory, url, versions, refused={})
    return loaded


def _record(
    session_factory: sessionmaker[Session], url: str, versions: dict[str, int], refused: dict[str, str]
) -> None:
    with session_factory.begin() as session:
        replace_loaded(session, url, [version_id for name, version_id in versions.items() if name not in refused])
