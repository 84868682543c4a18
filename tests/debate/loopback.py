"""A scripted OpenAI-style HTTP server on loopback, run in a thread.

For what a real vLLM cannot be made to do on cue (answer 503 twice, then 200; stall
past a timeout; hold every request for a set time). Each request is answered by the
next entry of `script` (the last one repeats); the server records what it received. With
`models`, `GET /v1/models` lists them instead (not scripted, not recorded), as a replica pool's
health checks expect of a server.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Reply:
    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0


def completion_body(text: str = "ok", *, chat: bool = True) -> dict[str, Any]:
    choice: dict[str, Any] = {"index": 0, "finish_reason": "stop"}
    choice |= {"message": {"role": "assistant", "content": text}} if chat else {"text": text}
    return {
        "id": "x",
        "model": "strong",
        "choices": [choice],
        "usage": {"prompt_tokens": 5, "completion_tokens": 1, "total_tokens": 6},
    }


def model_list(models: tuple[str, ...]) -> Reply:
    return Reply(
        body={"object": "list", "data": [{"id": name, "object": "model", "owned_by": "vllm"} for name in models]}
    )


@dataclass
class Loopback:
    base_url: str
    received: list[dict[str, Any]]


@contextmanager
def loopback_server(
    script: list[Reply] | Callable[[dict[str, Any]], Reply], models: tuple[str, ...] = ()
) -> Iterator[Loopback]:
    received: list[dict[str, Any]] = []
    lock = threading.Lock()

    def next_reply(payload: dict[str, Any]) -> Reply:
        with lock:
            received.append(payload)
            if callable(script):
                return script(payload)
            return script[min(len(received), len(script)) - 1]

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # http.server's naming
            length = int(self.headers.get("content-length", 0))
            payload = json.loads(self.rfile.read(length) or b"{}")
            listing = models and self.command == "GET" and self.path == "/v1/models"
            reply = model_list(models) if listing else next_reply({"path": self.path, **payload})
            time.sleep(reply.delay_s)
            data = reply.body if isinstance(reply.body, bytes) else json.dumps(reply.body).encode()
            self.send_response(reply.status)
            for name, value in {"content-type": "application/json", **reply.headers}.items():
                self.send_header(name, value)
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST  # a GET has no body: its payload is {}

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield Loopback(f"http://127.0.0.1:{server.server_address[1]}", received)
    finally:
        server.shutdown()
        server.server_close()
