"""Evaluating the configured alert rules in every worker, firing each crossing once across all of them.

Each ``tick`` reads every rule's value (through ``value_of``, given by the runtime) and the rules' shared
state from the store. A value past its threshold for the rule's ``for`` seconds (counted by this worker)
fires the rule by a conditional update of its row: the one worker whose update changed it sends the
notification, in a thread of its own. A value back on the right side resolves the rule the same way, so
the next crossing fires again. An unknown value (no attempt in the window) changes nothing.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from pepper.engine.alert_sinks import alert_body, send_all
from pepper.model.alert_config import ConfiguredRule
from pepper.store.protocol import Store

log = logging.getLogger("pepper.alerts")

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
                if not firing and now - since >= rule.hold and self.store.alert_states.fire(rule.name, value, now):
                    count = (state.fired_count if state is not None else 0) + 1
                    self._notify(rule, alert_body(rule, value, now, count))
            else:
                self._since.pop(rule.name, None)
                if firing and self.store.alert_states.resolve(rule.name, value, now):
                    log.info("alert %s resolved: %s is %g again", rule.name, rule.metric, value)

    def _notify(self, rule: ConfiguredRule, body: dict[str, object]) -> None:
        log.warning("alert %s fired: %s", rule.name, body["message"])
        thread = threading.Thread(target=send_all, args=(rule.sinks, body), name=f"pepper-alert-{rule.name}",
                                  daemon=True)  # fmt: skip
        self.sent = [t for t in self.sent if t.is_alive()] + [thread]
        thread.start()
