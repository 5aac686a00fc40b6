"""The local executors: the engine's loop (async agents), a thread (sync agents), a subprocess (commands)."""

from __future__ import annotations

import asyncio
import contextvars
import inspect
import logging
import threading
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from pepper.engine.clock import Clock
from pepper.engine.executors.protocol import AgentHandle
from pepper.engine.executors.subprocess import run_command
from pepper.engine.executors.threads import AgentThreads
from pepper.model.run import TaskRun

log = logging.getLogger("pepper.engine")


class InLoop:
    """Async agents, awaited on the engine's loop: the attempt is the agent's own coroutine (the hot path)."""

    name = "async"

    def call(self, agent: AgentHandle, run: TaskRun) -> Coroutine[Any, Any, Any]:
        return agent.execute(run)

    def health(self) -> str | None:
        return None

    def close(self) -> None:
        return None


#: Told that a call outlived its attempt, by ``(agent id, task id, attempt)``; answers what to call (on the
#: call's thread) once it returns.
Held = Callable[[tuple[str, str, int]], Callable[[], object]]


#: How long (seconds of the engine's clock) a sync agent's call may take to return once its attempt ended before
#: it is told as left running: one that checks ``task.cancelled`` returns well within it.
RETURN_GRACE = 1.0


class InThread:
    """Sync agents, on a pool of threads; a call that outlives its attempt gives its place to a fresh thread.

    ``held``: told (on the loop, before the attempt's end is reported) of each call that outlived its attempt,
    so that its agent's slot stays taken until the call returns. A call still running ``RETURN_GRACE`` seconds
    after its attempt ended is logged once, as a warning."""

    name = "sync"

    def __init__(self, threads: AgentThreads, clock: Clock, held: Held | None = None) -> None:
        self.threads = threads
        self._clock = clock
        self._held = held

    async def call(self, agent: AgentHandle, run: TaskRun) -> Any:
        # The thread runs the agent in a copy of this attempt's context: its log records are this attempt's.
        context = contextvars.copy_context()
        execute = agent.execute

        def in_context(task: TaskRun) -> Any:
            return context.run(execute, task)

        owner = (agent.spec.agent_id, run.task_id, run.attempt)
        future = self.threads.submit(in_context, run, owner=owner)
        try:
            value = await asyncio.wrap_future(future)
        except asyncio.CancelledError:
            returned = _Returned()
            now = self._clock.now()
            if self.threads.abandon(future, now, returned):
                if self._held is not None:
                    returned.then(self._held(owner))
                self._clock.call_at(now + RETURN_GRACE, lambda: self._still_running(returned, owner))
            raise
        if inspect.isawaitable(value):
            value = await value
        return value

    def _still_running(self, returned: _Returned, owner: tuple[str, str, int]) -> None:
        """Warn that an abandoned call has not returned within the grace (said once, for that call)."""
        if returned.returned:
            return
        agent_id, task_id, attempt = owner
        stuck = self.threads.statistics().stuck
        log.warning(
            "agent %s did not return within %gs of the end of attempt %d of task %s; its thread is left to "
            "finish (a new one takes its place in the pool) and keeps the agent's slot until it returns "
            "(%d such %s now; make the function return when task.cancelled is set)",
            agent_id,
            RETURN_GRACE,
            attempt,
            task_id,
            stuck,
            "thread" if stuck == 1 else "threads",
        )

    def health(self) -> str | None:
        return None

    def close(self) -> None:
        self.threads.close()


class _Returned:
    """Called on its thread when an abandoned call returns; passes that on to what ``then`` names, which may
    be named only after the call returned (it is then called at once)."""

    __slots__ = ("_lock", "_next", "_returned")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._returned = False
        self._next: Callable[[], object] | None = None

    @property
    def returned(self) -> bool:
        """Whether the call has returned."""
        with self._lock:
            return self._returned

    def __call__(self) -> None:
        with self._lock:
            self._returned, then = True, self._next
        if then is not None:
            then()

    def then(self, then: Callable[[], object]) -> None:
        with self._lock:
            self._next, returned = then, self._returned
        if returned:
            then()


class InSubprocess:
    """Command agents, each attempt a subprocess in the agent's working directory under ``home``, its
    environment marked with ``worker_id`` (the worker running it), when given."""

    name = "command"

    def __init__(self, home: Path, pids: dict[str, set[int]], worker_id: str | None = None) -> None:
        self.home = home
        self.pids = pids  # agent id -> processes of its running commands (read by the usage sampler)
        self.worker_id = worker_id

    def call(self, agent: AgentHandle, run: TaskRun) -> Coroutine[Any, Any, Any]:
        spec = agent.spec
        cap = run.task.requirements.resources.get("memory") or spec.resources.get("memory")
        pids = self.pids.setdefault(spec.agent_id, set())
        return run_command(spec, run, self.home / spec.agent_id, memory_cap=cap, pids=pids, worker_id=self.worker_id)

    def health(self) -> str | None:
        return None

    def close(self) -> None:
        return None
