from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from service.store import Base, make_engine
from service.store.migrate import downgrade, upgrade

DESIGN_TABLES = {
    "runs",
    "examples",
    "debates",
    "turns",
    "jobs",
    "job_dependencies",
    "models",
    "model_versions",
    "labels",
    "metrics",
    "files",
    "job_events",
    "generations",
    "intents",
    "replica_adapters",
}


def _tables(url: str) -> set[str]:
    engine = make_engine(url)
    try:
        return set(inspect(engine).get_table_names()) - {"alembic_version"}
    finally:
        engine.dispose()


def _drift(url: str) -> list:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata)
    finally:
        engine.dispose()


def test_upgrade_downgrade_upgrade_matches_models(database_url: str) -> None:
    upgrade(database_url)
    assert _tables(database_url) == DESIGN_TABLES
    assert _drift(database_url) == []

    downgrade(database_url, "base")
    assert _tables(database_url) == set()

    upgrade(database_url)
    assert _tables(database_url) == DESIGN_TABLES
    assert _drift(database_url) == []


def test_drift_check_detects_a_model_the_migrations_lack(database_url: str) -> None:
    # Guards the guard: the comparison above must be able to fail.
    upgrade(database_url)
    downgrade(database_url, "base")
    assert any(diff[0] == "add_table" for diff in _drift(database_url))
