"""Agents as Ray actors: the only module that imports Ray, loaded when the first Ray agent runs.

Each agent becomes one actor (``executors.ray_actor``), placed by Ray with the agent's budget as
its resources (cpu -> ``num_cpus``, gpu -> ``num_gpus``, memory MB -> ``memory`` bytes, any other
-> a custom resource); it runs up to the agent's capacity of attempts at once, on threads of its
own. pepper's own pool grants such an agent only the shared pools its budget names, and its tasks'
machine needs are checked within its budget (``OffHost``, in the engine's resource view). The actor
holds a copy of the agent, taken as it registers (``admit``, which refuses what Ray cannot serialise): a
function agent's function, a class agent's object as built (its ``initialize()`` runs in the actor before
its first attempts; while it raises, the attempts fail with ``AgentStartError`` saying so, and the next
batch tries again), or a command agent's spec (the command runs as a subprocess on the actor's node, through
the same code as locally). The control plane stays here: the engine claims, records and retries; the actor
only runs attempts and returns JSON.

- **batches**: the attempts one engine turn starts on an agent go to its actor in one call, and
  one waiting ``collect`` call per busy actor brings back every attempt that ended meanwhile
  (with the progress of those still running): Ray's cost is per batch, not per attempt.
- **cancel / timeout**: the attempt ends at once as cancelled (or timed out), and the actor stops it:
  it sets ``task.cancelled``, cancels an async agent's asyncio task and kills a command's process
  group. If the attempt still runs in the actor ``KILL_GRACE`` seconds later (the engine asks the
  actor), the actor goes: its in-flight Ray calls are cancelled (``ray.cancel``, without ``force``,
  which Ray refuses for actor calls) and it is killed (``ray.kill``). The other attempts that were
  running on it end as agent crashes (``AgentCrashed``), which their tasks' recovery policies
  handle; a fresh actor takes the next attempts. An attempt cancelled before its batch was sent is
  never sent; one whose batch is sent but not started yet never starts.
- **crash**: an actor that dies (its process killed, its node lost) fails its attempts as crashes
  (``AgentCrashed``), which the tasks' recovery policies handle; the next attempt gets a new actor.
- **unreachable cluster**: attempts wait (the task stays claimed, nothing is lost) and try to
  connect again with back-off; ``health()`` says why meanwhile. What no wait mends fails the attempt
  at once (``ExecutorUnavailableError``, its recovery deciding): a ``ray://`` address without Ray's
  client package, a budget no node of the cluster has (checked as the actor is made).

With no address, pepper starts a local Ray in this process (without the dashboard): ``executors.ray_cluster``
reaches the cluster. An agent's actor options and payload are ``executors.ray_options``.
"""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path
from typing import Any

import ray
import ray.exceptions

from pepper.engine.executors.protocol import AgentCrashed, AgentHandle
from pepper.engine.executors.ray_actor import AgentActor, Attempt, Key
from pepper.engine.executors.ray_cluster import RayCluster
from pepper.engine.executors.ray_options import (
    actor_options,
    actor_payload,
    client_missing,
    placement_problem,
    sendable_payload,
)
from pepper.errors import ExecutorUnavailableError, PepperError
from pepper.model.run import TaskRun

log = logging.getLogger("pepper.engine")

COLLECT_WAIT = 1.0  # seconds a collect call waits in the actor for an attempt to end before it returns empty
KILL_GRACE = 2.0  # seconds a cancelled sync function gets to return before its actor is killed
_CHECK_STARTS = 64  # batches sent before the collector checks they all started (it does too when idle)


