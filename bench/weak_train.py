"""Weak-model training throughput: our `train_classifier` vs `transformers.Trainer` as the W2S scripts use it.

    .venv/bin/python bench/weak_train.py [--examples 128 --epochs 1 --batch-size 16 --max-length 512 --repeats 2]
    .venv/bin/python bench/weak_train.py --gpu-config [--concurrent 4 --examples 1000 --batch-size 32]  # CUDA

One tiny model (built here: 4 layers, hidden 256, 4 heads, vocab 2048, seed 0), the same data:
`--examples` SciQ validation rows (candidate = the correct answer on even rows, a distractor on odd
ones), text "Question: ... Candidate answer: ...", the support passage as the context, split at
sentences into up to three parts as a debate transcript would be; the same linear head (zero
initialised, full finetune), batch size, learning rate (cosine schedule), epochs and max length.

(a) ours: `train_classifier` — dynamic padding per micro-batch, length-grouped batches.
(b) Trainer: `transformers.Trainer` on the same classifier and the same token ids, padded to
    `--max-length` (padding="max_length", the default of the reference W2S scripts), random sampler.

Each path runs in a fresh child process (so neither inherits the other's warm caches or memory), in
ABAB order `--repeats` times, since a 2-core machine shared with other work is noisy; each path's
examples/s is that of its fastest repeat (other load only ever slows a run down), timed from before
tokenisation to the end of training. Runs use `--threads` intra-op threads (default 1: with two
threads on a busy 2-core machine, torch's workers spin-wait and a run can take 8x longer).
The CPU seconds of the same span are reported too: their ratio suffers less from other processes
competing for the cores. Peak RSS is the child's own (getrusage). The last line is one JSON object.

Concurrent members (`--concurrent K`, default 2; 0 skips it): K children train K members (seeds 0..K-1)
at the same time, as `w2s worker --kind weak --processes K` does; each loads its model, waits for the
others, then trains. `concurrent_examples_s` is all their examples over the span from the first start
to the last end, `concurrency_speedup` that over one member's examples/s (ours, above); fastest of
`--repeats`. On a 2-core CPU expect about 1x (the cores are already busy). `--gpu-config` measures only
this figure, on CUDA, for a Qwen2.5-0.5B-sized weak model in bf16 (bench/strong_train.py's), K = 4.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

# Run as a script: put the repo root (not bench/) first on the path.
sys.path[0] = str(Path(__file__).resolve().parents[1])

import torch  # noqa: E402

from trainers.losses import xent  # noqa: E402
from trainers.tiny_model import make_tiny_model  # noqa: E402
from trainers.training import (  # noqa: E402
    Classifier,
    ClassifierInput,
    StepInfo,
    TrainConfig,
    encode_inputs,
    load_classifier,
    train_classifier,
)

REPO = Path(__file__).resolve().parents[1]
SCIQ = REPO.parent / "shared" / "data" / "sciq" / "validation.jsonl"
CONTEXT_PARTS = 3
STEADY_AFTER = 5  # optimizer steps left out of the steady-state rate
MODEL = {"layers": 4, "hidden": 256, "heads": 4, "vocab": 2048, "seed": 0}


def sciq_inputs(count: int) -> tuple[list[ClassifierInput], list[float]]:
    """Binary SciQ examples with their support passage as a (real-text) multi-part context."""
    rows = [json.loads(line) for line in SCIQ.read_text().splitlines()[:count]]
    if len(rows) < count:
        raise SystemExit(f"{SCIQ} has only {len(rows)} rows; pass --examples <= {len(rows)}.")
    inputs, targets = [], []
    for position, row in enumerate(rows):
        correct = position % 2 == 0
        candidate = row["correct_answer"] if correct else row["distractor1"]
        text = f"Question: {row['question']}\nCandidate answer: {candidate}"
        inputs.append(ClassifierInput(text, split_passage(row["support"])))
        targets.append(float(correct))
    return inputs, targets


def split_passage(passage: str) -> tuple[str, ...]:
    """Up to CONTEXT_PARTS consecutive runs of whole sentences (none for an empty passage)."""
    sentences = [s for s in re.split(r"(?<=[.!?])\s+", passage.strip()) if s]
    if not sentences:
        return ()
    size = -(-len(sentences) // CONTEXT_PARTS)
    return tuple(" ".join(sentences[i : i + size]) for i in range(0, len(sentences), size))


class TrainerAdapter(torch.nn.Module):
    """Our classifier behind the interface `transformers.Trainer` expects: a dict with the loss."""

    def __init__(self, classifier: Classifier) -> None:
        super().__init__()
        self.classifier = classifier

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, labels: torch.Tensor) -> dict:
        logits = self.classifier(input_ids, attention_mask)
        return {"loss": xent(logits, labels), "logits": logits}


def trainer_args(out_dir: Path, config: TrainConfig, **extra: Any) -> Any:
    """TrainingArguments matching `config`: same batch, lr, cosine schedule, clipping, epochs; no logging/saving."""
    from transformers import TrainingArguments

    cuda = torch.cuda.is_available()
    return TrainingArguments(
        output_dir=str(out_dir),
        per_device_train_batch_size=config.batch_size,
        num_train_epochs=config.epochs,
        learning_rate=config.lr,
        lr_scheduler_type="cosine",
        warmup_steps=0,
        weight_decay=config.weight_decay,
        max_grad_norm=1.0,
        seed=config.seed,
        logging_strategy="no",
        save_strategy="no",
        report_to="none",
        disable_tqdm=True,
        dataloader_num_workers=0,
        use_cpu=not cuda,
        bf16=cuda,
        **extra,
    )


def run_trainer(
    model_dir: Path,
    inputs: list[ClassifierInput],
    targets: list[float],
    config: TrainConfig,
    *,
    pad_to_max_length: bool,
    lora: Any = None,
    head: str = "linear",
    prompt_suffix: str = "",
    sampling: str = "random",
) -> dict[str, float]:
    """Train with `transformers.Trainer`; seconds cover tokenisation and training, as for ours."""
    from transformers import DataCollatorWithPadding, Trainer

    model = load_classifier(model_dir, head=head, lora=lora)
    wall, cpu = time.perf_counter(), time.process_time()
    encoded, _ = encode_inputs(model.tokenizer, inputs, max_length=config.max_length, prompt_suffix=prompt_suffix)
    dataset = [{"input_ids": ids, "labels": target} for ids, target in zip(encoded, targets, strict=True)]
    padding = {"padding": "max_length", "max_length": config.max_length} if pad_to_max_length else {}
    collator = DataCollatorWithPadding(model.tokenizer, **padding)
    with tempfile.TemporaryDirectory() as out_dir:
        args = trainer_args(Path(out_dir), config, train_sampling_strategy=sampling)
        Trainer(model=TrainerAdapter(model), args=args, train_dataset=dataset, data_collator=collator).train()
    return {
        "seconds": time.perf_counter() - wall,
        "cpu_seconds": time.process_time() - cpu,
        "examples": config.epochs * len(inputs),
        "tokens": config.epochs * sum(map(len, encoded)),
    }


def run_ours(
    model_dir: Path,
    inputs: list[ClassifierInput],
    targets: list[float],
    config: TrainConfig,
    *,
    lora: Any = None,
    head: str = "linear",
    prompt_suffix: str = "",
    loaded: Callable[[], None] = lambda: None,
) -> dict[str, float]:
    """Train with `train_classifier`; `loaded()` runs between loading the model and the timed span."""
    model = load_classifier(model_dir, head=head, lora=lora)
    loaded()
    steps: list[StepInfo] = []
    started, wall, cpu = time.time(), time.perf_counter(), time.process_time()
    result = train_classifier(model, inputs, targets, config, prompt_suffix=prompt_suffix, on_step=steps.append)
    return {
        "seconds": time.perf_counter() - wall,
        "cpu_seconds": time.process_time() - cpu,
        "examples": result.examples,
        "tokens": result.tokens,
        "steady_tokens_s": steady_tokens_s(steps),
        "started_at": started,
        "ended_at": time.time(),
    }


def wait_for_members(barrier: Path, members: int) -> Callable[[], None]:
    """Once this member has loaded its model, wait for the other members: the span timed is training only."""

    def wait() -> None:
        (barrier / str(os.getpid())).touch()
        while len(list(barrier.iterdir())) < members:
            time.sleep(0.01)

    return wait


def steady_tokens_s(steps: list[StepInfo]) -> float:
    """Tokens/s over the optimizer steps after the first STEADY_AFTER (start-up, tokenising, first-step
    allocation and kernel selection left out); the whole run's rate if it had no more steps than that."""
    first = steps[min(STEADY_AFTER, len(steps) - 1) - 1] if len(steps) > 1 else None
    last = steps[-1]
    if first is None or last.elapsed_s <= first.elapsed_s:
        return last.tokens / last.elapsed_s
    return (last.tokens - first.tokens) / (last.elapsed_s - first.elapsed_s)


