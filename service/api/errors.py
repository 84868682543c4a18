"""One error shape for every failure: {"error": {"message", "type", "code", "param"}}.

Lower-level errors (debate client, queue, validation) are mapped to HTTP here, once; a browser page
asked for without a key is redirected to its login form instead. An unexpected exception becomes a
500 here too, inside the app: its traceback goes to the server log, never to the client, and the
connection stays usable (an exception that reaches uvicorn closes it).
"""

import logging
from collections.abc import Awaitable, Callable
from urllib.parse import urlencode

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from debate import (
    ContextTooLong,
    InvalidProtocol,
    ModelNotFound,
    StrongModelBadResponse,
    StrongModelError,
    StrongModelUnavailable,
)
from service.api.deps import LoginRequired
from service.store.uploaded_files import FileError, FileInUse, FileNotFound, FileTooLarge, InvalidFile
from service.store.jobs import JobError, JobNotFound

log = logging.getLogger(__name__)

_STRONG_MODEL_STATUS: list[tuple[type[StrongModelError], int, str]] = [
    (StrongModelUnavailable, 503, "strong_model_unavailable"),
    (ContextTooLong, 422, "context_too_long"),
    (ModelNotFound, 404, "model_not_found"),
    (StrongModelBadResponse, 502, "strong_model_bad_response"),
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


_FILE_STATUS: list[tuple[type[FileError], int, str, str | None]] = [
    (InvalidFile, 422, "invalid_file", "body.file"),
    (FileTooLarge, 413, "file_too_large", "body.file"),
    (FileNotFound, 404, "not_found", None),
    (FileInUse, 409, "conflict", None),
]


def error_response(status: int, message: str, type_: str, param: str | None = None,
                   headers: dict[str, str] | None = None) -> JSONResponse:
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
        exc.status_code, "http_error")
    return error_response(exc.status_code, str(exc.detail), type_, headers=exc.headers)


async def _invalid_protocol(_request: Request, exc: InvalidProtocol) -> JSONResponse:
    return error_response(422, str(exc), "invalid_request", "body")


async def _strong_model(_request: Request, exc: StrongModelError) -> JSONResponse:
    for error_type, status, type_ in _STRONG_MODEL_STATUS:
        if isinstance(exc, error_type):
            return error_response(status, str(exc), type_)
    return error_response(502, str(exc), "strong_model_error")


async def _job_error(_request: Request, exc: JobError) -> JSONResponse:
    status = 404 if isinstance(exc, JobNotFound) else 409
    return error_response(status, str(exc), "not_found" if status == 404 else "conflict")


async def _api_error(_request: Request, exc: ApiError) -> JSONResponse:
    return error_response(exc.status, str(exc), exc.type, exc.param)


async def _file_error(_request: Request, exc: FileError) -> JSONResponse:
    for error_type, status, type_, param in _FILE_STATUS:
        if isinstance(exc, error_type):
            return error_response(status, str(exc), type_, param)
    return error_response(400, str(exc), "invalid_file")


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
    app.add_exception_handler(InvalidProtocol, _invalid_protocol)
    app.add_exception_handler(StrongModelError, _strong_model)
    app.add_exception_handler(JobError, _job_error)
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(FileError, _file_error)
    app.add_exception_handler(LoginRequired, _login_required)
    app.middleware("http")(_answer_unexpected)
