"""Database fixtures: every test that takes `database_url` runs on SQLite and on PostgreSQL."""

import os
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from service.store import make_engine, make_session_factory
from service.store.migrate import upgrade
from tests.support.postgres import EphemeralPostgres, create_database, drop_database


@pytest.fixture(scope="session")
def postgres_server_url() -> Iterator[str]:
    """W2S_TEST_POSTGRES_URL if set, else a throwaway cluster for this test session."""
    url = os.environ.get("W2S_TEST_POSTGRES_URL")
    if url:
        yield url
        return
    server = EphemeralPostgres().start()
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path) -> Iterator[str]:  # noqa: ANN001
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'w2s.db'}"
        return
    url = create_database(request.getfixturevalue("postgres_server_url"))
    try:
        yield url
    finally:
        drop_database(url)


@pytest.fixture
def migrated_url(database_url: str) -> str:
    upgrade(database_url)
    return database_url


@pytest.fixture
def engine(migrated_url: str) -> Iterator[Engine]:
    engine = make_engine(migrated_url)
    yield engine
    engine.dispose()


@pytest.fixture
def sessions(engine: Engine) -> sessionmaker[Session]:
    return make_session_factory(engine)
