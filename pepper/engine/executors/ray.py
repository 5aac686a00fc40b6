"""Agents as Ray actors: the only module that imports Ray, loaded when the first Ray agent runs.

Each agent becomes one actor, placed by Ray with the agent's budget as its resources (cpu ->
``num_cpus``, gpu -> ``num_gpus``, memory MB -> ``memory`` bytes, any other -> a custom resource)
and its capacity as the actor's concurrency (plus two threads for progress and cancel calls).
The actor holds a copy of the agent: a function agent's function, a class agent's object (its
``initialize()`` runs in the actor), or a command agent's spec (the command runs as a subprocess
on the actor's node, through the same code as locally). The control plane stays here: the
engine claims, records and retries; the actor only runs attempts and returns JSON.

- **cancel / timeout**: the actor sets ``task.cancelled``, cancels an async agent and stops a
  command's process group; a sync function that ignores it for ``KILL_GRACE`` seconds has its
  actor killed when the attempt was the actor's only one (a fresh actor takes its place).
- **crash**: an actor that dies (its process killed, its node lost) fails the attempt as a crash
  (``AgentCrashed``), which the task's recovery policy handles; the next attempt gets a new actor.
- **progress**: reports are kept by the actor and fetched while the attempt runs.
- **unreachable cluster**: attempts wait (the task stays claimed, nothing is lost) and try to
  connect again with back-off; ``health()`` says why meanwhile.

With no address, pepper starts a local Ray in this process (without the dashboard).
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
import os
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import ray
import ray.exceptions

from pepper.engine.executors.protocol import AgentCrashed, AgentHandle
from pepper.model import codec
from pepper.model.agent import AgentSpec
from pepper.model.run import CancelFlag, TaskRun

log = logging.getLogger("pepper.engine")

PROGRESS_POLL = 0.2  # seconds between fetches of a running attempt's progress
KILL_GRACE = 2.0  # seconds a cancelled sync function gets to return before its actor is killed
_CONNECT_RETRY = (0.5, 10.0)  # first and longest wait between attempts to reach the cluster
_MB = 1024 * 1024
#: Set for a local Ray started by pepper: no token, bound to this machine.
LOCAL_RAY_ENV = {"RAY_AUTH_MODE": "disabled", "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}

_started_here = threading.Lock()
_users = 0  # RayExecutors open in this process on a Ray that pepper started (shut down with the last)
_we_started = False


def actor_options(spec: AgentSpec) -> dict[str, Any]:
    """Ray actor options from the agent's budget and capacity."""
    budget: Mapping[str, float] = spec.resources
    custom = {name: float(amount) for name, amount in budget.items() if name not in ("cpu", "gpu", "memory")}
    options: dict[str, Any] = {
        "num_cpus": float(budget.get("cpu", 0)),
        "max_concurrency": spec.capacity + 2,  # the attempts, plus progress and cancel calls
        "max_restarts": 0,  # pepper replaces a dead actor itself, after the crash went through recovery
    }
    if budget.get("gpu"):
        options["num_gpus"] = float(budget["gpu"])
    if budget.get("memory"):
        options["memory"] = int(budget["memory"] * _MB)
    if custom:
        options["resources"] = custom
    return options


def _payload(agent: AgentHandle) -> tuple[Any, ...]:
    """What the actor needs to run the agent (pickled by Ray)."""
    if agent.spec.kind == "command":
        return ("command", agent.spec)
    function = getattr(agent, "function", None)
    if function is not None:
        return ("function", function)
    state = {name: value for name, value in vars(agent).items() if name != "_lock"}  # locks do not pickle
    return ("object", type(agent), state)


