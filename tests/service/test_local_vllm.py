"""A real vLLM server on loopback, started and stopped by `service.local_vllm`."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from service import local_vllm
from service.local_vllm import LocalVLLM, VLLMStartError, start_local_vllm

pytestmark = pytest.mark.vllm


def _post(server: LocalVLLM, path: str, body: dict[str, object]) -> dict[str, object]:
    response = httpx.post(f"{server.base_url}{path}", json={"model": server.served_name, **body}, timeout=60.0)
    assert response.status_code == 200, response.text
    return response.json()


def test_models_lists_the_served_name(vllm_server: LocalVLLM) -> None:
    models = httpx.get(f"{vllm_server.base_url}/v1/models", timeout=10.0).json()
    assert "strong" in [model["id"] for model in models["data"]]


def test_chat_completion_returns_text(vllm_server: LocalVLLM) -> None:
    body = {"messages": [{"role": "user", "content": "Is the sky blue?"}], "max_tokens": 8, "seed": 1}
    answer = _post(vllm_server, "/v1/chat/completions", body)
    assert isinstance(answer["choices"][0]["message"]["content"], str)
    assert answer["usage"]["completion_tokens"] >= 1


def test_completion_returns_text(vllm_server: LocalVLLM) -> None:
    answer = _post(vllm_server, "/v1/completions", {"prompt": "Question: is it true?", "max_tokens": 8, "seed": 1})
    assert answer["choices"][0]["text"]


def test_seeded_sampling_is_reproducible(vllm_server: LocalVLLM) -> None:
    body = {"prompt": "Debater A: The answer is", "max_tokens": 16, "temperature": 1.0, "seed": 42}
    first = _post(vllm_server, "/v1/completions", body)["choices"][0]["text"]
    second = _post(vllm_server, "/v1/completions", body)["choices"][0]["text"]
    other = _post(vllm_server, "/v1/completions", {**body, "seed": 43})["choices"][0]["text"]
    assert first == second
    assert other != first


def test_garbage_model_dir_fails_fast_with_log_lines(tmp_path: Path) -> None:
    model_dir = tmp_path / "garbage"
    model_dir.mkdir()
    (model_dir / "config.json").write_text("{this is not json")
    started = time.monotonic()
    with pytest.raises(VLLMStartError, match="exited with code") as caught:
        start_local_vllm(model_dir, log_path=tmp_path / "vllm.log", timeout_s=120.0)
    assert time.monotonic() - started < 120.0
    assert "last log lines" in str(caught.value)
    assert str(model_dir) in str(caught.value)  # the server's own command line / error names the model


def test_missing_model_dir_fails_before_starting(tmp_path: Path) -> None:
    with pytest.raises(VLLMStartError, match="does not exist"):
        start_local_vllm(tmp_path / "nowhere", timeout_s=5.0)


def test_timeout_stops_the_whole_process_group(
    tiny_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_spawn = local_vllm._spawn
    spawned: list[subprocess.Popen[bytes]] = []

    def spy(*args: Any) -> subprocess.Popen[bytes]:
        spawned.append(real_spawn(*args))
        return spawned[-1]

    monkeypatch.setattr(local_vllm, "_spawn", spy)
    monkeypatch.setattr(local_vllm, "WAIT_REPORT_S", 1.0)
    reports: list[tuple[float, str]] = []
    with pytest.raises(VLLMStartError, match="did not become ready within 3s"):
        start_local_vllm(
            tiny_model_dir,
            log_path=tmp_path / "vllm.log",
            timeout_s=3.0,
            on_wait=lambda elapsed, line: reports.append((elapsed, line)),
        )
    assert reports and all(1.0 <= elapsed < 4 for elapsed, _ in reports)  # the caller heard while it waited
    assert spawned[0].poll() is not None
    with pytest.raises(ProcessLookupError):
        os.killpg(spawned[0].pid, 0)


def test_engine_core_shares_the_workers_cpus(vllm_server: LocalVLLM) -> None:
    """vLLM-CPU binds its Worker to a CPU subset; start_local_vllm puts the EngineCore there too."""
    if "not bound to a CPU subset" in vllm_server.pinning:  # a machine where vLLM-CPU binds nothing
        pytest.skip(f"vLLM did not bind its Worker here: {vllm_server.pinning}")
    assert vllm_server.pinning.startswith("EngineCore pinned"), vllm_server.pinning
    comms = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                comms[int(entry.name)] = Path(entry.path, "comm").read_text().strip()
            except OSError:
                continue
    workers = [pid for pid, name in comms.items() if name.startswith("VLLM::Worker")]
    engines = [pid for pid, name in comms.items() if name.startswith("VLLM::EngineCor")]
    assert workers and engines
    worker_cpus = os.sched_getaffinity(workers[0])
    assert worker_cpus != os.sched_getaffinity(0)
    for engine in engines:
        assert os.sched_getaffinity(engine) == worker_cpus
