"""``/api/v1/runs`` and ``/api/v1/plan``: start workflow runs from documents, follow, cancel and resume them;
plan a workflow before running it.

A workflow arrives as JSON (``{"workflow": {...}, "inputs": {...}}``) or as the YAML text of a workflow file
(``Content-Type: application/yaml``). It may only name agents that workers already run: an ``agents:`` section
is refused (403), as it would make the server run code it was sent.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from pepper.core import WorkflowController
from pepper.core.documents import run_details, workflow_from_document
from pepper.core.planning import plan as make_plan
from pepper.core.run_timeline import run_timeline
from pepper.errors import ImpersonationError, NestingTooDeepError, ValidationError, WaitTimeoutError
from pepper.http.auth import READ, WRITE
from pepper.http.lists import Cursor, Limit, Page, decode_cursor, listed, page
from pepper.http.nesting import check_document_depth
from pepper.http.routes import runtime_of, unless_stopping
from pepper.http.routes.tasks import Wait
from pepper.model.codec import MAX_DEPTH
from pepper.model.workflow_run import RunRecord, RunState
from pepper.store.tokens import TokenRecord

router = APIRouter(tags=["runs"])

_YAML_TYPES = ("application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml")
_DOCUMENT = {
    "type": "object",
    "properties": {
        "workflow": {"type": "object", "description": "The workflow document, as in a workflow file."},
        "inputs": {"type": "object", "description": "Inputs of the run (over the document's own)."},
    },
    "required": ["workflow"],
}
_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": _DOCUMENT},
            "application/yaml": {"schema": {"type": "string", "description": "A workflow file's YAML text."}},
        },
    }
}


class CancelBody(BaseModel):
    reason: str | None = None


class RerunBody(BaseModel):
    from_step: str | None = None


class ApproveBody(BaseModel):
    """A person's decision on a step that waits for one."""

    decision: Literal["approve", "reject"] = "approve"
    reason: str | None = None
    by: str | None = Field(
        default=None,
        description="Who decides: the token's name, always; a name other than the token's is refused (403).",
    )


async def _document(request: Request) -> tuple[Any, dict[str, Any]]:
    """The workflow document and the extra fields of the body (JSON) or the YAML text and none."""
    raw = await request.body()
    kind = request.headers.get("content-type", "application/json").split(";")[0].strip().lower()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ValidationError("the body is not UTF-8 text", field="body") from None
    if kind in _YAML_TYPES:
        check_document_depth(text)
        return text, {}
    try:
        body = json.loads(text)
    except RecursionError:  # nested deeper than the JSON reader goes, far past any value pepper keeps
        raise NestingTooDeepError("body", MAX_DEPTH) from None
    except ValueError as exc:
        raise ValidationError(
            f'the body is not JSON ({exc}); send {{"workflow": {{...}}}} as application/json, or the workflow\'s '
            "YAML as application/yaml",
            field="body",
        ) from None
    if not isinstance(body, Mapping) or "workflow" not in body:
        raise ValidationError('the body must be {"workflow": {<workflow document>}, "inputs": {...}}', field="workflow")
    check_document_depth(body["workflow"])
    return body["workflow"], {k: v for k, v in body.items() if k != "workflow"}


@router.post("/runs", status_code=201, dependencies=[WRITE], openapi_extra=_BODY, response_model=dict[str, Any])
async def start_run(request: Request) -> dict[str, Any]:
    """Start a run of a workflow document; its id."""
    document, extra = await _document(request)
    unknown = set(extra) - {"inputs"}
    if unknown:
        raise ValidationError(f"unknown field {sorted(unknown)[0]!r}; valid: workflow, inputs", field="body")
    controller = workflow_from_document(document, runtime_of(request))
    run_id = await controller.start_async(extra.get("inputs"))
    return {"run_id": run_id}


@router.post("/plan", dependencies=[READ], openapi_extra=_BODY, response_model=dict[str, Any])
async def plan(request: Request) -> dict[str, Any]:
    """Predict how a workflow document runs on the registered agents: makespan, lower bound, schedule.
    Optional fields: `durations` (seconds by step id or task type), `policy`."""
    document, extra = await _document(request)
    unknown = set(extra) - {"durations", "policy"}
    if unknown:
        raise ValidationError(f"unknown field {sorted(unknown)[0]!r}; valid: workflow, durations, policy", field="body")
    runtime = runtime_of(request)
    controller = workflow_from_document(document, runtime)
    durations = extra.get("durations")
    if durations is not None and not isinstance(durations, Mapping):
        raise ValidationError("durations must map a step id or task type to seconds", field="durations")
    policy = extra.get("policy", "default")
    if not isinstance(policy, str):
        raise ValidationError(f"policy must be a string, got {policy!r}", field="policy")
    # planning reads the store and simulates: off the server's event loop
    made = await run_in_threadpool(make_plan, controller, None, durations, policy, runtime=runtime)
    return made.to_dict()