class AgentActor:
    """Runs one agent's attempts in a Ray worker process (made a Ray actor by ``RayExecutor``)."""

    def __init__(self, payload: tuple[Any, ...], home: str) -> None:
        self.kind = payload[0]
        self.home = Path(home)
        self._progress: dict[tuple[str, int], tuple[float, str | None]] = {}
        self._flags: dict[tuple[str, int], CancelFlag] = {}
        self._loops: dict[tuple[str, int], tuple[asyncio.AbstractEventLoop, asyncio.Task[Any]]] = {}
        self.agent: Any = None
        if self.kind == "command":
            self.spec: AgentSpec = payload[1]
        elif self.kind == "function":
            self.execute = payload[1]
        else:
            cls, state = payload[1], payload[2]
            self.agent = cls.__new__(cls)
            self.agent.__dict__.update(state)
            self.agent._lock = threading.Lock()
            asyncio.run(self.agent.initialize())
            self.execute = self.agent.execute

    def ready(self) -> int:
        return os.getpid()

    def run(self, task: Any, attempt: int, agent_id: str, results: Mapping[str, Any]) -> str | None:
        """One attempt; its result as JSON text (or None)."""
        key = (task.task_id, attempt)
        flag = self._flags[key] = CancelFlag()
        run = TaskRun(task, attempt, agent_id, results, self._report, flag)
        try:
            if self.kind == "command":
                from pepper.engine.executors.subprocess import run_command  # the node's own subprocess code

                cap = task.requirements.resources.get("memory") or self.spec.resources.get("memory")
                value = self._in_loop(key, run_command(self.spec, run, self.home / agent_id, memory_cap=cap))
            else:
                value = self.execute(run)
                if inspect.isawaitable(value):
                    value = self._in_loop(key, value)
            return codec.normalise(value, "the agent's result")[1]
        finally:
            self._flags.pop(key, None)

    def progress(self, task_id: str, attempt: int) -> tuple[float, str | None] | None:
        return self._progress.pop((task_id, attempt), None)

    def cancel(self, task_id: str, attempt: int) -> None:
        key = (task_id, attempt)
        flag = self._flags.get(key)
        if flag is not None:
            flag.is_set = True
        running = self._loops.get(key)
        if running is not None:
            loop, task = running
            loop.call_soon_threadsafe(task.cancel)

    def _report(self, task_id: str, attempt: int, fraction: float, message: str | None) -> None:
        self._progress[(task_id, attempt)] = (fraction, message)

    def _in_loop(self, key: tuple[str, int], awaitable: Any) -> Any:
        loop = asyncio.new_event_loop()
        try:
            task = loop.create_task(_awaited(awaitable))
            self._loops[key] = (loop, task)
            return loop.run_until_complete(task)
        finally:
            self._loops.pop(key, None)
            loop.close()


async def _awaited(awaitable: Any) -> Any:
    return await awaitable


class _Actor:
    __slots__ = ("handle", "running")

    def __init__(self, handle: Any) -> None:
        self.handle = handle
        self.running = 0


