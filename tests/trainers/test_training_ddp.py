"""`train_classifier` under `torchrun --nproc_per_node 2` on CPU (gloo), DDP (also compiled) and FSDP:
cancellation, resumption, and (FSDP) prediction and saving from shards.

Run as a script by torchrun (the test below does that), this file trains on every rank and
writes each rank's trainable weights and results to the output dir (FSDP: rank 0 the gathered ones):

    torchrun --standalone --nproc_per_node 2 tests/trainers/test_training_ddp.py MODEL_DIR OUT_DIR ddp|ddp+compile|fsdp
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

REPO = Path(__file__).resolve().parents[2]
CONFIG = {"epochs": 2, "lr": 1e-3, "batch_size": 8, "micro_batch_size": 2, "max_length": 64, "checkpoint_every": 2}


def config_for(sharding: str):  # noqa: ANN201 (TrainConfig, imported late)
    """CONFIG, compiled for `ddp+compile` (the compiled model inside DDP, micro-batches under `no_sync`)."""
    from trainers.training import TrainConfig

    return TrainConfig(**CONFIG, compile=sharding == "ddp+compile")


def trainable(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """This rank's trainable weights; for a sharded model the gathered ones on rank 0, none elsewhere."""
    from trainers.training.distributed import gather_full, is_sharded

    params = {name: p.detach() for name, p in model.named_parameters() if p.requires_grad}
    return gather_full(params) if is_sharded(model) else {name: p.cpu().clone() for name, p in params.items()}


def run_rank(model_dir: Path, out_dir: Path, sharding: str) -> None:
    """One rank: an uninterrupted run (FSDP: then predict and save); a run cancelled by rank 0 at
    step 3; then its resumption."""
    from tests.trainers.test_training import keyword_set
    from trainers.training import (
        StepInfo,
        init_distributed,
        load_classifier,
        predict_proba,
        train_classifier,
    )

    def fresh() -> torch.nn.Module:
        model = load_classifier(model_dir, head="linear", device="cpu")
        if sharding == "fsdp":
            model.shard(torch.device("cpu"))
        return model

    ranks = init_distributed()
    inputs, targets = keyword_set(36, seed=0)  # 36 % 8 = 4: the last batch of each epoch is short
    config = config_for(sharding)
    model = fresh()
    full = train_classifier(model, inputs, targets, config)
    save_file(trainable(model), out_dir / f"uninterrupted-{ranks.rank}.safetensors")
    probs = predict_proba(model, inputs[:10], max_length=64, batch_size=4) if sharding == "fsdp" else []
    if sharding == "fsdp":
        model.save(out_dir / "saved")

    def cancel(info: StepInfo) -> None:
        if info.step == 3:
            raise KeyboardInterrupt("cancelled")

    checkpoints = out_dir / "checkpoints"
    try:
        train_classifier(fresh(), inputs, targets, config, on_step=cancel, checkpoint_dir=checkpoints)
        stopped_with = "nothing"
    except BaseException as exc:  # noqa: BLE001 - what each rank saw is the result under test
        stopped_with = type(exc).__name__
    if ranks.is_main:  # the checkpoint as the cancelled run left it, for a single process to resume
        shutil.copytree(checkpoints, out_dir / "cancelled")
    torch.distributed.barrier()
    model = fresh()
    resumed = train_classifier(model, inputs, targets, config, checkpoint_dir=checkpoints)
    save_file(trainable(model), out_dir / f"resumed-{ranks.rank}.safetensors")
    report = {
        "losses": full.losses,
        "examples": full.examples,
        "probs": probs,
        "stopped_with": stopped_with,
        "resumed_from_step": resumed.resumed_from_step,
        "resumed_losses": resumed.losses,
    }
    (out_dir / f"rank-{ranks.rank}.json").write_text(json.dumps(report))
    torch.distributed.destroy_process_group()


