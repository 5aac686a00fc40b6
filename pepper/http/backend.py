"""``HttpBackend``: the ``Backend`` protocol answered by a pepper server over its HTTP API.

Every rule stays on the server: this class only turns calls into requests and answers (the ``to_dict`` forms)
back into pepper's objects. Waits longer than the server's bound (``?wait=``, at most 60 s) are loops of
bounded requests. What needs an engine or a database in this process (placing tasks, the engine's own figures)
raises ``RemoteUnsupportedError`` saying what to do instead.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any, TypeVar

from pepper.engine.inspection import AgentsView, EngineCounters, EngineFigures
from pepper.errors import RemoteUnsupportedError, ValidationError, WaitTimeoutError, WorkflowTimeoutError
from pepper.http.client import Connection, dot_safe, escaped_id, task_path
from pepper.model.agent import AgentSpec
from pepper.model.approval import Approval
from pepper.model.feedback import TaskFeedback
from pepper.model.lease import Lease
from pepper.model.recovery import ErrorRecord, Policy, RecoveryOutcome
from pepper.model.requirements import NO_REQUIREMENTS
from pepper.model.status import TaskError, TaskStatus
from pepper.model.task import Task, TaskState
from pepper.model.task_log import TaskLog
from pepper.model.workflow import WorkflowSpec, task_id_of
from pepper.model.workflow_run import RunRecord, RunState, StepResult, WorkflowResult
from pepper.monitoring.health import HealthReport
from pepper.monitoring.window import Observation
from pepper.store.protocol import TaskPlace

T = TypeVar("T")

#: The longest one request asks the server to wait (its bound on ``?wait=``).
MAX_WAIT = 60.0


def task_body(task: Task) -> dict[str, Any]:
    """A task as the fields of ``submit_task`` (what ``POST /api/v1/tasks`` takes)."""
    body: dict[str, Any] = {
        "task_id": task.task_id,
        "task_type": task.task_type,
        "priority": task.priority,
        "dependencies": list(task.dependencies),
        "inputs": task.inputs,
        "agent": task.agent,
        "timeout": task.timeout,
        "max_retries": task.max_retries,
        "metadata": dict(task.metadata),
    }
    if task.requirements is not NO_REQUIREMENTS:
        body["requirements"] = task.requirements.to_dict()
    if task.policy is not None:
        body["policy"] = task.policy.to_data()
    if task.not_before is not None:
        body["not_before"] = task.not_before
    return body


def workflow_document(spec: WorkflowSpec) -> dict[str, Any]:
    """``spec`` as a workflow document (what a workflow file holds); a Python condition cannot travel."""
    for step in spec.steps:
        if step.condition_fn is not None:
            raise ValidationError(
                f"step {step.step_id!r} has a Python condition, which a server cannot run; write it as a `when:` "
                "expression to run this workflow on a server",
                field="condition",
            )
    document = spec.to_dict()
    document.pop("source", None)  # where the spec was read: a path on this machine, meaningless there
    return document


def _ended(status: TaskStatus) -> bool:
    return status.state.is_final or status.state is TaskState.PARKED


class _Deadline:
    """How much of a wait is left, and the next bounded request's share of it."""

    def __init__(self, timeout: float | None) -> None:
        self.timeout = timeout
        self._end = None if timeout is None else time.monotonic() + timeout

    def chunk(self) -> float:
        if self._end is None:
            return MAX_WAIT
        return max(0.0, min(MAX_WAIT, self._end - time.monotonic()))

    @property
    def passed(self) -> bool:
        return self._end is not None and time.monotonic() >= self._end


