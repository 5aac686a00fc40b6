"""Errors as HTTP answers: one table from the ``PepperError`` tree to status codes, one body shape.

Every error answer is ``{"error": {"type": <PepperError class name>, "message": ..., "field": ...}}``, FastAPI's
own validation errors (422) included, so a client maps any answer back to the same exception class; ``facts``, when
there are any, holds the error's ids and lists (``task_id``, ``rejected``...: ``pepper.errors.base.SHARED_FACTS``).
Only a bug answers 500; nothing a client sends should.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pepper import errors as e
from pepper.errors.base import facts

log = logging.getLogger("pepper.http")

#: The most a request body may hold.
MAX_BODY = 1024 * 1024

#: Status code of each error class; an error takes the entry of its nearest class here (by its MRO).
STATUS: dict[type[e.PepperError], int] = {
    e.RequestTooLargeError: 413,
    e.DuplicateTaskError: 409,
    e.ValidationError: 400,
    e.WriteRefusedError: 400,  # a value the database cannot hold: the request's fault
    e.AuthenticationError: 401,
    e.AccessDeniedError: 403,
    e.NotFoundError: 404,
    e.ConflictError: 409,
    e.TaskFailedError: 409,  # asked for the result of a task that failed (or was parked)
    e.TaskCancelledError: 409,
    e.WaitTimeoutError: 409,  # still unfinished
    e.StoreBusyError: 503,
    e.DatabaseUnreachableError: 503,
    e.RuntimeClosedError: 503,  # the server is shutting down
    e.DatabaseDamagedError: 500,
    e.BlockingCallError: 500,
    e.PepperError: 400,
}

#: The error class named for a status that did not come from a pepper error (an unknown route, a bad method).
_BY_STATUS = {400: "ValidationError", 401: "AuthenticationError", 403: "AccessDeniedError", 404: "NotFoundError",
              405: "ValidationError", 409: "ConflictError", 413: "RequestTooLargeError", 422: "ValidationError",
              503: "StoreBusyError"}  # fmt: skip


class ErrorDetail(BaseModel):
    type: str
    message: str
    field: str | None = None
    facts: dict[str, Any] | None = Field(
        default=None, description="The error's ids and lists, by name (task_id, rejected, cycle...), when it has any."
    )


class ErrorBody(BaseModel):
    """What every error answer holds."""

    error: ErrorDetail


#: The error answers documented on every route of the API.
RESPONSES: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody, "description": text}
    for code, text in (
        (400, "Bad input"),
        (401, "No token, or an unknown or revoked one"),
        (403, "The token's scope is too small, or the request is forbidden"),
        (404, "Unknown id"),
        (409, "Conflict: a duplicate, or not finished yet"),
        (413, "Body over 1 MiB"),
        (422, "Invalid request"),
        (503, "The database cannot be reached now"),
    )
}


def status_of(exc: e.PepperError) -> int:
    """The status code the table gives ``exc``."""
    for cls in type(exc).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 500


def error_response(status: int, kind: str, message: str, field: str | None = None, **headers: str) -> JSONResponse:
    body = {"error": {"type": kind, "message": message, "field": field}}
    return JSONResponse(body, status_code=status, headers=headers or None)


def _pepper_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, e.PepperError)
    status = status_of(exc)
    if status >= 500:
        log.error("%s %s failed: %s", request.method, request.url.path, exc, exc_info=exc)
    return error_answer(exc)


def error_answer(exc: e.PepperError) -> JSONResponse:
    """The answer to ``exc``: its status by the table, its class, message, field and facts."""
    status = status_of(exc)
    field = getattr(exc, "field", None)
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else {}
    answer: dict[str, Any] = {
        "type": type(exc).__name__,
        "message": str(exc),
        "field": field if isinstance(field, str) else None,
    }
    if found := facts(exc):
        answer["facts"] = found
    return JSONResponse({"error": answer}, status_code=status, headers=headers or None)


def _invalid(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    problems = list(exc.errors())
    first = problems[0] if problems else {}
    if first.get("type") == "json_invalid":  # its place is a character's offset, not a field
        reason = (first.get("ctx") or {}).get("error", "JSON decode error")
        where = first.get("loc", ("body", 0))[-1]
        return error_response(422, "ValidationError", f"the body is not JSON ({reason}, at character {where}); "
                              "send a JSON object with Content-Type: application/json", "body")  # fmt: skip
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if tuple(first.get("loc", ())) == ("body",) and kind != "application/json" and not kind.endswith("+json"):
        given = f"Content-Type {kind!r}" if kind else "no Content-Type"  # e.g. curl -d without -H
        return error_response(422, "ValidationError", f"the body was sent with {given}; send it as JSON with "
                              "Content-Type: application/json", "body")  # fmt: skip
    where = [str(p) for p in first.get("loc", ()) if p not in ("body",)]
    place = ".".join(where)
    message = "; ".join(f"{'.'.join(str(p) for p in x.get('loc', ()))}: {x.get('msg', 'invalid')}" for x in problems)
    return error_response(422, "ValidationError", message or "invalid request", place or None)


def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    kind = _BY_STATUS.get(exc.status_code, "PepperError")
    message = str(exc.detail)
    if exc.status_code == 404 and message == "Not Found":
        message = f"no such route: {request.method} {request.url.path}; the API is described at /api/v1/docs"
    elif exc.status_code == 405:
        message = f"{request.method} is not allowed on {request.url.path}"
    return error_response(exc.status_code, kind, message, **(exc.headers or {}))


def _gone(request: Request, exc: Exception) -> JSONResponse:
    """A client that left before its request's body arrived: nobody reads the answer, and nothing went wrong
    here (no log: anyone who reaches the port could fill it)."""
    return error_response(400, "ClientDisconnect", "the request ended before its body arrived")


def _bug(request: Request, exc: Exception) -> JSONResponse:
    log.error("%s %s failed", request.method, request.url.path, exc_info=exc)
    return error_response(500, "InternalError", "the server failed to answer (a bug); it was logged")


def install(app: FastAPI) -> None:
    """Answer every error in the one body shape, and refuse bodies over ``MAX_BODY``."""
    app.add_exception_handler(e.PepperError, _pepper_error)
    app.add_exception_handler(RequestValidationError, _invalid)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(ClientDisconnect, _gone)
    app.add_exception_handler(Exception, _bug)
    app.add_middleware(BodyLimit, limit=MAX_BODY)


class BodyLimit:
    """Refuse a body over ``limit`` bytes with 413: at once when its Content-Length says so, else as soon as
    the streamed body passes the limit (the route's answer is then replaced by the 413)."""

    def __init__(self, app: ASGIApp, limit: int = MAX_BODY) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        too_large = _refusal(self.limit)
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = 0
                if declared > self.limit:
                    await too_large(scope, receive, send)
                    return
        received = 0
        over = False
        started = False

        async def counted() -> Message:
            nonlocal received, over
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    over = True
                    raise e.RequestTooLargeError(self.limit)
            return message

        async def guarded(message: Message) -> None:
            nonlocal started
            if over:
                if not started:
                    started = True
                    await too_large(scope, receive, send)
                return
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, guarded)
        except e.RequestTooLargeError:
            if not started:
                await too_large(scope, receive, send)


def _refusal(limit: int) -> ASGIApp:
    error = e.RequestTooLargeError(limit)
    return error_response(413, type(error).__name__, str(error), error.field, Connection="close")