class _Actor:
    """One agent's actor, seen from the engine: its attempts in flight and those waiting to be sent."""

    __slots__ = ("collecting", "collector", "handle", "killed_for", "outbox", "pending", "probes", "starts",
                 "stopping")  # fmt: skip

    def __init__(self, handle: Any) -> None:
        self.handle = handle
        self.pending: dict[Key, tuple[asyncio.Future[tuple[bool, Any]], TaskRun]] = {}  # sent or to be sent
        self.outbox: dict[Key, Attempt] = {}  # started this engine turn, sent together at its end
        self.stopping: dict[Key, asyncio.Future[None]] = {}  # cancelled, waited for until they end in the actor
        self.collector: asyncio.Task[None] | None = None  # the call that brings back how attempts ended
        self.starts: list[tuple[Any, list[Key]]] = []  # the batches sent, until seen started
        self.collecting: Any = None  # the collect call in flight
        self.probes: set[Any] = set()  # the calls in flight asking whether a cancelled attempt still runs
        self.killed_for: str | None = None  # why pepper killed the actor, once it did

    def in_flight(self) -> list[Any]:
        """The Ray calls made on the actor that may not have returned yet."""
        return [ref for ref in (self.collecting, *self.probes, *(ref for ref, _ in self.starts)) if ref is not None]


