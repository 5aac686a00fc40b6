"""Alert rules written in configuration (``[[alerts]]`` in pepper.toml, or a YAML file given to a worker).

A rule watches one metric, compares it with a threshold over a window, and must hold for ``for``
seconds before it fires; it tells its sinks once per crossing (``webhook``, ``command``, ``log``).
This module only reads and checks rules: bad input raises ``ConfigError`` naming what is valid.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from pepper.errors import ConfigError, ValidationError, suggest
from pepper.model.thresholds import check_threshold
from pepper.model.units import parse_duration

#: Metrics over a window of ended attempts (every worker's, read from the shared database).
WINDOW_METRICS = (
    "error_rate", "throughput", "completed", "failed", "latency", "latency_p50", "latency_p95", "latency_p99",
    "queue_wait_p50", "queue_wait_p95", "queue_wait_p99",
)  # fmt: skip
#: Counts and figures of the moment: parked tasks, agents failing their health checks, workflow runs that
#: stopped moving, the share of each machine resource in use (percent), and the health monitor's numbers.
STATE_METRICS = (
    "dead_letters", "unhealthy_agents", "stalled_runs", "cpu_used_percent", "memory_used_percent",
    "storage_used_percent", "gpu_used_percent", "engine.loop_lag", "engine.stuck_threads", "engine.live_workers",
    "agents.agents", "agents.unhealthy_agents", "agents.waiting_tasks", "resources.leases",
    "resources.tasks_waiting_for_resources", "workflows.running_runs", "workflows.stuck_runs",
    "workflows.runs_failed_last_hour", "workflows.parked_steps", "store.size_mb", "store.wal_mb",
)  # fmt: skip
METRICS = WINDOW_METRICS + STATE_METRICS
COMPARISONS = (">", ">=", "<", "<=")
SINK_TYPES = ("webhook", "command", "log")
_FIELDS = ("name", "metric", "threshold", "comparison", "window", "for", "sinks", "description")
_SINK_FIELDS = {
    "webhook": ("type", "url", "secret_env", "timeout", "retries"),
    "command": ("type", "command", "timeout"),
    "log": ("type", "level"),
}
_NAME = re.compile(r"^[A-Za-z0-9_.:-]{1,100}$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_URL_CHARS = re.compile(r"[\x21-\x7e]+")  # printable ASCII: no space, control or other character
#: The longest ``window``, ``for`` and sink ``timeout`` a rule takes (366 days, in seconds).
MAX_DURATION = 366 * 86400.0


def short_url(url: str) -> str:
    """A webhook's URL as it may be printed or logged: its scheme, host and port only, since its credentials,
    path or query often are its secret (a chat service's hook URL is one)."""
    try:
        parts = urlsplit(url)
    except ValueError:  # such as an unclosed "[" around an IPv6 host
        return "(a URL that cannot be read)"
    host = f"[{parts.hostname}]" if parts.hostname and ":" in parts.hostname else parts.hostname or ""
    try:
        port = f":{parts.port}" if parts.port is not None else ""
    except ValueError:
        port = ""
    rest = "/…" if parts.path.strip("/") or parts.query or parts.fragment else "/"
    return f"{parts.scheme}://{host}{port}{rest}"


@dataclass(frozen=True, slots=True)
class Sink:
    """Where a firing goes: ``webhook`` (POST of the alert's JSON), ``command`` (its JSON on stdin), ``log``."""

    type: str
    url: str | None = None
    secret_env: str | None = None  #: the environment variable holding the HMAC secret (never the secret)
    command: str | None = None
    timeout: float = 5.0
    retries: int = 3
    level: str = "WARNING"

    def describe(self) -> str:
        if self.type == "webhook":
            signed = f", signed with ${self.secret_env}" if self.secret_env else ""
            return f"webhook {self.url}{signed}"
        return f"command {self.command!r}" if self.type == "command" else "log"

    def shown(self) -> str:
        """``describe`` as it may be printed or logged: a webhook's URL as ``short_url`` gives it."""
        if self.type != "webhook" or not self.url:
            return self.describe()
        return self.describe().replace(self.url, short_url(self.url))


@dataclass(frozen=True, slots=True)
class ConfiguredRule:
    """One alert rule from configuration."""

    name: str
    metric: str
    threshold: float
    comparison: str = ">"
    window: float = 60.0
    hold: float = 0.0  #: ``for``: how long the value must stay past the threshold before the rule fires
    sinks: tuple[Sink, ...] = field(default=(Sink("log"),))
    description: str = ""

    def crossed(self, value: float) -> bool:
        """True when ``value`` is past the threshold."""
        op = self.comparison
        t = self.threshold
        return value > t if op == ">" else value >= t if op == ">=" else value < t if op == "<" else value <= t

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "metric": self.metric, "threshold": self.threshold, "comparison": self.comparison,
                "window": self.window, "for": self.hold, "sinks": [s.shown() for s in self.sinks],
                "description": self.description}  # fmt: skip