def child(args: argparse.Namespace) -> None:
    """One timed run in this process; prints its JSON line."""
    if args.threads:
        torch.set_num_threads(args.threads)
    inputs, targets = sciq_inputs(args.examples)
    config = TrainConfig(
        epochs=args.epochs, lr=args.lr, batch_size=args.batch_size, max_length=args.max_length, seed=args.seed
    )
    if args.child == "ours":
        loaded = wait_for_members(args.barrier, args.members) if args.barrier else (lambda: None)
        timing = run_ours(args.model_dir, inputs, targets, config, loaded=loaded)
    else:
        timing = run_trainer(args.model_dir, inputs, targets, config, pad_to_max_length=True)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({**timing, "peak_rss_mb": peak}))


def spawn(path: str, args: argparse.Namespace, model_dir: Path) -> dict[str, float]:
    return finish(path, start(path, args, model_dir))


def start(path: str, args: argparse.Namespace, model_dir: Path, *extra: str) -> subprocess.Popen:
    command = [
        sys.executable,
        __file__,
        "--child",
        path,
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
        *extra,
    ]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(path: str, process: subprocess.Popen) -> dict[str, float]:
    stdout, stderr = process.communicate()
    if process.returncode != 0:
        raise SystemExit(f"the {path} run failed:\n{stderr[-3000:]}")
    return json.loads(stdout.strip().splitlines()[-1])


