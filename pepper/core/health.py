"""``HealthMonitor``: is pepper healthy? Gathers the facts of each component; ``monitoring.health`` judges.

With an engine in this process, its agents' ``health_check()`` are called (each
within a timeout) and the answers feed the scheduler (a failing agent's score
halves); agents of other workers are judged by their worker's heartbeats.
"""

from __future__ import annotations

import asyncio
import inspect
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from pepper.core.alerting import AlertSource
from pepper.core.performance import observations
from pepper.core.runtime import Runtime
from pepper.core.served import server_of
from pepper.engine.figures import EngineFigures, RunningAttempt
from pepper.engine.portal import blocking, on_engine_loop
from pepper.errors import ValidationError, suggest
from pepper.model.lease import LeaseKind, room
from pepper.model.step_tasks import run_namespace
from pepper.model.task import TaskState
from pepper.model.workflow_run import RunState
from pepper.monitoring import health as rules
from pepper.monitoring.alerts import Alert, AlertRule
from pepper.monitoring.health import COMPONENTS, ComponentHealth, HealthReport
from pepper.scheduling.eligibility import stranded

#: Seconds of recent attempts an agent's error rate is taken over.
ERROR_WINDOW = 300.0
#: Health numbers that exist once there is something to count (agents, an engine), so alerts may watch them early.
_LATER_METRICS = frozenset({"agents.error_rate", "agents.stalled_tasks", "engine.loop_lag"})
#: Agents whose synchronous health_check() is still running (id(agent) -> when it was called): never called twice
#: at once. The running check holds the agent, so its id cannot be reused meanwhile.
_unanswered: dict[int, float] = {}


def check_components(components: Iterable[str] | None) -> tuple[str, ...]:
    if components is None:
        return COMPONENTS
    if isinstance(components, str):
        components = [components]
    if not isinstance(components, Iterable):
        raise ValidationError(f"components must be a list of names from {', '.join(COMPONENTS)}; got "
                              f"{components!r}", field="components")  # fmt: skip
    chosen = []
    for name in components:
        if not isinstance(name, str) or name not in COMPONENTS:
            raise ValidationError(
                f"unknown component {name!r}; valid components: {', '.join(COMPONENTS)}."
                f"{suggest(str(name), COMPONENTS)}",
                field="components",
            )
        chosen.append(name)
    if not chosen:
        raise ValidationError(f"name at least one component: {', '.join(COMPONENTS)}", field="components")
    return tuple(chosen)


