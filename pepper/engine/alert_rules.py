"""Evaluating the configured alert rules in every worker, firing each crossing once across all of them.

Each ``tick`` reads every rule's value (through ``value_of``, given by the runtime) and the rules' shared
state from the store. A value past its threshold for the rule's ``for`` seconds (counted by this worker)
fires the rule by a conditional update of its row: the one worker whose update changed it records the
alert (listed with the monitors' alerts, source ``config``) and sends the notification, in a thread of
its own. A value back on the right side resolves the rule the same way, so the next crossing fires
again. An unknown value (no attempt in the window) changes nothing. A stopping worker waits for the
notifications it has fired (``flush``, or ``flushed`` on its loop), each at most as long as its sinks
may take.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import uuid
from collections.abc import Callable

from pepper.engine.alert_sinks import alert_body, delivery_bound, send_all
from pepper.model.alert_config import ConfiguredRule
from pepper.monitoring.alerts import Alert
from pepper.store.protocol import Store

log = logging.getLogger("pepper.alerts")

#: What a configured rule's alerts name as their source.
SOURCE = "config"
#: Added to the time a notification's sinks may take, for the thread sending it to start and end.
_MARGIN = 1.0

#: Reads a rule's current value at a time; None when unknown.
RuleValue = Callable[[ConfiguredRule, float], "float | None"]


class RuleKeeper:
    """The configured rules of one worker, evaluated on the sampler's ticks."""

    def __init__(self, store: Store, rules: tuple[ConfiguredRule, ...], value_of: RuleValue) -> None:
        self.store = store
        self.rules = rules
        self.value_of = value_of
        self._since: dict[str, float] = {}  # rule -> when its value was first seen past the threshold
        self.sent: list[threading.Thread] = []  # notifications being sent
        self._bounds: dict[threading.Thread, float] = {}  # how long each one may take

    def tick(self, now: float) -> None:
        """Evaluate every rule once."""
        states = self.store.alert_states.states()
        for rule in self.rules:
            try:
                value = self.value_of(rule, now)
            except Exception:
                log.exception("could not read the value of alert rule %s", rule.name)
                continue
            if value is None:
                continue
            state = states.get(rule.name)
            firing = state is not None and state.firing
            if rule.crossed(value):
                since = self._since.setdefault(rule.name, now)
                if not firing and now - since >= rule.hold:
                    count = (state.fired_count if state is not None else 0) + 1
                    body = alert_body(rule, value, now, count)
                    if self.store.alert_states.fire(rule.name, value, now, _alert(rule, value, now, body).to_row()):
                        self._notify(rule, body)
            else:
                self._since.pop(rule.name, None)
                if firing and self.store.alert_states.resolve(rule.name, value, now):
                    log.info("alert %s resolved: %s is %g again", rule.name, rule.metric, value)

    def _notify(self, rule: ConfiguredRule, body: dict[str, object]) -> None:
        log.warning("alert %s fired: %s", rule.name, body["message"])
        thread = threading.Thread(target=send_all, args=(rule.sinks, body), name=f"pepper-alert-{rule.name}",
                                  daemon=True)  # fmt: skip
        self.sent = [t for t in self.sent if t.is_alive()] + [thread]
        self._bounds = {t: self._bounds.get(t, 0.0) for t in self.sent}
        self._bounds[thread] = delivery_bound(rule.sinks) + _MARGIN
        thread.start()

    def flush(self) -> bool:
        """Wait for the notifications being sent (a stopping worker delivers what it fired), each at most as
        long as its sinks may take; True when every one has ended."""
        start = time.monotonic()
        for thread in list(self.sent):
            remaining = start + self._bounds.get(thread, _MARGIN) - time.monotonic()
            thread.join(min(threading.TIMEOUT_MAX, max(0.0, remaining)))
        left = [t for t in self.sent if t.is_alive()]
        for thread in left:
            log.error("alert notification %s still unsent after its sinks' timeouts; giving up", thread.name)
        return not left

    async def flushed(self) -> bool:
        """``flush`` in a thread of its own, awaited without holding up the loop. No executor is used: none can
        be made while the interpreter exits, and a runtime closed at exit flushes then too."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future[bool] = loop.create_future()

        def flush() -> None:
            try:
                ended = self.flush()
            except BaseException:  # (its waiter must not wait for ever: the flush is over, not all delivered)
                log.exception("delivering the fired notifications failed")
                ended = False

            def settle() -> None:
                if not done.done():
                    done.set_result(ended)

            try:
                loop.call_soon_threadsafe(settle)
            except RuntimeError:  # the loop closed meanwhile: nobody waits any more
                pass

        try:
            threading.Thread(target=flush, name="pepper-alert-flush", daemon=True).start()
        except RuntimeError:  # no thread can start any more (the interpreter is ending): wait here
            return self.flush()
        return await done


def _alert(rule: ConfiguredRule, value: float, now: float, body: dict[str, object]) -> Alert:
    """The record of a firing, listed with the alerts of the monitors."""
    return Alert(uuid.uuid4().hex, rule.name, SOURCE, rule.metric, value, rule.threshold,
                 rule.comparison in (">", ">="), now, message=str(body["message"]))  # fmt: skip
