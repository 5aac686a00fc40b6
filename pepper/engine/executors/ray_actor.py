"""What runs in a Ray worker: one agent's actor, which runs its attempts and hands back how they ended in batches.

The engine's side (``executors.ray``) sends the attempts an engine turn starts on the agent in one call
(``start``) and keeps one ``collect`` call waiting, which returns every attempt that ended since the last
one, with the latest progress of those still running: one Ray call per batch, not per attempt. Attempts run
on the actor's own threads, as many as the agent's capacity. This module does not import Ray (``executors.ray``
makes ``AgentActor`` an actor class); it only uses what a Ray worker has.
"""

from __future__ import annotations

import asyncio
import inspect
import os
import pickle
import threading
import time
import traceback
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from pepper.errors import AgentStartError
from pepper.model import codec
from pepper.model.agent import AgentSpec
from pepper.model.run import CancelFlag, TaskRun
from pepper.model.task import Task

#: An attempt: (task id, attempt number).
Key = tuple[str, int]
#: How an attempt ended: its key, whether it returned, and its result as JSON text (or None) or what it raised.
Ended = tuple[Key, bool, Any]
#: Progress of a running attempt: its key and (fraction, message).
Progress = tuple[Key, tuple[float, "str | None"]]
#: What ``start`` receives for each attempt: the task, the attempt number, the agent id, the dependencies' results.
Attempt = tuple[Task, int, str, Mapping[str, Any]]

_EARLY_CANCELS = 1000  # cancels kept for attempts not started yet
PROGRESS_EVERY = 0.2  # seconds: progress alone is handed back at most this often (ends go at once)


