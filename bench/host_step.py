"""Host seconds per optimizer step: what limits the trainer on a GPU, measured on any machine.

    .venv/bin/python bench/host_step.py [--layers 24 --batch-size 32 --tokens 24 --steps 40 --repeats 3]

On a GPU the host has to issue every kernel of a step; when it takes longer to issue them than the
GPU takes to run them, the GPU idles (issue 19 measured as many CPU seconds as wall seconds on an
H200). This script makes the model's own compute negligible — a Llama of `--layers` layers (24, as
Qwen2.5-0.5B) but hidden size 32 and inputs of `--tokens` tokens — so the process CPU time of a step
is host work: Python, the dispatcher, autograd, the optimizer, collation, syncs.

Three paths train the same LoRA (r 8 on q/k/v/o) and full models, lm head, batch `--batch-size`:
(a) ours: `train_classifier`, CPU seconds per step read in its `on_step` callback;
(b) compiled: the same with `compile=True` (torch.compile of the model's forward and backward); its
    first step compiles, and the wall seconds of that step in the first repeat are reported as the
    compile cost (later repeats in the same process reuse the compiled graph);
(c) plain: the textbook PyTorch loop over the same batches — pad with the tokenizer, forward, xent,
    backward, clip, `torch.optim.AdamW` with torch's default implementation, `.item()` of the loss.
Per-step figures are medians over steps after the first `--warmup` (CPU time, not wall time: other
processes on a shared machine barely move it), in ABCABC order over `--repeats` repeats, fastest repeat
kept. The last line is one JSON object; `ratio_*` = plain / ours (> 1: ours does less host work),
`ratio_compiled_*` = ours / compiled (host work per step before / after compiling).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

# Run as a script: put the repo root (not bench/) first on the path.
sys.path[0] = str(Path(__file__).resolve().parents[1])

import torch  # noqa: E402

from trainers.losses import xent  # noqa: E402
from trainers.tiny_model import make_tiny_model  # noqa: E402
from trainers.training import (  # noqa: E402
    ClassifierInput,
    LoraSettings,
    StepInfo,
    TrainConfig,
    load_classifier,
    train_classifier,
)

LETTERS = "abcdefghijklmnopqrstuvwxyz"


def fixed_inputs(count: int, tokens: int) -> tuple[list[ClassifierInput], list[float]]:
    """`count` inputs of one length (one batch shape for every step), alternating targets."""
    words = [" ".join(LETTERS[(i + j) % 26] for j in range(tokens)) for i in range(count)]
    return [ClassifierInput(text) for text in words], [float(i % 2) for i in range(count)]


@dataclass
class Steps:
    """CPU seconds of each optimizer step, and the wall seconds of the first (compiling, if anything does)."""

    cpu_seconds: list[float]
    first_wall_s: float


def ours(model_dir: Path, mode: str, args: argparse.Namespace, compile: bool = False) -> Steps:
    """Each optimizer step of `train_classifier`."""
    model = load_classifier(model_dir, head="lm", lora=LoraSettings() if mode == "lora" else None)
    inputs, targets = fixed_inputs(args.batch_size * args.steps, args.tokens)
    config = TrainConfig(
        epochs=1, batch_size=args.batch_size, max_length=4 * args.tokens, checkpoint_every=0, compile=compile
    )
    marks, walls = [time.process_time()], [time.perf_counter()]

    def on_step(_: StepInfo) -> None:
        marks.append(time.process_time())
        walls.append(time.perf_counter())

    train_classifier(model, inputs, targets, config, on_step=on_step)
    return Steps([after - before for before, after in zip(marks, marks[1:], strict=False)], walls[1] - walls[0])


def compiled(model_dir: Path, mode: str, args: argparse.Namespace) -> Steps:
    return ours(model_dir, mode, args, compile=True)


def plain(model_dir: Path, mode: str, args: argparse.Namespace) -> Steps:
    """Each step of the textbook loop on the same model and batches."""
    model = load_classifier(model_dir, head="lm", lora=LoraSettings() if mode == "lora" else None)
    inputs, targets = fixed_inputs(args.batch_size * args.steps, args.tokens)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    model.train()
    seconds, started = [], time.perf_counter()
    for start in range(0, len(inputs), args.batch_size):
        began = time.process_time()
        texts = [item.text for item in inputs[start : start + args.batch_size]]
        batch = model.tokenizer(texts, padding=True, return_tensors="pt")
        logits = model(batch["input_ids"], batch["attention_mask"])
        loss = xent(logits, torch.tensor(targets[start : start + args.batch_size]), 0, 1)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        loss.item()
        seconds.append(time.process_time() - began)
        if len(seconds) == 1:
            first_wall_s = time.perf_counter() - started
    return Steps(seconds, first_wall_s)


def steady_ms(steps: Steps, warmup: int) -> float:
    return 1000 * statistics.median(steps.cpu_seconds[warmup:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", type=int, default=24)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--tokens", type=int, default=24, help="tokens per input (one shape for every step)")
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--warmup", type=int, default=5, help="first steps left out of the median")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)
    report: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = make_tiny_model(Path(tmp) / "model", layers=args.layers, hidden=32, heads=1)
        for mode in ("lora", "full"):
            best = {"ours": float("inf"), "compiled": float("inf"), "plain": float("inf")}
            compile_s = 0.0
            for repeat in range(args.repeats):
                for name, path in (("ours", ours), ("compiled", compiled), ("plain", plain)):
                    steps = path(model_dir, mode, args)
                    ms = steady_ms(steps, args.warmup)
                    best[name] = min(best[name], ms)
                    if name == "compiled" and repeat == 0:  # later repeats reuse this process's compiled graph
                        compile_s = steps.first_wall_s
                    print(
                        f"{mode} repeat {repeat} {name:8s}: {ms:7.1f} host ms/step "
                        f"(first step {steps.first_wall_s:.1f} s wall)",
                        flush=True,
                    )
            report[f"{mode}_ours_host_ms_per_step"] = round(best["ours"], 2)
            report[f"{mode}_compiled_host_ms_per_step"] = round(best["compiled"], 2)
            report[f"{mode}_plain_host_ms_per_step"] = round(best["plain"], 2)
            report[f"ratio_{mode}"] = round(best["plain"] / best["ours"], 3)
            report[f"ratio_compiled_{mode}"] = round(best["ours"] / best["compiled"], 3)
            report[f"{mode}_compile_first_step_s"] = round(compile_s, 1)
    print(json.dumps(report))


if __name__ == "__main__":
    main()
