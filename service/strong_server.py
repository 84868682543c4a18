"""The strong model's server for a command: the configured one, or a local vLLM started for it."""

from collections.abc import Iterator
from contextlib import contextmanager

from service.settings import Settings


@contextmanager
def strong_model(settings: Settings) -> Iterator[Settings]:
    """Settings whose `vllm_base_url` answers: the configured server, or a local vLLM started here."""
    if settings.vllm_base_url:
        yield settings
        return
    from service.local_vllm import start_local_vllm
    from trainers.tiny_model import ensure_tiny_model

    checkpoint = settings.strong_checkpoint()
    if settings.strong_model_path is None:
        ensure_tiny_model(checkpoint)
    log_path = settings.artifacts_dir / "logs" / "vllm.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    print(f"starting a local vLLM on {checkpoint} (45-90 s on 2 CPU cores; log: {log_path})", flush=True)
    with start_local_vllm(checkpoint, served_name=settings.strong_model, log_path=log_path, enable_lora=True,
                          max_model_len=settings.vllm_max_model_len, timeout_s=settings.vllm_start_timeout_s) as server:
        print(f"vLLM ready at {server.base_url} serving {settings.strong_model!r}", flush=True)
        yield settings.model_copy(update={"vllm_base_url": server.base_url})
