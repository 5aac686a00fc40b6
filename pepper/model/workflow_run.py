"""A run of a workflow as stored (``RunRecord``) and as reported (``WorkflowResult``, ``StepResult``)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from pepper.model import codec
from pepper.model.outcome import TaskOutcome
from pepper.model.status import TaskError, TaskStatus
from pepper.model.task import TaskState
from pepper.model.workflow import WorkflowSpec

#: The reason text of a skipped step starts with this (for people; its ``outcome`` says it was skipped).
SKIPPED = "skipped: "


class RunState(StrEnum):
    """Where a run is: ``running`` until every step is final, then how it ended."""

    RUNNING = "running"
    COMPLETED = "completed"  # every step completed (or was skipped)
    FAILED = "failed"  # a step failed
    CANCELLED = "cancelled"  # cancelled on request (or timed out)

    @property
    def is_final(self) -> bool:
        return self is not RunState.RUNNING

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True, slots=True)
class RunRecord:
    """One row of the runs table."""

    run_id: str
    spec: WorkflowSpec
    inputs: Mapping[str, Any]
    state: RunState
    created_at: float
    finished_at: float | None = None
    driver: str | None = None  # the worker id of the process that advances it
    reason: str | None = None
    cancel_requested: bool = False
    #: The predicted timeline, if one was made: ``{"makespan": s, "policy": p, "steps": {id: [agent, start, end]}}``
    #: with times in seconds from the run's start.
    plan: Mapping[str, Any] | None = None
    #: The schedule whose tick started it (None: started by hand).
    schedule: str | None = None
    parent: str | None = None  # a sub-workflow's run: the task id (``run/step``) of the step that started it

    @property
    def workflow(self) -> str:
        return self.spec.name

    @classmethod
    def from_row(cls, row: codec.Row) -> RunRecord:
        return cls(
            run_id=row["run_id"],
            spec=WorkflowSpec.from_dict(codec.decode(row["spec"])),
            inputs=codec.decode(row["inputs"]) or {},
            state=RunState(row["state"]),
            created_at=row["created_at"],
            finished_at=row["finished_at"],
            driver=row["driver"],
            reason=row["reason"],
            cancel_requested=bool(row["cancel_requested"]),
            plan=codec.decode(row["plan"]),
            schedule=row["schedule"],
            parent=row["parent"],
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form; ``spec`` is the workflow as ``WorkflowSpec.to_dict`` gives it."""
        return {
            "run_id": self.run_id, "workflow": self.workflow, "spec": self.spec.to_dict(), "inputs": dict(self.inputs),
            "state": self.state.value, "created_at": self.created_at, "finished_at": self.finished_at,
            "driver": self.driver, "reason": self.reason, "cancel_requested": self.cancel_requested, "plan": self.plan,
            "schedule": self.schedule,
            "parent": self.parent,
        }  # fmt: skip

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RunRecord:
        """The record ``to_dict`` gave (an HTTP answer's)."""
        return cls(
            data["run_id"], WorkflowSpec.from_dict(data["spec"]), dict(data.get("inputs") or {}),
            RunState(data["state"]), data["created_at"], data.get("finished_at"), data.get("driver"),
            data.get("reason"), bool(data.get("cancel_requested")), data.get("plan"), data.get("schedule"),
            data.get("parent"),
        )  # fmt: skip


