"""A throwaway PostgreSQL cluster on loopback, for tests and benchmarks.

Used when W2S_TEST_POSTGRES_URL is unset. Needs the Debian `postgresql` package (initdb,
pg_ctl); as root the server runs as the `postgres` user, since initdb refuses root.
"""

import glob
import os
import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path

import psycopg
from sqlalchemy.engine import make_url

from service.local_vllm import find_free_port


def _bin_dir() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    if initdb:
        return Path(initdb).parent
    raise RuntimeError(
        "PostgreSQL server binaries not found: install the Debian package `postgresql` "
        "(apt-get install -y postgresql) or set W2S_TEST_POSTGRES_URL to an existing server"
    )


class EphemeralPostgres:
    """initdb + pg_ctl start in a temp dir; `stop()` removes everything."""

    def __init__(self, *, durable: bool = False) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="w2s-pg-"))
        self.port = find_free_port()
        self.durable = durable
        self._as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str) -> None:
        subprocess.run([*self._as_user, *args], check=True, capture_output=True, text=True)

    def start(self) -> "EphemeralPostgres":
        bins = _bin_dir()
        data = self.root / "data"
        if self._as_user:
            shutil.chown(self.root, "postgres", "postgres")
        self._run(str(bins / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8")
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c max_connections=200"
        if not self.durable:  # tests: no need to survive a power cut
            options += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        self._run(str(bins / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(self.root / "log"), "-w", "start")
        return self

    def stop(self) -> None:
        data = self.root / "data"
        if data.exists():
            subprocess.run(
                [*self._as_user, str(_bin_dir() / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
                capture_output=True,
            )
        shutil.rmtree(self.root, ignore_errors=True)


def create_database(server_url: str, prefix: str = "w2s_test") -> str:
    """A new empty database on the server of `server_url`; returns its SQLAlchemy URL."""
    url = make_url(server_url)
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(_libpq_dsn(url), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return url.set(database=name).render_as_string(hide_password=False)


def drop_database(database_url: str) -> None:
    url = make_url(database_url)
    with psycopg.connect(_libpq_dsn(url.set(database="postgres")), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{url.database}" WITH (FORCE)')


def _libpq_dsn(url) -> str:  # noqa: ANN001 (sqlalchemy URL)
    return url.set(drivername="postgresql").render_as_string(hide_password=False)
