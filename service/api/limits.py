"""Bounds on what one request may send: body size, string lengths and characters, ids.

Checked at the edge, the same on SQLite and PostgreSQL, before any work or write happens:
* `BodySizeLimit` answers 413 from Content-Length before reading a body, or as soon as a
  streamed body passes the limit (uploads get `max_upload_bytes`, everything else `max_request_bytes`);
* `check_strings` rejects NUL characters (PostgreSQL cannot store them) and strings over
  `max_string_chars` anywhere in the query or a JSON body, 422 with the field path;
* `IdPath` / `IdQuery` / `IdCursor` keep ids within the id columns' range (larger ones overflow the drivers).
"""

import json
from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import Path, Query, Request
from fastapi.exceptions import RequestValidationError
from pydantic import AfterValidator
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.api.errors import error_response
from service.settings import Settings

MAX_ID = 2**31 - 1  # ids are INTEGER columns: 32-bit on PostgreSQL (SQLite's 64 bits never get there)
MULTIPART_OVERHEAD_BYTES = 64 * 1024  # form fields and part headers around an uploaded file
UPLOAD_PATH = "/v1/files"

IdPath = Annotated[int, Path(ge=1, le=MAX_ID, description="A row id.")]
IdQuery = Annotated[int | None, Query(ge=1, le=MAX_ID, description="A row id.")]


def _id_digits(cursor: str | None) -> str | None:
    if cursor and int(cursor) > MAX_ID:
        raise ValueError(f"must be an id up to {MAX_ID}")
    return cursor


IdCursor = Annotated[
    str | None, Query(pattern=r"^\d{0,10}$", description="next_cursor of the previous page"), AfterValidator(_id_digits)
]


class BodySizeLimit:
    """Pure ASGI: a body over the limit is a 413 before the app buffers it."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.max_request_bytes = settings.max_request_bytes
        self.max_upload_bytes = settings.max_upload_bytes + MULTIPART_OVERHEAD_BYTES

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.max_upload_bytes if scope["path"] == UPLOAD_PATH else self.max_request_bytes
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            await _too_large(limit)(scope, receive, send)
            return
        await _within(self.app, limit, scope, receive, send)


async def _within(app: ASGIApp, limit: int, scope: Scope, receive: Receive, send: Send) -> None:
    """Run `app`, but once its body passes `limit` bytes tell it the client left and answer 413 instead."""
    received, over = 0, False

    async def counting_receive() -> Message:
        nonlocal received, over
        message = await receive()
        received += len(message.get("body", b""))
        if received > limit:
            over = True
            return {"type": "http.disconnect"}
        return message

    async def guarded_send(message: Message) -> None:
        if not over:  # the app's answer to a body it never got whole is dropped
            await send(message)

    await app(scope, counting_receive, guarded_send)
    if over:
        await _too_large(limit)(scope, receive, send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            return int(value) if value.isdigit() else None
    return None


def _too_large(limit: int):  # noqa: ANN202 - a Response, which is an ASGI app
    return error_response(
        413,
        f"request body over {limit} bytes (W2S_MAX_REQUEST_BYTES, W2S_MAX_UPLOAD_BYTES)",
        "request_too_large",
        "body",
    )


async def check_strings(request: Request) -> None:
    """422 naming the field when a query value or a JSON string holds NUL or is over `max_string_chars`."""
    max_chars = request.app.state.settings.max_string_chars
    problems = [
        {"loc": loc, "msg": message, "type": "value_error", "input": None}
        for loc, text in _strings(request, await _json_body(request))
        if (message := _string_problem(text, max_chars))
    ]
    if problems:
        raise RequestValidationError(problems)


def _string_problem(text: str, max_chars: int) -> str | None:
    if "\x00" in text:
        return "must not contain NUL characters (\\u0000)"
    if len(text) > max_chars:
        return f"longer than {max_chars} characters (W2S_MAX_STRING_CHARS)"
    return None


async def _json_body(request: Request) -> Any:
    if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
        return None
    try:
        return json.loads(await request.body())
    except ValueError:  # FastAPI reports invalid JSON itself, with the position
        return None


def _strings(request: Request, body: Any) -> Iterator[tuple[tuple[str | int, ...], str]]:
    for name, value in request.query_params.multi_items():
        yield ("query", name), name
        yield ("query", name), value
    yield from _walk(("body",), body)


def _walk(loc: tuple[str | int, ...], value: Any) -> Iterator[tuple[tuple[str | int, ...], str]]:
    if isinstance(value, str):
        yield loc, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield loc + (key,), key
            yield from _walk(loc + (key,), item)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _walk(loc + (index,), item)
