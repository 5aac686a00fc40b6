"""Who may call: ``require(scope)``, the dependency every route declares.

``Authorization: Bearer <token>``, or the dashboard's session cookie (set at sign-in, HttpOnly); no token, or an
unknown or revoked one, is 401 (with ``WWW-Authenticate: Bearer``); a token whose scope is too small is 403. The
check reads the token store at every request, so a revoked token stops working at once; a long-lived answer
(an event stream) checks it again as it goes (``TokenWatch``) and ends once it is revoked.

CSRF: a browser sends the cookie with any request, a forged cross-site one included, so a request that changes
state and is authenticated by the cookie must also carry ``X-CSRF-Token``: a value derived from the session's
secret, which only pages of this origin can read (from the ``pepper_csrf`` cookie). Without it: 403.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import time
from collections.abc import Callable, Mapping
from http.cookies import CookieError, SimpleCookie
from typing import Annotated, Any

from anyio import to_thread
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.types import ASGIApp, Receive, Send
from starlette.types import Scope as AsgiScope

from pepper.errors import AccessDeniedError, AuthenticationError, PepperError, ScopeError, StoreBusyError
from pepper.http.errors import error_answer, error_response
from pepper.http.tokens import Scope, TokenRecord, authenticate, still_live

_bearer = HTTPBearer(auto_error=False, description="A pepper token: `pepper token create --scope read --name NAME`")


#: The cookie holding the session's token (HttpOnly), and the one holding its CSRF token (readable by the pages).
SESSION_COOKIE = "pepper_session"
CSRF_COOKIE = "pepper_csrf"
CSRF_HEADER = "x-csrf-token"
#: Methods that change nothing: no CSRF token needed.
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

log = logging.getLogger("pepper.http")

_NO_TOKEN = "this needs a token: send `Authorization: Bearer <token>` (`pepper token create` makes one)"
_BAD_TOKEN = "the token is unknown or was revoked; ask for a new one"


class TokenGate:
    """Answer 401 to a request of a guarded path without a valid token before anything else reads it (its body
    above all: a malformed body from someone without a token is still 401). The token found is kept in the
    request's state for ``require``, which then only checks its scope. ``pages`` names paths a browser opens
    (the API's docs page), each with its own refusal (a page saying how to sign in, rather than JSON)."""

    def __init__(
        self, app: ASGIApp, guarded: Callable[[str], bool], pages: Mapping[str, ASGIApp] | None = None
    ) -> None:
        self.app = app
        self.guarded = guarded
        self.pages = dict(pages or {})

    async def __call__(self, scope: AsgiScope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.guarded(scope["path"]):
            await self.app(scope, receive, send)
            return
        secret = _bearer_secret(scope)
        session = None if secret else _cookies(scope).get(SESSION_COOKIE)
        secret = secret or session
        store = scope["app"].state.runtime.store
        try:
            record = await to_thread.run_sync(lambda: authenticate(store, secret, now=time.time())) if secret else None
        except PepperError as exc:  # the database unreachable, say: 503, as any route reading it would answer
            log.warning("%s %s: could not check the token: %s", scope["method"], scope["path"], exc)
            await error_answer(exc)(scope, receive, send)
            return
        if record is None and scope["path"] in self.pages:
            await self.pages[scope["path"]](scope, receive, send)
            return
        if record is None:
            error = AuthenticationError(_BAD_TOKEN if secret else _NO_TOKEN)
            refusal = error_response(401, type(error).__name__, str(error), None, **{"WWW-Authenticate": "Bearer"})
            await refusal(scope, receive, send)
            return
        if session and scope["method"] not in SAFE_METHODS and not _csrf_ok(scope, session):
            denied = AccessDeniedError(_NO_CSRF)
            await error_response(403, type(denied).__name__, str(denied), None)(scope, receive, send)
            return
        scope.setdefault("state", {})["token"] = record
        await self.app(scope, receive, send)


_NO_CSRF = (
    "a change made with the session cookie must carry the X-CSRF-Token header (the pepper_csrf cookie's value); "
    "the dashboard's pages send it, a page of another site cannot"
)


def csrf_token(secret: str) -> str:
    """The CSRF token of a session: derived from its secret, so a token set by anyone else never matches."""
    return hmac.new(secret.encode(), b"pepper-csrf", hashlib.sha256).hexdigest()


def _csrf_ok(scope: AsgiScope, secret: str) -> bool:
    sent = next((v.decode("latin-1") for k, v in scope.get("headers", ()) if k == CSRF_HEADER.encode()), "")
    return hmac.compare_digest(sent.strip().encode(), csrf_token(secret).encode())


def _cookies(scope: AsgiScope) -> dict[str, str]:
    jar: SimpleCookie = SimpleCookie()
    for name, value in scope.get("headers", ()):
        if name == b"cookie":
            try:
                jar.load(value.decode("latin-1"))
            except CookieError:  # a malformed cookie header is no session
                return {}
    return {key: morsel.value for key, morsel in jar.items()}


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


#: How often (seconds) a long-lived answer reads its token again while it has nothing to send.
RECHECK_EVERY = 1.0


class TokenWatch:
    """The token a long-lived answer was opened with, read again from the store at most every ``every``
    seconds (on the server's thread pool): ``live()`` is False once it was revoked, here or by another process."""

    def __init__(self, store: Any, record: TokenRecord, every: float = RECHECK_EVERY) -> None:
        self.store = store
        self.record = record
        self.every = every
        self._checked_at = time.monotonic()
        self._live = True

    def due(self) -> bool:
        """True when the last reading is older than ``every`` seconds."""
        return self._live and time.monotonic() - self._checked_at >= self.every

    async def live(self, *, now: bool = False) -> bool:
        """Whether the token is still live: read afresh when due (or with ``now``), else as last read. A busy
        store keeps the last reading (the next one decides)."""
        if self._live and (now or self.due()):
            self._checked_at = time.monotonic()
            try:
                self._live = await to_thread.run_sync(still_live, self.store, self.record)
            except StoreBusyError:
                pass
        return self._live


READ: Any = Depends(require(Scope.READ))
WRITE: Any = Depends(require(Scope.WRITE))
ADMIN: Any = Depends(require(Scope.ADMIN))
