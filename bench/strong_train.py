"""Strong-model training throughput: our `train_classifier` vs a plain `transformers.Trainer`, same padding.

    .venv/bin/python bench/strong_train.py [--examples 256 --epochs 1 --batch-size 16 --max-length 512 --repeats 2]
    .venv/bin/python bench/strong_train.py --gpu-config [--examples 2048 --batch-size 32]   # needs CUDA

Both paths train the strong trainer's model: the lm head (logits of " No" / " Yes" after "\\nAnswer:")
with a LoRA adapter (r 8 on q/k/v/o), on the same SciQ inputs as bench/weak_train.py, with the same
padding — dynamic per batch and length-grouped batches (the Trainer with DataCollatorWithPadding and
train_sampling_strategy="group_by_length") — so the ratio measures our loop's overhead alone. Tokens
are non-padding tokens; each path's tokens/s is that of its fastest repeat (tokenisation included;
other load only ever slows a run down); the ratio of CPU seconds is printed too. On CPU, runs use
`--threads` intra-op threads (default 1, as in bench/weak_train.py).
Each run is a fresh child process, ABAB order, `--repeats` times.

CPU (default): the tiny model of bench/weak_train.py (4 layers, hidden 256). `--gpu-config`: a
Qwen2.5-0.5B-sized Llama with random weights (hidden 896, 24 layers, 14 heads, 2 KV heads,
intermediate 4864, vocab 151936, tied embeddings) in bf16 on CUDA, trained with LoRA and with a
full finetune; it also reports MFU = 6 * params * tokens/s / 989e12 (the dense bf16 peak of an H100 SXM,
which an H200 shares), params being the non-embedding parameters (the embedding is a lookup and the lm head
computes two rows), end to end (tokenising included) and in steady state (`*_steady_*`: the optimizer steps
after the first five, so fixed start-up costs and per-step costs are told apart).
It refuses to run without CUDA. `padding_share`: the share of padding positions in the tensors our
micro-batches feed the model (the most that sequence packing could save). `--compile`: our runs with
`compile=True` (torch.compile of the model's forward and backward; the end-to-end figures include the
compile, the steady ones do not; the Trainer stays uncompiled). The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

# Run as a script: put the repo root (not bench/) first on the path.
sys.path[0] = str(Path(__file__).resolve().parents[1])

import torch  # noqa: E402

from bench.weak_train import MODEL, run_ours, run_trainer, sciq_inputs  # noqa: E402
from trainers.tiny_model import build_tokenizer, make_tiny_model  # noqa: E402
from trainers.training import LoraSettings, TrainConfig  # noqa: E402

H100_BF16_DENSE_FLOPS = 989e12
PROMPT_SUFFIX = "\nAnswer:"
QWEN_05B_SHAPE = {
    "hidden_size": 896,
    "num_hidden_layers": 24,
    "num_attention_heads": 14,
    "num_key_value_heads": 2,
    "intermediate_size": 4864,
    "vocab_size": 151936,
}


def build_gpu_model(out_dir: Path) -> Path:
    """A random-weight Llama of Qwen2.5-0.5B's shape in bf16, with the tiny tokenizer (its ids fit the vocab)."""
    from transformers import LlamaConfig, LlamaForCausalLM

    tokenizer = build_tokenizer(2048)
    config = LlamaConfig(
        **QWEN_05B_SHAPE,
        max_position_embeddings=4096,
        rope_theta=1e6,
        tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        dtype="bfloat16",
    )
    torch.manual_seed(0)
    LlamaForCausalLM(config).to(torch.bfloat16).save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    return out_dir


def non_embedding_params(model_dir: Path) -> int:
    from transformers import AutoConfig, AutoModelForCausalLM

    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(model_dir))
    embedding = model.get_input_embeddings().weight.numel()
    return sum(p.numel() for p in model.parameters()) - embedding  # tied: the lm head is the embedding


def child(args: argparse.Namespace) -> None:
    """One timed run in this process; prints its JSON line."""
    if args.threads:
        torch.set_num_threads(args.threads)
    inputs, targets = sciq_inputs(args.examples)
    config = TrainConfig(
        epochs=args.epochs,
        lr=args.lr,
        batch_size=args.batch_size,
        micro_batch_size=args.micro_batch_size,
        max_length=args.max_length,
        compile=args.compile,
    )
    lora = LoraSettings() if args.mode == "lora" else None
    common = {"lora": lora, "head": "lm", "prompt_suffix": PROMPT_SUFFIX}
    if args.child == "ours":
        timing = run_ours(args.model_dir, inputs, targets, config, **common)
    else:
        timing = run_trainer(
            args.model_dir, inputs, targets, config, pad_to_max_length=False, sampling="group_by_length", **common
        )
    print(json.dumps(timing))


