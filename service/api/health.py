"""/healthz (service + database + strong model readiness) and /metrics (Prometheus)."""

import dataclasses

from fastapi import APIRouter, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text

from debate import StrongModelError
from service.api.deps import ClientDep, KeyHolderDep, MetricsDep, SettingsDep

router = APIRouter(tags=["operations"])


@router.get("/healthz")
async def healthz(request: Request, client: ClientDep, settings: SettingsDep, key_holder: KeyHolderDep) -> JSONResponse:
    """200 when the database answers and a replica of the strong model generates a token; 503 otherwise.

    For callers with an API key (or when the API is open), `replicas` lists each replica's health,
    requests in flight, pinned debates and served models (base and adapters).
    """
    checks = {"service": {"ok": True}, "database": await run_in_threadpool(_database, request),
              "strong_model": {"ok": True, "url": client.base_url, "model": settings.strong_model}}
    await client.refresh()
    try:
        await client.check_ready(settings.strong_model)
    except StrongModelError as exc:
        checks["strong_model"] |= {"ok": False, "error": str(exc)}
    if key_holder:
        checks["strong_model"]["replicas"] = [dataclasses.asdict(state) for state in client.states()]
    healthy = all(check["ok"] for check in checks.values())
    return JSONResponse({"status": "ok" if healthy else "unavailable", "checks": checks},
                        status_code=200 if healthy else 503)


def _database(request: Request) -> dict:
    try:
        with request.app.state.sessions() as session:
            session.execute(text("SELECT 1"))
    except Exception as exc:  # noqa: BLE001 - reported, not raised: this is the health check
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
    return {"ok": True}


@router.get("/metrics")
def metrics(api_metrics: MetricsDep) -> Response:
    return Response(generate_latest(api_metrics.registry), media_type=CONTENT_TYPE_LATEST)
