"""Running attempts: each on its agent's executor, with its timeout, reporting how it ended.

Async agents run on the engine loop, sync agents in a thread pool, command
agents as subprocesses (``executors.local``); agents with ``executor="ray"`` as
Ray actors (``executors.ray``, imported only then). A sync agent still running when its attempt ends
(timeout, cancel) keeps its thread, which Python cannot stop; the pool starts
a fresh thread in its place, so such agents never starve the others (see
``executors.threads``; ``stuck_threads`` counts them), and the call keeps its
agent's slot until it returns (``CallHeld``, ``CallReturned``). A result larger than
the agent's cap (``executors.limits``) fails the attempt. Whatever an agent
raises, even ``BaseException`` subclasses, becomes a failed attempt; it never
reaches the engine. An attempt whose executor cannot be made here (Ray cannot be
imported) fails as the agent's own failure would (``ExecutorUnavailableError``, its
recovery deciding), and the other attempts of its engine turn start.
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
import logging
import traceback
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from pepper.engine import log_capture
from pepper.engine.clock import Clock
from pepper.engine.executors.limits import ResultTooLarge, check_result_size, result_limit
from pepper.engine.executors.local import InLoop, InSubprocess, InThread
from pepper.engine.executors.protocol import AgentCrashed, AgentHandle, Executor
from pepper.engine.executors.ray_options import no_ray
from pepper.engine.executors.subprocess import CommandFailed, CommandKilled, MemoryLimitExceeded
from pepper.engine.executors.threads import AgentThreads
from pepper.engine.log_capture import LogSlot
from pepper.engine.task_logs import LogWriter
from pepper.errors import NotSerializableError
from pepper.model import codec
from pepper.model.agent import AgentSpec
from pepper.model.events import AttemptEnded, CallHeld, CallReturned, Event
from pepper.model.run import TaskRun
from pepper.model.slots import new_tuple
from pepper.model.status import TaskError, error_types

log = logging.getLogger("pepper.engine")

__all__ = ["AgentHandle", "Attempts", "executor_kind", "task_error"]


class _Attempt:
    __slots__ = ("aborted", "agent", "held", "interrupted", "log", "run", "started_at", "task")

    def __init__(self, run: TaskRun, agent: AgentHandle, started_at: float, slot: LogSlot | None) -> None:
        self.run = run
        self.agent = agent
        self.started_at = started_at
        self.log = slot
        self.task: asyncio.Task[None] | None = None
        self.aborted = False
        self.interrupted = False
        self.held = False  # aborted while its sync call ran: ``CallReturned`` comes when that call returns


def task_error(exc: BaseException, kind: str = "error") -> TaskError:
    """A stored description of what an agent raised (never raises itself, whatever ``exc`` does)."""
    if isinstance(exc, (CommandFailed, CommandKilled, MemoryLimitExceeded, ResultTooLarge, AgentCrashed)):
        # The message carries the command's own stderr; pepper's frames would only mislead.
        crashed = isinstance(exc, (CommandKilled, AgentCrashed))
        return TaskError(type(exc).__name__, str(exc), None, "crash" if crashed else kind, error_types(exc))
    name = type(exc).__name__
    try:
        message = str(exc) or name
    except Exception:  # noqa: BLE001 - an exception whose __str__ fails still ends its attempt
        message = f"{name} (its message could not be read)"
    try:
        text: str | None = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__, limit=20))
    except Exception:  # noqa: BLE001
        text = None
    return TaskError(name, message, text, kind, error_types(exc))


class Attempts:
    """Starts attempts as asyncio tasks and reports each end through ``report``; the commands they start carry
    ``worker_id`` (the worker running them) in their environment."""

    def __init__(
        self,
        clock: Clock,
        report: Callable[[Event], object],
        agents_home: Path,
        max_threads: int = 64,
        *,
        executor: str = "local",
        ray_address: str | None = None,
        logs: LogWriter | None = None,
        worker_id: str | None = None,
    ) -> None:
        self._clock = clock
        self.logs = logs  # where attempts' logs are written (None: not kept)
        if logs is not None:
            log_capture.install()
        self._report = report
        self.home = agents_home
        self.threads = AgentThreads(max_threads)
        self.running: dict[str, _Attempt] = {}
        self._aborted: dict[tuple[str, int], _Attempt] = {}  # aborted, their call not yet stopped
        self.pids: dict[str, set[int]] = {}  # agent id -> processes of its running commands
        self.default_executor = executor  # for agents that name none
        self.ray_address = ray_address
        self.executors: dict[str, Executor] = {
            "async": InLoop(),
            "sync": InThread(self.threads, clock, self._held),
            "command": InSubprocess(agents_home, self.pids, worker_id),
        }
        self._chosen: dict[AgentHandle, Executor] = {}
        self._limits: dict[AgentHandle, int] = {}  # each agent's result cap, in bytes, from its spec (fixed)
        # The engine's loop, taken at the first start: asking asyncio for it costs a system call each time.
        self._loop: asyncio.AbstractEventLoop | None = None

    def _held(self, owner: tuple[str, str, int]) -> Callable[[], object]:
        """A sync agent's call outlived its attempt: its agent's slot stays taken (told before the attempt's
        end), and is given back once the call returns (the returned callable, called on the call's thread)."""
        agent_id, task_id, attempt = owner
        cause = f"attempt:{task_id}:{attempt}"
        aborted = self._aborted.get((task_id, attempt))
        if aborted is not None:
            aborted.held = True
        self._report(CallHeld(agent_id, task_id, attempt, self._clock.now(), cause))
        loop = self._loop

        def returned() -> None:
            if loop is None or loop.is_closed():
                return  # the engine has stopped: no slot is left to give back
            event = lambda: self._report(CallReturned(agent_id, task_id, attempt, self._clock.now(), cause))  # noqa: E731
            try:
                loop.call_soon_threadsafe(event)
            except RuntimeError:  # the loop closed meanwhile
                pass

        return returned

    def start(self, agent: AgentHandle, run: TaskRun) -> float:
        """Start ``run`` on ``agent``; when it started, by the engine's clock."""
        task_id = run.task.task_id
        slot = LogSlot(self.logs, task_id, run.attempt) if self.logs is not None else None
        attempt = _Attempt(run, agent, self._clock.now(), slot)
        executor = self._chosen.get(agent)
        call: Coroutine[Any, Any, Any]
        if executor is None:
            try:
                executor = self._chosen[agent] = self.executor_for(agent)
            except Exception as exc:  # noqa: BLE001 - it cannot be made here: this attempt fails, the others start
                call = _refused(exc)
            else:
                call = executor.call(agent, run)
        else:
            call = executor.call(agent, run)
        loop = self._loop
        if loop is None:
            loop = self._loop = asyncio.get_running_loop()
        self.running[task_id] = attempt
        attempt.task = loop.create_task(self._run(attempt, call))
        return attempt.started_at

    def on_ray(self, spec: AgentSpec) -> bool:
        """Whether the agent's attempts run on Ray (it, or the runtime for agents that name no executor, says so)."""
        return (spec.executor or self.default_executor) == "ray"

    def executor_for(self, agent: AgentHandle) -> Executor:
        """Where ``agent``'s attempts run: Ray when it (or the runtime) says so, else locally by its kind; an
        ``ExecutorUnavailableError`` when Ray cannot be imported here."""
        if self.on_ray(agent.spec):
            ray = self.executors.get("ray")
            if ray is None:
                # Imported here, and only here: Ray is an optional dependency, heavy to import.
                try:
                    module = importlib.import_module("pepper.engine.executors.ray")
                except ImportError as exc:
                    raise no_ray(agent.spec.agent_id, str(exc)) from exc
                ray = self.executors["ray"] = module.RayExecutor(self.ray_address, self.home)
            return ray
        return self.executors[executor_kind(agent)]

    def log_line(self, task_id: str, attempt: int, message: str, level: str) -> None:
        """A line an agent wrote with ``task.log`` (from any thread): added to its running attempt's log."""
        current = self.running.get(task_id)
        if current is not None and current.run.attempt == attempt and current.log is not None:
            current.log.line(message, level)

    def forget(self, agent: AgentHandle) -> None:
        """``agent`` was unregistered: its executor lets go of what it kept for it."""
        executor = self._chosen.pop(agent, None)
        self._limits.pop(agent, None)
        release = getattr(executor, "release", None)
        if release is not None:
            release(agent)

    def health(self) -> dict[str, str]:
        """Each executor in use that cannot run attempts now, and why."""
        problems = {name: executor.health() for name, executor in self.executors.items()}
        return {name: why for name, why in problems.items() if why}

    def abort(self, task_id: str, attempt: int) -> None:
        """Stop an attempt the engine no longer wants; its end is not reported, but once its call has stopped
        (at once, or, for a sync agent's call that runs on, when it returns) ``CallReturned`` gives its agent's
        slot back. An attempt that is not running here (it never started) is reported stopped at once."""
        current = self.running.get(task_id)
        if current is None or current.run.attempt != attempt or current.task is None or current.task.done():
            asyncio.get_running_loop().call_soon(self._stopped, "", task_id, attempt)
            return
        current.aborted = True
        current.run._cancel.is_set = True
        self._aborted[(task_id, attempt)] = current
        current.task.add_done_callback(lambda _: self._after_abort(current))
        current.task.cancel()
        self.running.pop(task_id, None)

    def _after_abort(self, attempt: _Attempt) -> None:
        """An aborted attempt's task ended: its slot is free now, unless its sync call runs on (``_held``)."""
        run = attempt.run
        self._aborted.pop((run.task_id, run.attempt), None)
        if not attempt.held:
            self._stopped(attempt.agent.spec.agent_id, run.task_id, run.attempt)

    def _stopped(self, agent_id: str, task_id: str, attempt: int) -> None:
        self._report(CallReturned(agent_id, task_id, attempt, self._clock.now(), f"attempt:{task_id}:{attempt}"))

    async def drain(self, timeout: float) -> None:
        """Let running attempts finish for ``timeout`` seconds, then interrupt the rest (they run again later)."""
        tasks = [a.task for a in self.running.values() if a.task is not None]
        if tasks:
            await asyncio.wait(tasks, timeout=timeout)
        for attempt in list(self.running.values()):
            attempt.interrupted = True
            attempt.run._cancel.is_set = True
            if attempt.task is not None:
                attempt.task.cancel()
        leftovers = [a.task for a in self.running.values() if a.task is not None]
        if leftovers:
            await asyncio.wait(leftovers, timeout=5.0)

    @property
    def stuck_threads(self) -> int:
        """Sync agent calls still running after their attempt ended (each on a thread outside the pool)."""
        return self.threads.statistics().stuck

    def stuck(self) -> list[tuple[str, str, int, float]]:
        """``(agent id, task id, attempt, ended at)`` of each sync agent call still running after its attempt
        ended, oldest first."""
        return [(*owner, at) for owner, at in self.threads.stuck()]  # type: ignore[misc]

    def close(self) -> None:
        for executor in self.executors.values():
            executor.close()
        if self.logs is not None:
            self.logs.close()

    async def _run(self, attempt: _Attempt, call: Coroutine[Any, Any, Any]) -> None:
        run, agent = attempt.run, attempt.agent
        timeout = run.task.timeout
        ok, result, result_json, error = False, None, None, None
        deadline = None
        if attempt.log is not None:
            log_capture.CURRENT.set(attempt.log)  # this task's context only: records made here are this attempt's
        try:
            if timeout is None:
                value = await call
            else:
                async with self._clock.timeout(timeout) as deadline:
                    value = await call
            value, text = codec.normalise(value, "the agent's result", depth=codec.MAX_DEPTH)
            if agent.spec.kind != "command":  # a command's stdout was capped as it was read
                limit = self._limits.get(agent)
                if limit is None:
                    limit = self._limits[agent] = result_limit(agent.spec)
                check_result_size(agent.spec, text, limit)
            ok, result, result_json = True, value, text
        except asyncio.CancelledError:
            if inspect.getcoroutinestate(call) == inspect.CORO_CREATED:
                call.close()  # cancelled before it started
            if attempt.aborted or not attempt.interrupted:
                if attempt.log is not None:
                    attempt.log.end()  # its last chunk is written by the log thread: this task is being cancelled
                if attempt.aborted:
                    return
                raise
            error = TaskError("Interrupted", "the worker shut down while the attempt ran", kind="interrupted")
        except TimeoutError as exc:
            if deadline is not None and deadline.expired():
                run._cancel.is_set = True
                error = TaskError(
                    "TimeoutError", f"the attempt ran longer than its timeout of {timeout:g}s", kind="timeout"
                )
            else:
                error = task_error(exc)
        except NotSerializableError as exc:
            error = TaskError("NotSerializableError", str(exc), kind="error")
        except BaseException as exc:  # noqa: BLE001 - an agent must never take the engine down
            error = task_error(exc)
        if attempt.log is not None:
            if attempt.log.log is not None:  # it wrote something
                await _finish_log(attempt.log)
            attempt.log.closed = True
        ended = self._clock.now()
        task_id, number = run.task.task_id, run.attempt
        running = self.running
        if running.get(task_id) is attempt:
            del running[task_id]
        try:
            agent.record_outcome(ok, ended - attempt.started_at)
        except Exception:
            log.exception("agent %s failed to record an outcome", agent.spec.agent_id)
        started, cause = attempt.started_at, f"attempt:{task_id}:{number}"
        fields = (task_id, number, ended, ok, result, result_json, error, started, attempt.interrupted, cause)
        self._report(new_tuple(AttemptEnded, fields))


async def _refused(error: Exception) -> Any:
    """The call of an attempt whose executor could not be made: it fails with why."""
    raise error


async def _finish_log(slot: LogSlot) -> None:
    """Have the attempt's last log chunk stored before its end is reported (by the log writer's thread)."""
    log_capture.CURRENT.set(None)
    loop = asyncio.get_running_loop()
    stored: asyncio.Future[None] = loop.create_future()
    slot.finish(lambda: loop.call_soon_threadsafe(_settle, stored))
    try:
        await asyncio.shield(stored)
    except asyncio.CancelledError:  # stopped meanwhile: the log is still written, the end is still reported
        pass


def _settle(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def executor_kind(agent: AgentHandle) -> str:
    """``command`` (subprocess), ``async`` (on the loop) or ``sync`` (in a thread)."""
    if agent.spec.kind == "command":
        return "command"
    return "async" if inspect.iscoroutinefunction(agent.execute) else "sync"