def run_two_ranks(model_dir: Path, out_dir: Path, mode: str) -> None:
    """This file as a script (its `__main__` block: `run_rank` or, for "tied-lm", `run_tied_rank`) on two gloo
    ranks under torchrun; fails with their stderr."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        __file__,
        str(model_dir),
        str(out_dir),
        mode,
    ]
    done = subprocess.run(command, env=env, cwd=REPO, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]


@pytest.mark.slow
@pytest.mark.parametrize("sharding", ["ddp", "ddp+compile", "fsdp"])
def test_two_ranks_train_like_one_process_and_resume(tiny_model_dir: Path, tmp_path: Path, sharding: str) -> None:
    from tests.trainers.test_training import keyword_set
    from trainers.training import load_classifier, load_saved_classifier, predict_proba, train_classifier

    run_two_ranks(tiny_model_dir, tmp_path, sharding)
    start = trainable(load_classifier(tiny_model_dir, head="linear", device="cpu"))
    rank0, rank1 = (load_file(tmp_path / f"uninterrupted-{rank}.safetensors") for rank in (0, 1))
    if sharding != "fsdp":  # replicas end equal
        assert all(torch.equal(rank0[name], rank1[name]) for name in rank0)
    else:  # FSDP: rank 0 gathered every whole weight, rank 1 none
        assert rank0.keys() == start.keys() and rank1 == {}
    assert not torch.equal(rank0["score.weight"], start["score.weight"])
    assert not torch.equal(rank0["backbone.layers.0.mlp.up_proj.weight"], start["backbone.layers.0.mlp.up_proj.weight"])

    # One process on the same global batches takes the same steps (DDP averages the ranks' gradients).
    reports = [json.loads((tmp_path / f"rank-{rank}.json").read_text()) for rank in (0, 1)]
    inputs, targets = keyword_set(36, seed=0)
    model = load_classifier(tiny_model_dir, head="linear", device="cpu")
    single = train_classifier(model, inputs, targets, config_for(sharding))
    assert reports[0]["losses"][0] == pytest.approx(single.losses[0], abs=1e-5)
    assert reports[0]["examples"] == 2 * 36 and len(reports[0]["losses"]) == single.steps == 10
    assert reports[0]["losses"] == pytest.approx(single.losses, abs=1e-4)
    assert all(torch.allclose(rank0[name], param, atol=1e-4) for name, param in trainable(model).items())
    if sharding == "fsdp":  # predictions and the saved classifier come from the shards, as one process's
        assert reports[0]["probs"] == pytest.approx(predict_proba(model, inputs[:10], max_length=64), abs=1e-4)
        saved = trainable(load_saved_classifier(tmp_path / "saved", device="cpu"))
        assert saved.keys() == rank0.keys()
        assert all(torch.allclose(saved[name], rank0[name], atol=1e-6) for name in rank0)

    assert [r["stopped_with"] for r in reports] == ["KeyboardInterrupt", "TrainingStopped"]
    assert [r["resumed_from_step"] for r in reports] == [2, 2]
    assert reports[0]["resumed_losses"] == pytest.approx(reports[0]["losses"], abs=1e-6)
    # A single process resumes the ranks' checkpoint (gathered whole, in the same format) to the same end.
    model = load_classifier(tiny_model_dir, head="linear", device="cpu")
    alone = train_classifier(model, inputs, targets, config_for(sharding), checkpoint_dir=tmp_path / "cancelled")
    assert alone.resumed_from_step == 2
    assert all(torch.allclose(param, rank0[name], atol=1e-4) for name, param in trainable(model).items())
    for rank in (0, 1) if sharding != "fsdp" else (0,):
        resumed = load_file(tmp_path / f"resumed-{rank}.safetensors")
        assert all(torch.allclose(resumed[name], rank0[name], atol=1e-6) for name in rank0)


def tied_lm_spec(model_dir: Path, out_dir: Path, sharding: str):  # noqa: ANN201 (FitSpec, imported late)
    """A full finetune of the lm head with gradient checkpointing: every weight trains, embeddings tied."""
    from tests.trainers.test_training import keyword_set
    from trainers.strong.fit import FitSpec

    inputs, targets = keyword_set(24, seed=0)
    return FitSpec(
        base=str(model_dir),
        head="lm",
        answer_words=(" No", " Yes"),
        lora=None,
        train={"epochs": 1, "lr": 1e-3, "batch_size": 8, "max_length": 64, "gradient_checkpointing": True},
        loss="xent",
        loss_params={},
        prompt_suffix="",
        train_inputs=list(inputs),
        train_targets=list(targets),
        eval_inputs=list(inputs[:6]),
        eval_gold=[round(t) for t in targets[:6]],
        checkpoint_dir=str(out_dir / "checkpoints"),
        out_dir=str(out_dir / "saved"),
        sharding=sharding,
    )


def run_tied_rank(model_dir: Path, out_dir: Path) -> None:
    from trainers.strong.fit import fit
    from trainers.training import init_distributed

    ranks = init_distributed()
    outcome = fit(tied_lm_spec(model_dir, out_dir, "fsdp"))
    if ranks.is_main:
        (out_dir / "outcome.json").write_text(json.dumps({"probs": outcome.probs, "loss": outcome.final_loss}))
    torch.distributed.destroy_process_group()


@pytest.mark.slow
def test_fsdp_full_finetune_of_a_tied_lm_saves_what_one_process_saves(tiny_model_dir: Path, tmp_path: Path) -> None:
    """Through `fit`: loaded on the CPU and sharded, gradient checkpointing, predictions from all ranks,
    and a saved model whose tied LM head stays tied (as the single process saves it)."""
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    from trainers.strong.fit import fit

    tied = tmp_path / "tied"  # the tiny Llama with its LM head tied to the embeddings, as Qwen2.5 ties them
    torch.manual_seed(0)
    AutoModelForCausalLM.from_config(
        AutoConfig.from_pretrained(tiny_model_dir, tie_word_embeddings=True)
    ).save_pretrained(tied)
    AutoTokenizer.from_pretrained(tiny_model_dir).save_pretrained(tied)
    (tmp_path / "fsdp").mkdir()
    run_two_ranks(tied, tmp_path / "fsdp", "tied-lm")

    alone = fit(tied_lm_spec(tied, tmp_path / "alone", "fsdp"))  # one process: nothing to shard
    sharded = json.loads((tmp_path / "fsdp" / "outcome.json").read_text())
    assert sharded["loss"] == pytest.approx(alone.final_loss, abs=1e-5)
    assert sharded["probs"] == pytest.approx(alone.probs, abs=1e-5)
    expected, got = (load_file(tmp_path / where / "saved" / "model.safetensors") for where in ("alone", "fsdp"))
    assert "lm_head.weight" not in got and got.keys() == expected.keys()
    assert all(torch.allclose(got[name], expected[name], atol=1e-5) for name in expected)
    assert not torch.equal(
        expected["model.embed_tokens.weight"], load_file(tied / "model.safetensors")["model.embed_tokens.weight"]
    )


if __name__ == "__main__":
    sys.path.insert(0, str(REPO))
    torch.set_num_threads(1)
    if sys.argv[3] == "tied-lm":
        run_tied_rank(Path(sys.argv[1]), Path(sys.argv[2]))
    else:
        run_rank(Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3])
