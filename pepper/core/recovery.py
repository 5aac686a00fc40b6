"""``ErrorHandler``: recovery strategies applied by hand, the error history, and the dead-letter queue.

The engine applies each task's recovery policy by itself when an attempt fails
(see ``pepper.model.recovery``); ``handle_error`` takes the same path for a
person or a script that decides instead.
"""

from __future__ import annotations

import traceback
from collections.abc import Mapping
from typing import Any

from pepper.core.component import Component
from pepper.core.served import server_of
from pepper.engine.portal import blocking, on_engine_loop
from pepper.errors import AgentNotFoundError, TaskNotFoundError, ValidationError
from pepper.model.agent import AgentSpec
from pepper.model.recovery import ErrorRecord, Fallback, Policy, RecoveryOutcome
from pepper.model.status import TaskError, TaskStatus, error_types
from pepper.model.units import check_limit
from pepper.scheduling.eligibility import Route, eligible, rejection


def as_task_error(error: Any, fallback: TaskError | None = None) -> TaskError:
    """A ``TaskError`` from an exception, a ``TaskError``, a message, a mapping or None (``fallback``)."""
    if isinstance(error, TaskError):
        return error
    if isinstance(error, BaseException):
        text = "".join(traceback.format_exception(type(error), error, error.__traceback__))
        return TaskError(type(error).__name__, str(error), text if error.__traceback__ else None,
                         types=error_types(error))  # fmt: skip
    if isinstance(error, str) and error.strip():
        return TaskError("Error", error)
    if isinstance(error, Mapping) and isinstance(error.get("message"), str):
        return TaskError(str(error.get("type", "Error")), error["message"], error.get("traceback"))
    if error is None:
        return fallback or TaskError("Error", "an error was reported by hand")
    raise ValidationError(
        f"error must be an exception, a TaskError, a message or a mapping with a 'message'; got {error!r}",
        field="error",
    )


_REPLAY_HINT = (
    "A replay is pinned only to an agent of this process or of a live worker: start a `pepper worker` "
    "with it first, or replay without an agent."
)
_FALLBACK_HINT = (
    "A fallback names an agent of this process or of a live worker: start a `pepper worker` with it "
    "first, or fall back to a task type (fallback(task_type=...))."
)


def _check_id(value: Any, what: str = "task_id") -> str:
    if not isinstance(value, str) or not value:
        raise ValidationError(f"{what} must be a non-empty string, got {value!r}", field=what)
    return value


