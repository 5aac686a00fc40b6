"""``AlertRules``: the alert rules of the configuration, where each stands, and test notifications.

Rules come from ``[[alerts]]`` in pepper.toml (or ``pepper worker --alerts FILE``); every worker evaluates
them (``engine.alert_rules``) on values read here: windowed figures from the attempts of every worker in
the shared database, counts of the moment, and the health monitor's numbers.
"""

from __future__ import annotations

from typing import Any

from pepper.agents.loader import load_yaml
from pepper.core.default import default_runtime
from pepper.core.health import HealthMonitor
from pepper.core.runtime import Runtime
from pepper.engine.alert_rules import RuleKeeper
from pepper.engine.alert_sinks import alert_body, send_all
from pepper.errors import ConfigError, NotFoundError
from pepper.model.alert_config import WINDOW_METRICS, ConfiguredRule, parse_rules
from pepper.monitoring.window import summarize, value_of

#: Short names of health numbers.
_ALIASES = {"unhealthy_agents": "agents.unhealthy_agents", "stalled_runs": "workflows.stuck_runs"}
_COUNTS_WITHOUT_ATTEMPTS = ("throughput", "completed", "failed")


def configured_value(runtime: Runtime, rule: ConfiguredRule, now: float) -> float | None:
    """The value ``rule`` watches now (None when unknown, e.g. an error rate with no attempt in the window)."""
    metric = rule.metric
    if metric in WINDOW_METRICS:
        found, _ = runtime.read_stored(lambda backend: backend.observations(now - rule.window))
        if not found and metric not in _COUNTS_WITHOUT_ATTEMPTS:
            return None
        return value_of(metric, summarize(found, now, rule.window))
    if metric == "dead_letters":
        return float(runtime.store.count_by_state().get("parked", 0))
    if metric.endswith("_used_percent"):
        resource = metric.removesuffix("_used_percent")
        figures = HealthMonitor(runtime).get_health_metrics(["resources"])["resources"]
        capacity, free = figures.get(f"{resource}_capacity"), figures.get(f"{resource}_free")
        if not capacity or free is None:
            return None
        return 100.0 * (capacity - free) / capacity
    component, _, name = _ALIASES.get(metric, metric).partition(".")
    number = HealthMonitor(runtime).get_health_metrics([component])[component].get(name)
    return float(number) if isinstance(number, (int, float)) and not isinstance(number, bool) else None


def keeper_for(runtime: Runtime) -> RuleKeeper:
    """The evaluator of ``runtime``'s configured rules, for its engine's sampler."""
    return RuleKeeper(runtime.store, runtime.settings.alerts, lambda rule, now: configured_value(runtime, rule, now))


class AlertRules:
    """The configured alert rules of a runtime."""

    def __init__(self, runtime: Runtime | None = None, rules: tuple[ConfiguredRule, ...] | None = None) -> None:
        self.runtime = runtime or default_runtime()
        self.rules = self.runtime.settings.alerts if rules is None else rules

    def get(self, name: str) -> ConfiguredRule:
        """The rule named ``name`` (``NotFoundError`` naming the configured ones otherwise)."""
        return find_rule(self.rules, name)

    def list(self) -> list[dict[str, Any]]:
        """Each rule with its shared state: ``firing``, ``fired_count``, when it last changed and its value then."""
        states = self.runtime.store.alert_states.states()
        listed = []
        for rule in self.rules:
            state = states.get(rule.name)
            shown = rule.to_dict()
            shown["firing"] = bool(state and state.firing)
            shown["fired_count"] = state.fired_count if state else 0
            shown["changed_at"] = state.changed_at if state else None
            shown["value"] = state.value if state else None
            listed.append(shown)
        return listed

    def test(self, name: str) -> dict[str, bool]:
        """Send a test notification (``"test": true`` in its body) through the rule's sinks; whether each one
        took it. The rule's state is left as it is."""
        return send_test(self.get(name), self.runtime.clock.now())


def find_rule(rules: tuple[ConfiguredRule, ...], name: str) -> ConfiguredRule:
    """The rule named ``name`` among ``rules`` (``NotFoundError`` naming them otherwise)."""
    for rule in rules:
        if rule.name == name:
            return rule
    names = ", ".join(r.name for r in rules) or "none (add [[alerts]] tables to pepper.toml)"
    raise NotFoundError(f"no alert rule named {name!r}; configured rules: {names}")


def send_test(rule: ConfiguredRule, now: float) -> dict[str, bool]:
    """Send a test notification of ``rule`` (``"test": true``) to its sinks; whether each one took it, by the
    sink as ``Sink.shown`` shows it (with its place among the rule's sinks when two show alike)."""
    delivered = send_all(rule.sinks, alert_body(rule, rule.threshold, now, 0, test=True))
    shown = [sink.shown() for sink in rule.sinks]
    return {(name if shown.count(name) == 1 else f"{name} (sink {i + 1})"): ok  # two alike are told apart
            for i, (name, ok) in enumerate(zip(shown, delivered, strict=True))}  # fmt: skip


def read_rules_file(path: str) -> tuple[ConfiguredRule, ...]:
    """Rules from a YAML file: a list of rules, or a mapping whose ``alerts`` is one."""
    import yaml

    try:
        with open(path, encoding="utf-8") as file:
            data = load_yaml(file.read())  # as every YAML file pepper reads: nested aliases are bounded
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read alert rules: {exc.strerror or exc}", field="alerts") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{path}: alert rules are not UTF-8 text (byte {exc.start} cannot be read); save them as UTF-8",
            field="alerts",
        ) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else path
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"{where}: invalid YAML: {problem}", field="alerts") from None
    if isinstance(data, dict) and set(data) == {"alerts"}:
        data = data["alerts"]
    try:
        return parse_rules(data or [], path)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}" if not str(exc).startswith(path) else str(exc), field="alerts") from None


def with_rules_file(rules: tuple[ConfiguredRule, ...], path: str | None) -> tuple[ConfiguredRule, ...]:
    """``rules`` and those of the YAML file at ``path`` (``pepper worker --alerts FILE``); a name given twice,
    in either or across both, is refused (``ConfigError``)."""
    if not path:
        return rules
    return parse_rules(rules + read_rules_file(path))


def configured_alerts() -> tuple[ConfiguredRule, ...]:
    """The rules of the configuration (pepper.toml, ``$PEPPER_CONFIG``)."""
    from pepper.core.config import load_settings

    return load_settings({}).alerts
