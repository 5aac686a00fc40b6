"""``/api/v1/schedules``: list, add (or replace), pause, resume and delete the schedules of workflows.

A schedule's workflow arrives as a document (as in a workflow file, naming only agents that workers run).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from pepper.core.documents import workflow_from_document
from pepper.core.schedules import delete_schedule, pause_schedule, resume_schedule, schedule, schedules
from pepper.http.auth import READ, WRITE
from pepper.http.routes import runtime_of

router = APIRouter(tags=["schedules"])


class ScheduleBody(BaseModel):
    name: str
    workflow: dict[str, Any]
    cron: str | None = None
    every: float | str | None = None
    timezone: str | None = None
    catch_up: bool | None = None
    inputs: dict[str, Any] | None = None


@router.get("/schedules", dependencies=[READ], response_model=list[dict[str, Any]])
async def list_schedules(request: Request) -> list[dict[str, Any]]:
    """Every schedule, by name, with its next tick (``next_fire``: in the schedule's time zone)."""
    records = await run_in_threadpool(schedules, runtime_of(request))
    return [r.to_dict() for r in records]


@router.post("/schedules", status_code=201, dependencies=[WRITE], response_model=dict[str, Any])
async def add_schedule(request: Request, body: ScheduleBody) -> dict[str, Any]:
    """Add (or replace) a schedule: a run of the workflow at each tick of `cron` (in `timezone`) or `every`."""
    runtime = runtime_of(request)

    def add() -> dict[str, Any]:
        controller = workflow_from_document(body.workflow, runtime)
        return schedule(body.name, controller, cron=body.cron, every=body.every, inputs=body.inputs,
                        catch_up=body.catch_up, timezone=body.timezone, runtime=runtime).to_dict()  # fmt: skip

    return await run_in_threadpool(add)


@router.post("/schedules/{name}/pause", dependencies=[WRITE], response_model=dict[str, Any])
async def pause(request: Request, name: str) -> dict[str, Any]:
    """Stop the schedule's ticks until it is resumed."""
    return (await run_in_threadpool(pause_schedule, name, runtime_of(request))).to_dict()


@router.post("/schedules/{name}/resume", dependencies=[WRITE], response_model=dict[str, Any])
async def resume(request: Request, name: str) -> dict[str, Any]:
    """Start the schedule again from its next tick (ticks while it was paused do not run)."""
    return (await run_in_threadpool(resume_schedule, name, runtime_of(request))).to_dict()


@router.delete("/schedules/{name}", dependencies=[WRITE], response_model=dict[str, Any])
async def delete(request: Request, name: str) -> dict[str, Any]:
    """Remove the schedule (the runs it started are kept)."""
    await run_in_threadpool(delete_schedule, name, runtime_of(request))
    return {"deleted": name}
