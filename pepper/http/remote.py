"""``RemoteRuntime``: a runtime whose backend is a pepper server (what ``pepper.connect`` returns).

The faces (``TaskOrchestrator``, ``WorkflowController``, ``ErrorHandler``, the monitors) take it as ``runtime=``
and ask it what they ask a local runtime: ``backend()``, ``read(question)``, ``clock``, ``portal()``. Their
async calls run on this runtime's own event loop thread (its portal), where the server's answers are awaited;
the reads answered at once are blocking requests. There is no database and no engine here: what needs one
(registering agents, ``runtime.store``) raises a typed error saying so.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from pepper.agents.base import BaseAgent
from pepper.core.runtime import Runtime
from pepper.engine.backend import Backend
from pepper.engine.clock import SystemClock
from pepper.engine.portal import Portal
from pepper.engine.sampler import ValueOf
from pepper.errors import RemoteUnsupportedError, RuntimeClosedError
from pepper.http.backend import HttpBackend
from pepper.http.client import Connection, escaped_id
from pepper.http.remote_alerts import RemoteWatches
from pepper.model.settings import Settings
from pepper.monitoring.alerts import Alert, AlertRule
from pepper.store.sql_store import SqlStore

T = TypeVar("T")

#: The faces whose alert rules a remote runtime evaluates itself, on the server's figures: the attempts
#: (``PerformanceMonitor``, ``GET /api/v1/observations``), the health numbers (``HealthMonitor``,
#: ``GET /api/v1/health/metrics``) and the agents' measured usage (``ResourceMonitor``,
#: ``GET /api/v1/agents/{id}/usage``).
_WATCHED_HERE = frozenset({"performance", "health", "resources"})


class RemoteRuntime(Runtime):
    """A runtime that speaks to the pepper server at ``url`` with ``token`` (defaults: ``$PEPPER_SERVER``,
    ``$PEPPER_TOKEN``). Close it (or use it as a context manager) to end its connections and thread."""

    def __init__(self, url: str | None = None, token: str | None = None) -> None:
        # no Runtime.__init__: that one reads a database's settings; a remote runtime has only its server
        self.connection = Connection(url, token)
        self.server = self.connection.url
        self.settings = Settings()
        self.clock = SystemClock()
        self.worker_id = "remote"
        self._lock = threading.RLock()
        self._portal: Portal | None = None
        self._backend = HttpBackend(self.connection)
        self._watches = RemoteWatches(self.portal, self.clock, lambda: self.settings.sample_interval)
        # what the inherited parts of Runtime look at: no store, engine, agents or hooks here
        self._store = None
        self._service = None
        self._offline = None
        self._starting = None
        self._agents: dict[str, BaseAgent] = {}
        self._hooks = []
        self._create = False
        self.closed = False

    @property
    def url(self) -> str:
        """The server's address (never with the token)."""
        return self.connection.url

    def __repr__(self) -> str:
        return f"<pepper.RemoteRuntime {self.url} {'closed' if self.closed else 'open'}>"

    @property
    def store(self) -> SqlStore:
        raise RemoteUnsupportedError(
            "the database", f"this runtime speaks to the server at {self.url}; the server's machine reads its database"
        )

    def portal(self) -> Portal:
        with self._lock:
            self._check_open()
            if self._portal is None:
                self._portal = Portal("pepper-remote")
            return self._portal

    @property
    def running(self) -> bool:
        return False

    def start(self) -> Runtime:
        return self  # the engines run where the server's workers are

    async def backend(self, *, start: bool = False) -> Backend:
        self._check_open()
        return self._backend

    def read(self, question: Callable[[Backend], T], *, start: bool = False) -> T:
        self._check_open()
        return question(self._backend)

    def ask_server(
        self, method: str, path: Sequence[str], body: Any = None, params: Mapping[str, Any] | None = None
    ) -> Any:
        """The server's answer to a face's question it cannot send as a closure (``pepper.core.served``)."""
        self._check_open()
        route = "/" + "/".join(escaped_id(str(segment)) for segment in path)
        kwargs: dict[str, Any] = {"params": {k: v for k, v in (params or {}).items() if v is not None}}
        if body is not None:
            kwargs["json"] = body
        return self.connection.request(method, route, **kwargs)

    def has_work(self) -> bool:
        return False

    def pool(self) -> dict[str, float]:
        return self._backend.pool()

    def place(self, placements: Mapping[str, str | None]) -> None:
        raise RemoteUnsupportedError("placing tasks on agents", "make the plan on the server's machine")

    def leases_changed(self) -> None:
        pass  # no engine here holds a view of the leases

    def register_agent(self, agent: BaseAgent) -> BaseAgent:
        raise RemoteUnsupportedError(
            "registering an agent",
            "agents run in workers next to the server: `pepper worker --agents agents.yaml` (or `pepper serve "
            "--agents agents.yaml`)",
        )

    def agents(self) -> list[BaseAgent]:
        return []  # none run in this process

    def measure(self, agent_id: str) -> Any:
        raise RemoteUnsupportedError("measuring an agent", "its worker measures it")

    def watch(self, rule: AlertRule, callback: Callable[[Alert], Any], value: ValueOf | None = None) -> None:
        """Evaluate ``rule`` here on the server's figures (read by ``value``), calling ``callback`` here
        (``pepper.http.remote_alerts``)."""
        if value is None or rule.source not in _WATCHED_HERE:
            raise RemoteUnsupportedError(
                f"an alert rule on {rule.source} figures",
                "set it where the server runs (a rule under [[alerts]] in its pepper.toml: its firings come through "
                "`/api/v1/events` and `GET /api/v1/alerts`)",
            )
        self._check_open()
        self._watches.add(rule, callback, value)

    def unwatch(self, rule_id: str) -> bool:
        return self._watches.remove(rule_id)

    def follow(self, run_id: str, on_event: Callable[[str, dict[str, Any]], None]) -> Callable[[], None]:
        """Call ``on_event(kind, data)`` (on this runtime's thread) for each event of run ``run_id`` the server
        streams; returns what stops following."""

        async def pump() -> None:
            async for kind, data in self.connection.events(run=run_id):
                on_event(kind, data)

        future = self.portal().submit(pump())

        def stop() -> None:
            future.cancel()

        return stop

    def close(self, timeout: float | None = None) -> None:
        with self._lock:
            if self.closed:
                return
            self.closed = True
        self._watches.stop()
        try:
            if self._portal is not None:
                try:
                    self._portal.call(self.connection.aclose())
                finally:
                    self._portal.close()
        finally:
            self.connection.close()

    def _check_open(self) -> None:
        if self.closed:
            raise RuntimeClosedError(f"the connection to {self.url} is closed; call pepper.connect() again")

    def __enter__(self) -> RemoteRuntime:
        return self
