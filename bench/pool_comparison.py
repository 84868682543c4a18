"""The replica-pool part of `bench/debate_throughput.py --pool` (issue 18): one server vs a pool of two.

Not run on its own. The same debate batch goes through the service path (API + `--workers` debate
workers) three times, each on freshly reset prefix caches:

  one               one vLLM server (the second is not started yet), workers with W2S_VLLM_BASE_URL;
                    then the raw-vLLM ceiling of the same requests, for service/raw
  pool              two servers on the same cores, workers with W2S_VLLM_BASE_URLS (affinity by debate)
  pool_no_affinity  the same pool with W2S_VLLM_POOL_AFFINITY=false (each request round-robin)

The total number of requests in flight is `--max-in-flight` in all three (split over workers and
replicas). The prefix-cache hit rate is the delta of hits / queries summed over the servers used.
"""

from __future__ import annotations

import argparse
from contextlib import ExitStack
from pathlib import Path

from bench import debate_throughput as bench
from service.settings import Settings
from service.store.migrate import upgrade
from tests.support.api_server import running_api


def compare(
    stack: ExitStack, args: argparse.Namespace, model_dir: Path, tmp: Path, examples: list[dict]
) -> dict[str, float]:
    """Start the servers and the API on `stack`, run the three paths; the numbers of the last line."""
    first = _server(stack, model_dir, tmp / "vllm0.log", args, examples)
    database_url = f"sqlite:///{tmp}/bench.db"
    upgrade(database_url)
    settings = Settings(
        _env_file=None,
        database_url=database_url,
        vllm_base_url=first.base_url,
        strong_model=bench.SERVED_NAME,
        artifacts_dir=tmp / "artifacts",
    )
    api_url = stack.enter_context(running_api(settings))
    one = _measure("one", [first.base_url], True, api_url, database_url, args, examples, tmp)
    bench.reset_prefix_cache(first.base_url)
    raw, _ = bench.run_raw(first.base_url, one.per_debate, args.max_in_flight)
    print(f"one, raw vLLM {raw.tokens:6d} tokens in {raw.seconds:5.1f}s = {raw.tok_s:6.1f} tok/s", flush=True)
    second = _server(stack, model_dir, tmp / "vllm1.log", args, examples)
    urls = [first.base_url, second.base_url]
    pool = _measure("pool", urls, True, api_url, database_url, args, examples, tmp)
    spread = _measure("pool_no_affinity", urls, False, api_url, database_url, args, examples, tmp)
    one_tok_s = bench.Phase.total(one.service).tok_s
    print(f"one: service/raw = {one_tok_s / raw.tok_s:.3f}", flush=True)
    return {
        "one_tok_s": round(one_tok_s, 1),
        "pool_tok_s": round(bench.Phase.total(pool.service).tok_s, 1),
        "pool_no_affinity_tok_s": round(bench.Phase.total(spread.service).tok_s, 1),
        "one_hit_rate": round(one.hit / one.queried, 3),
        "pool_hit_rate": round(pool.hit / pool.queried, 3),
        "pool_no_affinity_hit_rate": round(spread.hit / spread.queried, 3),
        "one_service_vs_raw": round(one_tok_s / raw.tok_s, 3),
    }


def _server(
    stack: ExitStack, model_dir: Path, log_path: Path, args: argparse.Namespace, examples: list[dict]
) -> bench.LocalVLLM:
    server = stack.enter_context(bench.start_vllm(model_dir, log_path))
    print(f"vLLM ready at {server.base_url}; {server.pinning}", flush=True)
    bench.warm_up(server.base_url, examples, args.max_tokens, args.max_in_flight)
    return server


def _measure(
    name: str,
    urls: list[str],
    affinity: bool,
    api_url: str,
    database_url: str,
    args: argparse.Namespace,
    examples: list[dict],
    tmp: Path,
) -> bench.Served:
    """One batch through workers of a pool of `urls`; they stop afterwards, the servers stay."""
    per_replica = args.max_in_flight // args.workers // len(urls)
    pool_env = {"W2S_VLLM_BASE_URLS": ",".join(urls), "W2S_VLLM_POOL_AFFINITY": str(affinity).lower()}
    served = bench.Served()
    with ExitStack() as workers:
        for n in range(args.workers):
            worker = bench.start_worker(database_url, urls[0], per_replica, tmp / f"{name}-worker{n}.log", pool_env)
            workers.callback(bench.stop_worker, worker)
        for url in urls:
            bench.reset_prefix_cache(url)
        bench._service_run(urls, api_url, database_url, args, examples, served, label=name)
    return served