@router.get("/runs", dependencies=[READ], response_model=Page)
def list_runs(
    request: Request, state: RunState | None = None, limit: Limit = 100, cursor: Cursor = None,
    workflow: str | None = None,
) -> Page:  # fmt: skip
    """A page of runs, newest first (in `state` if given; of the workflow named `workflow` if given)."""
    listed(limit)
    after = decode_cursor(cursor)
    records = runtime_of(request).read(lambda backend: backend.list_runs(limit + 1, state, after, workflow))
    return page(records, limit, lambda r: r.run_id, RunRecord.to_dict)


@router.post("/runs/{run_id}/cancel", dependencies=[WRITE], response_model=dict[str, Any])
async def cancel_run(request: Request, run_id: str, body: CancelBody | None = None) -> dict[str, Any]:
    """Cancel the run's unfinished steps; `cancelled` is false if it had ended."""
    runtime = runtime_of(request)
    cancelled = await WorkflowController(runtime=runtime).cancel_async(run_id, body.reason if body else None)
    return {"cancelled": cancelled, "run": await _details(runtime, run_id)}


@router.post("/runs/{run_id}/steps/{step_id}/approve", response_model=dict[str, Any])
async def approve_step(
    request: Request, run_id: str, step_id: str, body: ApproveBody, token: TokenRecord = WRITE
) -> dict[str, Any]:
    """Approve (or reject) a step that waits for a person: the first decision is kept, a second one is refused
    (409), as is a step that does not wait for one. The one who decides is the token's name: a `by` naming
    anyone else is refused (403, whatever the token's scope), and the token's name must be one of the step's
    approvers when it names them (403). Answers with the decided approval and the run."""
    if body.by is not None and body.by != token.name:
        raise ImpersonationError(token.name, body.by)
    runtime = runtime_of(request)
    decided = await WorkflowController(runtime=runtime).approve_async(
        run_id, step_id, approve=body.decision == "approve", reason=body.reason, by=token.name
    )
    return {"approval": decided.to_dict(), "run": await _details(runtime, run_id)}


@router.get("/runs/{run_id}/approvals", dependencies=[READ], response_model=dict[str, Any])
def run_approvals(request: Request, run_id: str) -> dict[str, Any]:
    """The run's approval steps that were reached: who may decide, until when, and any decision."""
    runtime = runtime_of(request)
    runtime.read(lambda backend: backend.run_record(run_id))  # an unknown run is a 404
    approvals = runtime.read(lambda backend: backend.run_approvals(run_id))
    return {"approvals": [a.to_dict() for a in approvals]}


@router.post("/runs/{run_id}/resume", dependencies=[WRITE], response_model=dict[str, Any])
async def resume_run(request: Request, run_id: str) -> dict[str, Any]:
    """Drive a run whose process stopped to its end from this server (completed steps are not run again)."""
    runtime = runtime_of(request)
    await WorkflowController(runtime=runtime).take_over_async(run_id)
    return await _details(runtime, run_id)


@router.post("/runs/{run_id}/rerun", dependencies=[WRITE], response_model=dict[str, Any])
async def rerun_run(request: Request, run_id: str, body: RerunBody | None = None) -> dict[str, Any]:
    """Run an ended run's failed and cancelled steps again (or `from_step` and every step downstream of it), in
    the same run, driven by this server; `steps` are the step ids run again."""
    runtime = runtime_of(request)
    controller = WorkflowController(runtime=runtime)
    steps = await controller.start_rerun_async(run_id, from_step=body.from_step if body else None)
    return {"steps": steps, "run": await _details(runtime, run_id)}


@router.get("/runs/{run_id}/timeline", dependencies=[READ], response_model=dict[str, Any])
def timeline(request: Request, run_id: str) -> dict[str, Any]:
    """Every attempt of every step on its agent (`bars`), the planned timeline beside it, and the critical path
    on the actual durations: what a Gantt chart of the run shows."""
    return run_timeline(runtime_of(request), run_id)


@router.get("/runs/{run_id}", dependencies=[READ], response_model=dict[str, Any])
async def get_run(request: Request, run_id: str, wait: Wait = None) -> dict[str, Any]:
    """The run with the status of each step's task and, once it ended, its result. With `wait`, once it ended
    (or at the deadline, as it is then)."""
    runtime = runtime_of(request)
    if wait:
        try:
            await unless_stopping(request, WorkflowController(runtime=runtime).wait_async(run_id, timeout=wait))
        except WaitTimeoutError:
            pass
    return await _details(runtime, run_id)


async def _details(runtime: Any, run_id: str) -> dict[str, Any]:
    return (await run_in_threadpool(run_details, runtime, run_id)).to_dict()
