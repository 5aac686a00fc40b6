"""Speaking to a pepper server: requests with the token, answers as JSON, error bodies as the same PepperError.

``Connection`` holds a server's address and token and makes requests both ways: blocking (``get``, ``post``...,
for the faces' reads answered at once) and awaited (``aget``, ``apost``..., on the remote runtime's own loop).
The token travels in the ``Authorization`` header only: never in a URL, a message or a ``repr``.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Mapping
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import httpx

from pepper import errors as e
from pepper.errors import PepperError, ServerUnreachableError, ValidationError
from pepper.errors.base import with_facts

#: The error class an answer's status stands for when its body names none this client knows.
_BY_STATUS: dict[int, type[PepperError]] = {
    400: e.ValidationError,
    401: e.AuthenticationError,
    403: e.AccessDeniedError,
    404: e.NotFoundError,
    409: e.ConflictError,
    413: e.RequestTooLargeError,
    422: e.ValidationError,
    503: e.StoreBusyError,
}

#: Seconds to wait for a server to answer beyond what a request asks it to wait (``?wait=``).
TIMEOUT = 30.0


def error_from(status: int, body: Any, url: str) -> PepperError:
    """The PepperError an error answer stands for: the class its body names, else the nearest one by status."""
    detail = body.get("error") if isinstance(body, Mapping) else None
    kind = detail.get("type") if isinstance(detail, Mapping) else None
    message = detail.get("message") if isinstance(detail, Mapping) else None
    field = detail.get("field") if isinstance(detail, Mapping) else None
    named = getattr(e, kind, None) if isinstance(kind, str) else None
    cls = named if isinstance(named, type) and issubclass(named, PepperError) else None
    if cls is None:
        cls = _BY_STATUS.get(status, PepperError)
    text = message if isinstance(message, str) and message else f"the server at {url} answered {status}"
    # the classes' own constructors take the facts they format (ids, lists); the server formatted them already
    error = cls.__new__(cls)
    Exception.__init__(error, text)
    error.field = field if isinstance(field, str) else None  # type: ignore[attr-defined]
    error.status = status  # type: ignore[attr-defined]
    return with_facts(error, detail.get("facts") if isinstance(detail, Mapping) else None)


def shown_url(url: str) -> str:
    """``url`` with the password of its user part (``http://user:password@host``) as ``***``: safe to print."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url.rpartition("@")[2]  # not a URL a client could use: never its user part
    if parts.password is None:
        return url
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{parts.username}:***@{host}"))


def escaped_id(identifier: str) -> str:
    """``identifier`` as one path segment: every ``/`` in it escaped, so no id is read as a sub-resource, and an
    id of ``.`` or ``..`` written ``%2E`` / ``%2E%2E``, so it is never taken for a dot segment and removed."""
    return dot_safe(quote(identifier, safe=""))


def dot_safe(segment: str) -> str:
    """``segment`` (already escaped) with its dots as ``%2E`` if it is ``.`` or ``..``, which URL handling
    would otherwise remove with the segment before it."""
    return segment.replace(".", "%2E") if segment in (".", "..") else segment


def task_path(task_id: str) -> str:
    """``/tasks/<id>`` with the id escaped as one segment (``flow-1/result`` is ``flow-1%2Fresult``)."""
    return "/tasks/" + escaped_id(task_id)


class Connection:
    """A pepper server's ``/api/v1`` at ``url``, used with ``token``."""

    def __init__(self, url: str | None = None, token: str | None = None, *, timeout: float = TIMEOUT) -> None:
        url = url if url is not None else os.environ.get("PEPPER_SERVER")
        if not isinstance(url, str) or not url.strip():
            raise ValidationError(
                "no server given: pass its URL (e.g. 'http://127.0.0.1:8080') or set $PEPPER_SERVER", field="url"
            )
        parts = urlsplit(url.strip())
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValidationError(
                f"a server URL looks like 'http://host:8080' (http or https), got {shown_url(url)!r}", field="url"
            )
        #: The server's URL as shown (in messages, ``repr``, suggested commands): its password, if any, as ``***``.
        self.url = shown_url(f"{parts.scheme}://{parts.netloc}{parts.path.rstrip('/')}")
        token = token if token is not None else os.environ.get("PEPPER_TOKEN")
        if token is not None and not isinstance(token, str):
            raise ValidationError(f"a token is text, got {type(token).__name__}", field="token")
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._options: dict[str, Any] = {
            "base_url": f"{parts.scheme}://{parts.netloc}{parts.path.rstrip('/')}/api/v1",
            "headers": headers,
            "timeout": httpx.Timeout(timeout, connect=min(timeout, 10.0)),
        }
        self._timeout = timeout
        self._sync = httpx.Client(**self._options)
        self._async: httpx.AsyncClient | None = None

    def __repr__(self) -> str:
        return f"<pepper server {self.url}>"

    # -- blocking ----------------------------------------------------------------------------------------

    def request(self, method: str, path: str, *, wait: float = 0.0, **kwargs: Any) -> Any:
        """The JSON answer to a request; a PepperError for an error answer or a server that cannot be reached."""
        try:
            response = self._sync.request(method, path, timeout=self._timeout + wait, **kwargs)
        except httpx.HTTPError as exc:
            raise self._unreachable(exc) from None
        return self._answer(response)

    def get(self, path: str, **params: Any) -> Any:
        return self.request("GET", path, params=_params(params))

    def post(self, path: str, body: Any = None) -> Any:
        return self.request("POST", path, json=body)

    # -- awaited (on one event loop: the remote runtime's) -------------------------------------------------

    def _client(self) -> httpx.AsyncClient:
        if self._async is None:
            self._async = httpx.AsyncClient(**self._options)
        return self._async

    async def arequest(
        self, method: str, path: str, *, wait: float = 0.0, accept_status: tuple[int, ...] = (), **kwargs: Any
    ) -> Any:
        """``request`` awaited; an answer with a status in ``accept_status`` is returned, not raised."""
        try:
            response = await self._client().request(method, path, timeout=self._timeout + wait, **kwargs)
        except httpx.HTTPError as exc:
            raise self._unreachable(exc) from None
        return self._answer(response, accept_status)

    async def aget(self, path: str, *, wait: float = 0.0, **params: Any) -> Any:
        return await self.arequest("GET", path, wait=wait, params=_params(params))

    async def apost(self, path: str, body: Any = None) -> Any:
        return await self.arequest("POST", path, json=body)

    async def adelete(self, path: str, body: Any = None) -> Any:
        return await self.arequest("DELETE", path, json=body)

    async def events(self, **params: Any) -> AsyncIterator[tuple[str, dict[str, Any]]]:
        """The server's events (``/events``) as ``(kind, data)``, for as long as the caller reads them."""
        import json

        client = self._client()
        try:
            async with client.stream("GET", "/events", params=_params(params), timeout=None) as response:
                if response.status_code >= 400:
                    await response.aread()
                    self._answer(response)
                kind, data = "message", ""
                async for line in response.aiter_lines():
                    if line.startswith(":"):
                        continue
                    if not line:
                        if data:
                            yield kind, json.loads(data)
                        kind, data = "message", ""
                    elif line.startswith("event:"):
                        kind = line[6:].strip()
                    elif line.startswith("data:"):
                        data += line[5:].strip()
        except httpx.HTTPError as exc:
            raise self._unreachable(exc) from None

    async def aclose(self) -> None:
        if self._async is not None:
            await self._async.aclose()
            self._async = None

    def close(self) -> None:
        self._sync.close()

    # -- answers ------------------------------------------------------------------------------------------

    def _answer(self, response: httpx.Response, accept_status: tuple[int, ...] = ()) -> Any:
        try:
            body = response.json() if response.content else None
        except ValueError:
            body = None
        if response.status_code >= 400 and response.status_code not in accept_status:
            raise error_from(response.status_code, body, self.url)
        return body

    def _unreachable(self, exc: httpx.HTTPError) -> ServerUnreachableError:
        reason = type(exc).__name__
        if isinstance(exc, httpx.ConnectError):
            reason = "the connection was refused or the host is unknown"
        elif isinstance(exc, httpx.TimeoutException):
            reason = "it did not answer in time"
        return ServerUnreachableError(self.url, reason)


def _params(params: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in params.items() if v is not None}