class HttpBackend:
    """The ``Backend`` of a runtime connected to a server (see ``pepper.connect``)."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection

    # -- tasks ---------------------------------------------------------------------------------------------

    async def submit(self, tasks: Sequence[Task]) -> list[Task]:
        answer = await self.connection.apost("/tasks", {"tasks": [task_body(t) for t in tasks]})
        made = {item["task_id"]: item for item in answer["items"]}
        # the server stamps the submission time; the rest of each task is what was sent
        return [replace(t, created_at=made.get(t.task_id, {}).get("created_at") or t.created_at) for t in tasks]

    async def status(self, task_id: str) -> TaskStatus:
        return TaskStatus.from_dict(await self.connection.aget(task_path(task_id)))

    async def wait(self, task_ids: Sequence[str], timeout: float | None) -> list[TaskStatus]:
        deadline = _Deadline(timeout)
        found: list[TaskStatus] = []
        for task_id in task_ids:
            while True:
                chunk = deadline.chunk()
                data = await self.connection.arequest("GET", task_path(task_id), wait=chunk,
                                                      params={"wait": chunk} if chunk else None)  # fmt: skip
                status = TaskStatus.from_dict(data)
                if _ended(status):
                    found.append(status)
                    break
                if deadline.passed:
                    pending = [task_id, *task_ids[len(found) + 1 :]]
                    raise WaitTimeoutError(pending, timeout or 0.0)
        return found

    async def cancel(self, task_id: str, reason: str) -> bool:
        answer = await self.connection.apost(task_path(task_id) + "/cancel", {"reason": reason})
        return bool(answer["cancelled"])

    async def list_tasks(
        self, state: TaskState | None, limit: int, *, task_type: str | None = None,
        after: str | TaskPlace | None = None, id_contains: str | None = None,
    ) -> list[TaskStatus]:  # fmt: skip
        from pepper.http.lists import MAX_LIMIT, encode_task_cursor

        cursor = None if after is None else encode_task_cursor(after)
        found: list[TaskStatus] = []
        while len(found) < limit:
            page = await self.connection.aget(
                "/tasks", state=None if state is None else state.value, task_type=task_type, id_contains=id_contains,
                limit=min(MAX_LIMIT, limit - len(found)), cursor=cursor,
            )  # fmt: skip
            found.extend(TaskStatus.from_dict(item) for item in page["items"])
            cursor = page.get("next_cursor")
            if not cursor:
                break
        return found

    async def add_feedback(self, feedback: TaskFeedback) -> TaskFeedback:
        body = {"rating": feedback.rating, "comment": feedback.comment, "metrics": dict(feedback.metrics)}
        return TaskFeedback.from_dict(await self.connection.apost(task_path(feedback.task_id) + "/feedback", body))

    async def handle_error(self, task_id: str, error: TaskError, policy: Policy) -> RecoveryOutcome:
        body = {"error": error.to_dict(), "strategy": str(policy)}  # the policy as text: data, never code
        return RecoveryOutcome.from_dict(await self.connection.apost(task_path(task_id) + "/handle-error", body))

    async def replay(self, task_id: str, agent_id: str | None) -> bool:
        answer = await self.connection.apost("/dlq/" + escaped_id(task_id) + "/replay", {"agent": agent_id})
        return bool(answer["replayed"])

    async def drop(self, task_id: str, reason: str) -> bool:
        answer = await self.connection.adelete("/dlq/" + escaped_id(task_id), {"reason": reason})
        return bool(answer["dropped"])

    async def place(self, placements: Mapping[str, str | None]) -> None:
        raise RemoteUnsupportedError("placing tasks on agents", "make the plan on the server's machine")

    # -- workflow runs -------------------------------------------------------------------------------------

    async def start_run(self, spec: WorkflowSpec, inputs: Mapping[str, Any], plan: Mapping[str, Any] | None) -> str:
        if plan is not None:
            raise RemoteUnsupportedError("a run with a placement plan", "run it with the default policy")
        answer = await self.connection.apost("/runs", {"workflow": workflow_document(spec), "inputs": dict(inputs)})
        return str(answer["run_id"])

    async def wait_run(self, run_id: str, timeout: float | None, *, cancel_at_timeout: bool = False) -> WorkflowResult:
        deadline = _Deadline(timeout)
        while True:
            chunk = deadline.chunk()
            details = await self.connection.arequest("GET", f"/runs/{_escaped(run_id)}", wait=chunk,
                                                     params={"wait": chunk} if chunk else None)  # fmt: skip
            result = result_of(details)
            if result.status.is_final:
                return result
            if deadline.passed:
                break
        if not cancel_at_timeout:
            raise WaitTimeoutError([run_id], timeout or 0.0)
        await self.cancel_run(run_id, f"the run did not finish within {timeout:g}s")
        result = result_of(await self.connection.aget(f"/runs/{_escaped(run_id)}"))
        unfinished = [s for s, r in result.steps.items() if r.state is None or not r.state.is_final]
        raise WorkflowTimeoutError(run_id, timeout or 0.0, unfinished, result)

    async def cancel_run(self, run_id: str, reason: str) -> bool:
        answer = await self.connection.apost(f"/runs/{_escaped(run_id)}/cancel", {"reason": reason})
        return bool(answer["cancelled"])

    async def rerun_run(self, run_id: str, from_step: str | None) -> list[str]:
        answer = await self.connection.apost(f"/runs/{_escaped(run_id)}/rerun", {"from_step": from_step})
        return list(answer["steps"])

    async def resume_run(self, run_id: str, spec: WorkflowSpec | None) -> None:
        await self.connection.apost(f"/runs/{_escaped(run_id)}/resume")

    async def approve_step(
        self, run_id: str, step_id: str, approve: bool, reason: str | None, by: str | None
    ) -> Approval:
        body = {"decision": "approve" if approve else "reject", "reason": reason, "by": by}
        answer = await self.connection.apost(f"/runs/{_escaped(run_id)}/steps/{_escaped(step_id)}/approve", body)
        return Approval.from_dict(answer["approval"])

    def run_approvals(self, run_id: str) -> list[Approval]:
        answer = self.connection.get(f"/runs/{_escaped(run_id)}/approvals")
        return [Approval.from_dict(item) for item in answer["approvals"]]

    # -- reads answered at once ----------------------------------------------------------------------------

    def run_result(self, run_id: str) -> WorkflowResult:
        return result_of(self.connection.get(f"/runs/{_escaped(run_id)}"))

    def list_runs(
        self, limit: int, state: RunState | None = None, after: str | None = None, workflow: str | None = None
    ) -> list[RunRecord]:
        from pepper.http.lists import MAX_LIMIT, encode_cursor

        params: dict[str, Any] = {"limit": max(1, min(limit, MAX_LIMIT))}
        if state is not None:
            params["state"] = state.value
        if workflow is not None:
            params["workflow"] = workflow
        if after is not None:
            params["cursor"] = encode_cursor(after)
        page = self.connection.get("/runs", **params)
        return [RunRecord.from_dict(item) for item in page["items"]]

    def run_record(self, run_id: str) -> RunRecord:
        return RunRecord.from_dict(self.connection.get(f"/runs/{_escaped(run_id)}"))

    def read_agents(self, question: Callable[[AgentsView], T]) -> T:
        raise RemoteUnsupportedError("the selector's view of the agents", "ask `GET /api/v1/agents` instead")

    def online_agents(self) -> list[AgentSpec]:
        page = self.connection.get("/agents")
        return [AgentSpec.from_dict(item) for item in page["items"]]

    def observations(self, since: float) -> tuple[list[Observation], str]:
        page = self.connection.get("/observations", since=since)
        return [Observation(**item) for item in page["items"]], f"the server at {self.connection.url}"

    def pool(self) -> dict[str, float]:
        return dict(self.connection.get("/resources")["capacity"])

    def leases(self, now: float) -> list[Lease]:
        # held at the server's now: its clock decides what has expired
        return [Lease.from_dict(item) for item in self._every_page("/leases")]

    def lease(self, lease_id: str) -> Lease:
        return Lease.from_dict(self.connection.get("/leases/" + escaped_id(lease_id)))

    def figures(self) -> EngineFigures | None:
        return None  # no engine runs here: the server's own health check reads its figures

    def counters(self) -> EngineCounters | None:
        return None

    async def report_health(self, agent_id: str, healthy: bool, at: float) -> None:
        raise RemoteUnsupportedError("reporting an agent's health", "its worker reports it")

    async def health(self, components: Sequence[str], timeout: float) -> HealthReport | None:
        data = await self.connection.arequest("GET", "/health", params={"component": list(components)},
                                              accept_status=(503,))  # fmt: skip
        return HealthReport.from_dict(data)

    def task_log(self, task_id: str, attempt: int | None, from_seq: int) -> TaskLog:
        params: dict[str, Any] = {"after": from_seq}
        if attempt is not None:
            params["attempt"] = attempt
        return TaskLog.from_dict(self.connection.get(task_path(task_id) + "/logs", **params))

    def error_history(self, task_id: str) -> list[ErrorRecord]:
        page = self.connection.get(task_path(task_id) + "/errors")
        return [ErrorRecord.from_dict(item) for item in page["items"]]

    def dead_letters(self) -> list[TaskStatus]:
        return [TaskStatus.from_dict(item) for item in self._every_page("/dlq")]

    def _every_page(self, path: str) -> list[dict[str, Any]]:
        """The items of every page of the list at ``path``, in order."""
        from pepper.http.lists import MAX_LIMIT

        items: list[dict[str, Any]] = []
        cursor = None
        while True:
            page = self.connection.get(path, limit=MAX_LIMIT, cursor=cursor)
            items.extend(page["items"])
            cursor = page.get("next_cursor")
            if not cursor:
                return items


def result_of(details: Mapping[str, Any]) -> WorkflowResult:
    """A run's ``WorkflowResult`` from the server's run answer: its ``result`` once it ended, else made from
    its steps' statuses the way a local runtime makes it."""
    if details.get("result"):
        return WorkflowResult.from_dict(details["result"])
    record = RunRecord.from_dict(details)
    statuses = details.get("steps") or {}
    steps = {}
    for step in record.spec.steps:
        raw = statuses.get(step.step_id)
        status = None if raw is None else TaskStatus.from_dict(raw)
        task_id = status.task_id if status is not None else task_id_of(record.run_id, step.step_id)
        steps[step.step_id] = StepResult.of(step.step_id, task_id, status, step.dependencies)
    return WorkflowResult(record.run_id, record.workflow, record.state, steps, record.inputs, record.created_at,
                          record.finished_at, record.reason, record.plan)  # fmt: skip


def _escaped(identifier: str) -> str:
    from urllib.parse import quote

    return "/".join(dot_safe(segment) for segment in quote(identifier, safe="/").split("/"))
