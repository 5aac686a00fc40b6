"""Unknown ids: a task, agent, run, step, schedule or token that does not exist."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from pepper.errors.base import PepperError, suggest


class NotFoundError(PepperError, LookupError):
    """Something named by id does not exist."""


class TaskNotFoundError(NotFoundError):
    """No task with this id was ever submitted (to this database)."""

    def __init__(self, task_id: str) -> None:
        super().__init__(f"no task with id {task_id!r}; `pepper tasks` lists the known tasks")
        self.task_id = task_id


class AgentNotFoundError(NotFoundError):
    """No agent with this id is registered."""

    def __init__(self, agent_id: str, known: Iterable[str] = (), *, hint: str = "") -> None:
        known = sorted(known)
        listing = ", ".join(known) if known else "none are registered"
        more = f" {hint}" if hint else ""
        super().__init__(f"no agent with id {agent_id!r} (registered: {listing}).{suggest(agent_id, known)}{more}")
        self.agent_id = agent_id
        self.known = tuple(known)


class AllocationNotFoundError(NotFoundError):
    """No lease (allocation) with this id was ever granted."""

    def __init__(self, allocation_id: str) -> None:
        super().__init__(f"no allocation with id {allocation_id!r}; `pepper leases` lists the current ones")
        self.allocation_id = allocation_id


class RunNotFoundError(NotFoundError):
    """No workflow run has this id."""

    def __init__(self, run_id: str) -> None:
        super().__init__(f"no workflow run with id {run_id!r}; `pepper runs` lists the runs")
        self.run_id = run_id


class ScheduleNotFoundError(NotFoundError):
    """No schedule has this name."""

    def __init__(self, name: str) -> None:
        super().__init__(f"no schedule named {name!r}; `pepper schedules` lists the schedules")
        self.name = name


class StepNotFoundError(NotFoundError):
    """A run's workflow has no step with this id."""

    def __init__(self, run_id: str, step_id: str, steps: Sequence[str]) -> None:
        super().__init__(
            f"run {run_id!r} has no step {step_id!r}; its steps: {', '.join(steps) or 'none'}.{suggest(step_id, steps)}"
        )
        self.run_id = run_id
        self.step_id = step_id


class TokenNotFoundError(NotFoundError):
    """No live API token has this name."""

    def __init__(self, name: str) -> None:
        super().__init__(f"no live token named {name!r}; `pepper token list` lists the tokens")
        self.name = name


class NoEligibleAgentError(NotFoundError):
    """No agent can take the task; ``rejected`` says, per agent, why not."""

    def __init__(self, task_type: str, rejected: dict[str, tuple[str, ...]]) -> None:
        if rejected:
            lines = "; ".join(f"{agent}: {', '.join(reasons)}" for agent, reasons in sorted(rejected.items()))
            detail = f"every agent was ruled out - {lines}"
        else:
            detail = "no agents are registered (start a `pepper worker` or register one)"
        super().__init__(f"no eligible agent for a {task_type!r} task: {detail}")
        self.task_type = task_type
        self.rejected = dict(rejected)
