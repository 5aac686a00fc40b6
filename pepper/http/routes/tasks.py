"""``/api/v1/tasks``: submit, list, follow, wait for, cancel and rate tasks; their results and errors.

A task id may contain ``/`` (a run's steps are ``<run id>/<step id>``). Written as ``%2F`` it is always part of
the id (``pepper.http.paths``): ``/tasks/flow-1%2Fresult`` is the task ``flow-1/result``. Written bare, the routes
with a sub-resource after the id are declared before the one without, so ``/tasks/flow-1/result`` is the result
of ``flow-1``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal
from urllib.parse import quote

from fastapi import APIRouter, Body, Query, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from pepper.core import ErrorHandler, TaskOrchestrator
from pepper.core.logs import TaskLogs
from pepper.errors import AgentNotFoundError, ConflictError, ValidationError, WaitTimeoutError
from pepper.http.auth import READ, WRITE
from pepper.http.lists import Cursor, Limit, Page, decode_task_cursor, encode_task_cursor, listed, whole
from pepper.http.paths import IdRoute
from pepper.http.routes import runtime_of, unless_stopping
from pepper.model.recovery import Policy
from pepper.model.recovery_policy import Fallback
from pepper.model.status import TaskError, TaskStatus
from pepper.store.protocol import TaskPlace

router = APIRouter(prefix="/tasks", tags=["tasks"], route_class=IdRoute)

#: The longest a request waits for a task (or a run) to end; a client loops for longer waits.
MAX_WAIT = 60.0

Wait = Annotated[
    float | None,
    Query(ge=0, le=MAX_WAIT, description=f"Seconds to wait (at most {MAX_WAIT:g}) for it to end or be parked."),
]

IdContains = Annotated[
    str | None,
    Query(description="Only the tasks whose id holds this text (ASCII letters in either case; `%` and `_` are "
          "themselves)."),
]  # fmt: skip

_SUBMIT_EXAMPLE = {"task_id": "review-1", "task_type": "review", "priority": "high", "inputs": {"path": "README.md"}}


class CancelBody(BaseModel):
    reason: str | None = None


class FeedbackBody(BaseModel):
    rating: int = Field(description="1 (poor) to 5 (excellent)")
    comment: str | None = None
    metrics: dict[str, Any] | None = None


class ErrorFields(BaseModel):
    type: str = Field(min_length=1, max_length=200, description="The error's type, e.g. 'TimeoutError'.")
    message: str = Field(max_length=10_000)
    traceback: str | None = Field(default=None, max_length=100_000)
    kind: Literal["error", "timeout", "crash", "interrupted", "cancelled"] = "error"
    types: list[Annotated[str, Field(min_length=1, max_length=200)]] = Field(
        default_factory=list, max_length=32,
        description="The names of the error's classes, its own first ('ConnectionError', 'OSError', ...).",
    )  # fmt: skip


class HandleErrorBody(BaseModel):
    error: ErrorFields | None = Field(default=None, description="The error to handle; none: the task's last one.")
    strategy: str = Field(default="retry", min_length=1, max_length=2000, examples=["retry(3) -> dead_letter"],
                          description="A recovery policy as text; the agents it names must be known here.")  # fmt: skip


def _orchestrator(request: Request) -> TaskOrchestrator:
    return TaskOrchestrator(runtime_of(request))


@router.post("", status_code=201, dependencies=[WRITE], response_model=dict[str, Any])
async def submit(
    request: Request, body: Annotated[dict[str, Any], Body(openapi_examples={"one": {"value": _SUBMIT_EXAMPLE}})]
) -> dict[str, Any]:
    """Submit one task (the fields of `submit_task`) or `{"tasks": [...]}`: all of them or none. The answer is the
    task's status, with why it waits; for a batch, each task's status as stored (`GET /api/v1/tasks/{id}` says why
    one waits)."""
    orchestrator = _orchestrator(request)
    many = "tasks" in body
    specs = body["tasks"] if many else [body]
    if many and (len(body) != 1 or not isinstance(specs, list)):
        raise ValidationError('a batch is {"tasks": [task, ...]} and nothing else', field="tasks")
    tasks = await orchestrator.submit_tasks_async(specs)
    if many:  # each as stored, without why it waits (a count of the tasks ahead of each would read the backlog)
        stored = await run_in_threadpool(runtime_of(request).store.get_statuses, [t.task_id for t in tasks])
        return {"items": [stored[t.task_id].to_dict() for t in tasks if t.task_id in stored]}
    if not tasks:
        raise ValidationError("no task was given", field="tasks")
    return (await orchestrator.get_task_status_async(tasks[0].task_id)).to_dict()


@router.get("", dependencies=[READ], response_model=Page)
async def list_tasks(
    request: Request,
    state: str | None = None,
    task_type: str | None = None,
    id_contains: IdContains = None,
    limit: Limit = 100,
    cursor: Cursor = None,
) -> Page:
    """A page of tasks, most recently submitted first; with `id_contains`, those whose id holds that text. The
    next page goes on from where the last task of this one was, even if it was pruned since."""
    listed(limit)
    found = await _orchestrator(request).list_tasks_async(
        state, limit + 1, task_type=task_type, after=decode_task_cursor(cursor), id_contains=id_contains
    )
    shown = found[:limit]
    if len(found) <= limit or not shown:
        return Page(items=[s.to_dict() for s in shown])
    return Page(items=[s.to_dict() for s in shown], next_cursor=encode_task_cursor(await _place(request, shown[-1])))


async def _place(request: Request, last: TaskStatus) -> str | TaskPlace:
    """Where the last task of a page stands: the next page goes on from there, even once it is pruned."""
    if last.created_at is None:
        return last.task_id
    store = runtime_of(request).store
    place = await run_in_threadpool(store.task_place, last.task_id, last.created_at)
    return place or TaskPlace(last.task_id, last.created_at)  # pruned meanwhile: its time says where it was


@router.get("/{task_id:path}/result", dependencies=[READ], response_model=dict[str, Any])
async def result(request: Request, task_id: str) -> dict[str, Any]:
    """The task's result once it completed (409 while unfinished; a failed or cancelled task is its error)."""
    orchestrator = _orchestrator(request)
    try:
        value = await orchestrator.get_result_async(task_id, timeout=0)
    except WaitTimeoutError:
        status = await orchestrator.get_task_status_async(task_id)
        raise ConflictError(
            f"task {task_id!r} has not finished yet (it is {status.state.value}); ask again later, or wait for it "
            f"with GET /api/v1/tasks/{quote(task_id, safe='')}?wait={MAX_WAIT:g}"
        ) from None
    return {"task_id": task_id, "state": "completed", "result": value}