class RayExecutor:
    """Runs attempts of Ray agents on their actors; one per engine."""

    name = "ray"

    def __init__(self, address: str | None, home: Path) -> None:
        self.address = address
        self.home = home
        self._actors: dict[AgentHandle, _Actor] = {}
        self._payloads: dict[AgentHandle, tuple[Any, ...]] = {}  # what each agent's actor is made from
        self._to_send: dict[_Actor, AgentHandle] = {}  # actors with attempts in their outbox
        self._cluster = RayCluster(address)
        self._cleanup: set[asyncio.Task[None]] = set()
        self._closed = False

    # -- the protocol ------------------------------------------------------------------

    async def call(self, agent: AgentHandle, run: TaskRun) -> Any:
        await self._cluster.connect()
        actor = self._actor(agent)
        key = (run.task_id, run.attempt)
        loop = asyncio.get_running_loop()
        future: asyncio.Future[tuple[bool, Any]] = loop.create_future()
        actor.pending[key] = (future, run)
        actor.outbox[key] = (run.task, run.attempt, run.agent_id, dict(run.dependency_results))
        if not self._to_send:
            loop.call_soon(self._send)  # after every attempt this turn starts
        self._to_send[actor] = agent
        try:
            returned, value = await future
        except asyncio.CancelledError:
            if actor.pending.pop(key, None) is not None and actor.outbox.pop(key, None) is None:
                run._cancel.is_set = True
                self._stop(agent, actor, run)
            raise
        if not returned:
            raise value
        return None if value is None else json.loads(value)

    def health(self) -> str | None:
        return self._cluster.problem

    def admit(self, agent: AgentHandle) -> None:
        """Check, as ``agent`` registers, what can be checked of it before it runs on Ray: that the address
        needs no package missing here (``ExecutorUnavailableError``) and that Ray can serialise what its actor
        is made from (``AgentDefinitionError``), which is kept as it is now, before the agent's ``initialize()``
        (which runs again in the actor)."""
        missing = client_missing(self.address)
        if missing is not None:
            raise ExecutorUnavailableError(f"agent {agent.spec.agent_id!r} cannot run on Ray: {missing}")
        self._payloads[agent] = sendable_payload(agent, ray.cloudpickle.dumps)

    def release(self, agent: AgentHandle) -> None:
        """The agent was unregistered: its actor goes."""
        self._payloads.pop(agent, None)
        actor = self._actors.pop(agent, None)
        if actor is not None:
            _kill(actor.handle)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        for actor in self._actors.values():
            if actor.collector is not None and actor.collector.get_loop() is loop:
                actor.collector.cancel()
            _kill(actor.handle)
        for watch in self._cleanup:  # the actors they watch are killed above
            if watch.get_loop() is loop:
                watch.cancel()
        self._actors.clear()
        self._cluster.leave()

    # -- sending attempts and bringing back their ends ---------------------------------------

    def _send(self) -> None:
        """Send each actor the attempts started on it this turn, in one call, and make sure its ends are collected."""
        to_send, self._to_send = self._to_send, {}
        loop = asyncio.get_running_loop()
        for actor, agent in to_send.items():
            batch, actor.outbox = list(actor.outbox.values()), {}
            if not batch:
                continue  # all cancelled before they were sent
            keys = [(task.task_id, attempt) for task, attempt, _, _ in batch]
            try:
                actor.starts.append((actor.handle.start.remote(batch), keys))
            except Exception as exc:  # noqa: BLE001 - Ray could not take them (an input it cannot serialise)
                _fail(actor, keys, exc)
                continue
            if actor.collector is None:
                actor.collector = loop.create_task(self._collect(agent, actor))

    async def _collect(self, agent: AgentHandle, actor: _Actor) -> None:
        """Bring back how the actor's attempts end, batch by batch, while any run there."""
        try:
            while actor.pending or actor.stopping:
                actor.collecting = actor.handle.collect.remote(COLLECT_WAIT)
                ended, progress = await actor.collecting
                if actor.starts and (not ended or len(actor.starts) >= _CHECK_STARTS):
                    _check_starts(actor, agent.spec.agent_id)
                for key, (fraction, message) in progress:
                    entry = actor.pending.get(key)
                    if entry is not None:
                        entry[1].report_progress(fraction, message)
                for key, returned, value in ended:
                    entry = actor.pending.pop(key, None)
                    if entry is not None:
                        if not entry[0].done():
                            entry[0].set_result((returned, value))
                    else:
                        stopped = actor.stopping.pop(key, None)
                        if stopped is not None and not stopped.done():
                            stopped.set_result(None)
        except Exception as exc:  # noqa: BLE001 - the actor died (killed, out of memory, its node lost)
            self._replace(agent, actor)
            how = f"died ({type(exc).__name__})" if actor.killed_for is None else f"was killed: {actor.killed_for}"
            crashed = f"the Ray actor of agent {agent.spec.agent_id!r} {how}, during the attempt"
            for future, _ in actor.pending.values():
                if not future.done():
                    future.set_exception(AgentCrashed(crashed))
            actor.pending.clear()
            for stopped in actor.stopping.values():
                if not stopped.done():
                    stopped.set_result(None)
            actor.stopping.clear()
        finally:
            actor.collector = actor.collecting = None
            actor.starts.clear()  # none of its attempts waits any more: each batch started, or is not wanted

    # -- actors ------------------------------------------------------------------------

    def _actor(self, agent: AgentHandle) -> _Actor:
        """The agent's actor, made now if it has none (``ExecutorUnavailableError`` if no node could hold it)."""
        actor = self._actors.get(agent)
        if actor is None:
            options = actor_options(agent.spec)
            nodes = _nodes() if agent.spec.resources else None  # an agent with no budget fits any node
            unplaceable = None if nodes is None else placement_problem(options, nodes)
            if unplaceable is not None:
                raise ExecutorUnavailableError(
                    f"agent {agent.spec.agent_id!r} asks Ray for {unplaceable}; lower its resources or add such a "
                    "node to the cluster (checked as its actor is made, against the nodes alive then)"
                )
            remote = _actor_class().options(**options)
            home = str(self.home if self.home.is_absolute() else Path.cwd() / self.home)
            payload = self._payloads.get(agent) or actor_payload(agent)
            actor = self._actors[agent] = _Actor(remote.remote(payload, home, agent.spec.capacity))
        return actor

    def _replace(self, agent: AgentHandle, actor: _Actor) -> None:
        """A dead actor is dropped (once, however many attempts saw it die); the next attempt starts another."""
        if self._actors.get(agent) is actor:
            del self._actors[agent]
            _kill(actor.handle)
            log.warning("the Ray actor of agent %s died; a new one runs its next attempt", agent.spec.agent_id)

    def _stop(self, agent: AgentHandle, actor: _Actor, run: TaskRun) -> None:
        """The attempt was cancelled or timed out: stop it in the actor, and kill the actor if it will not."""
        key = (run.task_id, run.attempt)
        try:
            actor.handle.cancel.remote(*key)
        except Exception:  # noqa: BLE001 - a dead actor has nothing left to stop
            return
        if actor.collector is None:
            return  # the actor has just died: nothing runs there
        loop = asyncio.get_running_loop()
        stopped: asyncio.Future[None] = loop.create_future()
        actor.stopping[key] = stopped  # the collector brings back its end, and resolves this
        task = loop.create_task(self._kill_if_stuck(agent, actor, key, stopped))
        self._cleanup.add(task)
        task.add_done_callback(self._cleanup.discard)

    async def _kill_if_stuck(self, agent: AgentHandle, actor: _Actor, key: Key, stopped: asyncio.Future[None]) -> None:
        """Give a cancelled attempt ``KILL_GRACE`` seconds to end; if the actor says it still runs, the actor goes."""
        try:
            done, _ = await asyncio.wait((stopped,), timeout=KILL_GRACE)
            if done or self._actors.get(agent) is not actor or not await self._still_runs(actor, key):
                return
            if stopped.done() or self._actors.get(agent) is not actor:  # it ended, or the actor died, meanwhile
                return
            del self._actors[agent]
            actor.killed_for = f"attempt {key[1]} of task {key[0]!r} went on running after its cancel"
            for ref in actor.in_flight():
                try:
                    ray.cancel(ref, force=False)  # Ray refuses force=True for actor calls; the kill ends them
                except Exception:  # already ended
                    log.debug("could not cancel a Ray call", exc_info=True)
            _kill(actor.handle)
            log.warning("agent %s: %s on Ray; its actor was killed (its other attempts end as crashes)",
                        agent.spec.agent_id, actor.killed_for)  # fmt: skip
        finally:
            actor.stopping.pop(key, None)

    async def _still_runs(self, actor: _Actor, key: Key) -> bool:
        """Whether the actor says the attempt still runs (an actor that does not answer in time counts as yes)."""
        try:
            probe = actor.handle.running.remote(*key)
        except Exception:  # noqa: BLE001 - the actor is gone: the collector reports it
            return False
        actor.probes.add(probe)
        try:
            return bool(await asyncio.wait_for(probe, KILL_GRACE))  # a Ray call can be awaited
        except TimeoutError:
            return True
        except Exception:  # noqa: BLE001 - it died meanwhile: the collector reports it
            return False
        finally:
            actor.probes.discard(probe)


