"""The `replica_adapters` record (which version is loaded on which vLLM replica), on SQLite and PostgreSQL."""

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from service.store import Model, ModelVersion, ReplicaAdapter, utcnow
from service.store.replica_adapters import add_loaded, loaded_by_replica, published_versions, replace_loaded

A, B = "http://10.0.0.7:8000", "http://10.0.0.9:8000"


def _versions(session: Session) -> list[int]:
    model = Model(name="strong", role="strong", base="tiny", condition="w2s", seed=0)
    session.add(model)
    session.flush()
    rows = [
        ModelVersion(
            model_id=model.id,
            version=n,
            served_name=f"strong-v{n}",
            adapter_path=f"/a/{n}",
            published_at=utcnow() if n < 3 else None,
        )
        for n in (1, 2, 3)
    ]
    session.add_all(rows)
    session.flush()
    return [row.id for row in rows]


def test_loaded_versions_are_recorded_once_per_replica_and_replaced_after_a_restart(
    sessions: sessionmaker[Session],
) -> None:
    with sessions.begin() as session:
        first, second, _unpublished = _versions(session)
        assert published_versions(session) == {"strong-v1": first, "strong-v2": second}
        add_loaded(session, A, first)
        add_loaded(session, A, first)  # a retried publish: still one row
        add_loaded(session, A, second)
        add_loaded(session, B, first)
    with sessions.begin() as session:
        assert loaded_by_replica(session) == {A: ["strong-v1", "strong-v2"], B: ["strong-v1"]}
        replace_loaded(session, A, [second])  # A restarted and was given only v2
    with sessions.begin() as session:
        assert loaded_by_replica(session) == {A: ["strong-v2"], B: ["strong-v1"]}
        assert session.scalar(select(func.count()).select_from(ReplicaAdapter)) == 2
