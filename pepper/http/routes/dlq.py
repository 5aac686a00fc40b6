"""``/api/v1/dlq``: the dead-letter queue: parked tasks, replayed or dropped by a person."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel

from pepper.core import ErrorHandler
from pepper.http.auth import READ, WRITE
from pepper.http.lists import Cursor, Limit, Page, listed, page, place_after, place_key
from pepper.http.paths import IdRoute
from pepper.http.routes import runtime_of
from pepper.model.status import TaskStatus

router = APIRouter(prefix="/dlq", tags=["dead letters"], route_class=IdRoute)


class ReplayBody(BaseModel):
    agent: str | None = None


class DropBody(BaseModel):
    reason: str | None = None


@router.get("", dependencies=[READ], response_model=Page)
def list_dead_letters(request: Request, limit: Limit = 1000, cursor: Cursor = None) -> Page:
    """A page of the tasks parked in the dead-letter queue, oldest first."""
    listed(limit)
    rows = runtime_of(request).store.errors.parked_page(place_after(cursor), limit + 1)  # one page's rows only
    return page([row.to_status() for row in rows], limit, lambda s: place_key(_parked_order(s)), TaskStatus.to_dict)


def _parked_order(status: TaskStatus) -> tuple[float, str]:
    return status.parked_at or 0.0, status.task_id


@router.post("/{task_id:path}/replay", dependencies=[WRITE], response_model=dict[str, Any])
async def replay(request: Request, task_id: str, body: ReplayBody | None = None) -> dict[str, Any]:
    """Run a parked (or failed) task again, on `agent` if given; `replayed` lists it if it was."""
    replayed = await ErrorHandler(runtime_of(request)).replay_async(task_id, agent=body.agent if body else None)
    return {"replayed": replayed}


@router.delete("/{task_id:path}", dependencies=[WRITE], response_model=dict[str, Any])
async def drop(request: Request, task_id: str, body: DropBody | None = None) -> dict[str, Any]:
    """Give up a parked task: it fails and its dependents are cancelled; `dropped` is false if it was not
    parked."""
    dropped = await ErrorHandler(runtime_of(request)).drop_async(task_id, body.reason if body else None)
    return {"task_id": task_id, "dropped": dropped}
