"""Which model version is loaded on which vLLM replica (`replica_adapters`), as publish and sync record it.

add_loaded(session, "http://10.0.0.7:8000", version_id)
loaded_by_replica(session)   # {"http://10.0.0.7:8000": ["run1-strong-v1"], ...}
"""

from collections.abc import Iterable

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from service.store.models import ModelVersion, ReplicaAdapter


def published_versions(session: Session) -> dict[str, int]:
    """Served name -> id of every published version with an adapter, oldest first."""
    rows = session.execute(
        select(ModelVersion.served_name, ModelVersion.id)
        .where(ModelVersion.published_at.is_not(None), ModelVersion.adapter_path.is_not(None))
        .order_by(ModelVersion.id)
    ).all()
    return {name: version_id for name, version_id in rows}


def add_loaded(session: Session, replica_url: str, version_id: int) -> None:
    """Record that `replica_url` serves `version_id` (again: no new row)."""
    known = session.scalar(
        select(ReplicaAdapter.id).where(
            ReplicaAdapter.replica_url == replica_url, ReplicaAdapter.version_id == version_id
        )
    )
    if known is None:
        session.add(ReplicaAdapter(replica_url=replica_url, version_id=version_id))
        session.flush()


def replace_loaded(session: Session, replica_url: str, version_ids: Iterable[int]) -> None:
    """Make `replica_url`'s rows exactly `version_ids` (a replica that restarted has lost the rest)."""
    wanted = list(version_ids)
    session.execute(
        delete(ReplicaAdapter).where(
            ReplicaAdapter.replica_url == replica_url, ReplicaAdapter.version_id.not_in(wanted)
        )
    )
    for version_id in wanted:
        add_loaded(session, replica_url, version_id)


def loaded_by_replica(session: Session) -> dict[str, list[str]]:
    """Replica URL -> served names recorded as loaded there, oldest version first."""
    rows = session.execute(
        select(ReplicaAdapter.replica_url, ModelVersion.served_name)
        .join(ModelVersion, ModelVersion.id == ReplicaAdapter.version_id)
        .order_by(ReplicaAdapter.replica_url, ModelVersion.id)
    ).all()
    loaded: dict[str, list[str]] = {}
    for url, name in rows:
        loaded.setdefault(url, []).append(name)
    return loaded