class HealthMonitor(AlertSource):
    """Checks agents, resources, workflows, the store and the engine; alerts on their numbers."""

    source = rule_prefix = "health"

    def __init__(self, runtime: Runtime | None = None) -> None:
        super().__init__(runtime)
        self._checks: dict[str, tuple[bool | None, str | None]] = {}  # agent -> last health_check answer

    @on_engine_loop
    async def check_health_async(self, components: Iterable[str] | None = None, timeout: float = 2.0) -> HealthReport:
        """Overall and per-component ``healthy`` / ``degraded`` / ``unhealthy``, with the reasons and numbers.
        Each local agent's ``health_check()`` has ``timeout`` seconds to answer."""
        chosen = check_components(components)
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not 0 < timeout < float("inf"):
            raise ValidationError(f"timeout must be a positive number of seconds, got {timeout!r}", field="timeout")
        elsewhere = await (await self.runtime.backend()).health(chosen, timeout)
        if elsewhere is not None:  # a server's: it checks its own agents and reads its own database
            return elsewhere
        if "agents" in chosen:
            await self._call_health_checks(timeout)
        now = self.runtime.clock.now()
        return rules.report([self._component(name, now) for name in chosen], now)

    check_health = blocking(check_health_async)

    def get_health_metrics(self, components: Iterable[str] | None = None) -> dict[str, dict[str, Any]]:
        """The numbers behind each component's verdict (agents' last health checks; none are called)."""
        chosen = check_components(components)
        if (server := server_of(self.runtime)) is not None:
            return dict(server.ask_server("GET", ("health", "metrics"), params={"component": list(chosen)}))
        now = self.runtime.clock.now()
        return {name: dict(self._component(name, now).metrics) for name in chosen}

    def set_alert(
        self, metric: str, threshold: float, callback: Callable[[Alert], Any], *, above: bool = True,
        hysteresis: float | None = None, cooldown: float = 0.0,
    ) -> str:  # fmt: skip
        """Alert when a health number crosses ``threshold``: ``metric`` is ``component.name`` as listed by
        ``get_health_metrics()`` (e.g. ``engine.loop_lag``, ``agents.unhealthy_agents``, ``store.wal_mb``)."""
        if not isinstance(metric, str):
            raise ValidationError(f"metric must be a name such as 'engine.loop_lag', got {metric!r}", field="metric")
        component, _, name = metric.partition(".")
        known = {f"{c}.{m}" for c, ms in self.get_health_metrics().items() for m in ms} | _LATER_METRICS
        if metric not in known:
            raise ValidationError(
                f"unknown health metric {metric!r}; valid: {', '.join(sorted(known))}.{suggest(metric, known)}",
                field="metric",
            )

        server = server_of(self.runtime)

        def value(rule: AlertRule, now: float) -> float | None:
            if server is not None:  # the server's numbers, read as this process evaluates the rule
                figures = server.ask_server("GET", ("health", "metrics"), params={"component": [component]})
                number = figures.get(component, {}).get(name)
            else:
                number = self._component(component, now).metrics.get(name)
            return float(number) if isinstance(number, (int, float)) else None

        return self._watch(metric, threshold, callback, value=value, above=above, hysteresis=hysteresis,
                           cooldown=cooldown)  # fmt: skip

    # -- facts --------------------------------------------------------------------------------------

    async def _call_health_checks(self, timeout: float) -> None:
        runtime = self.runtime
        agents = runtime.agents()
        if not agents:
            return
        backend = await runtime.backend()  # the agents registered here run (and answer) on its engine's loop
        answers = await asyncio.gather(*(_ask(agent, timeout) for agent in agents))
        now = runtime.clock.now()
        for agent, (ok, error) in zip(agents, answers, strict=True):
            agent_id = agent.spec.agent_id
            before = self._checks.get(agent_id, (True, None))
            self._checks[agent_id] = (ok, error)
            healthy = ok is not False and error is None
            if healthy != (before[0] is not False and before[1] is None) or not healthy:
                await backend.report_health(agent_id, healthy, now)

    def _component(self, name: str, now: float) -> ComponentHealth:
        return getattr(self, f"_{name}")(now)

    def _engine_figures(self) -> EngineFigures | None:
        """This process's engine figures, copied on the engine's thread (None without an engine here)."""
        return self.runtime.read(lambda backend: backend.figures())

    def _agents(self, now: float) -> ComponentHealth:
        runtime = self.runtime
        store = runtime.store
        local = {a.spec.agent_id for a in runtime.agents()}
        deadline = now - runtime.settings.visibility_timeout
        alive = {w.worker_id for w in store.workers.live() if w.heartbeat_at >= deadline}
        figures = self._engine_figures()
        if figures is not None:
            alive.add(figures.worker_id)
        recent, _ = observations(runtime, now - ERROR_WINDOW)
        facts = []
        registered = {a.spec.agent_id: a for a in store.workers.agents()}
        for agent_id in sorted(local | set(registered)):
            mine = [o for o in recent if o.agent_id == agent_id]
            ok, error = self._checks.get(agent_id, (None, None))
            worker = registered.get(agent_id)
            facts.append(rules.AgentFacts(
                agent_id, ok, error, agent_id in local or (worker is not None and worker.worker_id in alive),
                len(mine), sum(1 for o in mine if not o.ok), _stalled(figures, agent_id, mine, now),
            ))  # fmt: skip
        for agent_id, why in sorted(runtime.failed_agents().items()):  # left out as the engine started
            if agent_id not in local and agent_id not in registered:
                facts.append(rules.AgentFacts(agent_id, False, f"it could not start and is not registered: {why}"))
        online = [a.spec for a in runtime.agents()] + [
            a.spec for a in registered.values() if a.spec.agent_id not in local and a.worker_id in alive
        ]
        untaken = stranded(store.ready_routes(now), online) if online else ()
        return rules.agents_health(facts, store.unfinished_count(), untaken)

    def _resources(self, now: float) -> ComponentHealth:
        runtime = self.runtime
        store = runtime.store
        capacity = runtime.pool()
        leases = self.runtime.read(lambda backend: backend.leases(now))
        free = room(capacity, leases, now)
        expiring = tuple((lease.lease_id, lease.holder, lease.expires_at - now) for lease in leases
                         if lease.expires_at is not None and lease.expires_at - now < rules.EXPIRING_SOON)  # fmt: skip
        overuse = []
        for lease in leases:
            if lease.kind is not LeaseKind.BUDGET or "memory" not in lease.resources:
                continue
            stored = store.usage.of_agent(lease.holder)
            measured = stored[0][2].get("memory", {}).get("value") if stored else None
            if measured is not None and measured > lease.resources["memory"]:
                overuse.append((lease.holder, "MB of memory", measured, lease.resources["memory"]))
        figures = self._engine_figures()
        waiting = figures.waiting_for_resources if figures is not None else 0
        facts = rules.ResourceFacts(capacity, free, waiting, len(leases), expiring, tuple(overuse))
        return rules.resources_health(facts)

    def _workflows(self, now: float) -> ComponentHealth:
        store = self.runtime.store
        recent = store.runs.list(limit=1000)
        running = [r for r in recent if r.state is RunState.RUNNING]
        stuck = []
        for run in running:
            tasks = store.runs.tasks(run.run_id).values()
            if any(t.state in (TaskState.IN_PROGRESS, TaskState.PARKED) for t in tasks):
                continue  # busy, or waiting for a person on a parked step (reported as that step, below)
            # when the run last moved, or is next due to: a step started or ended, a delay or retry ends
            moments = [run.created_at] + [m for t in tasks for m in (t.started_at, t.finished_at) if m]
            moments += [m for t in tasks if t.state is TaskState.PENDING for m in (t.task.not_before, t.next_attempt_at)
                        if m is not None]  # fmt: skip
            if now - max(moments) > rules.RUN_STUCK_AFTER:  # an approval asked for moves it when decided or expired
                asked = [
                    m for a in store.approvals.of_run(run.run_id) if a.waiting for m in (a.requested_at, a.deadline)
                ]
                quiet = now - max(moments + asked)
                if quiet > rules.RUN_STUCK_AFTER:
                    stuck.append((run.run_id, quiet))
        ended = [r for r in recent if r.finished_at is not None and r.finished_at >= now - 3600]
        parked_ids = store.errors.parked_ids()
        runs = store.runs.among({rid for t in parked_ids if (rid := run_namespace(t)) is not None})
        parked = tuple(t for t in parked_ids if run_namespace(t) in runs)  # steps of runs, not any id with a '/'
        facts = rules.WorkflowFacts(len(running), tuple(stuck), len(ended),
                                    sum(1 for r in ended if r.state is RunState.FAILED), parked)  # fmt: skip
        return rules.workflows_health(facts)

    def _store(self, now: float) -> ComponentHealth:
        store = self.runtime.store
        error = store.probe_write()
        size, wal = store.file_sizes_mb()
        return rules.store_health(rules.StoreFacts(error is None, error, size, wal))

    def _engine(self, now: float) -> ComponentHealth:
        runtime = self.runtime
        figures = self._engine_figures()
        deadline = now - runtime.settings.visibility_timeout
        live = sum(1 for w in runtime.store.workers.live() if w.heartbeat_at >= deadline)
        if figures is None:
            waiting = runtime.store.unfinished_count() if not live else 0
            return rules.engine_health(rules.EngineFacts(False, live, waiting=waiting))
        return rules.engine_health(
            rules.EngineFacts(
                True,
                live,
                figures.loop_lag,
                figures.accepting,
                stuck_threads=figures.stuck_threads,
                executors=tuple(sorted(figures.executors.items())),
            )
        )