def concurrent_members(args: argparse.Namespace, model_dir: Path) -> float:
    """Examples/s of `args.concurrent` members trained at once, each in its own process (seeds 0..K-1)."""
    with tempfile.TemporaryDirectory() as barrier:
        members = [
            start("ours", args, model_dir, "--seed", str(seed), "--barrier", barrier, "--members", str(args.concurrent))
            for seed in range(args.concurrent)
        ]
        runs = [finish("concurrent", member) for member in members]
    span = max(r["ended_at"] for r in runs) - min(r["started_at"] for r in runs)
    return sum(r["examples"] for r in runs) / span


def concurrency_figures(args: argparse.Namespace, model_dir: Path, one_member: float) -> dict[str, float]:
    """Fastest of `--repeats` concurrent runs, against one member's examples/s."""
    rate = max(concurrent_members(args, model_dir) for _ in range(args.repeats))
    print(
        f"{args.concurrent} members at once: {rate:.2f} examples/s, {rate / one_member:.2f}x one member "
        f"({one_member:.2f} examples/s)",
        flush=True,
    )
    return {
        "concurrent_members": args.concurrent,
        "concurrent_examples_s": round(rate, 3),
        "one_member_examples_s": round(one_member, 3),
        "concurrency_speedup": round(rate / one_member, 3),
    }


