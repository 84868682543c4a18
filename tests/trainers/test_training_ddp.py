"""`train_classifier` under `torchrun --nproc_per_node 2` on CPU (gloo): DDP, cancellation, resumption.

Run as a script by torchrun (the test below does that), this file trains on every rank and
writes each rank's trainable weights and results to the output dir:

    torchrun --standalone --nproc_per_node 2 tests/trainers/test_training_ddp.py MODEL_DIR OUT_DIR
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

REPO = Path(__file__).resolve().parents[2]
CONFIG = {"epochs": 2, "lr": 1e-3, "batch_size": 8, "micro_batch_size": 2, "max_length": 64, "checkpoint_every": 2}


def trainable(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {name: p.detach().cpu().clone() for name, p in model.named_parameters() if p.requires_grad}


def run_rank(model_dir: Path, out_dir: Path) -> None:
    """One rank: an uninterrupted run; then a run cancelled by rank 0 at step 3; then its resumption."""
    from tests.trainers.test_training import keyword_set
    from trainers.training import StepInfo, TrainConfig, init_distributed, load_classifier, train_classifier

    ranks = init_distributed()
    inputs, targets = keyword_set(36, seed=0)  # 36 % 8 = 4: the last batch of each epoch is short
    config = TrainConfig(**CONFIG)
    model = load_classifier(model_dir, head="linear", device="cpu")
    full = train_classifier(model, inputs, targets, config)
    save_file(trainable(model), out_dir / f"uninterrupted-{ranks.rank}.safetensors")

    def cancel(info: StepInfo) -> None:
        if info.step == 3:
            raise KeyboardInterrupt("cancelled")

    checkpoints = out_dir / "checkpoints"
    try:
        train_classifier(load_classifier(model_dir, head="linear", device="cpu"), inputs, targets, config,
                         on_step=cancel, checkpoint_dir=checkpoints)
        stopped_with = "nothing"
    except BaseException as exc:  # what each rank saw is the result under test
        stopped_with = type(exc).__name__
    model = load_classifier(model_dir, head="linear", device="cpu")
    resumed = train_classifier(model, inputs, targets, config, checkpoint_dir=checkpoints)
    save_file(trainable(model), out_dir / f"resumed-{ranks.rank}.safetensors")
    report = {"losses": full.losses, "examples": full.examples, "stopped_with": stopped_with,
              "resumed_from_step": resumed.resumed_from_step, "resumed_losses": resumed.losses}
    (out_dir / f"rank-{ranks.rank}.json").write_text(json.dumps(report))
    torch.distributed.destroy_process_group()


@pytest.mark.slow
def test_two_ranks_train_like_one_process_and_resume(tiny_model_dir: Path, tmp_path: Path) -> None:
    from tests.trainers.test_training import keyword_set
    from trainers.training import TrainConfig, load_classifier, train_classifier

    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               __file__, str(tiny_model_dir), str(tmp_path)]
    done = subprocess.run(command, env=env, cwd=REPO, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    start = trainable(load_classifier(tiny_model_dir, head="linear", device="cpu"))
    rank0, rank1 = (load_file(tmp_path / f"uninterrupted-{rank}.safetensors") for rank in (0, 1))
    assert all(torch.equal(rank0[name], rank1[name]) for name in rank0)
    assert not torch.equal(rank0["score.weight"], start["score.weight"])

    # One process on the same global batches takes the same steps (DDP averages the ranks' gradients).
    reports = [json.loads((tmp_path / f"rank-{rank}.json").read_text()) for rank in (0, 1)]
    inputs, targets = keyword_set(36, seed=0)
    model = load_classifier(tiny_model_dir, head="linear", device="cpu")
    single = train_classifier(model, inputs, targets, TrainConfig(**CONFIG))
    assert reports[0]["losses"][0] == pytest.approx(single.losses[0], abs=1e-5)
    assert reports[0]["examples"] == 2 * 36 and len(reports[0]["losses"]) == single.steps == 10
    assert reports[0]["losses"] == pytest.approx(single.losses, abs=1e-4)
    assert all(torch.allclose(rank0[name], param, atol=1e-4) for name, param in trainable(model).items())

    assert [r["stopped_with"] for r in reports] == ["KeyboardInterrupt", "TrainingStopped"]
    assert [r["resumed_from_step"] for r in reports] == [2, 2]
    assert reports[0]["resumed_losses"] == pytest.approx(reports[0]["losses"], abs=1e-6)
    for rank in (0, 1):
        resumed = load_file(tmp_path / f"resumed-{rank}.safetensors")
        assert all(torch.allclose(resumed[name], rank0[name], atol=1e-6) for name in rank0)


if __name__ == "__main__":
    sys.path.insert(0, str(REPO))
    torch.set_num_threads(1)
    run_rank(Path(sys.argv[1]), Path(sys.argv[2]))