@router.post("/{task_id:path}/cancel", dependencies=[WRITE], response_model=dict[str, Any])
async def cancel(request: Request, task_id: str, body: CancelBody | None = None) -> dict[str, Any]:
    """Cancel the task and what depends on it; `cancelled` is false if it had already finished."""
    orchestrator = _orchestrator(request)
    cancelled = await orchestrator.cancel_task_async(task_id, body.reason if body else None)
    status = await orchestrator.get_task_status_async(task_id)
    return {"cancelled": cancelled, "status": status.to_dict()}


@router.post("/{task_id:path}/feedback", status_code=201, dependencies=[WRITE], response_model=dict[str, Any])
async def feedback(request: Request, task_id: str, body: FeedbackBody) -> dict[str, Any]:
    """Rate a finished task from 1 to 5; the agent that ran it learns from it."""
    stored = await _orchestrator(request).add_feedback_async(task_id, body.rating, body.comment, body.metrics)
    return stored.to_dict()


@router.post("/{task_id:path}/handle-error", dependencies=[WRITE], response_model=dict[str, Any])
async def handle_error(request: Request, task_id: str, body: HandleErrorBody) -> dict[str, Any]:
    """Apply a recovery policy to an error of the task by hand (`ErrorHandler.handle_error`): what was decided,
    when it runs next and where. The policy is text naming strategies and agents online here; nothing else."""
    runtime = runtime_of(request)
    policy = Policy.parse(body.strategy)
    named = {s.agent for s in policy.strategies if isinstance(s, Fallback) and s.agent is not None}
    if named:
        online = await run_in_threadpool(lambda: {a.spec.agent_id for a in runtime.store.workers.agents()})
        known = online | {a.spec.agent_id for a in runtime.agents()}
        if unknown := sorted(named - known):
            raise AgentNotFoundError(unknown[0], known, hint="A fallback names an agent known to this server.")
    error = None if body.error is None else TaskError(**body.error.model_dump())
    return (await ErrorHandler(runtime).handle_error(task_id, error, policy)).to_dict()


@router.get("/{task_id:path}/logs", dependencies=[READ], response_model=dict[str, Any])
def logs(
    request: Request,
    task_id: str,
    attempt: Annotated[int | None, Query(ge=1, description="The attempt (default: the latest).")] = None,
    after: Annotated[int, Query(ge=0, description="Only chunks from this one on (`next_seq` of the last answer).")] = 0,
) -> dict[str, Any]:
    """What an attempt wrote (a command's stderr, a Python agent's log records): `text` (the first and the last
    part, `... N bytes cut ...` between), its `chunks`, and `ended` once nothing more comes. To follow a running
    attempt, ask again with `after` set to the `next_seq` of the last answer."""
    return TaskLogs(runtime_of(request)).get(task_id, attempt, after=after).to_dict()


@router.get("/{task_id:path}/errors", dependencies=[READ], response_model=Page)
def errors(request: Request, task_id: str) -> Page:
    """Every error of the task, oldest first, with the recovery decided for each."""
    return whole(ErrorHandler(runtime_of(request)).get_error_history(task_id), lambda r: r.to_dict())


@router.get("/{task_id:path}", dependencies=[READ], response_model=dict[str, Any])
async def status(request: Request, task_id: str, wait: Wait = None) -> dict[str, Any]:
    """The task's status, with `waiting_on`: why it is not running. With `wait`, once it ended (or at the
    deadline, as it is then). Write each `/` of the id as `%2F` (`flow-1%2Fresult` is the task `flow-1/result`,
    not the result of `flow-1`); so for every route of a task."""
    orchestrator = _orchestrator(request)
    if wait:
        try:
            ended, waited = await unless_stopping(request, orchestrator.wait_async(task_id, timeout=wait))
            if ended:
                assert isinstance(waited, TaskStatus)
                return waited.to_dict()
        except WaitTimeoutError:
            pass
    return (await orchestrator.get_task_status_async(task_id)).to_dict()