class RayExecutor:
    """Runs attempts of Ray agents on their actors; one per engine."""

    name = "ray"

    def __init__(self, address: str | None, home: Path) -> None:
        self.address = address
        self.home = home
        self._actors: dict[AgentHandle, _Actor] = {}
        self._connected = False
        self._connecting: asyncio.Lock | None = None
        self._problem: str | None = None
        self._owns_ray = False
        self._cleanup: set[asyncio.Task[None]] = set()
        self._closed = False

    # -- the protocol ------------------------------------------------------------------

    async def call(self, agent: AgentHandle, run: TaskRun) -> Any:
        await self._connect()
        actor = self._actor(agent)
        actor.running += 1
        handle = actor.handle
        ref = handle.run.remote(run.task, run.attempt, run.agent_id, dict(run.dependency_results))
        future = asyncio.wrap_future(ref.future())
        try:
            while True:
                done, _ = await asyncio.wait((future,), timeout=PROGRESS_POLL)
                if done:
                    break
                reported = await asyncio.wrap_future(handle.progress.remote(run.task_id, run.attempt).future())
                if reported is not None:
                    run.report_progress(*reported)
            text = future.result()
        except asyncio.CancelledError:
            run._cancel.is_set = True
            self._stop(agent, actor, run, ref, future)
            raise
        except ray.exceptions.RayTaskError as exc:
            cause = exc.cause
            raise (cause if isinstance(cause, BaseException) else exc) from None
        except (ray.exceptions.RayActorError, ray.exceptions.WorkerCrashedError, ray.exceptions.ObjectLostError) as exc:
            self._replace(agent, actor)
            raise AgentCrashed(
                f"the Ray actor of agent {agent.spec.agent_id!r} died during the attempt ({type(exc).__name__})"
            ) from None
        finally:
            actor.running -= 1
        return None if text is None else json.loads(text)

    def health(self) -> str | None:
        return self._problem

    def release(self, agent: AgentHandle) -> None:
        """The agent was unregistered: its actor goes."""
        actor = self._actors.pop(agent, None)
        if actor is not None:
            _kill(actor.handle)

    def close(self) -> None:
        global _users, _we_started
        if self._closed:
            return
        self._closed = True
        for actor in self._actors.values():
            _kill(actor.handle)
        self._actors.clear()
        if self._owns_ray:
            with _started_here:
                _users -= 1
                if _users == 0 and _we_started:
                    _we_started = False
                    ray.shutdown()

    # -- actors ------------------------------------------------------------------------

    def _actor(self, agent: AgentHandle) -> _Actor:
        actor = self._actors.get(agent)
        if actor is None:
            remote = _actor_class().options(**actor_options(agent.spec))
            home = str(self.home if self.home.is_absolute() else Path.cwd() / self.home)
            actor = self._actors[agent] = _Actor(remote.remote(_payload(agent), home))
        return actor

    def _replace(self, agent: AgentHandle, actor: _Actor) -> None:
        """A dead actor is dropped (once, however many attempts saw it die); the next attempt starts another."""
        if self._actors.get(agent) is actor:
            del self._actors[agent]
            _kill(actor.handle)
            log.warning("the Ray actor of agent %s died; a new one runs its next attempt", agent.spec.agent_id)

    def _stop(self, agent: AgentHandle, actor: _Actor, run: TaskRun, ref: Any, future: asyncio.Future[Any]) -> None:
        """The attempt was cancelled or timed out: stop it in the actor, and kill the actor if it will not."""
        try:
            actor.handle.cancel.remote(run.task_id, run.attempt)
        except Exception:  # noqa: BLE001 - a dead actor has nothing left to stop
            return
        if actor.running > 1 or agent.spec.capacity > 1 or future.done():
            return  # other attempts share the actor: the cancel flag is all it gets
        loop = asyncio.get_running_loop()
        task = loop.create_task(self._kill_if_stuck(agent, actor, future))
        self._cleanup.add(task)
        task.add_done_callback(self._cleanup.discard)

    async def _kill_if_stuck(self, agent: AgentHandle, actor: _Actor, future: asyncio.Future[Any]) -> None:
        done, _ = await asyncio.wait((future,), timeout=KILL_GRACE)
        if not done and self._actors.get(agent) is actor:
            del self._actors[agent]
            _kill(actor.handle)
            log.warning("agent %s ignored its cancel on Ray; its actor was killed", agent.spec.agent_id)

    # -- the cluster -------------------------------------------------------------------

    async def _connect(self) -> None:
        if self._connected:
            return
        if self._connecting is None:
            self._connecting = asyncio.Lock()
        async with self._connecting:
            delay = _CONNECT_RETRY[0]
            while not self._connected:
                try:
                    await asyncio.to_thread(self._init)
                except Exception as exc:  # noqa: BLE001 - any failure to connect: wait and try again
                    self._problem = f"the Ray cluster at {self.address or 'a new local Ray'} cannot be reached: {exc}"
                    log.error("%s; Ray agents' tasks wait (trying again in %gs)", self._problem, delay)
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, _CONNECT_RETRY[1])
                else:
                    self._connected, self._problem = True, None

    def _init(self) -> None:
        global _users, _we_started
        with _started_here:
            if ray.is_initialized():
                self._owns_ray = _we_started
            elif self.address is None:
                for name, value in LOCAL_RAY_ENV.items():
                    os.environ.setdefault(name, value)
                ray.init(include_dashboard=False, log_to_driver=False)
                _we_started = self._owns_ray = True
            else:
                ray.init(address=self.address, log_to_driver=False)
            if self._owns_ray:
                _users += 1


_ACTOR_CLASS: Any = None


def _actor_class() -> Any:
    """``AgentActor`` as a Ray actor class, made once (Ray exports a class each time it is made remote)."""
    global _ACTOR_CLASS
    if _ACTOR_CLASS is None:
        _ACTOR_CLASS = ray.remote(AgentActor)
    return _ACTOR_CLASS


def _kill(handle: Any) -> None:
    try:
        ray.kill(handle, no_restart=True)
    except Exception:  # already gone, or the cluster with it
        log.debug("could not kill a Ray actor", exc_info=True)