@dataclass(frozen=True, slots=True)
class StepResult:
    """How one step of a run went. ``state`` is None while the step has no task yet (it waits for a
    condition to be decided); a skipped step is ``completed`` with ``skipped`` True and no result."""

    step_id: str
    task_id: str
    state: TaskState | None
    agent_id: str | None = None
    result: Any = None
    error: TaskError | None = None
    attempts: int = 0
    started_at: float | None = None
    finished_at: float | None = None
    skipped: bool = False
    reason: str | None = None
    dependencies: tuple[str, ...] = ()  # step ids
    parked: bool = False  # in the dead-letter queue: the run waits for a person to replay or drop it

    @property
    def status(self) -> str:
        """``skipped``, ``parked``, ``waiting`` (no task yet) or the task's state."""
        if self.skipped:
            return "skipped"
        if self.parked:
            return "parked"
        return "waiting" if self.state is None else self.state.value

    @property
    def duration(self) -> float | None:
        if self.started_at is None or self.finished_at is None:
            return None
        return max(0.0, self.finished_at - self.started_at)

    @classmethod
    def of(
        cls, step_id: str, task_id: str, status: TaskStatus | None, dependencies: tuple[str, ...] = ()
    ) -> StepResult:
        if status is None:
            return cls(step_id, task_id, None, dependencies=dependencies)
        skipped = status.state is TaskState.COMPLETED and status.outcome is TaskOutcome.SKIPPED
        return cls(
            step_id, task_id, status.state, status.agent_id, status.result, status.error, status.attempts,
            status.started_at, status.finished_at, skipped, status.reason, dependencies, status.parked,
        )  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        return {
            "step_id": self.step_id, "task_id": self.task_id, "status": self.status,
            "state": None if self.state is None else self.state.value, "agent_id": self.agent_id,
            "result": self.result, "error": None if self.error is None else self.error.to_dict(),
            "attempts": self.attempts, "started_at": self.started_at, "finished_at": self.finished_at,
            "duration": self.duration, "skipped": self.skipped, "reason": self.reason,
            "dependencies": list(self.dependencies),
        }  # fmt: skip

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> StepResult:
        """The step ``to_dict`` gave (an HTTP answer's)."""
        state = data.get("state")
        return cls(
            data["step_id"], data["task_id"], None if state is None else TaskState(state), data.get("agent_id"),
            data.get("result"), TaskError.from_dict(data.get("error")), data.get("attempts", 0),
            data.get("started_at"), data.get("finished_at"), bool(data.get("skipped")), data.get("reason"),
            tuple(data.get("dependencies") or ()), data.get("status") == "parked",
        )  # fmt: skip


@dataclass(frozen=True, slots=True)
class WorkflowResult:
    """A run and each of its steps (in the order they were added). ``result["step"]`` is a ``StepResult``."""

    run_id: str
    workflow: str
    status: RunState
    steps: Mapping[str, StepResult] = field(default_factory=dict)
    inputs: Mapping[str, Any] = field(default_factory=dict)
    created_at: float = 0.0
    finished_at: float | None = None
    reason: str | None = None
    plan: Mapping[str, Any] | None = None  # the predicted timeline, as on ``RunRecord``

    @property
    def succeeded(self) -> bool:
        return self.status is RunState.COMPLETED

    @property
    def results(self) -> dict[str, Any]:
        """Each completed step's result, by step id."""
        return {s: r.result for s, r in self.steps.items() if r.state is TaskState.COMPLETED and not r.skipped}

    @property
    def failed_steps(self) -> list[str]:
        return [s for s, r in self.steps.items() if r.state is TaskState.FAILED]

    @property
    def started_at(self) -> float | None:
        starts = [r.started_at for r in self.steps.values() if r.started_at is not None]
        return min(starts) if starts else None

    @property
    def duration(self) -> float | None:
        """Seconds from the run's creation to its end (None while it runs)."""
        return None if self.finished_at is None else max(0.0, self.finished_at - self.created_at)

    @property
    def steps_ended(self) -> int:
        """How many steps ended, however they ended (completed, failed, cancelled or skipped)."""
        return sum(1 for s in self.steps.values() if s.state is not None and s.state.is_final)

    def counts(self) -> dict[str, int]:
        """How many steps are in each status."""
        counts: dict[str, int] = {}
        for step in self.steps.values():
            counts[step.status] = counts.get(step.status, 0) + 1
        return counts

    def __getitem__(self, step_id: str) -> StepResult:
        return self.steps[step_id]

    def __iter__(self) -> Iterator[StepResult]:
        return iter(self.steps.values())

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id, "workflow": self.workflow, "status": self.status.value,
            "created_at": self.created_at, "finished_at": self.finished_at, "duration": self.duration,
            "reason": self.reason, "inputs": dict(self.inputs),
            "steps": [s.to_dict() for s in self.steps.values()], "plan": self.plan,
        }  # fmt: skip

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> WorkflowResult:
        """The result ``to_dict`` gave (an HTTP answer's)."""
        steps = [StepResult.from_dict(s) for s in data.get("steps") or ()]
        return cls(
            data["run_id"], data["workflow"], RunState(data["status"]), {s.step_id: s for s in steps},
            dict(data.get("inputs") or {}), data.get("created_at", 0.0), data.get("finished_at"), data.get("reason"),
            data.get("plan"),
        )  # fmt: skip
