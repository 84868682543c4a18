"""/healthz (service + database + strong model readiness) and /metrics (Prometheus).

/healthz is open (load balancers call it) and cheap: the strong model's readiness (a 1-token
completion) is checked at most once per W2S_HEALTH_CACHE_S, and without an accepted API key the
answer is only the overall status, nothing about the servers behind it. /metrics is open too; it
holds request counts and latencies per route, no data.
"""

import asyncio
import dataclasses
import math
import time
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text

from debate import ReplicaPool, StrongModelError
from service.api.deps import MetricsDep, SettingsDep, bearer, may_read

router = APIRouter(tags=["operations"])


class StrongModelReadiness:
    """The last readiness check of the strong model, reused for `ttl_s` seconds."""

    def __init__(self, client: ReplicaPool, model: str, ttl_s: float) -> None:
        self.client, self.model, self.ttl_s = client, model, ttl_s
        self._checked_at = -math.inf
        self._result: dict[str, Any] = {}
        self._lock = asyncio.Lock()

    async def check(self) -> dict[str, Any]:
        async with self._lock:  # concurrent calls share one probe
            if time.monotonic() - self._checked_at >= self.ttl_s:
                self._result = await self._probe()
                self._checked_at = time.monotonic()
        return self._result

    async def _probe(self) -> dict[str, Any]:
        result = {"ok": True, "url": self.client.base_url, "model": self.model}
        await self.client.refresh()
        try:
            await self.client.check_ready(self.model)
        except StrongModelError as exc:
            result |= {"ok": False, "error": str(exc)}
        return result


@router.get("/healthz")
async def healthz(
    request: Request,
    settings: SettingsDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> JSONResponse:
    """200 when the database answers and a replica of the strong model generates a token; 503 otherwise.

    Callers with an accepted key (or any, when the API is open) see the checks, with each replica's
    health, requests in flight, pinned debates and served models (base and adapters).
    """
    checks = {
        "service": {"ok": True},
        "database": await run_in_threadpool(_database, request),
        "strong_model": await _strong_model(request),
    }
    healthy = all(check["ok"] for check in checks.values())
    body: dict[str, Any] = {"status": "ok" if healthy else "unavailable"}
    if may_read(request, settings, credentials):
        body["checks"] = checks
    return JSONResponse(body, status_code=200 if healthy else 503)


async def _strong_model(request: Request) -> dict[str, Any]:
    """The cached readiness, with the replicas' live state; not ok when this server runs without a strong model."""
    readiness: StrongModelReadiness | None = request.app.state.readiness
    if readiness is None:
        return {"ok": False, "error": "no strong model configured (W2S_VLLM_BASE_URL empty): read-only server"}
    return {**await readiness.check(), "replicas": [dataclasses.asdict(state) for state in readiness.client.states()]}


def _database(request: Request) -> dict:
    try:
        with request.app.state.sessions() as session:
            session.execute(text("SELECT 1"))
    except Exception as exc:  # noqa: BLE001 - reported, not raised: this is the health check
        return {"ok": False, "error": type(exc).__name__}
    return {"ok": True}


@router.get("/metrics")
def metrics(api_metrics: MetricsDep) -> Response:
    return Response(generate_latest(api_metrics.registry), media_type=CONTENT_TYPE_LATEST)
