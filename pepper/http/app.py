"""``create_app(runtime)``: the HTTP API over one runtime.

The API lives under ``/api/v1`` (its OpenAPI document at ``/api/v1/openapi.json``, interactive docs at
``/api/v1/docs``, both open to anyone: they describe, they reveal no data); Prometheus scrapes ``/metrics``
(with a token); ``GET /`` is the dashboard's place. Every other route needs a token (``pepper.http.auth``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI
from fastapi.responses import HTMLResponse

import pepper
from pepper.core.runtime import Runtime
from pepper.http import errors
from pepper.http.events import ChangeFeed
from pepper.http.routes import agents, dlq, events, monitors, resources, runs, tasks

API = "/api/v1"

_HOME = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>pepper</title></head>
<body style="font-family: sans-serif; max-width: 40em; margin: 3em auto">
<h1>pepper</h1>
<p>The dashboard comes here. Meanwhile the API is described at <a href="/api/v1/docs">/api/v1/docs</a>.</p>
</body></html>
"""


def create_app(runtime: Runtime) -> FastAPI:
    """The API answering from ``runtime`` (its store, its engine, its agents)."""
    feed = ChangeFeed(runtime)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await feed.start()
        try:
            yield
        finally:
            await feed.close()

    app = FastAPI(
        title="pepper",
        version=pepper.__version__,
        description="Submit and follow tasks and workflow runs, read agents, resources and monitors.",
        openapi_url=f"{API}/openapi.json",
        docs_url=f"{API}/docs",
        redoc_url=None,
        lifespan=lifespan,
        responses=errors.RESPONSES,
    )
    app.state.runtime = runtime
    app.state.feed = feed
    errors.install(app)
    api = APIRouter(prefix=API)
    for module in (tasks, runs, agents, resources, dlq, monitors, events):
        api.include_router(module.router)
    app.include_router(api)
    app.include_router(monitors.metrics_router)
    app.add_api_route("/", home, methods=["GET"], response_class=HTMLResponse, include_in_schema=False)
    return app


def home() -> HTMLResponse:
    """A placeholder for the dashboard."""
    return HTMLResponse(_HOME)
