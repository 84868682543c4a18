"""The `w2s` console script, run as a user would: a subprocess with W2S_* in the environment."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import inspect

from service.store import make_engine
from tests.service.test_migrations import DESIGN_TABLES

W2S = str(Path(sys.executable).parent / "w2s")


def _w2s(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([W2S, *args], cwd=cwd, env={**os.environ, **env}, capture_output=True, text=True,
                          timeout=300)


def test_db_upgrade_creates_every_table_and_downgrade_drops_them(database_url: str, tmp_path: Path) -> None:
    assert _w2s("db", "upgrade", cwd=tmp_path, W2S_DATABASE_URL=database_url).returncode == 0
    engine = make_engine(database_url)
    assert set(inspect(engine).get_table_names()) == DESIGN_TABLES | {"alembic_version"}
    engine.dispose()
    current = _w2s("db", "current", cwd=tmp_path, W2S_DATABASE_URL=database_url)
    assert "0001" in current.stdout
    assert _w2s("db", "downgrade", cwd=tmp_path, W2S_DATABASE_URL=database_url).returncode == 0
    engine = make_engine(database_url)
    assert set(inspect(engine).get_table_names()) == {"alembic_version"}
    engine.dispose()


def test_default_database_is_a_sqlite_file_in_the_working_directory(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "W2S_DATABASE_URL"}
    subprocess.run([W2S, "db", "upgrade"], cwd=tmp_path, env=env, check=True, capture_output=True)
    assert (tmp_path / "w2s.db").stat().st_size > 0


def test_make_tiny_model_rejects_head_dim_16_with_a_clear_error(tmp_path: Path) -> None:
    result = _w2s("make-tiny-model", str(tmp_path / "m"), "--hidden", "64", "--heads", "4", cwd=tmp_path)
    assert result.returncode == 2
    assert "head_dim" in result.stderr and "32" in result.stderr
    assert not (tmp_path / "m").exists()


@pytest.mark.vllm
def test_demo_reports_database_and_strong_model_health(vllm_server, tmp_path: Path) -> None:  # noqa: ANN001
    result = _w2s("demo", cwd=tmp_path, W2S_VLLM_BASE_URL=vllm_server.base_url,
                  W2S_STRONG_MODEL=vllm_server.served_name)
    assert result.returncode == 0, result.stderr
    health = json.loads(result.stdout[result.stdout.index("{"):])
    assert set(health["database"]["tables"]) == DESIGN_TABLES
    assert health["strong_model"]["ready"] is True
    assert health["strong_model"]["url"] == vllm_server.base_url
