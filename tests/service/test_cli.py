"""The `w2s` console script, run as a user would: a subprocess with W2S_* in the environment."""

import argparse
import itertools
import os
import resource
import subprocess
import sys
import time
from collections.abc import Iterator
from importlib.metadata import version
from pathlib import Path

import pytest
import yaml
from sqlalchemy import inspect
from sqlalchemy.engine import make_url

from service.cli import _parser
from service.settings import Settings
from service.store import make_engine
from tests.service.test_migrations import DESIGN_TABLES
from tests.support.checks import kill_group
from tests.support.postgres import create_database, drop_database

W2S = str(Path(sys.executable).parent / "w2s")
ROOT = Path(__file__).resolve().parents[2]


def _w2s(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([W2S, *args], cwd=cwd, env={**os.environ, **env}, capture_output=True, text=True, timeout=300)


def test_db_upgrade_creates_every_table_and_downgrade_drops_them(database_url: str, tmp_path: Path) -> None:
    assert _w2s("db", "upgrade", cwd=tmp_path, W2S_DATABASE_URL=database_url).returncode == 0
    engine = make_engine(database_url)
    assert set(inspect(engine).get_table_names()) == DESIGN_TABLES | {"alembic_version"}
    engine.dispose()
    current = _w2s("db", "current", cwd=tmp_path, W2S_DATABASE_URL=database_url)
    assert "(head)" in current.stdout
    refused = _w2s("db", "downgrade", cwd=tmp_path, W2S_DATABASE_URL=database_url)
    assert refused.returncode == 2 and "--yes" in refused.stderr and "Traceback" not in refused.stderr
    engine = make_engine(database_url)
    assert "runs" in inspect(engine).get_table_names()
    engine.dispose()
    assert _w2s("db", "downgrade", "--yes", cwd=tmp_path, W2S_DATABASE_URL=database_url).returncode == 0
    engine = make_engine(database_url)
    assert set(inspect(engine).get_table_names()) == {"alembic_version"}
    engine.dispose()


def test_help_is_fast_lists_the_environment_and_the_version(tmp_path: Path) -> None:
    """Under 1 s on an idle machine (about 0.2 s of CPU); measured as the child's CPU time, which
    other work on a shared machine does not inflate (loading torch alone costs seconds)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    result = _w2s("--help", cwd=tmp_path)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu_s = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    assert result.returncode == 0
    assert cpu_s < 0.8, f"w2s --help took {cpu_s:.2f} s of CPU"
    assert all(f"W2S_{name.upper()}" in result.stdout for name in Settings.model_fields)
    assert _w2s("--version", cwd=tmp_path).stdout.strip() == f"w2s {version('debate-w2s')}"


def test_importing_the_cli_loads_no_torch_sqlalchemy_or_pipeline() -> None:
    code = (
        "import sys, service.cli; heavy = {'torch', 'transformers', 'sqlalchemy', 'alembic', 'trainers.pipeline'}; "
        "print(sorted(heavy & set(sys.modules)))"
    )
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert loaded.stdout.strip() == "[]"


def _every_action(parser: argparse.ArgumentParser, path: str = "w2s") -> Iterator[tuple[str, argparse.Action]]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _every_action(sub, f"{path} {name}")
        else:
            yield path, action


def test_every_option_and_argument_has_help() -> None:
    missing = [f"{path} {action.dest}" for path, action in _every_action(_parser()) if not action.help]
    assert missing == []


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (("db", "current"), {"W2S_DATABASE_URL": "nope"}, "W2S_DATABASE_URL: Could not parse"),
        (("db", "upgrade", "--revision", "nope"), {}, "Can't locate revision identified by 'nope'"),
        (
            ("db", "current"),
            {"W2S_VLLM_MAX_MODEL_LEN": "many"},
            "W2S_VLLM_MAX_MODEL_LEN: Input should be a valid integer",
        ),
    ],
    ids=["bad_url", "bad_revision", "bad_setting"],
)
def test_user_errors_are_one_line_without_traceback(
    tmp_path: Path, args: tuple[str, ...], env: dict, message: str
) -> None:
    result = _w2s(*args, cwd=tmp_path, **{"W2S_DATABASE_URL": f"sqlite:///{tmp_path / 'w2s.db'}", **env})
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [result.stderr.strip()] and message in result.stderr, result.stderr


def test_default_database_is_a_sqlite_file_in_the_working_directory(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "W2S_DATABASE_URL"}
    subprocess.run([W2S, "db", "upgrade"], cwd=tmp_path, env=env, check=True, capture_output=True)
    assert (tmp_path / "w2s.db").stat().st_size > 0


def test_make_tiny_model_rejects_head_dim_16_with_a_clear_error(tmp_path: Path) -> None:
    result = _w2s("make-tiny-model", str(tmp_path / "m"), "--hidden", "64", "--heads", "4", cwd=tmp_path)
    assert result.returncode == 2
    assert "head_dim" in result.stderr and "32" in result.stderr
    assert not (tmp_path / "m").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--nnodes", "2"), "--nnodes > 1 needs --master-addr"),
        (("--nproc-per-node", "many"), "--nproc-per-node 'many': pass a count or 'auto'"),
        (("--nproc-per-node", "0"), "nproc_per_node=0"),
        (("--nnodes", "2", "--node-rank", "2", "--master-addr", "h"), "node_rank=2 must be in [0, nnodes=2)"),
        (("--kind", "debate", "--nnodes", "2", "--node-rank", "1", "--master-addr", "h"), "serve --kind strong only"),
        (("--sharding", "zero3"), "--sharding: invalid choice: 'zero3'"),
        (("--processes", "2"), "--processes > 1 is not for strong jobs"),
        (("--kind", "weak", "--processes", "0"), "--processes 0: pass 1 or more"),
    ],
    ids=[
        "no_master",
        "nproc_word",
        "nproc_zero",
        "rank_range",
        "follower_kind",
        "sharding_word",
        "processes_strong",
        "processes_zero",
    ],
)
def test_worker_refuses_inconsistent_launch_settings(tmp_path: Path, args: tuple[str, ...], message: str) -> None:
    result = _w2s(
        "worker",
        "--kind",
        "strong",
        *args,
        cwd=tmp_path,
        W2S_VLLM_BASE_URL="http://127.0.0.1:9",
        W2S_DATABASE_URL=f"sqlite:///{tmp_path / 'w2s.db'}",
    )
    assert result.returncode == 2 and message in result.stderr, result.stderr
    assert "Traceback" not in result.stderr


def test_worker_processes_each_serve_and_all_stop_on_sigterm(tmp_path: Path) -> None:
    import signal

    env = {**os.environ, "W2S_DATABASE_URL": f"sqlite:///{tmp_path / 'w2s.db'}"}
    subprocess.run([W2S, "db", "upgrade"], cwd=tmp_path, env=env, check=True, capture_output=True)
    workers = subprocess.Popen(
        [W2S, "worker", "--kind", "ingest", "--kind", "weak", "--processes", "2"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        serving = [workers.stdout.readline() for _ in range(2)]  # each child says so once it polls the queue
        workers.send_signal(signal.SIGTERM)
        output, _ = workers.communicate(timeout=60)
    finally:
        kill_group(workers)
    owners = {line.split()[1] for line in serving if "serving ingest, weak" in line}
    assert len(owners) == 2, serving  # two workers, two owner names (host:pid)
    assert workers.returncode == 0 and "2 worker processes stopped with exit codes [0, 0]" in output, output


@pytest.mark.postgres
def test_printed_database_urls_hide_the_password(postgres_server_url: str, tmp_path: Path) -> None:
    url = make_url(create_database(postgres_server_url)).set(password="S3cretPW")  # trust auth: any password works
    secret = url.render_as_string(hide_password=False)
    try:
        assert _w2s("db", "upgrade", cwd=tmp_path, W2S_DATABASE_URL=secret).returncode == 0
        worker = _w2s("worker", "--kind", "ingest", "--exit-when-idle", cwd=tmp_path, W2S_DATABASE_URL=secret)
        report = _w2s("report", "999", cwd=tmp_path, W2S_DATABASE_URL=secret)
    finally:
        drop_database(secret)
    assert worker.returncode == 0 and report.returncode == 2, worker.stderr + report.stderr
    for output in (worker.stdout + worker.stderr, report.stdout + report.stderr):
        assert "S3cretPW" not in output and ":***@" in output, output


@pytest.mark.vllm
def test_strong_up_listens_on_the_port_asked_for(tiny_model_dir: Path, tmp_path: Path) -> None:
    import signal
    import time

    import httpx

    from service.local_vllm import find_free_port

    port = find_free_port()
    env = {**os.environ, "W2S_STRONG_MODEL_PATH": str(tiny_model_dir), "W2S_ARTIFACTS_DIR": str(tmp_path)}
    env.pop("W2S_VLLM_BASE_URL", None)
    server = subprocess.Popen(
        [W2S, "strong", "up", "--port", str(port)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 300
        for line in server.stdout:
            if line.startswith("export W2S_VLLM_BASE_URL="):
                break
            assert time.monotonic() < deadline, "w2s strong up did not print the URL"
        assert line.split()[1] == f"W2S_VLLM_BASE_URL=http://127.0.0.1:{port}"
        assert httpx.get(f"http://127.0.0.1:{port}/v1/models", timeout=30).status_code == 200
    finally:
        server.send_signal(signal.SIGTERM)
        server.communicate(timeout=120)


@pytest.mark.vllm
@pytest.mark.slow
@pytest.mark.usefixtures("testbed_artifacts")  # the demo's default weak model, pretrained once per session
def test_demo_runs_the_pipeline_and_leaves_table_chart_and_rows(
    vllm_server,
    tiny_model_dir: Path,  # noqa: ANN001
    tmp_path: Path,
) -> None:
    """`w2s demo` (with the shipped demo config cut to toy sizes) as the README's main command runs it."""
    config = yaml.safe_load((ROOT / "configs" / "demo.yaml").read_text())
    config["splits"] = {"weak_train": 10, "strong_train": 10, "test": 10}
    config["debate"].update(turns=2, max_tokens=12)
    (tmp_path / "demo.yaml").write_text(yaml.safe_dump(config))
    result = _w2s(
        "demo",
        "--config",
        "demo.yaml",
        cwd=tmp_path,
        W2S_VLLM_BASE_URL=vllm_server.base_url,
        W2S_STRONG_MODEL=vllm_server.served_name,
        W2S_STRONG_MODEL_PATH=str(tiny_model_dir),
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    lines = result.stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("| Condition"))
    table = list(itertools.takewhile(lambda line: line.startswith("|"), lines[start:]))  # the first table
    assert "PGR" in table[0]
    assert {line.split("|")[1].strip() for line in table[2:]} == set(config["conditions"])
    assert (tmp_path / "artifacts" / "runs" / "1" / "pgr.png").stat().st_size > 1000
    with make_engine(f"sqlite:///{tmp_path / 'w2s.db'}").connect() as conn:
        conditions = {row[0] for row in conn.exec_driver_sql("SELECT DISTINCT condition FROM metrics WHERE run_id = 1")}
        turns = conn.exec_driver_sql("SELECT count(*) FROM turns JOIN debates ON debates.id = turns.debate_id").scalar()
    assert {f"s0/weak:{c}" for c in config["conditions"]} | {"s0/ceiling"} <= conditions
    assert turns > 0
    assert f"sqlite3 {tmp_path / 'w2s.db'}" in result.stdout


@pytest.mark.vllm
def test_serve_answers_requests_and_stops_on_sigterm(vllm_server, tmp_path: Path) -> None:  # noqa: ANN001
    import signal
    import time

    import httpx

    from service.local_vllm import find_free_port

    port = find_free_port()
    env = {**os.environ, "W2S_VLLM_BASE_URL": vllm_server.base_url, "W2S_DATABASE_URL": f"sqlite:///{tmp_path}/s.db"}
    server = subprocess.Popen(
        [W2S, "serve", "--port", str(port), "--with-worker"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=10).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert server.poll() is None and time.monotonic() < deadline, "w2s serve did not come up"
            time.sleep(0.5)
        batch = httpx.post(
            f"{base}/v1/debate-batches",
            json={"examples": [{"question": "Is ice cold?", "candidate_answer": "Yes"}], "sampling": {"max_tokens": 8}},
        ).json()
        while httpx.get(f"{base}/v1/debate-batches/{batch['id']}").json()["status"] != "succeeded":
            assert time.monotonic() < deadline + 60, "the in-process worker did not run the batch"
            time.sleep(0.5)
    finally:
        server.send_signal(signal.SIGTERM)
        output, _ = server.communicate(timeout=60)
    assert server.returncode == 0, output


def test_run_checks_its_data_before_starting_vllm(tmp_path: Path) -> None:
    config = {
        "task": "sciq",
        "data_dir": "../data/sciq",
        "splits": {"weak_train": 4, "strong_train": 4, "test": 4},
        "conditions": ["no_debate"],
    }
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "sciq.yaml").write_text(yaml.safe_dump(config))
    started = time.monotonic()
    result = _w2s(
        "run",
        "configs/sciq.yaml",
        cwd=tmp_path,
        W2S_VLLM_BASE_URL="",
        W2S_DATABASE_URL=f"sqlite:///{tmp_path / 'w2s.db'}",
        W2S_ARTIFACTS_DIR=str(tmp_path / "artifacts"),
    )
    assert result.returncode == 2, result.stdout + result.stderr
    assert f"no *.jsonl files in {tmp_path / 'data' / 'sciq'}" in result.stderr  # resolved from the config's dir
    assert "vLLM" not in result.stdout + result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "w2s.db").exists()  # nothing written either
    assert time.monotonic() - started < 30


def test_serve_without_a_strong_model_answers_reads_at_once(tmp_path: Path) -> None:
    import signal

    import httpx

    from service.local_vllm import find_free_port

    port = find_free_port()
    env = {**os.environ, "W2S_VLLM_BASE_URL": "", "W2S_DATABASE_URL": f"sqlite:///{tmp_path}/s.db"}
    server = subprocess.Popen(
        [W2S, "serve", "--port", str(port)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                runs = httpx.get(f"http://127.0.0.1:{port}/v1/runs", timeout=5)
                break
            except httpx.TransportError:
                assert server.poll() is None and time.monotonic() < deadline, "w2s serve did not come up"
                time.sleep(0.2)
        assert runs.status_code == 200
        debate = httpx.post(f"http://127.0.0.1:{port}/v1/debates", json={"question": "q?", "candidate_answer": "a"})
        assert debate.status_code == 503
    finally:
        server.send_signal(signal.SIGTERM)
        output, _ = server.communicate(timeout=60)
    assert "read-only" in output and "starting a local vLLM" not in output
