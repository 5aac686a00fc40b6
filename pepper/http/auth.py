"""Who may call: ``require(scope)``, the dependency every route declares.

``Authorization: Bearer <token>``; no token, or an unknown or revoked one, is 401 (with ``WWW-Authenticate:
Bearer``); a token whose scope is too small is 403. The check reads the token store at every request, so a
revoked token stops working at once.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from pepper.errors import AuthenticationError, ScopeError
from pepper.http.tokens import Scope, TokenRecord, authenticate

_bearer = HTTPBearer(auto_error=False, description="A pepper token: `pepper token create --scope read --name NAME`")


def require(needed: Scope) -> Callable[..., TokenRecord]:
    """A dependency that lets a request through only with a token of scope ``needed`` or above."""

    # a plain function: FastAPI runs it on its thread pool, so the token store's read never blocks the loop
    def check(
        request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
    ) -> TokenRecord:
        if credentials is None or not credentials.credentials:
            raise AuthenticationError(
                "this needs a token: send `Authorization: Bearer <token>` (`pepper token create` makes one)"
            )
        record = authenticate(request.app.state.runtime.store, credentials.credentials, now=time.time())
        if record is None:
            raise AuthenticationError("the token is unknown or was revoked; ask for a new one")
        if not Scope(record.scope).allows(needed):
            raise ScopeError(needed.value, Scope(record.scope).value)
        return record

    check.__name__ = f"require_{needed.value}"
    return check


READ: Any = Depends(require(Scope.READ))
WRITE: Any = Depends(require(Scope.WRITE))
ADMIN: Any = Depends(require(Scope.ADMIN))
