"""Run `fit` on several devices: `torchrun` ranks, launched and watched by the worker.

    launch = Launch(nproc_per_node=8)                      # one machine, 8 GPUs
    outcome = run_distributed(spec, launch, work_dir, on_step=report)

The worker writes the spec to `work_dir/spec.json` and starts

    python -m torch.distributed.run --nproc_per_node N ... -m trainers.strong.launch work_dir

Every rank trains (each takes its slice of every batch; DDP, or FSDP with `sharding="fsdp"`,
where each rank also holds only a slice of the weights); rank 0 also appends each step's
`StepInfo` to `work_dir/progress.jsonl` (the worker turns those lines into job progress and
events), and at the end writes `outcome.json`. Stopping the job (cancel, lost lease, worker
shutdown) kills the rank processes; their last checkpoint stays for the next attempt.

Several machines (`nnodes > 1`): the worker that claimed the job is node 0 and hosts the
rendezvous at `master_addr:master_port`; on every other machine a follower (`w2s worker --kind
strong --node-rank K ...`) sees the launch (`launch_tag`) and `join`s it with its own
`node_rank`. `work_dir` and the checkpoint dir must then be on a filesystem all machines share
(the artifacts dir on NFS, say).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from trainers.atomic_files import write_text_atomic
from trainers.errors import LaunchFailed

if TYPE_CHECKING:  # torch-heavy; imported where used, so `w2s --help` and the API's planning stay light
    from trainers.strong.fit import FitOutcome, FitSpec
    from trainers.training import StepInfo

SHARDINGS = ("ddp", "fsdp")
SPEC, LAUNCH, PROGRESS, OUTCOME, LOG = "spec.json", "launch.json", "progress.jsonl", "outcome.json", "torchrun.log"


@dataclass(frozen=True)
class Launch:
    """How many training processes a strong job gets, and (across machines) where they meet."""

    nproc_per_node: int = 1  # processes (GPUs) on this machine
    nnodes: int = 1  # machines taking part in each job
    node_rank: int = 0  # this machine's place; 0 = the one that claims jobs
    master_addr: str = "127.0.0.1"  # node 0's address, reachable from every node (nnodes > 1)
    master_port: int = 29500
    sharding: str = "ddp"  # "ddp": a whole model per process; "fsdp": a slice (models too big for one GPU)

    def __post_init__(self) -> None:
        if self.sharding not in SHARDINGS:
            raise ValueError(f"sharding={self.sharding!r}: choose one of {SHARDINGS}.")
        if self.nproc_per_node < 1 or self.nnodes < 1:
            raise ValueError(f"nproc_per_node={self.nproc_per_node}, nnodes={self.nnodes}: pass counts >= 1.")
        if not 0 <= self.node_rank < self.nnodes:
            raise ValueError(f"node_rank={self.node_rank} must be in [0, nnodes={self.nnodes}).")

    @property
    def distributed(self) -> bool:
        return self.nproc_per_node * self.nnodes > 1


def torchrun_command(launch: Launch, work_dir: Path, tag: str = "") -> list[str]:
    """The command every node runs; one machine gets `--standalone` (a free port of its own).

    Across machines the launch's `tag` is the rendezvous id: a node still waiting to join an
    earlier launch at the same address cannot take part in this one (it would run another
    job's spec beside it).
    """
    where = (
        ["--standalone"]
        if launch.nnodes == 1
        else [
            "--nnodes",
            str(launch.nnodes),
            "--node_rank",
            str(launch.node_rank),
            "--master_addr",
            launch.master_addr,
            "--master_port",
            str(launch.master_port),
            "--rdzv_id",
            re.sub(r"[^A-Za-z0-9]+", "-", tag) or "none",
        ]
    )
    return [
        sys.executable,
        "-m",
        "torch.distributed.run",
        *where,
        "--nproc_per_node",
        str(launch.nproc_per_node),
        "-m",
        "trainers.strong.launch",
        str(work_dir),
    ]


def run_distributed(
    spec: FitSpec,
    launch: Launch,
    work_dir: Path,
    *,
    on_step: Callable[[StepInfo], None],
    check: Callable[[], None] = lambda: None,
    tag: str = "",
    poll_s: float = 0.5,
) -> FitOutcome:
    """Write the spec, start the ranks, feed their steps to `on_step` until they finish.

    `check` runs every `poll_s` too (before the first step arrives, loading may take minutes). If
    it or `on_step` raises (the job was cancelled, the worker is stopping), the ranks are killed
    and the error propagates. A rank failure raises `LaunchFailed`. `tag` (job and attempt) goes
    into `launch.json`, which tells the other nodes' followers which launch this is.
    """
    from trainers.strong.fit import FitOutcome

    work_dir.mkdir(parents=True, exist_ok=True)
    for name in (PROGRESS, OUTCOME):
        (work_dir / name).unlink(missing_ok=True)
    write_text_atomic(work_dir / SPEC, spec.to_json())
    write_text_atomic(work_dir / LAUNCH, json.dumps({**asdict(launch), "tag": tag}))
    process = _start(launch, work_dir, tag)
    lines = _ProgressLines(work_dir / PROGRESS)
    try:
        while True:
            finished = process.poll() is not None
            check()
            for info in lines.new():
                on_step(info)
            if finished:
                break
            time.sleep(poll_s)
    except BaseException:
        _kill(process)
        raise
    if process.returncode != 0:
        raise LaunchFailed(
            f"torchrun exited with code {process.returncode}; last lines of {work_dir / LOG}:\n{_tail(work_dir / LOG)}"
        )
    return FitOutcome(**json.loads((work_dir / OUTCOME).read_text()))


def launch_tag(launch: Launch, work_dir: Path) -> str | None:
    """The tag of node 0's latest launch in `work_dir` if it is for the machines `launch` describes."""
    try:
        leader = json.loads((work_dir / LAUNCH).read_text())
    except (FileNotFoundError, ValueError):
        return None
    same = ("nnodes", "master_addr", "master_port")
    return leader.get("tag") if all(leader.get(key) == getattr(launch, key) for key in same) else None


def join(
    launch: Launch, work_dir: Path, tag: str, *, wanted: Callable[[], bool] = lambda: True, poll_s: float = 1.0
) -> int | None:
    """On a machine with node_rank > 0: take part in launch `tag` (spec in `work_dir`); its exit code.

    `wanted` runs every `poll_s`: once it says no (node 0 died and its job's lease ran out, or the
    job was launched again), this node's ranks are killed and None is returned, so a node waiting
    for a rendezvous that will never come is free for the next launch.
    """
    process = _start(launch, work_dir, tag)
    try:
        while process.poll() is None:
            if not wanted():
                _kill(process)
                return None
            time.sleep(poll_s)
        return process.returncode
    except BaseException:
        _kill(process)
        raise


def _start(launch: Launch, work_dir: Path, tag: str) -> subprocess.Popen[bytes]:
    """torchrun in a session of its own (so a kill reaches every rank), output to the launch log."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(_repo_root()), os.environ.get("PYTHONPATH")]))}
    with (work_dir / LOG).open("ab") as log:
        return subprocess.Popen(
            torchrun_command(launch, work_dir, tag),
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )


def _repo_root() -> Path:
    return Path(__file__).resolve().parents[2]


def _kill(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the ranks' process group, SIGKILL it if they linger."""
    if process.poll() is not None:
        return
    for sig, wait_s in ((signal.SIGTERM, 30.0), (signal.SIGKILL, 10.0)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=wait_s)
            return
        except subprocess.TimeoutExpired:
            continue


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return "(no log)"


class _ProgressLines:
    """Complete lines appended to progress.jsonl since the last call, as StepInfo."""

    def __init__(self, path: Path) -> None:
        self.path, self.offset = path, 0

    def new(self) -> list[StepInfo]:
        from trainers.training import StepInfo

        try:
            with self.path.open("rb") as stream:
                stream.seek(self.offset)
                chunk = stream.read()
        except FileNotFoundError:
            return []
        complete = chunk[: chunk.rfind(b"\n") + 1]
        self.offset += len(complete)
        return [StepInfo(**json.loads(line)) for line in complete.splitlines() if line]


def _rank_main(work_dir: Path) -> None:
    """One rank: train; rank 0 logs every step to progress.jsonl and writes outcome.json."""
    import torch

    from trainers.strong.fit import FitSpec, fit
    from trainers.training import init_distributed

    ranks = init_distributed()
    spec = FitSpec.from_json((work_dir / SPEC).read_text())
    progress = (work_dir / PROGRESS).open("a") if ranks.is_main else None

    def on_step(info: StepInfo) -> None:
        assert progress is not None  # on_step runs on rank 0 only
        progress.write(json.dumps(asdict(info)) + "\n")
        progress.flush()

    try:
        outcome = fit(spec, on_step if ranks.is_main else None)
        if ranks.is_main:
            write_text_atomic(work_dir / OUTCOME, json.dumps(asdict(outcome)))
    finally:
        if progress is not None:
            progress.close()
        if torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()


if __name__ == "__main__":
    _rank_main(Path(sys.argv[1]))
