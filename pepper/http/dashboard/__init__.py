"""The dashboard: pages in a browser over the API, served by ``pepper serve`` at ``/``.

Every page is one shell (``static/index.html``) whose scripts draw the page named by the URL from the API's
answers; nothing is built and nothing comes from the internet. Signing in trades a token for a session cookie
(HttpOnly, SameSite=Strict, Secure over https) that ``pepper.http.auth`` accepts beside the bearer header; the
CSRF token beside it is read by the pages and echoed in ``X-CSRF-Token`` on every change. Every answer outside
the API carries a strict Content-Security-Policy: scripts, styles and connections from this origin only.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs

from anyio import to_thread
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pepper.errors import AccessDeniedError, AuthenticationError
from pepper.http.auth import CSRF_COOKIE, SESSION_COOKIE, csrf_token
from pepper.http.tokens import authenticate

STATIC = Path(__file__).parent / "static"

#: The pages, each a URL that can be reloaded and shared (the shell draws the one named).
PAGES = ("/", "/agents", "/tasks", "/tasks/{task_id:path}", "/runs", "/runs/{run_id:path}", "/dead-letters",
         "/resources", "/sign-in")  # fmt: skip

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
_HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
]

router = APIRouter(include_in_schema=False)


def install(app: FastAPI) -> None:
    """Serve the dashboard's pages, assets and sign-in from ``app``, with its security headers."""
    app.include_router(router)
    for path in PAGES:
        app.add_api_route(path, shell, methods=["GET"], include_in_schema=False)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.add_middleware(SecurityHeaders)


def shell() -> FileResponse:
    """The page shell; its scripts draw the page the URL names."""
    return FileResponse(STATIC / "index.html", media_type="text/html", headers={"Cache-Control": "no-store"})


@router.post("/session")
async def sign_in(request: Request) -> Response:
    """Trade a token (the form's ``token``) for a session cookie; back to the sign-in page, saying why, if it
    is not a live token."""
    if not _same_origin(request):  # a page of another site may not sign a browser in (login CSRF)
        return RedirectResponse("/sign-in?error=origin", status_code=303)
    form = parse_qs((await request.body()).decode("utf-8", "replace"))  # a one-field form: no parser needed
    secret = (form.get("token") or [""])[0].strip()
    record = await to_thread.run_sync(authenticate, request.app.state.runtime.store, secret) if secret else None
    if record is None:
        return RedirectResponse("/sign-in?error=token", status_code=303)
    response = RedirectResponse("/", status_code=303)
    secure = request.url.scheme == "https"
    response.set_cookie(SESSION_COOKIE, secret, httponly=True, samesite="strict", secure=secure, path="/")
    response.set_cookie(CSRF_COOKIE, csrf_token(secret), httponly=False, samesite="strict", secure=secure, path="/")
    return response


@router.post("/session/end")
def sign_out(request: Request) -> Response:
    """Forget the session: both cookies are cleared (signing out needs no token, but a page of this origin: 403
    for another site's, which changes nothing)."""
    if not _same_origin(request):  # a page of another site may not sign a browser out either
        denied = AccessDeniedError("only a page of this server may sign out of it; sign out from the dashboard")
        return JSONResponse({"error": {"type": type(denied).__name__, "message": str(denied), "field": None}}, 403)
    response = JSONResponse({"signed_out": True})
    secure = request.url.scheme == "https"
    for name in (SESSION_COOKIE, CSRF_COOKIE):
        response.delete_cookie(name, path="/", secure=secure, httponly=name == SESSION_COOKIE, samesite="strict")
    return response


@router.get("/session")
async def session(request: Request) -> JSONResponse:
    """Who the session is: the token's name and scope (the pages hide the actions a scope may not take)."""
    secret = request.cookies.get(SESSION_COOKIE, "")
    record = await to_thread.run_sync(authenticate, request.app.state.runtime.store, secret) if secret else None
    if record is None:
        error = AuthenticationError("not signed in: sign in with a token at /sign-in")
        return JSONResponse({"error": {"type": type(error).__name__, "message": str(error), "field": None}}, 401)
    return JSONResponse({"name": record.name, "scope": record.scope}, headers={"Cache-Control": "no-store"})


def _same_origin(request: Request) -> bool:
    # browsers send Sec-Fetch-Site; with Referrer-Policy no-referrer their Origin of a form is "null"
    site = request.headers.get("sec-fetch-site")
    if site is not None:
        return site in ("same-origin", "none")
    origin = request.headers.get("origin")
    return origin in (None, "null") or origin == f"{request.url.scheme}://{request.url.netloc}"


class SecurityHeaders:
    """Add the Content-Security-Policy and its companions to every answer (the API's docs page included: its
    scripts and styles are pepper's own files too)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *_HEADERS]
            await send(message)

        await self.app(scope, receive, send_with_headers)
