"""Who may call: ``require(scope)``, the dependency every route declares.

``Authorization: Bearer <token>``; no token, or an unknown or revoked one, is 401 (with ``WWW-Authenticate:
Bearer``); a token whose scope is too small is 403. The check reads the token store at every request, so a
revoked token stops working at once.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Annotated, Any

from anyio import to_thread
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.types import ASGIApp, Receive, Send
from starlette.types import Scope as AsgiScope

from pepper.errors import AuthenticationError, ScopeError
from pepper.http.errors import error_response
from pepper.http.tokens import Scope, TokenRecord, authenticate

_bearer = HTTPBearer(auto_error=False, description="A pepper token: `pepper token create --scope read --name NAME`")


_NO_TOKEN = "this needs a token: send `Authorization: Bearer <token>` (`pepper token create` makes one)"
_BAD_TOKEN = "the token is unknown or was revoked; ask for a new one"


class TokenGate:
    """Answer 401 to a request of a guarded path without a valid token before anything else reads it (its body
    above all: a malformed body from someone without a token is still 401). The token found is kept in the
    request's state for ``require``, which then only checks its scope."""

    def __init__(self, app: ASGIApp, guarded: Callable[[str], bool]) -> None:
        self.app = app
        self.guarded = guarded

    async def __call__(self, scope: AsgiScope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.guarded(scope["path"]):
            await self.app(scope, receive, send)
            return
        secret = _bearer_secret(scope)
        store = scope["app"].state.runtime.store
        record = await to_thread.run_sync(lambda: authenticate(store, secret, now=time.time())) if secret else None
        if record is None:
            error = AuthenticationError(_BAD_TOKEN if secret else _NO_TOKEN)
            refusal = error_response(401, type(error).__name__, str(error), None, **{"WWW-Authenticate": "Bearer"})
            await refusal(scope, receive, send)
            return
        scope.setdefault("state", {})["token"] = record
        await self.app(scope, receive, send)


def _bearer_secret(scope: AsgiScope) -> str | None:
    for name, value in scope.get("headers", ()):
        if name == b"authorization":
            kind, _, secret = value.decode("latin-1").partition(" ")
            return secret.strip() or None if kind.lower() == "bearer" else None
    return None


def require(needed: Scope) -> Callable[..., TokenRecord]:
    """A dependency that lets a request through only with a token of scope ``needed`` or above."""

    # a plain function: FastAPI runs it on its thread pool, so the token store's read never blocks the loop
    def check(
        request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
    ) -> TokenRecord:
        record: TokenRecord | None = getattr(request.state, "token", None)  # checked by the TokenGate already
        if record is None:
            if credentials is None or not credentials.credentials:
                raise AuthenticationError(_NO_TOKEN)
            record = authenticate(request.app.state.runtime.store, credentials.credentials, now=time.time())
            if record is None:
                raise AuthenticationError(_BAD_TOKEN)
        if not Scope(record.scope).allows(needed):
            raise ScopeError(needed.value, Scope(record.scope).value)
        return record

    check.__name__ = f"require_{needed.value}"
    return check


READ: Any = Depends(require(Scope.READ))
WRITE: Any = Depends(require(Scope.WRITE))
ADMIN: Any = Depends(require(Scope.ADMIN))
