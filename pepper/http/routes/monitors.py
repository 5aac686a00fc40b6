"""``/api/v1/health``, ``/performance`` (and its ``/series``), ``/alerts``, ``/counts``, and Prometheus's
``/metrics``."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST

from pepper.core import HealthMonitor, PerformanceMonitor, ResourceMonitor
from pepper.core.prometheus import exposition
from pepper.http.auth import READ
from pepper.http.lists import Limit, Page, listed
from pepper.http.routes import runtime_of

router = APIRouter(tags=["monitors"])
metrics_router = APIRouter(tags=["monitors"])

Components = Annotated[list[str] | None, Query(description="Check only these components.")]


@router.get(
    "/health",
    dependencies=[READ],
    response_model=dict[str, Any],
    responses={503: {"description": "Unhealthy (the body is the same report)"}},
)
async def health(request: Request, component: Components = None) -> Response:
    """The verdict (the worst component's) with each component's reasons and numbers: 200 when healthy or
    degraded, 503 when unhealthy."""
    report = await HealthMonitor(runtime_of(request)).check_health_async(component or None)
    return JSONResponse(report.to_dict(), status_code=503 if report.status == "unhealthy" else 200)


@router.get("/health/metrics", dependencies=[READ], response_model=dict[str, dict[str, Any]])
def health_metrics(request: Request, component: Components = None) -> dict[str, dict[str, Any]]:
    """The numbers behind each component's verdict, by component (`HealthMonitor.get_health_metrics`); no
    agent's health check is called."""
    return HealthMonitor(runtime_of(request)).get_health_metrics(component or None)


@router.get("/performance", dependencies=[READ], response_model=dict[str, Any])
def performance(request: Request, window: str = "60s") -> dict[str, Any]:
    """Throughput, error rate and latencies over the last `window` (30s, 15m, 1h...), as `pepper perf --json`."""
    return PerformanceMonitor(runtime_of(request)).get_performance(window=window).to_dict()


@router.get("/observations", dependencies=[READ], response_model=Page)
def observations(
    request: Request, since: Annotated[float, Query(allow_inf_nan=False, description="A Unix time, in seconds.")]
) -> Page:
    """The attempts that ended after `since` (a Unix time): when, task type, agent, ok, queue wait and run time
    in seconds. The performance figures are made of them; a remote client computes its own from them."""
    found, _ = runtime_of(request).read(lambda backend: backend.observations(since))
    return Page(items=[o._asdict() for o in found])


@router.get("/performance/series", dependencies=[READ], response_model=Page)
def performance_series(request: Request, window: str = "1h", points: Annotated[int, Query(ge=1, le=120)] = 12) -> Page:
    """The last `window` in `points` equal slices, oldest first: each one's end (`at`) and its figures."""
    return Page(items=PerformanceMonitor(runtime_of(request)).get_series(window, points))


@router.get("/counts", dependencies=[READ], response_model=dict[str, Any])
def counts(request: Request) -> dict[str, Any]:
    """How many tasks and runs are in each state, and how many tasks wait in the dead-letter queue."""
    store = runtime_of(request).store
    by_state = store.count_by_state()
    return {"tasks": by_state, "runs": store.runs.count_by_state(), "parked": by_state.get("parked", 0)}


@router.get("/alerts", dependencies=[READ], response_model=Page)
def alerts(request: Request, limit: Limit = 100) -> Page:
    """The alerts that fired, newest first."""
    return Page(items=ResourceMonitor(runtime_of(request)).alerts(listed(limit)))


@metrics_router.get("/metrics", dependencies=[READ], response_class=PlainTextResponse)
def metrics(request: Request) -> PlainTextResponse:
    """pepper's metrics in Prometheus's text format, as `pepper metrics` prints them."""
    return PlainTextResponse(exposition(runtime_of(request)), media_type=CONTENT_TYPE_LATEST)