def _stalled(
    figures: EngineFigures | None, agent_id: str, recent: list[Any], now: float
) -> tuple[tuple[str, float, float], ...]:
    """The attempts of a local agent running much longer than its usual run time for their task type."""
    running: tuple[RunningAttempt, ...] = figures.running.get(agent_id, ()) if figures is not None else ()
    found = []
    for attempt in running:
        runs = [o.run for o in recent if o.ok and o.run is not None and o.task_type == attempt.task_type]
        usual = sum(runs) / len(runs) if runs else None
        if rules.stalled(now - attempt.started_at, usual):
            found.append((attempt.task_id, now - attempt.started_at, usual or 0.0))
    return tuple(found)


async def _ask(agent: Any, timeout: float) -> tuple[bool | None, str | None]:
    """``(answer, None)``, or ``(None, why)`` when the agent's check raised or did not answer within ``timeout``.

    A synchronous check runs on a daemon thread of its own, and is not called again while an earlier call
    hangs: hung checks neither pile up threads nor keep the process from exiting."""
    check = agent.health_check
    try:
        if inspect.iscoroutinefunction(check):
            answer = await asyncio.wait_for(check(), timeout)
        else:
            answer = await asyncio.wait_for(_in_thread(agent, check), timeout)
            if inspect.isawaitable(answer):
                answer = await asyncio.wait_for(answer, timeout)
    except _StillRunning as running:
        return None, f"its health_check() has not answered for {running.seconds:.3g}s (still running)"
    except TimeoutError:
        return None, f"its health_check() did not answer within {timeout:g}s"
    except Exception as exc:  # noqa: BLE001 - a failing check is a verdict, not an engine error
        return None, f"its health_check() raised {type(exc).__name__}: {exc}"
    return bool(answer), None


class _StillRunning(Exception):
    def __init__(self, seconds: float) -> None:
        super().__init__(seconds)
        self.seconds = seconds


def _in_thread(agent: Any, check: Callable[[], Any]) -> asyncio.Future[Any]:
    """``check()`` on a daemon thread; its answer (or exception) comes back as a future of the running loop."""
    called = _unanswered.get(id(agent))
    if called is not None:
        raise _StillRunning(time.monotonic() - called)
    loop = asyncio.get_running_loop()
    future: asyncio.Future[Any] = loop.create_future()

    def settle(answer: Any, error: BaseException | None) -> None:
        if future.done():
            return
        if error is not None:
            future.set_exception(error)
            future.exception()  # whoever still waits gets it; if the wait timed out, nobody needs a warning
        else:
            future.set_result(answer)

    def run() -> None:
        answer, error = None, None
        try:
            answer = check()
        except Exception as exc:  # noqa: BLE001 - handed back to the caller
            error = exc
        finally:
            _unanswered.pop(id(agent), None)
        try:
            loop.call_soon_threadsafe(settle, answer, error)
        except RuntimeError:  # the loop closed while the check ran: nobody waits for it any more
            pass

    _unanswered[id(agent)] = time.monotonic()
    threading.Thread(target=run, name=f"pepper-health-{getattr(agent, 'agent_id', 'agent')}", daemon=True).start()
    return asyncio.shield(future)