def parse_rules(values: Any, where: str = "alerts") -> tuple[ConfiguredRule, ...]:
    """Rules from a list of tables (``[[alerts]]``); names must be unique."""
    if values is None:
        return ()
    if isinstance(values, ConfiguredRule):
        return (values,)
    if isinstance(values, Mapping) or not isinstance(values, Sequence) or isinstance(values, str):
        raise ConfigError(f"{where} must be a list of rules ([[alerts]] tables), got {type(values).__name__}",
                          field="alerts")  # fmt: skip
    rules = tuple(r if isinstance(r, ConfiguredRule) else parse_rule(r, f"{where}[{i}]") for i, r in enumerate(values))
    seen: set[str] = set()
    for rule in rules:
        if rule.name in seen:
            raise ConfigError(f"{where}: two rules are named {rule.name!r}; names must be unique", field="alerts")
        seen.add(rule.name)
    return rules


def parse_rule(data: Any, where: str = "alert") -> ConfiguredRule:
    """One rule from a table: ``name``, ``metric``, ``threshold`` (required); ``comparison``, ``window``, ``for``,
    ``sinks``, ``description``."""
    if not isinstance(data, Mapping):
        raise ConfigError(f"{where} must be a table of name, metric, threshold, ...; got {data!r:.80}", field="alerts")
    unknown = sorted(set(data) - set(_FIELDS))
    if unknown:
        raise ConfigError(f"{where}: unknown field {unknown[0]!r}; valid fields: {', '.join(_FIELDS)}."
                          f"{suggest(unknown[0], _FIELDS)}", field="alerts")  # fmt: skip
    for required in ("name", "metric", "threshold"):
        if required not in data:
            raise ConfigError(f"{where}: {required!r} is missing (a rule needs name, metric and threshold)",
                              field="alerts")  # fmt: skip
    name = data["name"]
    if not isinstance(name, str) or not _NAME.match(name):
        raise ConfigError(f"{where}: name must be 1-100 letters, digits or _ . : -, got {name!r}", field="alerts")
    where = f"alert {name!r}"
    metric = data["metric"]
    if metric not in METRICS:
        raise ConfigError(f"{where}: unknown metric {metric!r}; valid metrics: {', '.join(METRICS)}."
                          f"{suggest(str(metric), METRICS)}", field="alerts")  # fmt: skip
    comparison = data.get("comparison", ">")
    if comparison not in COMPARISONS:
        raise ConfigError(f"{where}: comparison must be one of {', '.join(COMPARISONS)}, got {comparison!r}",
                          field="alerts")  # fmt: skip
    try:
        threshold = check_threshold(metric, data["threshold"], comparison)
    except ValidationError as exc:
        raise ConfigError(f"{where}: {exc}", field="alerts") from None
    window = _duration(data.get("window", 60.0), where, "window", positive=True)
    hold = _duration(data.get("for", 0.0), where, "for", positive=False)
    sinks = data.get("sinks", [{"type": "log"}])
    if not isinstance(sinks, Sequence) or isinstance(sinks, (str, Mapping)) or not sinks:
        raise ConfigError(f"{where}: sinks must be a non-empty list of tables such as {{type = \"log\"}}",
                          field="alerts")  # fmt: skip
    description = data.get("description", "")
    if not isinstance(description, str):
        raise ConfigError(f"{where}: description must be text", field="alerts")
    return ConfiguredRule(name, metric, threshold, comparison, window, hold,
                          tuple(_sink(s, where) for s in sinks), description)  # fmt: skip