class ErrorHandler(Component):
    """Handles task errors by hand and shows what went wrong.

    ``recovery_strategy`` is a strategy or a chain, as text (``"retry"``,
    ``"retry(3, delay=5s) -> reassign -> dead_letter"``) or objects from
    ``pepper.model.recovery``; see that module for what each one does.
    """

    @on_engine_loop
    async def handle_error(self, task_id: str, error: Any = None, recovery_strategy: Any = "retry") -> RecoveryOutcome:
        """Apply ``recovery_strategy`` to ``error`` of a task and return what was decided, when it runs next and
        where; the error, the strategy and the decision go to the task's error history.

        A running attempt (of this process's worker) ends failed, and the strategy decides what next. A task
        that has not run yet keeps waiting when the strategy would run it again (a pending one after the
        retry's delay, a blocked one for its dependencies; a dead letter parks a pending one and is refused
        for a blocked one, ``ConflictError``); skip, abort or an exhausted policy end it as they would after
        a failure. The outcome's message is the one its error history records. A failed or parked task is
        decided on again. Completed and cancelled tasks are refused (``ConflictError``), as is a task running
        on another worker. Each call is one step of ``recovery_strategy``, counted across calls with the same
        strategy: ``"retry(3)"`` retries three times, then the rest of its chain decides, or the task fails.
        """
        task_id = _check_id(task_id)
        policy = Policy.parse(recovery_strategy)
        backend = await self.runtime.backend()
        try:
            status: TaskStatus | None = await backend.status(task_id)
        except TaskNotFoundError:  # the backend says why (a fan-out step's own task is stored after its items)
            status = None
        local = server_of(self.runtime) is None  # (a server checks the agents it knows itself)
        for strategy in policy.strategies:  # an agent named by mistake would end the task: refused before
            if local and status is not None and isinstance(strategy, Fallback) and strategy.agent is not None:
                self._check_agent_can_take(strategy.agent, [status], _FALLBACK_HINT, "Nothing was changed.")
        reported = as_task_error(error, None if status is None else status.error)
        return await backend.handle_error(task_id, reported, policy)

    def handle_error_now(self, task_id: str, error: Any = None, recovery_strategy: Any = "retry") -> RecoveryOutcome:
        """``handle_error`` for code without asyncio."""
        return self._portal().call(self.handle_error(task_id, error, recovery_strategy))

    def get_error_history(
        self, task_id: str | None = None, *, agent_id: str | None = None, run_id: str | None = None, limit: int = 100
    ) -> list[ErrorRecord]:
        """Every error of a task (oldest first); or the latest errors of an agent, of a workflow run's steps,
        or of everything (newest first) - each with the strategy applied and what it decided."""
        if sum(x is not None for x in (task_id, agent_id, run_id)) > 1:
            raise ValidationError("give one of task_id, agent_id or run_id", field="task_id")
        check_limit(limit)
        if task_id is not None:
            checked = _check_id(task_id)
            return self.runtime.read(lambda backend: backend.error_history(checked))
        store = self.runtime.store
        if agent_id is not None:
            return store.errors.of_agent(_check_id(agent_id, "agent_id"), limit)
        if run_id is not None:
            store.runs.get(_check_id(run_id, "run_id"))  # raises RunNotFoundError
            return store.errors.of_run(run_id)
        return store.errors.recent(limit)

    def dead_letters(self) -> list[TaskStatus]:
        """The tasks parked in the dead-letter queue, oldest first."""
        return self.runtime.read(lambda backend: backend.dead_letters())

    @on_engine_loop
    async def replay_async(
        self, task_id: str | None = None, *, all: bool = False, agent: str | None = None
    ) -> list[str]:
        """Run parked tasks again from the start of their policy (one, or ``all=True``), on ``agent`` if given;
        a failed task may be replayed too. Returns the ids replayed."""
        if (task_id is None) == (not all):
            raise ValidationError("replay one task (task_id) or all parked tasks (all=True)", field="task_id")
        if agent is not None:
            _check_id(agent, "agent")
        ids = [_check_id(task_id)] if task_id is not None else [s.task_id for s in self.dead_letters()]
        backend = await self.runtime.backend()
        if agent is not None:  # checked for every task before any changes: a task pinned where it cannot run
            statuses = [await backend.status(tid) for tid in ids]  # would be stuck (neither parked nor failed)
            self._check_agent_can_take(agent, statuses)
        return [tid for tid in ids if await backend.replay(tid, agent)]

    def _check_agent_can_take(
        self, agent_id: str, statuses: list[TaskStatus], hint: str = _REPLAY_HINT, done: str = "Nothing was replayed."
    ) -> None:
        """Raise unless ``agent_id`` is an agent of this process or of a live worker that can take every task."""
        specs: dict[str, AgentSpec] = {a.spec.agent_id: a.spec for a in self.runtime.agents()}
        for online in self.runtime.read(lambda backend: backend.online_agents()):
            specs.setdefault(online.agent_id, online)
        spec = specs.get(agent_id)
        if spec is None:
            raise AgentNotFoundError(agent_id, specs, hint=f"{hint} {done}")
        records = self.runtime.store.get_tasks([s.task_id for s in statuses])
        for status in statuses:
            record = records.get(status.task_id)
            skills = record.task.requirements.skills if record is not None else frozenset()
            route = Route(status.task_type, None, skills)
            why = rejection(spec, route)
            if why is not None:
                able = eligible(specs.values(), route)
                others = f"agents that can: {', '.join(able)}" if able else "no known agent can take it"
                raise ValidationError(
                    f"agent {agent_id!r} cannot take task {status.task_id!r}: it {why}; {others}. {done}",
                    field="agent",
                )

    @on_engine_loop
    async def drop_async(self, task_id: str, reason: str | None = None) -> bool:
        """Give up a parked task: it fails and its dependents are cancelled. False if it was not parked."""
        backend = await self.runtime.backend()
        return await backend.drop(_check_id(task_id), reason or "dropped from the dead-letter queue")

    replay = blocking(replay_async)
    drop = blocking(drop_async)
