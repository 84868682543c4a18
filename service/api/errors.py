"""One error shape for every failure: {"error": {"message", "type", "code", "param"}}.

Each package's documented exception tree (`debate.errors`, `service.store.errors`,
`trainers.errors`) is mapped to HTTP here, once, by `_STATUS`; a browser page asked for without a
key is redirected to its login form instead. An unexpected exception becomes a 500 here too, inside
the app: its traceback goes to the server log, never to the client, and the connection stays usable
(an exception that reaches uvicorn closes it).
"""

import logging
from collections.abc import Awaitable, Callable
from urllib.parse import urlencode

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from debate.errors import (
    ContextTooLong,
    DebateError,
    InvalidProtocol,
    ModelNotFound,
    StrongModelBadResponse,
    StrongModelError,
    StrongModelUnavailable,
)
from service.api.deps import LoginRequired
from service.store.errors import (
    FileError,
    FileInUse,
    FileNotFound,
    FileTooLarge,
    InvalidFile,
    InvalidServedName,
    JobError,
    JobNotFound,
    StoreError,
    VersionError,
    VersionNotFound,
)
from trainers.errors import RunConfigError, TaskDataError, TrainersError

log = logging.getLogger(__name__)

ROOTS: tuple[type[Exception], ...] = (DebateError, StoreError, TrainersError)
# (error class, HTTP status, error type, param at fault): the first row the error is an instance of
# wins, so a subclass comes before its base, and the store's rows before debate's (NoAdapter is both).
_STATUS: list[tuple[type[Exception], int, str, str | None]] = [
    (InvalidFile, 422, "invalid_file", "body.file"),
    (FileTooLarge, 413, "file_too_large", "body.file"),
    (FileNotFound, 404, "not_found", None),
    (FileInUse, 409, "conflict", None),
    (FileError, 400, "invalid_file", None),
    (JobNotFound, 404, "not_found", None),
    (JobError, 409, "conflict", None),
    (VersionNotFound, 404, "not_found", None),
    (InvalidServedName, 422, "invalid_request", None),
    (VersionError, 409, "conflict", None),
    (InvalidProtocol, 422, "invalid_request", "body"),
    (StrongModelUnavailable, 503, "strong_model_unavailable", None),
    (ContextTooLong, 422, "context_too_long", None),
    (ModelNotFound, 404, "model_not_found", None),
    (StrongModelBadResponse, 502, "strong_model_bad_response", None),
    (StrongModelError, 502, "strong_model_error", None),
    (RunConfigError, 422, "invalid_request", "body"),
    (TaskDataError, 422, "invalid_request", None),
]


class ErrorDetail(BaseModel):
    message: str
    type: str
    code: int
    param: str | None


class ErrorBody(BaseModel):
    """What every failure answers (documented as each operation's `default` response)."""

    error: ErrorDetail


ERROR_RESPONSES: dict[int | str, dict] = {"default": {"model": ErrorBody, "description": "Any error"}}


class ApiError(Exception):
    """An error a route reports as it is: HTTP status, error type, message, and the parameter at fault."""

    def __init__(self, status: int, message: str, type_: str, param: str | None = None) -> None:
        super().__init__(message)
        self.status, self.type, self.param = status, type_, param


def error_response(
    status: int, message: str, type_: str, param: str | None = None, headers: dict[str, str] | None = None
) -> JSONResponse:
    body = {"error": {"message": message, "type": type_, "code": status, "param": param}}
    return JSONResponse(body, status_code=status, headers=headers)


def _field_path(location: tuple) -> str:
    return ".".join(str(part) for part in location)


async def _validation(_request: Request, exc: RequestValidationError) -> JSONResponse:
    problems = [f"{_field_path(e['loc'])}: {e['msg']}" for e in exc.errors()]
    first = exc.errors()[0]["loc"] if exc.errors() else ()
    return error_response(422, "; ".join(problems), "invalid_request", _field_path(first))


async def _http(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
    if exc.status_code == 400:  # a body FastAPI could not parse: the same 422 as any other invalid body
        return error_response(422, f"body: {exc.detail}", "invalid_request", "body")
    type_ = {401: "unauthorized", 403: "forbidden", 404: "not_found", 405: "method_not_allowed"}.get(
        exc.status_code, "http_error"
    )
    return error_response(exc.status_code, str(exc.detail), type_, headers=exc.headers)


async def _api_error(_request: Request, exc: ApiError) -> JSONResponse:
    return error_response(exc.status, str(exc), exc.type, exc.param)


async def _package_error(_request: Request, exc: Exception) -> JSONResponse:
    for error_type, status, type_, param in _STATUS:
        if isinstance(exc, error_type):
            return error_response(status, str(exc), type_, param)
    return error_response(500, str(exc), "internal_error")


async def _login_required(_request: Request, exc: LoginRequired) -> RedirectResponse:
    return RedirectResponse(f"/ui/login?{urlencode({'next': exc.next_url})}", status_code=303)


def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.error("%s %s failed", request.method, request.url.path, exc_info=exc)
    return error_response(500, f"internal error ({type(exc).__name__}); see the server log", "internal_error")


async def _answer_unexpected(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
    try:
        return await call_next(request)
    except Exception as exc:  # noqa: BLE001 - the last line of defence: one error shape, the connection kept
        return _unexpected(request, exc)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(StarletteHTTPException, _http)
    app.add_exception_handler(ApiError, _api_error)
    for root in ROOTS:
        app.add_exception_handler(root, _package_error)
    app.add_exception_handler(LoginRequired, _login_required)
    app.middleware("http")(_answer_unexpected)
