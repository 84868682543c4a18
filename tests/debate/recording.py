"""An httpx transport that records every request's timing and the peak number in flight.

Wraps the real transport, so requests still reach the real server; the runner is then
measured from the outside, at the HTTP level, where "in flight" is what the server sees.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

import httpx


@dataclass
class Exchange:
    payload: dict[str, Any]
    started: float
    finished: float = 0.0


@dataclass
class RecordingTransport(httpx.AsyncBaseTransport):
    inner: httpx.AsyncBaseTransport = field(default_factory=httpx.AsyncHTTPTransport)
    exchanges: list[Exchange] = field(default_factory=list)
    in_flight: int = 0
    peak_in_flight: int = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        exchange = Exchange(json.loads(request.content or b"{}"), time.perf_counter())
        self.exchanges.append(exchange)
        self.in_flight += 1
        self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
        try:
            response = await self.inner.handle_async_request(request)
            await response.aread()  # the request is in flight until its body has arrived
            return response
        finally:
            self.in_flight -= 1
            exchange.finished = time.perf_counter()

    async def aclose(self) -> None:
        await self.inner.aclose()
