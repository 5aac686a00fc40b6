"""Measuring this engine's agents, storing the figures, and evaluating alert rules on them.

Runs on the engine loop every ``sample_interval``. Command agents are measured
from their process trees; in-process agents share pepper's own process, so
their CPU and memory are reported as not measurable, never guessed.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pepper.engine.alert_rules import RuleKeeper
from pepper.engine.periodic import Periodic
from pepper.engine.usage import ProcessMeter, folder_size_mb
from pepper.errors import StoreError
from pepper.model import codec
from pepper.model.usage import METRICS, AgentUsage, Measurement
from pepper.monitoring.alerts import Alert, AlertRule, RuleState, evaluate

if TYPE_CHECKING:
    from pepper.engine.shell import Engine

log = logging.getLogger("pepper.monitoring")
IN_PROCESS = "the agent runs inside the pepper process, so its share cannot be told apart from pepper's"
_STORAGE_EVERY = 5  # ticks between walks of a working directory
# What an in-process agent's CPU and memory are reported as: the same figures every time.
_SHARED_CPU, _SHARED_MEMORY = Measurement(None, "%", IN_PROCESS), Measurement(None, "MB", IN_PROCESS)


#: Reads the current value a rule watches, at a time; None when unknown.
ValueOf = Callable[[AlertRule, float], "float | None"]


@dataclass
class Watch:
    """An alert rule, where it stands, whom to tell, and (for rules not on measured usage) how to read it."""

    rule: AlertRule
    callback: Callable[[Alert], Any]
    state: RuleState
    value: ValueOf | None = None


class Sampler(Periodic):
    """Periodic measurement of local agents and evaluation of the alert rules."""

    def __init__(self, engine: Engine, agents_home: Path, interval: float) -> None:
        self.engine = engine
        self.home = agents_home
        self.interval = interval
        self.watches: dict[str, Watch] = {}
        self.latest: dict[str, AgentUsage] = {}
        self._meter = ProcessMeter()
        self._storage: dict[str, Measurement] = {}  # agent -> the size of its working directory, as last walked
        # agent -> its measurements as last stored, and their JSON: an agent's figures seldom change between two
        # ticks (an in-process agent's only with its directory's size), and are then not encoded again.
        self._texts: dict[str, tuple[tuple[Measurement, ...], str]] = {}
        self._ticks = 0
        #: The configured alert rules (set by the runtime when its settings have some).
        self.keeper: RuleKeeper | None = None

    async def _run(self) -> None:
        while True:
            await self.engine.clock.sleep(self.interval)
            try:
                self.tick()
            except StoreError as exc:  # the database is away for a moment (or refuses): no traceback for that
                log.warning("could not store the samples (%s); will try again", exc)
            except Exception:
                log.exception("sampling failed; will try again")

    def tick(self) -> None:
        """Measure every local agent, store the figures, evaluate the rules."""
        engine = self.engine
        now = engine.clock.now()
        fresh_storage = self._ticks % _STORAGE_EVERY == 0
        self._ticks += 1
        for agent_id in list(engine.handles):
            self.latest[agent_id] = self.measure(agent_id, fresh_storage)
        handles, worker_id = engine.handles, engine.worker_id
        engine.store.usage.save(
            (u.agent_id, worker_id, now, self._text(u)) for u in self.latest.values() if u.agent_id in handles
        )
        for agent_id in [a for a in self._texts if a not in handles]:  # unregistered since
            del self._texts[agent_id]
            self._storage.pop(agent_id, None)
        self.evaluate(now)
        if self.keeper is not None:
            self.keeper.tick(now)

    def measure(self, agent_id: str, fresh_storage: bool = True) -> AgentUsage:
        """Measure one local agent now."""
        engine = self.engine
        handle = engine.handles[agent_id]
        if handle.spec.kind == "command":
            cpu, memory = self._meter.measure(engine.attempts.pids.get(agent_id, ()))
            cpu_m, memory_m = Measurement(cpu, "%"), Measurement(memory, "MB")
        else:
            cpu_m, memory_m = _SHARED_CPU, _SHARED_MEMORY
        storage = self._storage.get(agent_id)
        if fresh_storage or storage is None:
            size = folder_size_mb(os.path.join(self.home, agent_id))
            if storage is None or storage.value != size:
                storage = self._storage[agent_id] = Measurement(size, "MB")
        measurements = {"cpu": cpu_m, "memory": memory_m, "storage": storage}
        return AgentUsage(agent_id, engine.clock.now(), measurements, engine.worker_id)

    def _text(self, usage: AgentUsage) -> str:
        """The JSON of ``usage``'s measurements as stored, made again only when a figure changed."""
        figures = tuple(usage.measurements.values())
        last = self._texts.get(usage.agent_id)
        if last is not None and last[0] == figures:  # (the same objects, mostly: compared without a look inside)
            return last[1]
        text = codec.encode({m: v.to_dict() for m, v in usage.measurements.items()})
        self._texts[usage.agent_id] = (figures, text)
        return text

    # -- alerts ------------------------------------------------------------------------

    def add(self, rule: AlertRule, callback: Callable[[Alert], Any], value: ValueOf | None = None) -> None:
        self.watches[rule.rule_id] = Watch(rule, callback, RuleState(), value)

    def remove(self, rule_id: str) -> bool:
        return self.watches.pop(rule_id, None) is not None

    def evaluate(self, now: float) -> None:
        for watch in list(self.watches.values()):
            try:
                value = watch.value(watch.rule, now) if watch.value is not None else self._value(watch.rule)
            except StoreError as exc:
                log.warning("could not read the value of alert rule %s (%s)", watch.rule.rule_id, exc)
                continue
            except Exception:
                log.exception("could not read the value of alert rule %s", watch.rule.rule_id)
                continue
            watch.state, alert = evaluate(watch.rule, watch.state, value, now)
            if alert is not None:
                self.deliver(alert, watch.callback)

    def _value(self, rule: AlertRule) -> float | None:
        if rule.subject is None or rule.metric not in METRICS:
            return None
        usage = self.latest.get(rule.subject)
        if usage is None:  # an agent of another worker: its latest stored figures
            stored = self.engine.store.usage.of_agent(rule.subject)
            if not stored:
                return None
            figures = stored[0][2].get(rule.metric)
            return figures.get("value") if figures else None
        return usage.measurements[rule.metric].value

    def deliver(self, alert: Alert, callback: Callable[[Alert], Any]) -> None:
        """Record the alert and call its callback (async on the loop, sync in a thread); errors are logged."""
        try:
            self.engine.store.alerts.record(alert.to_row())
        except StoreError as exc:
            log.warning("could not record alert %s (%s)", alert.alert_id, exc)
        except Exception:
            log.exception("could not record alert %s", alert.alert_id)
        loop = asyncio.get_running_loop()
        if inspect.iscoroutinefunction(callback):
            task = loop.create_task(callback(alert))
        else:
            task = loop.run_in_executor(None, callback, alert)  # type: ignore[assignment]
        task.add_done_callback(lambda done: _log_failure(done, alert))


def _log_failure(done: asyncio.Future[Any], alert: Alert) -> None:
    if not done.cancelled() and done.exception() is not None:
        log.error("the callback of alert %s failed", alert.alert_id, exc_info=done.exception())
