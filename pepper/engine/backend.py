"""The one protocol the public faces ask their questions through.

Two implementations answer it today: ``EngineService`` (an engine runs in this
process and owns the live state; every answer is computed on its thread) and
``StoreBackend`` (no engine here: answers come from the store, reading only the
rows a question needs). ``pepper.http.backend.HttpBackend`` is the third: a server answers. The faces in
``pepper.core`` and the CLI depend on this protocol only, never on the engine's
internals (``tests/unit/test_layers.py`` keeps it so).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol, TypeVar

from pepper.engine.figures import EngineCounters, EngineFigures
from pepper.engine.inspection import AgentsView
from pepper.model.agent import AgentSpec
from pepper.model.approval import Approval
from pepper.model.feedback import TaskFeedback
from pepper.model.lease import Lease
from pepper.model.recovery import ErrorRecord, Policy, RecoveryOutcome
from pepper.model.status import TaskError, TaskStatus
from pepper.model.task import Task, TaskState
from pepper.model.task_log import TaskLog
from pepper.model.workflow import WorkflowSpec
from pepper.model.workflow_run import RunRecord, RunState, WorkflowResult
from pepper.monitoring.health import HealthReport
from pepper.monitoring.window import Observation
from pepper.store.protocol import TaskPlace

T = TypeVar("T")


class Backend(Protocol):
    """Submit, follow, wait for, cancel and recover tasks; rate them; run workflows; read agents, the resource
    pool and its leases, health and performance figures."""

    async def submit(self, tasks: Sequence[Task]) -> list[Task]:
        """Validate and store ``tasks`` (all or none); returns once they are durable."""
        ...

    async def status(self, task_id: str) -> TaskStatus:
        """The task's status, with the reasons it waits."""
        ...

    async def wait(self, task_ids: Sequence[str], timeout: float | None) -> list[TaskStatus]:
        """Wait until every task is final or parked; their statuses, in order."""
        ...

    async def cancel(self, task_id: str, reason: str) -> bool:
        """Cancel a task and its dependents, or ask the worker running it to stop it; False if it had already
        finished (a request may still lose to the attempt's own end)."""
        ...

    async def list_tasks(
        self, state: TaskState | None, limit: int, *, task_type: str | None = None,
        after: str | TaskPlace | None = None, id_contains: str | None = None,
    ) -> list[TaskStatus]:  # fmt: skip
        """Tasks, most recently submitted first (of ``task_type`` only, whose id holds ``id_contains``, and
        submitted before task ``after``, an id or its place: the next page after it)."""
        ...

    async def add_feedback(self, feedback: TaskFeedback) -> TaskFeedback:
        """Store a rating of a finished task."""
        ...

    async def handle_error(self, task_id: str, error: TaskError, policy: Policy) -> RecoveryOutcome:
        """Apply a recovery policy to an error of a task by hand."""
        ...

    async def replay(self, task_id: str, agent_id: str | None) -> bool:
        """Run a parked (or failed) task again; False if it is neither."""
        ...

    async def drop(self, task_id: str, reason: str) -> bool:
        """Give up a parked task; False if it is not parked."""
        ...

    async def place(self, placements: Mapping[str, str | None]) -> None:
        """Pin waiting tasks to agents; ``None`` lifts a placement."""
        ...

    # -- workflow runs: driven by an engine (the store alone raises RuntimeClosedError) -------

    async def start_run(self, spec: WorkflowSpec, inputs: Mapping[str, Any], plan: Mapping[str, Any] | None) -> str:
        """Start a run of ``spec``; its id."""
        ...

    async def wait_run(self, run_id: str, timeout: float | None, *, cancel_at_timeout: bool = False) -> WorkflowResult:
        """Wait for a run to end; ``WaitTimeoutError`` (or, with ``cancel_at_timeout``, the run cancelled and
        ``WorkflowTimeoutError``) after ``timeout``."""
        ...

    async def cancel_run(self, run_id: str, reason: str) -> bool:
        """Cancel a run's unfinished steps; False if it had ended."""
        ...

    async def rerun_run(self, run_id: str, from_step: str | None) -> list[str]:
        """Run an ended run's failed and cancelled steps (or ``from_step`` onwards) again, in the same run."""
        ...

    async def resume_run(self, run_id: str, spec: WorkflowSpec | None) -> None:
        """Drive a run whose process stopped to its end from here (``spec`` gives Python conditions)."""
        ...

    async def approve_step(
        self, run_id: str, step_id: str, approve: bool, reason: str | None, by: str | None
    ) -> Approval:
        """Approve (or reject) a step waiting for a person; the decided approval. The first decision wins."""
        ...

    def run_approvals(self, run_id: str) -> list[Approval]:
        """The approval steps of a run that were reached: who may decide, until when, and any decision."""
        ...

    # -- reads answered at once, from a snapshot (an engine's are made on its thread) --------

    def run_result(self, run_id: str) -> WorkflowResult:
        """Where a run stands now, step by step."""
        ...

    def list_runs(
        self, limit: int, state: RunState | None = None, after: str | None = None, workflow: str | None = None
    ) -> list[RunRecord]:
        """The latest runs, most recent first (in ``state`` if given; ``after``: older than that run;
        ``workflow``: only the runs of the workflow of that name)."""
        ...

    def run_record(self, run_id: str) -> RunRecord:
        """The run as stored (``RunNotFoundError`` if there is none)."""
        ...

    def read_agents(self, question: Callable[[AgentsView], T]) -> T:
        """``question`` answered over the agents (load, capacity, score, skills) as the selector sees them;
        what it returns must not hold on to the view."""
        ...

    def observations(self, since: float) -> tuple[list[Observation], str]:
        """Attempts that ended after ``since`` (the performance figures' input), and where they were read
        (this process, or the database)."""
        ...

    def pool(self) -> dict[str, float]:
        """The resource pool's capacity, per resource (cores, MB, counts)."""
        ...

    def leases(self, now: float) -> list[Lease]:
        """Every lease held at ``now``: agents' budgets and running tasks' leases."""
        ...

    def lease(self, lease_id: str) -> Lease:
        """One lease, held or ended; ``AllocationNotFoundError`` if there is none."""
        ...

    def figures(self) -> EngineFigures | None:
        """What the health monitor reads of an engine running here (None without one)."""
        ...

    def counters(self) -> EngineCounters | None:
        """This process's engine counters, histograms and agent loads (None without an engine or metrics)."""
        ...

    async def report_health(self, agent_id: str, healthy: bool, at: float) -> None:
        """An agent's health check passed or failed (its score follows)."""
        ...

    async def health(self, components: Sequence[str], timeout: float) -> HealthReport | None:
        """The health report of the process this backend speaks for when that is another one (a server);
        None when the faces make it here from the facts they read."""
        ...

    def online_agents(self) -> list[AgentSpec]:
        """The agents of live workers sharing the database (this process's own included once registered)."""
        ...

    def task_log(self, task_id: str, attempt: int | None, from_seq: int) -> TaskLog:
        """One attempt's log (the latest when ``attempt`` is None) from chunk ``from_seq`` on
        (``TaskNotFoundError``, or ``ValidationError`` for an attempt the task did not make)."""
        ...

    def error_history(self, task_id: str) -> list[ErrorRecord]:
        """Every error of a task, oldest first (the task exists: ``TaskNotFoundError`` otherwise)."""
        ...

    def dead_letters(self) -> list[TaskStatus]:
        """The tasks parked in the dead-letter queue, oldest first."""
        ...
