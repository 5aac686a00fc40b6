"""``ErrorHandler.handle_error`` (and ``handle_error_now``) over ``pepper.connect``: the policy travels as text,
the server decides as it does for its own callers, and refusals come back as the same typed errors."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from pepper.core import ErrorHandler, TaskOrchestrator, WorkflowController
from pepper.errors import (
    AgentNotFoundError,
    ConflictError,
    FanOutStepError,
    ScopeError,
    TaskNotFoundError,
    ValidationError,
)
from pepper.model.task import TaskState
from tests.integration.served import PATIENCE, Served, served  # noqa: F401


def _blocked(runtime: object, task_id: str) -> None:
    """A documentation task waiting for a dependency that never comes: it has not run, and will not."""
    TaskOrchestrator(runtime=runtime).submit_task(task_id, "documentation", dependencies=[f"{task_id}-never"])


def test_the_seed_call_decides_as_on_the_server(served: Served) -> None:  # noqa: F811
    _blocked(served.remote, "recover/remote")
    _blocked(served.local, "recover/local")
    before = dict(served.runs)
    remote = asyncio.run(ErrorHandler(served.remote).handle_error(
        task_id="recover/remote", error=RuntimeError("registry down"), recovery_strategy="retry"))  # fmt: skip
    local = asyncio.run(ErrorHandler(served.local).handle_error(
        task_id="recover/local", error=RuntimeError("registry down"), recovery_strategy="retry"))  # fmt: skip
    assert remote.task_id == "recover/remote"
    assert {**remote.to_dict(), "task_id": "", "next_attempt_at": None} == {
        **local.to_dict(), "task_id": "", "next_attempt_at": None}  # fmt: skip
    assert (remote.action, remote.state) == ("retry", TaskState.BLOCKED.value)
    refusals = []  # a blocked task has no failed attempt to park: refused alike, nothing changed
    for runtime, task_id in ((served.remote, "recover/remote"), (served.local, "recover/local")):
        with pytest.raises(ConflictError, match="has not run yet: it waits for its dependencies") as caught:
            ErrorHandler(runtime).handle_error_now(task_id, "still down", "dead_letter")
        refusals.append(str(caught.value).replace(task_id, "<id>"))
    assert refusals[0] == refusals[1]
    local_state = TaskOrchestrator(runtime=served.local).get_task_status("recover/local").state
    assert TaskOrchestrator(runtime=served.local).get_task_status("recover/remote").state is local_state
    assert local_state is TaskState.BLOCKED
    history = ErrorHandler(served.remote).get_error_history("recover/remote")
    assert [r.error.message for r in history] == ["registry down"]
    assert history[0].error.type == "RuntimeError" and history[0].error.traceback is None
    assert served.runs == before  # deciding ran nothing
    # the classes an exception inherits from travel with it: retry_on=[OSError] takes a ConnectionError
    inherited = ErrorHandler(served.remote).handle_error_now(
        "recover/remote", ConnectionError("registry down"), "retry(1, retry_on=[OSError]) -> skip"
    )
    assert inherited.action == "retry"


def test_refusals_come_back_as_the_same_typed_errors(served: Served) -> None:  # noqa: F811
    handler = ErrorHandler(served.remote)
    _blocked(served.remote, "recover/refused")
    with pytest.raises(TaskNotFoundError, match="recover/nowhere"):
        handler.handle_error_now("recover/nowhere", "x", "retry")
    with pytest.raises(ValidationError, match="unknown recovery strategy 'retri'"):
        handler.handle_error_now("recover/refused", "x", "retri")
    with pytest.raises(AgentNotFoundError, match="ghost"):
        handler.handle_error_now("recover/refused", "x", "fallback(agent='ghost')")
    with pytest.raises(ScopeError):
        ErrorHandler(served.reader).handle_error_now("recover/refused", "x", "skip")
    status = TaskOrchestrator(runtime=served.local).get_task_status("recover/refused")
    assert status.state is TaskState.BLOCKED and status.error is None  # nothing refused changed it
    assert handler.get_error_history("recover/refused") == []
    TaskOrchestrator(runtime=served.remote).submit_task("recover/done", "review")
    assert TaskOrchestrator(runtime=served.remote).wait("recover/done", timeout=PATIENCE).state is TaskState.COMPLETED
    with pytest.raises(ConflictError):
        handler.handle_error_now("recover/done", "late", "retry")
    skipped = handler.handle_error_now("recover/refused", "x", "fallback(agent='review_agent') -> skip")
    assert skipped.task_id == "recover/refused"


def test_the_route_validates_its_body(served: Served) -> None:  # noqa: F811
    headers = {"Authorization": f"Bearer {served.tokens['write']}"}
    with httpx.Client(base_url=served.url + "/api/v1", headers=headers, timeout=PATIENCE) as client:
        path = "/tasks/recover%2Fbody/handle-error"
        for body, field in (({"strategy": ["retry"]}, "strategy"), ({"error": {"message": "x"}}, "type"),
                            ({"error": {"type": "E", "message": "x", "kind": "exploded"}}, "kind")):  # fmt: skip
            answer = client.post(path, json=body)
            assert answer.status_code == 422, body
            assert answer.json()["error"]["type"] == "ValidationError" and field in answer.json()["error"]["message"]
        assert "/api/v1/tasks/{task_id}/handle-error" in client.get("/openapi.json").json()["paths"]


def test_a_fan_out_steps_own_task_is_refused_remotely_and_its_items_recovered(served: Served) -> None:  # noqa: F811
    workflow = WorkflowController("remote-fan", served.local)
    workflow.add_step("f", "break", for_each=[1, 2], inputs={"v": "${{ item }}"}, recovery="dead_letter")
    before = served.runs["breaker"]
    run_id = workflow.start()
    items = [f"{run_id}/f[0]", f"{run_id}/f[1]"]
    o = TaskOrchestrator(runtime=served.remote)
    assert [s.state for s in o.wait(items, timeout=PATIENCE)] == [TaskState.PARKED] * 2
    handler = ErrorHandler(served.remote)
    with pytest.raises(FanOutStepError, match=rf"Recover its parked items instead: '{run_id}/f\[0\]'"):
        handler.replay(f"{run_id}/f")
    with pytest.raises(FanOutStepError, match="no agent runs the step's own task"):
        handler.handle_error_now(f"{run_id}/f", "x", "retry")
    assert sorted(d.task_id for d in handler.dead_letters() if d.task_id.startswith(run_id)) == items
    assert served.runs["breaker"] == before + 2  # nothing ran again
    assert handler.drop(items[0]) is True  # the step fails with it, and stops its other items
    result = workflow.wait(run_id, timeout=PATIENCE)
    assert result.status == "failed" and "item 0 of 2 failed" in result["f"].error.message
    assert o.get_task_status(items[1]).state is TaskState.CANCELLED
    assert not [d for d in handler.dead_letters() if d.task_id.startswith(run_id)]
    assert served.runs["breaker"] == before + 2
