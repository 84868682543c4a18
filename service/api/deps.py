"""FastAPI dependencies: the DB session, the strong-model client, settings and API-key auth."""

import secrets
from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from debate import StrongModelClient
from service.api.metrics import ApiMetrics
from service.settings import Settings

_bearer = HTTPBearer(auto_error=False)


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


def get_db(request: Request) -> Iterator[Session]:
    """One transaction per request: committed if the handler returns, rolled back if it raises."""
    with request.app.state.sessions.begin() as session:
        yield session


def get_client(request: Request) -> StrongModelClient:
    """The strong model's client; 503 when this server runs without one (W2S_VLLM_BASE_URL empty)."""
    if request.app.state.client is None:
        raise HTTPException(503, "no strong model: this server answers read-only requests; set W2S_VLLM_BASE_URL "
                                 "(or start it with `w2s serve --start-vllm`) to run debates")
    return request.app.state.client


def get_metrics(request: Request) -> ApiMetrics:
    return request.app.state.metrics


def require_api_key(
    settings: Annotated[Settings, Depends(get_settings)],
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> None:
    if not settings.api_keys:
        return
    if credentials is None:
        raise HTTPException(401, "missing API key: send 'Authorization: Bearer <key>'",
                            headers={"WWW-Authenticate": "Bearer"})
    if not any(secrets.compare_digest(credentials.credentials, key) for key in settings.api_keys):
        raise HTTPException(403, "API key not accepted; check W2S_API_KEYS on the server")


SessionDep = Annotated[Session, Depends(get_db)]
ClientDep = Annotated[StrongModelClient, Depends(get_client)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
MetricsDep = Annotated[ApiMetrics, Depends(get_metrics)]