def _duration(value: Any, where: str, what: str, *, positive: bool) -> float:
    try:
        seconds = parse_duration(value, what)
    except ValidationError as exc:
        raise ConfigError(f"{where}: {exc}", field="alerts") from None
    if positive and seconds <= 0:
        raise ConfigError(f"{where}: {what} must be positive, got {value!r}", field="alerts")
    if seconds > MAX_DURATION:
        raise ConfigError(f"{where}: {what} must be at most 366 days ('366d'), got {value!r}", field="alerts")
    return seconds


def check_webhook_url(url: Any, where: str = "webhook") -> str:
    """``url`` if a webhook can be sent to it: ``http`` or ``https``, a host, a port from 1 to 65535 if one is
    given, and printable ASCII only (spaces and other characters percent-encoded). Errors show only the scheme,
    host and port of the URL: its credentials, path or query may be its secret."""
    if not isinstance(url, str) or not url:
        got = "nothing" if url is None or url == "" else f"a {type(url).__name__}"
        raise ConfigError(f'{where}: a webhook sink needs url = "http://..." or "https://...", got {got}',
                          field="alerts")  # fmt: skip
    shown = short_url(url)
    if not _URL_CHARS.fullmatch(url):
        raise ConfigError(f"{where}: the webhook url {shown} has a space, a control character or a character "
                          f"beyond ASCII; percent-encode it (a space is %20)", field="alerts")  # fmt: skip
    try:
        parts = urlsplit(url)
    except ValueError:  # such as an unclosed "[" around an IPv6 host
        raise ConfigError(f"{where}: the webhook url cannot be read (http://HOST[:PORT]/...)", field="alerts") from None
    if parts.scheme.lower() not in ("http", "https"):
        raise ConfigError(f"{where}: the webhook url {shown} must start with http:// or https://", field="alerts")
    if not parts.hostname:
        raise ConfigError(f"{where}: the webhook url {shown} names no host (http://HOST[:PORT]/...)", field="alerts")
    try:
        port = parts.port
    except ValueError:  # not a number, or above 65535
        port = -1
    if port is not None and not 1 <= port <= 65535:
        raise ConfigError(f"{where}: the webhook url {shown} has a port that is not a number from 1 to 65535",
                          field="alerts")  # fmt: skip
    return url


def _sink(data: Any, where: str) -> Sink:
    if isinstance(data, str):
        data = {"type": data}
    if not isinstance(data, Mapping) or data.get("type") not in SINK_TYPES:
        kind = data.get("type") if isinstance(data, Mapping) else data
        raise ConfigError(f"{where}: unknown sink {kind!r}; valid sinks: {', '.join(SINK_TYPES)}", field="alerts")
    kind = data["type"]
    valid = _SINK_FIELDS[kind]
    unknown = sorted(set(data) - set(valid))
    if unknown:
        raise ConfigError(f"{where}: a {kind} sink has no field {unknown[0]!r}; valid fields: {', '.join(valid)}",
                          field="alerts")  # fmt: skip
    timeout = _duration(data.get("timeout", 5.0), where, "timeout", positive=True)
    if kind == "webhook":
        url = check_webhook_url(data.get("url"), where)
        secret_env = data.get("secret_env")
        if secret_env is not None and (not isinstance(secret_env, str) or not _ENV_NAME.match(secret_env)):
            raise ConfigError(f"{where}: secret_env must name an environment variable, got {secret_env!r}",
                              field="alerts")  # fmt: skip
        retries = data.get("retries", 3)
        if isinstance(retries, bool) or not isinstance(retries, int) or not 0 <= retries <= 10:
            raise ConfigError(f"{where}: retries must be a whole number from 0 to 10, got {retries!r}", field="alerts")
        return Sink("webhook", url=url, secret_env=secret_env, timeout=timeout, retries=retries)
    if kind == "command":
        command = data.get("command")
        if not isinstance(command, str) or not command.strip():
            raise ConfigError(f'{where}: a command sink needs command = "..."', field="alerts")
        return Sink("command", command=command, timeout=timeout)
    level = str(data.get("level", "WARNING")).upper()
    if level not in ("INFO", "WARNING", "ERROR", "CRITICAL"):
        raise ConfigError(f"{where}: level must be one of INFO, WARNING, ERROR, CRITICAL, got {level!r}",
                          field="alerts")  # fmt: skip
    return Sink("log", level=level)
