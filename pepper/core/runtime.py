"""The runtime: the one shared system every component attaches to.

A ``Runtime`` owns the store, the engine loop thread and the agents registered
on it. Components built without one (``TaskOrchestrator()``) use the *default
runtime*, created on first use from configuration or by ``pepper.init()``.

The engine starts on first use when agents are registered here (or with
``start()``). Without agents, calls go straight to the store: that is how a
CLI command submits work for a ``pepper worker`` in another process.

The default runtime lives in ``pepper.core.default``; its functions are importable from here too.
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import os
import socket
import threading
import uuid
import weakref
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from pepper.agents.base import BaseAgent
from pepper.core.agent_failures import AgentFailures, join, join_all
from pepper.core.config import load_settings
from pepper.core.default import default_runtime, init, reset_default_runtime, resolve, set_default_runtime
from pepper.core.store_setup import open_runtime_store
from pepper.engine.backend import Backend
from pepper.engine.clock import Clock, SystemClock
from pepper.engine.executors.ray_options import check_for_ray
from pepper.engine.hooks import EngineHook
from pepper.engine.inspection import MOVED, AgentsView
from pepper.engine.portal import Portal
from pepper.engine.sampler import ValueOf
from pepper.engine.stored import StoreBackend
from pepper.errors import (
    AgentAlreadyRegisteredError,
    AgentNotFoundError,
    AgentStartError,
    RuntimeClosedError,
    ValidationError,
)
from pepper.model.settings import Settings
from pepper.model.usage import METRICS, AgentUsage, Measurement
from pepper.monitoring.alerts import Alert, AlertRule
from pepper.store.location import redact
from pepper.store.sql_store import SqlStore

if TYPE_CHECKING:  # the engine's modules load when an engine starts (see ``engine``)
    from pepper.engine.service import EngineService

__all__ = ["Runtime", "default_runtime", "init", "reset_default_runtime", "resolve", "set_default_runtime"]

log = logging.getLogger("pepper")
T = TypeVar("T")
_live: weakref.WeakSet[Runtime] = weakref.WeakSet()


class Runtime:
    """Store + engine + agents, configured once. Use as a context manager, or ``close()`` it.

    Arguments are settings (see ``pepper.model.settings.Settings``); those not
    given come from ``$PEPPER_DB``/``$PEPPER_HOME``, then ``pepper.toml``, then defaults.
    ``create=False`` refuses to start a new database where none exists (for tools
    that only read).
    """

    #: The URL of the server this runtime speaks to (``pepper.connect``); None for one on a database.
    server: str | None = None

    def __init__(
        self,
        db: str | None = None,
        resources: Any = None,
        *,
        home: str | None = None,
        clock: Clock | None = None,
        create: bool = True,
        **settings: Any,
    ) -> None:
        self.settings: Settings = load_settings({"db": db, "resources": resources, "home": home, **settings})
        self.clock = clock or SystemClock()
        self._create = create
        self.worker_id = _new_worker_id()
        self._lock = threading.RLock()
        self._store: SqlStore | None = None
        self._portal: Portal | None = None
        self._service: EngineService | None = None
        self._offline: StoreBackend | None = None
        self._starting: asyncio.Future[EngineService] | None = None
        self._agents: dict[str, BaseAgent] = {}
        self._failures = AgentFailures()  # agents left out as the engine started (``failed_agents``)
        self._hooks: list[EngineHook] = []
        self.closed = False
        _live.add(self)

    def __repr__(self) -> str:
        state = "closed" if self.closed else "running" if self._service else "idle"
        return f"<pepper.Runtime db={redact(self.settings.db)!r} {state} agents={len(self._agents)}>"

    # -- parts, created on first use ----------------------------------------------------

    @property
    def home(self) -> Path:
        return Path(self.settings.home)

    @property
    def store(self) -> SqlStore:
        with self._lock:
            self._check_open()
            if self._store is None:
                self._store = open_runtime_store(self.settings, create=self._create)
            return self._store

    def pool(self) -> dict[str, float]:
        """The capacity of the resource pool seen from this host (its machine pools and the shared ones)."""
        return self.read(lambda backend: backend.pool())

    def portal(self) -> Portal:
        """The engine loop thread (started on first use)."""
        with self._lock:
            self._check_open()
            if self._portal is None:
                self._portal = Portal()
            return self._portal

    def _check_open(self) -> None:
        if self.closed:
            raise RuntimeClosedError("this pepper runtime is closed; create a new one (or call pepper.init())")

    @property
    def running(self) -> bool:
        """True once the engine runs in this process."""
        return self._service is not None

    # -- engine -----------------------------------------------------------------------

    def start(self) -> Runtime:
        """Start the engine now (it also starts on first use when agents are registered). An agent whose
        start-up fails is left out (``failed_agents``), the others run; ``start()`` raises ``AgentStartError``
        for it once, the engine running on (a start by first use raises nothing for it)."""
        self.portal().call(self.engine())
        untold = self._failures.untold()
        if untold:
            raise AgentStartError(untold)
        return self

    def failed_agents(self) -> dict[str, str]:
        """Agents left out because their start-up failed as the engine started: agent id -> what went wrong.
        Registering one of them again (after fixing the cause) clears its entry."""
        return self._failures.all()

    async def engine(self) -> EngineService:
        """The engine service, started if needed (call on the engine loop)."""
        if self._service is not None:
            return self._service
        if self._starting is None:
            self._starting = asyncio.get_running_loop().create_future()
            service = None
            added: list[BaseAgent] = []
            try:
                from pepper.engine.service import EngineService  # the engine's modules load when it starts

                service = EngineService.build(
                    self.store,
                    self.settings,
                    clock=self.clock,
                    worker_id=self.worker_id,
                    agents_home=self.home / "agents",
                    hooks=self._hooks,
                )
                if self.settings.alerts:
                    from pepper.core.alert_rules import keeper_for  # imports the monitors, which import this module

                    service.sampler.keeper = keeper_for(self)
                await service.start()
                left_out = await join_all(service, list(self._agents.values()), self._failures, added)
                with self._lock:  # not registered: the engine runs with the others
                    for agent in left_out:
                        self._agents.pop(agent.spec.agent_id, None)
            except BaseException as exc:
                if service is not None:  # leave no worker record, and no agent, behind
                    try:
                        await service.stop(0.0)
                        for agent in added:
                            await agent.cleanup()
                    except Exception:
                        log.exception("could not stop the engine that failed to start")
                    self.worker_id = _new_worker_id()  # its record is closed: a later start registers anew
                self._starting.set_exception(exc)
                self._starting.exception()  # told to the caller below; to any other waiter through the future
                self._starting = None
                raise
            self._service = service
            self._starting.set_result(service)
            return service
        return await asyncio.shield(self._starting)

    def has_work(self) -> bool:
        """True while this process runs a task or has a task its agents could start, retry, or start once its
        delay is over."""
        service = self._service
        return service is not None and self._on_engine(service.has_local_work)

    def _on_engine(self, question: Callable[[], T]) -> T:
        """Run ``question`` on the engine loop (directly if already there) and return its answer."""
        portal = self.portal()
        if portal.in_loop_thread():
            return question()
        return portal.call(_ask(question))

    def _running_service(self) -> EngineService:
        """The engine service, started now if it is not running yet."""
        if self._service is not None:
            return self._service
        if self.portal().in_loop_thread():
            raise RuntimeClosedError("the engine is not running; start the runtime before calling this from inside it")
        return self.portal().call(self.engine())

    def place(self, placements: Mapping[str, str | None]) -> None:
        """Pin waiting tasks to agents (a workload plan's assignments); ``None`` lifts a placement."""
        service = self._service
        if service is None:
            self.store.set_placements(placements, self.worker_id)
        else:
            self._on_engine(lambda: service.place_now(placements))

    def leases_changed(self) -> None:
        """Tell the local engine (if one runs) that the pool's leases changed."""
        if self._service is not None:
            self._tell(self._service.leases_changed)

    def schedules_changed(self) -> None:
        """Tell the local engine (if one runs) that schedules changed: it looks at their ticks again."""
        if self._service is not None:
            self._tell(self._service.ticks.poke)

    def _tell(self, callback: Callable[[], Any]) -> None:
        """Call ``callback`` on the engine's thread, without waiting when called from another."""
        portal = self.portal()
        if portal.in_loop_thread():
            callback()
        else:
            portal.loop.call_soon_threadsafe(callback)

    def measure(self, agent_id: str) -> AgentUsage:
        """Measure an agent now if it runs here, else its worker's latest figures."""
        if agent_id in self._agents:  # it runs here: measure it now
            service = self._running_service()
            return self._on_engine(lambda: service.sampler.measure(agent_id))
        stored = self.store.usage.of_agent(agent_id)
        if stored:
            worker, at, figures = stored[0]
            return AgentUsage(agent_id, at, {m: Measurement.from_dict(f) for m, f in figures.items()}, worker)
        reason = "no worker running this agent has reported measurements yet"
        return AgentUsage(agent_id, None, {m: Measurement(None, unit, reason) for m, unit in METRICS.items()})

    def watch(self, rule: AlertRule, callback: Callable[[Alert], Any], value: ValueOf | None = None) -> None:
        """Evaluate ``rule`` on every sample, calling ``callback`` when it fires (starts the engine); ``value``
        reads what the rule watches (default: the measured usage of ``rule.subject``)."""
        service = self._running_service()
        self._on_engine(lambda: service.sampler.add(rule, callback, value))

    def unwatch(self, rule_id: str) -> bool:
        service = self._service
        return service is not None and self._on_engine(lambda: service.sampler.remove(rule_id))

    def add_hook(self, hook: EngineHook) -> None:
        """Follow engine events (see ``pepper.engine.hooks.EngineHook``); hooks run on the engine thread."""
        if not isinstance(hook, EngineHook):
            raise ValidationError(f"add_hook expects an EngineHook, got {type(hook).__name__}")
        with self._lock:
            self._hooks.append(hook)
            if self._service is not None:
                self._service.add_hook(hook)

    async def backend(self, *, start: bool = False) -> Backend:
        """Where the faces' calls go: the engine when it runs here or agents live here (or ``start``: it is
        started now, as driving a workflow run needs it), else the store directly."""
        if start or self._service is not None or self._agents:
            return await self.engine()
        return self._store_backend()

    def _store_backend(self) -> StoreBackend:
        if self._offline is None:
            s = self.settings
            self._offline = StoreBackend(self.store, self.clock, self.worker_id, s.priority_ageing, s.score_half_life)
        return self._offline

    def read_stored(self, question: Callable[[Backend], T]) -> T:
        """``question`` asked of the store's answers even where an engine runs: figures every worker sharing the
        database reads alike (configured alert rules)."""
        return question(self._store_backend())

    def read(self, question: Callable[[Backend], T], *, start: bool = False) -> T:
        """``question`` asked of the backend's reads at once: on the engine's thread when an engine runs here
        (``start``: started first if agents are registered here), else of the store. Whatever it returns
        must be a copy, or immutable."""
        if start and self._service is None and self._agents:
            self.portal().call(self.engine())  # started by first use: agents left out are not raised here
        service = self._service
        if service is None:
            return question(self._store_backend())
        return self._on_engine(lambda: question(service))

    def read_agents(self, question: Callable[[AgentsView], T]) -> T:
        """``question`` over the agents: the live view when an engine runs here (or has agents to run), else
        the stored one. From another thread than the engine's, the live view is read in place while the
        engine's state holds still, without waiting for the engine's thread (``inspection.read_still``); only
        when it moved meanwhile is the question asked there."""
        service, portal = self._service, self._portal
        if service is not None and portal is not None and not portal.in_loop_thread():
            answer = service.read_agents_still(question)
            if answer is not MOVED:
                return answer  # type: ignore[return-value]
        return self.read(lambda backend: backend.read_agents(question), start=True)

    # -- agents -------------------------------------------------------------------------

    def register_agent(self, agent: BaseAgent) -> BaseAgent:
        """Make ``agent`` take tasks from this runtime; returns it."""
        if not isinstance(agent, BaseAgent):
            raise ValidationError(
                f"register_agent expects a pepper.agents.BaseAgent, got {type(agent).__name__}; "
                "for a plain function use @pepper.agent(...)"
            )
        agent_id = agent.spec.agent_id
        check_for_ray(agent, self.settings.executor, self.settings.ray_address)  # an agent on Ray runs there
        if self._service is None and agent.spec.resources:  # what can be known before the engine starts
            from pepper.engine.service import check_budget

            check_budget(self.store, self.settings.executor, agent.spec)
        with self._lock:
            self._check_open()
            if agent_id in self._agents:
                raise AgentAlreadyRegisteredError(agent_id)
            self._agents[agent_id] = agent
        self._failures.forget(agent_id)
        if self._service is not None:
            try:
                self.portal().call(join(self._service, agent))
            except BaseException:
                with self._lock:
                    self._agents.pop(agent_id, None)
                raise
        return agent

    def unregister_agent(self, agent_id: str) -> BaseAgent:
        """Stop giving tasks to an agent (running ones finish); returns it."""
        with self._lock:
            agent = self._agents.pop(agent_id, None)
            if agent is None:
                raise AgentNotFoundError(agent_id, self._agents)
        if self._service is not None:
            self.portal().call(self._service.remove_agent(agent_id))
        return agent

    def agents(self) -> list[BaseAgent]:
        """Agents registered on this runtime, in registration order."""
        with self._lock:
            return list(self._agents.values())

    def get_agent(self, agent_id: str) -> BaseAgent:
        with self._lock:
            agent = self._agents.get(agent_id)
            if agent is None:
                raise AgentNotFoundError(agent_id, self._agents)
            return agent

    # -- shutdown -----------------------------------------------------------------------

    def close(self, timeout: float | None = None) -> None:
        """Stop taking work, let running tasks finish for up to ``timeout`` seconds, release everything."""
        with self._lock:
            if self.closed:
                return
            self.closed = True
        try:
            if self._portal is not None:
                if self._service is not None:
                    wait = self.settings.shutdown_timeout if timeout is None else timeout
                    self._portal.call(self._shutdown(wait))
                self._portal.close()
        finally:
            if self._store is not None:
                self._store.close()
            _live.discard(self)

    async def _shutdown(self, timeout: float) -> None:
        assert self._service is not None
        await self._service.stop(timeout)
        for agent in self._agents.values():
            try:
                await agent.cleanup()
            except Exception:
                log.exception("cleanup of agent %s failed", agent.spec.agent_id)

    def __enter__(self) -> Runtime:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


async def _ask(question: Callable[[], T]) -> T:
    return question()


@atexit.register
def _close_all() -> None:
    for runtime in list(_live):
        try:
            runtime.close()
        except Exception:
            log.exception("closing %r at exit failed", runtime)


def _new_worker_id() -> str:
    """``host:pid:random``: unique to one engine start."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