class AgentActor:
    """Runs one agent's attempts in a Ray worker process (made a Ray actor by ``RayExecutor``)."""

    def __init__(self, payload: tuple[Any, ...], home: str, capacity: int) -> None:
        self.kind = payload[0]
        self.home = Path(home)
        self._threads = ThreadPoolExecutor(max_workers=max(1, capacity), thread_name_prefix="pepper-attempt")
        self._changed = threading.Condition()
        self._ended: list[Ended] = []
        self._progress: dict[Key, tuple[float, str | None]] = {}
        self._progress_due = 0.0
        self._flags: dict[Key, CancelFlag] = {}
        self._cancelled_early: dict[Key, None] = {}  # cancels that came before their attempt, oldest first
        self._loops: dict[Key, tuple[asyncio.AbstractEventLoop, asyncio.Task[Any]]] = {}
        self.agent: Any = None
        self._initialized = True  # a class agent's ``initialize()`` runs before its first attempts (``start``)
        self._initializing = threading.Lock()
        if self.kind == "command":
            self.spec: AgentSpec = payload[1]
        elif self.kind == "function":
            self.execute = payload[1]
        else:
            cls, state = payload[1], payload[2]
            self.agent = cls.__new__(cls)
            self.agent.__dict__.update(state)
            self.agent._lock = threading.Lock()
            self._initialized = False
            self.execute = self.agent.execute

    def ready(self) -> int:
        return os.getpid()

    def start(self, attempts: list[Attempt]) -> None:
        """Start these attempts on the actor's threads; their ends are handed back by ``collect``. A class
        agent's ``initialize()`` runs first, once: while it fails, so does every batch (``AgentStartError``)."""
        if not self._initialized and attempts:
            self._initialize(attempts[0][2])
        for task, attempt, agent_id, results in attempts:
            key = (task.task_id, attempt)
            with self._changed:
                if key in self._cancelled_early:  # its cancel overtook it: it never starts
                    del self._cancelled_early[key]
                    self._ended.append((key, False, RuntimeError("the attempt was cancelled before it started")))
                    self._changed.notify_all()
                    continue
                flag = self._flags[key] = CancelFlag()
            self._threads.submit(self._attempt, key, TaskRun(task, attempt, agent_id, results, self._report, flag))

    def collect(self, wait: float) -> tuple[list[Ended], list[Progress]]:
        """The attempts that ended since the last call and the latest progress of running ones; waits up to
        ``wait`` seconds for something to hand back."""
        with self._changed:
            now = time.monotonic()
            deadline = now + wait
            while not self._ended:
                left = deadline - now
                if self._progress:
                    left = min(left, self._progress_due - now)
                if left <= 0:
                    break
                self._changed.wait(left)
                now = time.monotonic()
            ended, self._ended = self._ended, []
            progress, self._progress = self._progress, {}
            if progress:
                self._progress_due = now + PROGRESS_EVERY
        return ended, list(progress.items())

    def cancel(self, task_id: str, attempt: int) -> None:
        """Stop an attempt: its ``task.cancelled`` is set, an async agent or a command is cancelled."""
        key = (task_id, attempt)
        with self._changed:
            flag = self._flags.get(key)
            if flag is not None:
                flag.is_set = True
            else:  # not started yet (calls may overtake each other), or already ended
                self._cancelled_early[key] = None
                while len(self._cancelled_early) > _EARLY_CANCELS:  # those of attempts that came no more
                    del self._cancelled_early[next(iter(self._cancelled_early))]
        running = self._loops.get(key)
        if running is not None:
            loop, task = running
            loop.call_soon_threadsafe(task.cancel)

    def running(self, task_id: str, attempt: int) -> bool:
        """Whether the attempt still runs here (started and not ended)."""
        with self._changed:
            return (task_id, attempt) in self._flags

    def _initialize(self, agent_id: str) -> None:
        """Run the agent's ``initialize()`` unless it ran; what it raises is an ``AgentStartError`` (with where it
        was raised as a note), and the next batch tries again."""
        with self._initializing:
            if self._initialized:
                return
            try:
                outcome = self.agent.initialize()
                if inspect.isawaitable(outcome):
                    asyncio.run(_awaited(outcome))
            except BaseException as exc:  # noqa: BLE001 - handed back as why the batch could not start
                error = AgentStartError(
                    {agent_id: described(exc)},
                    f"agent {agent_id!r} could not start in its Ray actor: its initialize() raised "
                    f"{described(exc)}; its attempts fail until it starts (each new batch of attempts tries again)",
                )
                frames = "".join(traceback.format_tb(exc.__traceback__)).rstrip()
                if frames:
                    error.add_note(f"initialize() raised in the Ray actor at:\n{frames}")
                raise error from None
            self._initialized = True

    # -- on the actor's threads --------------------------------------------------------

    def _attempt(self, key: Key, run: TaskRun) -> None:
        ended: Ended
        try:
            ended = (key, True, self._run(key, run))
        except BaseException as exc:  # noqa: BLE001 - handed back as the attempt's failure
            ended = (key, False, portable(exc))
        with self._changed:
            self._flags.pop(key, None)
            self._progress.pop(key, None)
            self._ended.append(ended)
            self._changed.notify_all()

    def _run(self, key: Key, run: TaskRun) -> str | None:
        """One attempt; its result as JSON text (or None)."""
        if self.kind == "command":
            from pepper.engine.executors.subprocess import run_command  # the node's own subprocess code

            cap = run.task.requirements.resources.get("memory") or self.spec.resources.get("memory")
            value = self._in_loop(key, run_command(self.spec, run, self.home / run.agent_id, memory_cap=cap))
        else:
            value = self.execute(run)
            if inspect.isawaitable(value):
                value = self._in_loop(key, value)
        return codec.normalise(value, "the agent's result", depth=codec.MAX_DEPTH)[1]

    def _report(self, task_id: str, attempt: int, fraction: float, message: str | None) -> None:
        with self._changed:
            self._progress[(task_id, attempt)] = (fraction, message)
            self._changed.notify_all()

    def _in_loop(self, key: Key, awaitable: Any) -> Any:
        loop = asyncio.new_event_loop()
        try:
            task = loop.create_task(_awaited(awaitable))
            self._loops[key] = (loop, task)
            return loop.run_until_complete(task)
        finally:
            self._loops.pop(key, None)
            loop.close()


def described(exc: BaseException) -> str:
    """``Type: message`` of what an agent raised (never raises itself)."""
    try:
        text = str(exc)
    except Exception:  # noqa: BLE001
        text = "(its message could not be read)"
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


async def _awaited(awaitable: Any) -> Any:
    return await awaitable


def portable(exc: BaseException) -> BaseException:
    """What an agent raised, as it can travel back to the engine: the exception itself when it can be pickled and
    unpickled (with where it was raised as a note), else a ``RuntimeError`` that names it."""
    frames = "".join(traceback.format_tb(exc.__traceback__))
    try:
        text = str(exc)
    except Exception:  # noqa: BLE001
        text = "(its message could not be read)"
    try:
        if frames:
            exc.add_note(f"raised in the Ray actor at:\n{frames.rstrip()}")
        pickle.loads(pickle.dumps(exc))
    except Exception:  # noqa: BLE001 - not picklable (a local class, an unpicklable attribute...)
        stand_in = RuntimeError(f"{type(exc).__name__}: {text}")
        if frames:
            stand_in.add_note(f"raised in the Ray actor at:\n{frames.rstrip()}")
        return stand_in
    exc.__traceback__ = None  # its frames do not travel (their text is in the note)
    return exc
