"""The API's interactive docs at ``/api/v1/docs``: Swagger UI over the OpenAPI document, all served by pepper.

Swagger UI's script and style come from the ``fastapi-offline`` package (part of the http extra), so the page
needs nothing from the internet. The page, its assets and the OpenAPI document live under ``/api/v1`` and so
need a token like every other route: a browser signed in to the dashboard sends its session cookie, and the
page's own script echoes the CSRF token on every change it sends ("Try it out"). A browser without a session
is told to sign in (401, as a page rather than JSON).
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse, HTMLResponse, Response
from starlette.types import Receive, Scope, Send

from pepper.errors import NotFoundError

DOCS = "/api/v1/docs"
_HERE = Path(__file__).parent
_SWAGGER = Path(str(resources.files("fastapi_offline") / "static"))

#: Every file the page references, by the name it is served under: where it is, and its content type.
ASSETS: dict[str, tuple[Path, str]] = {
    "swagger-ui-bundle.js": (_SWAGGER / "swagger-ui-bundle.js", "text/javascript"),
    "swagger-ui.css": (_SWAGGER / "swagger-ui.css", "text/css"),
    "docs.js": (_HERE / "docs.js", "text/javascript"),
    "docs.css": (_HERE / "docs.css", "text/css"),
}

_SIGN_IN = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>pepper API: sign in</title>
<link rel="stylesheet" href="/static/css/app.css"></head>
<body><main><section class="card"><h1>Sign in to read the API's docs</h1>
<p>Every page of the API needs a token. <a href="/sign-in">Sign in</a> with one, then open
<a href="/api/v1/docs">/api/v1/docs</a> again; or send <code>Authorization: Bearer TOKEN</code>.</p>
<p class="muted">Make one with <code>pepper token create --scope read --name NAME</code>.</p></section></main></body>
</html>
"""


def install(app: FastAPI) -> None:
    """Serve the docs page and its assets from ``app`` (the app itself is made with ``docs_url=None``)."""
    app.add_api_route(DOCS, page, methods=["GET"], include_in_schema=False)
    app.add_api_route(DOCS + "/{name}", asset, methods=["GET"], include_in_schema=False)


def page() -> FileResponse:
    """The docs page: Swagger UI drawn by ``docs.js`` from ``/api/v1/openapi.json``."""
    return FileResponse(_HERE / "docs.html", media_type="text/html", headers={"Cache-Control": "no-store"})


def asset(name: str) -> FileResponse:
    """One of the page's files, by the name the page uses; any other name is not found."""
    found = ASSETS.get(name)
    if found is None:
        raise NotFoundError(f"no such file of the API's docs: {name!r}; there are {', '.join(sorted(ASSETS))}")
    path, kind = found
    return FileResponse(path, media_type=kind, headers={"Cache-Control": "private, no-cache"})


async def sign_in_first(scope: Scope, receive: Receive, send: Send) -> None:
    """The answer to a browser asking for the docs page without a token: 401, with a link to sign in."""
    refusal: Response = HTMLResponse(_SIGN_IN, status_code=401, headers={"WWW-Authenticate": "Bearer"})
    await refusal(scope, receive, send)
