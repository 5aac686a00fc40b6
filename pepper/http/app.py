"""``create_app(runtime)``: the HTTP API over one runtime.

The API lives under ``/api/v1`` (its OpenAPI document at ``/api/v1/openapi.json``, interactive docs at
``/api/v1/docs``, served by pepper itself: ``pepper.http.docs``); Prometheus scrapes ``/metrics``; the
dashboard's pages are everywhere else (``pepper.http.dashboard``). Every route of the API, its description and
docs included, and the metrics need a token (``pepper.http.auth``): a bearer header, or the dashboard's
session cookie.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI

import pepper
from pepper.core.runtime import Runtime
from pepper.http import dashboard, docs, errors
from pepper.http.auth import TokenGate
from pepper.http.events import ChangeFeed
from pepper.http.routes import agents, dlq, events, monitors, resources, runs, schedules, tasks, tokens

API = "/api/v1"


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
        docs_url=None,  # served by pepper.http.docs, from pepper's own files
        redoc_url=None,
        swagger_ui_oauth2_redirect_url=None,
        lifespan=lifespan,
        responses=errors.RESPONSES,
    )
    app.state.runtime = runtime
    app.state.feed = feed
    app.state.stopping = asyncio.Event()  # set as the server begins to stop: long waits end then
    errors.install(app)
    # outermost: no token, no further reading of the request (the docs page, opened in a browser, says how to sign in)
    app.add_middleware(TokenGate, guarded=_guarded, pages={docs.DOCS: docs.sign_in_first})
    api = APIRouter(prefix=API)
    for module in (tasks, runs, schedules, agents, resources, dlq, monitors, events, tokens):
        api.include_router(module.router)
    api.include_router(agents.workload_router)
    app.include_router(api)
    app.include_router(monitors.metrics_router)
    docs.install(app)
    dashboard.install(app)
    return app


def _guarded(path: str) -> bool:
    """Every path of the API (its description and docs too) and the metrics need a token."""
    return path == "/metrics" or path.startswith(f"{API}/")