def spawn(path: str, mode: str, args: argparse.Namespace, model_dir: Path) -> dict[str, float]:
    command = [
        sys.executable,
        __file__,
        "--child",
        path,
        "--mode",
        mode,
        "--model-dir",
        str(model_dir),
        "--examples",
        str(args.examples),
        "--epochs",
        str(args.epochs),
        "--batch-size",
        str(args.batch_size),
        "--lr",
        str(args.lr),
        "--max-length",
        str(args.max_length),
        "--threads",
        str(args.threads),
    ]
    if args.micro_batch_size:
        command += ["--micro-batch-size", str(args.micro_batch_size)]
    if args.compile:
        command += ["--compile"]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"the {path} {mode} run failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def compare(mode: str, args: argparse.Namespace, model_dir: Path) -> dict[str, float]:
    """ABAB runs of ours and the Trainer in one mode; tokens/s of each."""
    runs: dict[str, list[dict[str, float]]] = {"ours": [], "hf": []}
    for repeat in range(args.repeats):
        for path in ("ours", "hf"):
            run = spawn(path, mode, args, model_dir)
            runs[path].append(run)
            print(
                f"{mode} repeat {repeat} {path:4s}: {run['tokens'] / run['seconds']:9.0f} tokens/s "
                f"({run['seconds']:.1f} s wall, {run['cpu_seconds']:.1f} s CPU)",
                flush=True,
            )
    # Other load only ever slows a run down: the fastest repeat is each path's own speed.
    rates = {path: max(r["tokens"] / r["seconds"] for r in rs) for path, rs in runs.items()}
    cpu = {path: min(r["cpu_seconds"] for r in rs) for path, rs in runs.items()}
    steady = max(r["steady_tokens_s"] for r in runs["ours"])
    return {**rates, "ours_steady": steady, "cpu_time_ratio": cpu["hf"] / cpu["ours"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gpu-config", action="store_true", help="Qwen2.5-0.5B-sized model in bf16 on CUDA.")
    parser.add_argument("--examples", type=int, default=None, help="default 256 (CPU) / 1000 (GPU)")
    parser.add_argument("--epochs", type=float, default=1.0)
    parser.add_argument("--batch-size", type=int, default=None, help="default 16 (CPU) / 32 (GPU)")
    parser.add_argument("--micro-batch-size", type=int, default=None)
    parser.add_argument("--compile", action="store_true", help="our runs with compile=True (torch.compile)")
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--max-length", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads per run (0: torch's default)")
    parser.add_argument("--child", choices=("ours", "hf"), help=argparse.SUPPRESS)
    parser.add_argument("--mode", choices=("lora", "full"), default="lora", help=argparse.SUPPRESS)
    parser.add_argument("--model-dir", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.gpu_config and not torch.cuda.is_available():
        raise SystemExit(
            "--gpu-config needs a CUDA GPU, and torch.cuda.is_available() is False here; run it on a "
            "GPU machine (bf16 training of a 0.5B model is not meant for CPUs), or drop the flag."
        )
    args.examples = args.examples or (1000 if args.gpu_config else 256)
    args.batch_size = args.batch_size or (32 if args.gpu_config else 16)
    if args.child:
        child(args)
        return
    with tempfile.TemporaryDirectory() as tmp:
        if args.gpu_config:
            model_dir = build_gpu_model(Path(tmp) / "model")
            report = gpu_report(args, model_dir)
        else:
            model_dir = make_tiny_model(Path(tmp) / "model", **MODEL)
            rate = compare("lora", args, model_dir)
            report = {
                "ours_tokens_s": round(rate["ours"], 1),
                "hf_trainer_tokens_s": round(rate["hf"], 1),
                "ratio": round(rate["ours"] / rate["hf"], 3),
                "cpu_time_ratio": round(rate["cpu_time_ratio"], 3),
            }
        report["padding_share"] = round(padding_share(args, model_dir), 4)
    print(
        f"ours / Trainer tokens/s: {report['ratio']:.2f} (target >= 1.0); padding is "
        f"{report['padding_share']:.1%} of the positions our batches feed the model (what packing could save)"
    )
    print(json.dumps(report))


def padding_share(args: argparse.Namespace, model_dir: Path) -> float:
    """Share of padding in the [batch, longest] tensors of our run's micro-batches (length-grouped batches)."""
    from transformers import AutoTokenizer

    from trainers.training import encode_inputs
    from trainers.training.batching import BatchPlan, rank_micro_batches

    inputs, _ = sciq_inputs(args.examples)
    encoded, _ = encode_inputs(
        AutoTokenizer.from_pretrained(model_dir), inputs, max_length=args.max_length, prompt_suffix=PROMPT_SUFFIX
    )
    lengths = tuple(map(len, encoded))
    plan = BatchPlan(lengths, args.batch_size, args.epochs, 0, group_by_length=True)
    micro = [
        [lengths[i] for i in indices]
        for step in range(plan.total_steps)
        for indices in rank_micro_batches(
            plan.batch(step), lengths, rank=0, world=1, micro_batch_size=args.micro_batch_size
        )
    ]
    return 1 - sum(map(sum, micro)) / sum(max(m) * len(m) for m in micro)


def gpu_report(args: argparse.Namespace, model_dir: Path) -> dict[str, float]:
    """LoRA and full finetune: tokens/s of both paths and our MFU."""
    params = non_embedding_params(model_dir)
    report: dict[str, float] = {}
    for mode in ("lora", "full"):
        rate = compare(mode, args, model_dir)
        report[f"{mode}_ours_tokens_s"] = round(rate["ours"], 1)
        report[f"{mode}_hf_trainer_tokens_s"] = round(rate["hf"], 1)
        report[f"{mode}_mfu"] = round(6 * params * rate["ours"] / H100_BF16_DENSE_FLOPS, 4)
        report[f"{mode}_steady_ours_tokens_s"] = round(rate["ours_steady"], 1)
        report[f"{mode}_steady_mfu"] = round(6 * params * rate["ours_steady"] / H100_BF16_DENSE_FLOPS, 4)
    report["mfu_peak_flops"] = H100_BF16_DENSE_FLOPS
    report["ours_tokens_s"] = report["lora_ours_tokens_s"]
    report["hf_trainer_tokens_s"] = report["lora_hf_trainer_tokens_s"]
    report["ratio"] = round(report["ours_tokens_s"] / report["hf_trainer_tokens_s"], 3)
    return report


if __name__ == "__main__":
    main()
