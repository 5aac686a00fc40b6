"""State conflicts: a call that is valid in itself but not in the current state."""

from __future__ import annotations

from collections.abc import Iterable

from pepper.errors.base import PepperError


class ConflictError(PepperError, RuntimeError):
    """The request clashes with the current state."""


class RerunError(ConflictError):
    """A re-run that cannot be made: the run has not ended yet, a step it names does not exist, or nothing is
    left to run again."""

    def __init__(self, run_id: str, message: str) -> None:
        super().__init__(message)
        self.run_id = run_id


class RunEndedError(ConflictError):
    """A recovery by hand (``handle_error``, ``replay``) of a step of a workflow run that has ended: the run is
    not re-opened behind its back; a re-run (``pepper rerun``) runs its steps again in the same run."""

    def __init__(self, task_id: str, run_id: str, state: str, step_id: str | None = None) -> None:
        step = f" --from {step_id}" if step_id else ""
        super().__init__(
            f"task {task_id!r} is a step of workflow run {run_id!r}, which has ended ({state}); a step of an ended "
            f"run is not recovered by hand. Run the run's failed steps again with `pepper rerun {run_id}`, or this "
            f"step and what depends on it with `pepper rerun {run_id}{step}` (in Python: "
            "WorkflowController.rerun)"
        )
        self.task_id = task_id
        self.run_id = run_id
        self.state = state


class FanOutStepError(ConflictError):
    """A recovery by hand of a fan-out step's own task (no agent runs it, its items are what runs), or of an item
    that failed (its step failed with it). ``parked`` lists the step's items waiting in the dead-letter queue:
    replay, skip or drop those instead."""

    def __init__(self, message: str, *, task_id: str, run_id: str, step_id: str, parked: Iterable[str] = ()) -> None:
        super().__init__(message)
        self.task_id = task_id
        self.run_id = run_id
        self.step_id = step_id
        self.parked = tuple(parked)


class NotWaitingError(ConflictError):
    """A decision for a step that does not wait for one: not an approval step, not reached yet, decided
    already, or its run ended. ``task_id`` names the step's task."""

    def __init__(self, message: str, *, task_id: str) -> None:
        super().__init__(message)
        self.task_id = task_id


class InvalidTransitionError(ConflictError):
    """A task state change that the transition table does not allow."""

    def __init__(self, task_id: str, source: str, target: str, allowed: Iterable[str]) -> None:
        options = ", ".join(sorted(allowed)) or "none (it is final)"
        super().__init__(
            f"task {task_id!r} cannot go from {source!r} to {target!r}; from {source!r} it may go to: {options}"
        )
        self.task_id = task_id
        self.source = source
        self.target = target


class AgentAlreadyRegisteredError(ConflictError):
    """Another agent with the same id is already registered on this runtime."""

    def __init__(self, agent_id: str) -> None:
        super().__init__(
            f"an agent with id {agent_id!r} is already registered on this runtime; "
            "agent ids must be unique (unregister the old one first)"
        )
        self.agent_id = agent_id


class ResourceUnavailableError(ConflictError):
    """The resources asked for are not free now; ``shortfall`` says how much is missing."""

    def __init__(self, message: str, shortfall: dict[str, float]) -> None:
        super().__init__(message)
        self.shortfall = dict(shortfall)


class LeaseEndedError(ConflictError):
    """The lease was released or has expired, so it cannot be renewed."""

    def __init__(self, allocation_id: str, how: str) -> None:
        super().__init__(f"allocation {allocation_id!r} {how}; allocate again instead of renewing")
        self.allocation_id = allocation_id