def gpu_main(args: argparse.Namespace) -> dict[str, float]:
    """On CUDA: one member's examples/s (fastest of `--repeats`), then K members' at once."""
    if not torch.cuda.is_available():
        raise SystemExit("--gpu-config needs a CUDA GPU, and torch.cuda.is_available() is False here.")
    from bench.strong_train import build_gpu_model  # it imports this module: only here, not at the top

    with tempfile.TemporaryDirectory() as tmp:
        model_dir = build_gpu_model(Path(tmp) / "model")
        runs = [spawn("ours", args, model_dir) for _ in range(args.repeats)]
        return concurrency_figures(args, model_dir, max(r["examples"] / r["seconds"] for r in runs))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gpu-config", action="store_true", help="concurrent members of a 0.5B model on CUDA only")
    parser.add_argument("--concurrent", type=int, default=None, help="members at once: default 2 (CPU) / 4 (GPU)")
    parser.add_argument("--examples", type=int, default=None, help="default 128 (CPU) / 1000 (GPU)")
    parser.add_argument("--epochs", type=float, default=1.0)
    parser.add_argument("--batch-size", type=int, default=None, help="default 16 (CPU) / 32 (GPU)")
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--max-length", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads per run (0: torch's default)")
    parser.add_argument("--child", choices=("ours", "hf"), help=argparse.SUPPRESS)
    parser.add_argument("--model-dir", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--barrier", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--members", type=int, default=1, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.concurrent is None:
        args.concurrent = 4 if args.gpu_config else 2
    args.examples = args.examples or (1000 if args.gpu_config else 128)
    args.batch_size = args.batch_size or (32 if args.gpu_config else 16)
    if args.child:
        child(args)
        return
    if args.gpu_config:
        print(json.dumps(gpu_main(args)))
        return
    runs: dict[str, list[dict[str, float]]] = {"ours": [], "hf": []}
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = make_tiny_model(Path(tmp) / "model", **MODEL)
        for repeat in range(args.repeats):
            for path in ("ours", "hf"):
                runs[path].append(spawn(path, args, model_dir))
                run = runs[path][-1]
                print(
                    f"repeat {repeat} {path:4s}: {run['examples'] / run['seconds']:7.2f} examples/s "
                    f"({run['seconds']:.1f} s wall, {run['cpu_seconds']:.1f} s CPU, "
                    f"peak RSS {run['peak_rss_mb']:.0f} MB)",
                    flush=True,
                )
        # Other load only ever slows a run down: the fastest repeat is each path's own speed.
        rate = {path: max(r["examples"] / r["seconds"] for r in rs) for path, rs in runs.items()}
        concurrency = concurrency_figures(args, model_dir, rate["ours"]) if args.concurrent else {}
    cpu = {path: min(r["cpu_seconds"] for r in rs) for path, rs in runs.items()}
    print(
        f"ours {rate['ours']:.2f} examples/s, Trainer (padding=max_length) {rate['hf']:.2f} examples/s, "
        f"ratio {rate['ours'] / rate['hf']:.2f} (target >= 1.5); CPU-seconds ratio {cpu['hf'] / cpu['ours']:.2f} "
        "(less sensitive to other load on the machine)"
    )
    print(
        json.dumps(
            {
                "ours_examples_s": round(rate["ours"], 3),
                "hf_trainer_examples_s": round(rate["hf"], 3),
                "ratio": round(rate["ours"] / rate["hf"], 3),
                "peak_rss_mb": round(max(r["peak_rss_mb"] for r in runs["ours"]), 1),
                "hf_trainer_peak_rss_mb": round(max(r["peak_rss_mb"] for r in runs["hf"]), 1),
                "cpu_time_ratio": round(cpu["hf"] / cpu["ours"], 3),
                **concurrency,
            }
        )
    )


if __name__ == "__main__":
    main()