def _fail(actor: _Actor, keys: list[Key], exc: BaseException) -> None:
    """These attempts of ``actor`` fail with ``exc``."""
    for key in keys:
        entry = actor.pending.pop(key, None)
        if entry is not None and not entry[0].done():
            entry[0].set_exception(exc)


def _check_starts(actor: _Actor, agent_id: str) -> None:
    """Forget the batches the actor started; a batch it could not start (the agent's ``initialize()`` failed
    there, it could not read a task) fails its attempts with why, which is logged (an actor that died is the
    collector's to report)."""
    refs = [ref for ref, _ in actor.starts]
    ready = set(ray.wait(refs, num_returns=len(refs), timeout=0)[0])
    waiting = []
    for ref, keys in actor.starts:
        if ref not in ready:
            waiting.append((ref, keys))
            continue
        try:
            ray.get(ref, timeout=0)
        except ray.exceptions.RayActorError:
            pass
        except Exception as exc:  # noqa: BLE001 - the batch failed: so do its attempts
            cause = getattr(exc, "cause", None)
            why = cause if isinstance(cause, BaseException) else exc
            told = str(why) if isinstance(why, PepperError) else f"{type(why).__name__}: {why}"
            log.error("%d attempt(s) of agent %s failed before they started in its Ray actor: %s", len(keys), agent_id,
                      told)  # fmt: skip
            _fail(actor, keys, why)
    actor.starts = waiting


_ACTOR_CLASS: Any = None


def _actor_class() -> Any:
    """``AgentActor`` as a Ray actor class, made once (Ray exports a class each time it is made remote)."""
    global _ACTOR_CLASS
    if _ACTOR_CLASS is None:
        _ACTOR_CLASS = ray.remote(AgentActor)
    return _ACTOR_CLASS


def _nodes() -> list[dict[str, float]] | None:
    """The resources of each node of the cluster alive now; None when Ray cannot tell (nothing is refused then)."""
    try:
        nodes = ray.nodes()
    except Exception:  # not told: the actor is made, and Ray places it when it can
        log.debug("could not list the nodes of the Ray cluster", exc_info=True)
        return None
    return [node.get("Resources") or {} for node in nodes if node.get("Alive")]


def _kill(handle: Any) -> None:
    try:
        ray.kill(handle, no_restart=True)
    except Exception:  # already gone, or the cluster with it
        log.debug("could not kill a Ray actor", exc_info=True)
