"""``RemoteWatches``: the alert rules a runtime connected to a server evaluates itself, calling their callbacks here.

A Python callback cannot run on the server, and the server keeps no rules for its callers; so a rule set through
a monitor's ``set_alert`` on a remote runtime is evaluated in this process, every ``sample_interval``, on the
figures the server gives (its attempts, its health numbers, its agents' measured usage): the same rule, on the same
values a process on the server's machine would watch. Its alerts go to the callback only: the server does not
record them (they are not in ``GET /api/v1/alerts``). The rules end with the runtime.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import inspect
import logging
import threading
from collections.abc import Callable
from typing import Any

from pepper.engine.clock import Clock
from pepper.engine.portal import Portal
from pepper.engine.sampler import ValueOf, Watch
from pepper.monitoring.alerts import Alert, AlertRule, RuleState, evaluate

log = logging.getLogger("pepper.monitoring")


class RemoteWatches:
    """Alert rules evaluated on this runtime's own loop (``portal``) every ``interval()`` seconds."""

    def __init__(self, portal: Callable[[], Portal], clock: Clock, interval: Callable[[], float]) -> None:
        self._portal = portal
        self.clock = clock
        self.interval = interval
        self.watches: dict[str, Watch] = {}
        self._lock = threading.Lock()
        self._loop: concurrent.futures.Future[None] | None = None

    def add(self, rule: AlertRule, callback: Callable[[Alert], Any], value: ValueOf) -> None:
        """Watch ``rule`` (its value read by ``value``), calling ``callback(alert)`` each time it fires."""
        with self._lock:
            self.watches[rule.rule_id] = Watch(rule, callback, RuleState(), value)
            if self._loop is None:
                self._loop = self._portal().submit(self._run())

    def remove(self, rule_id: str) -> bool:
        """Stop watching a rule; False if it was not watched."""
        with self._lock:
            return self.watches.pop(rule_id, None) is not None

    def stop(self) -> None:
        """Stop evaluating (the rules are forgotten)."""
        with self._lock:
            self.watches.clear()
            loop, self._loop = self._loop, None
        if loop is not None:
            loop.cancel()

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval())
            await self.tick()

    async def tick(self) -> None:
        """Evaluate every rule once, now (its value read off this loop: a request to the server)."""
        now = self.clock.now()
        with self._lock:
            watches = list(self.watches.values())
        for watch in watches:
            try:
                value = await asyncio.to_thread(watch.value, watch.rule, now) if watch.value is not None else None
            except Exception:  # the server unreachable, say: the next tick tries again
                log.exception("could not read the value of alert rule %s", watch.rule.rule_id)
                continue
            watch.state, alert = evaluate(watch.rule, watch.state, value, now)
            if alert is not None and watch.rule.rule_id in self.watches:
                _deliver(alert, watch.callback)


def _deliver(alert: Alert, callback: Callable[[Alert], Any]) -> None:
    """Call the callback (async on this loop, sync in a thread); its errors are logged."""
    loop = asyncio.get_running_loop()
    if inspect.iscoroutinefunction(callback):
        done: asyncio.Future[Any] = loop.create_task(callback(alert))
    else:
        done = loop.run_in_executor(None, callback, alert)
    done.add_done_callback(lambda future: _log_failure(future, alert))


def _log_failure(done: asyncio.Future[Any], alert: Alert) -> None:
    if not done.cancelled() and done.exception() is not None:
        log.error("the callback of alert %s failed", alert.alert_id, exc_info=done.exception())
