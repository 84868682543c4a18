"""FastAPI dependencies: the DB session, the strong model's replica pool, settings and API-key auth."""

import secrets
from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from debate import ReplicaPool
from service.api.prometheus import ApiMetrics
from service.settings import Settings

bearer = HTTPBearer(auto_error=False)


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


def get_db(request: Request) -> Iterator[Session]:
    """One transaction per request: committed if the handler returns, rolled back if it raises.

    Committed before the response is sent (scope "function"): a 2xx means the write is durable.
    """
    with request.app.state.sessions.begin() as session:
        yield session


def get_client(request: Request) -> ReplicaPool:
    """The strong model's client; 503 when this server runs without one (W2S_VLLM_BASE_URL empty)."""
    if request.app.state.client is None:
        raise HTTPException(
            503,
            "no strong model: this server answers read-only requests; set W2S_VLLM_BASE_URL "
            "(or start it with `w2s serve --start-vllm`) to run debates",
        )
    return request.app.state.client


def get_metrics(request: Request) -> ApiMetrics:
    return request.app.state.metrics


API_KEY_COOKIE = "w2s_api_key"  # set by the pages' login form (/ui/login)


class LoginRequired(Exception):
    """A page was asked for without an accepted key: errors.py redirects to the login form."""

    def __init__(self, next_url: str) -> None:
        super().__init__(next_url)
        self.next_url = next_url


def key_accepted(settings: Settings, key: str) -> bool:
    return any(secrets.compare_digest(key, accepted) for accepted in settings.api_keys)


def presented_key(request: Request, credentials: HTTPAuthorizationCredentials | None) -> str | None:
    """The key from `Authorization: Bearer`, or else from the cookie the pages' login sets."""
    return credentials.credentials if credentials else request.cookies.get(API_KEY_COOKIE)


def may_read(request: Request, settings: Settings, credentials: HTTPAuthorizationCredentials | None) -> bool:
    """Whether the request may see data: it presents an accepted key, or the API has none (local use)."""
    key = presented_key(request, credentials)
    return not settings.api_keys or (key is not None and key_accepted(settings, key))


def require_api_key(
    request: Request,
    settings: Annotated[Settings, Depends(get_settings)],
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> None:
    if not settings.api_keys:
        return
    key = presented_key(request, credentials)
    if key is None:
        raise HTTPException(
            401,
            "missing API key: send 'Authorization: Bearer <key>' (in a browser: log in at /ui/login)",
            headers={"WWW-Authenticate": "Bearer"},
        )
    if not key_accepted(settings, key):
        raise HTTPException(403, "API key not accepted; check W2S_API_KEYS on the server")


SessionDep = Annotated[Session, Depends(get_db, scope="function")]
ClientDep = Annotated[ReplicaPool, Depends(get_client)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
MetricsDep = Annotated[ApiMetrics, Depends(get_metrics)]
