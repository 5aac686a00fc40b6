"""The runtime's configuration: one frozen value, validated once."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pepper.errors import ConfigError, ValidationError, suggest
from pepper.model.alert_config import ConfiguredRule, parse_rules
from pepper.model.recovery import Policy
from pepper.model.resources import Resources
from pepper.model.retry import MAX_RETRY_DELAY
from pepper.model.task_log import DEFAULT_LOG_LIMIT
from pepper.model.units import parse_duration, parse_quantity

_SYNC_MODES = ("normal", "full")
_EXECUTORS = ("local", "ray")
#: Resources every host has a pool of its own of; they cannot be shared pools.
MACHINE_RESOURCES = ("cpu", "memory", "storage", "gpu")
_HOST_ID_MAX = 255


@dataclass(frozen=True, slots=True)
class Settings:
    """Every knob of a runtime. Build with ``Settings.build(**values)``.

    Durations are seconds (strings such as ``"30s"`` are accepted by ``build``).
    """

    #: Where all state lives: a SQLite file (``":memory:"`` for throw-away use) or a PostgreSQL URL. Left out of
    #: the settings' ``repr``: a URL may hold a password.
    db: str = dataclasses.field(default=".pepper/pepper.db", repr=False)
    #: Folder for pepper's files (agents' working directories live in ``home/agents``).
    home: str = ".pepper"
    #: Capacity of the resource pool, over this machine's: a resource named here replaces the machine's
    #: figure for it, others are added (``{"gpu": 1}`` keeps the machine's cpu, memory and storage).
    resources: Resources | None = None
    #: Pools that every host using the database shares, e.g. ``{"api_tokens": 5}`` (plain counts). Machine
    #: resources (cpu, memory, storage, gpu, and those named in ``resources``) are a pool per host instead.
    shared_resources: Resources | None = None
    #: This host's name among the hosts sharing the database (``None``: the machine's host name). Workers are
    #: recorded under it; a worker found dead by its pid must be on the same host, elsewhere its silence tells.
    host_id: str | None = None
    #: How often to look for work and changes made by other processes.
    poll_interval: float = 0.2
    #: How often agents' real resource usage is measured (and alert rules evaluated).
    sample_interval: float = 1.0
    #: Agents' learned scores weigh a result half as much after this long (see scheduling.performance).
    score_half_life: float = 3600.0
    #: How often a worker proves it is alive.
    heartbeat_interval: float = 2.0
    #: A worker silent for this long is presumed dead and its running tasks are re-queued.
    visibility_timeout: float = 30.0
    #: Priority points a ready task gains per minute of waiting (a named level is 10 points).
    priority_ageing: float = 10.0
    #: First retry delay; doubles (``retry_backoff``) up to ``retry_max_delay``, with jitter.
    retry_delay: float = 1.0
    retry_backoff: float = 2.0
    retry_max_delay: float = 60.0
    #: What a failed task does when neither it nor its agent has a recovery policy (e.g.
    #: ``"retry(3) -> dead_letter"``); ``None``: retry ``max_retries`` times with the delays above, then fail.
    recovery: Policy | None = None
    #: Finished tasks kept in memory for fast status reads (all stay in the database).
    keep_finished: int = 10_000
    #: How long ``close()`` lets running tasks finish before interrupting them.
    shutdown_timeout: float = 10.0
    #: How long a write waits for another process holding the database lock (on PostgreSQL, also how long a
    #: request waits for one of the connections of its pool).
    busy_timeout: float = 10.0
    #: SQLite ``synchronous``: ``normal`` survives process crashes; ``full`` also power loss.
    synchronous: str = "normal"
    #: Count tasks and attempts per task type and agent, and keep recent attempts for PerformanceMonitor,
    #: HealthMonitor and the Prometheus export (a few per cent of throughput; off to skip it).
    metrics: bool = True
    #: Where agents that name no executor run: ``local`` (the engine's loop, a thread or a subprocess) or ``ray``.
    executor: str = "local"
    #: The Ray cluster of ``ray`` agents: ``None`` starts a local Ray in this process, ``"auto"`` joins the
    #: cluster of this machine, ``"ray://host:10001"`` a remote one.
    ray_address: str | None = None
    #: What one attempt may keep of its log (a command's stderr, a Python agent's log records), in bytes:
    #: the first and the last half of it are kept, the middle cut. ``0`` keeps no logs. Strings such as
    #: ``"512KiB"`` or ``"2MiB"`` are accepted.
    task_log_limit: int = DEFAULT_LOG_LIMIT
    #: How long finished work is kept: workers prune older finished tasks, runs, their history, logs and
    #: alerts in the background (``"30d"``); ``None`` keeps everything (``pepper prune`` removes by hand).
    retention: float | None = None
    #: Alert rules every worker evaluates (``[[alerts]]`` tables in pepper.toml; see model.alert_config).
    alerts: tuple[ConfiguredRule, ...] = ()

    @classmethod
    def names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in dataclasses.fields(cls))

    @classmethod
    def build(cls, values: Mapping[str, Any] | None = None, **more: Any) -> Settings:
        """Validate ``values`` (unknown names and bad values raise ``ConfigError``)."""
        merged = {**(values or {}), **more}
        valid = cls.names()
        for name in merged:
            if name not in valid:
                raise ConfigError(
                    f"unknown setting {name!r}; valid settings: {', '.join(valid)}.{suggest(name, valid)}",
                    field=name,
                )
        checked: dict[str, Any] = {}
        for name, value in merged.items():
            try:
                checked[name] = _check(name, value)
            except ConfigError:
                raise
            except ValidationError as exc:
                raise ConfigError(f"setting {name!r}: {exc}", field=name) from None
        _check_shared(checked.get("shared_resources"), checked.get("resources"))
        return cls(**checked)

    def replace(self, **changes: Any) -> Settings:
        """A copy with ``changes`` applied (validated)."""
        values = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        values.update(changes)
        return Settings.build(values)


_DURATIONS = (
    "poll_interval",
    "score_half_life",
    "sample_interval",
    "heartbeat_interval",
    "visibility_timeout",
    "retry_delay",
    "retry_max_delay",
    "shutdown_timeout",
    "busy_timeout",
)


def _check(name: str, value: Any) -> Any:
    if name in ("db", "home"):
        if not isinstance(value, str) or not value:
            raise ConfigError(f"setting {name!r} must be a non-empty path, got {value!r}", field=name)
        return value
    if name == "resources":
        return None if value is None else Resources.parse(value, "resources")
    if name == "shared_resources":
        return None if value is None else Resources.parse(value, "shared_resources")
    if name == "host_id":
        return None if value is None else check_host_id(value)
    if name == "recovery":
        return None if value is None else Policy.parse(value)
    if name in _DURATIONS:
        seconds = parse_duration(value, name)
        if seconds <= 0:
            raise ConfigError(f"setting {name!r} must be positive, got {value!r}", field=name)
        if name in ("retry_delay", "retry_max_delay") and seconds > MAX_RETRY_DELAY:
            raise ConfigError(f"setting {name!r} must be at most 366 days, got {value!r}", field=name)
        return seconds
    if name in ("priority_ageing", "retry_backoff"):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise ConfigError(f"setting {name!r} must be a number >= 0, got {value!r}", field=name)
        if name == "retry_backoff" and not 1 <= value < math.inf:
            raise ConfigError(f"setting 'retry_backoff' must be >= 1 and finite, got {value!r}", field=name)
        return float(value)
    if name == "alerts":
        return parse_rules(value)
    if name == "task_log_limit":
        return _log_limit(value)
    if name == "retention":
        if value is None:
            return None
        seconds = parse_duration(value, name)
        if seconds <= 0:
            raise ConfigError(f"setting 'retention' must be a positive duration such as '30d', got {value!r}",
                              field=name)  # fmt: skip
        return seconds
    if name == "keep_finished":
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ConfigError(f"setting 'keep_finished' must be a whole number >= 0, got {value!r}", field=name)
        return value
    if name == "metrics":
        if not isinstance(value, bool):
            raise ConfigError(f"setting 'metrics' must be true or false, got {value!r}", field=name)
        return value
    if name == "executor":
        if value not in _EXECUTORS:
            raise ConfigError(f"setting 'executor' must be one of {', '.join(_EXECUTORS)}, got {value!r}", field=name)
        return value
    if name == "ray_address":
        if value is not None and (not isinstance(value, str) or not value.strip()):
            raise ConfigError(
                "setting 'ray_address' must be 'auto', a Ray address such as 'ray://host:10001', or None "
                f"(start a local Ray), got {value!r}",
                field=name,
            )
        return value
    if name == "synchronous":
        if value not in _SYNC_MODES:
            raise ConfigError(
                f"setting 'synchronous' must be one of {', '.join(_SYNC_MODES)}, got {value!r}", field=name
            )
        return value
    return value


def _log_limit(value: Any) -> int:
    """Bytes from a number of bytes or a size such as ``"512KiB"``, ``"1MiB"``, ``"2MB"``."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ConfigError(f"setting 'task_log_limit' must be a number of bytes or a size such as '1MiB', got "
                          f"{value!r}", field="task_log_limit")  # fmt: skip
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    if isinstance(value, str):
        try:
            return int(parse_quantity("memory", value) * 2**20)
        except ValidationError:
            raise ConfigError(
                f"setting 'task_log_limit' must be a number of bytes or a size such as '512KiB' or '1MiB', got "
                f"{value!r}",
                field="task_log_limit",
            ) from None
    if value < 0 or value != value:
        raise ConfigError(f"setting 'task_log_limit' cannot be negative, got {value!r}", field="task_log_limit")
    return int(value)


def check_host_id(value: Any) -> str:
    """A host id: printable text of 1 to 255 characters, not ``*`` (which marks the shared pools)."""
    if not isinstance(value, str) or not value.strip() or not value.isprintable() or len(value) > _HOST_ID_MAX:
        raise ConfigError(
            f"setting 'host_id' must be printable text of 1 to {_HOST_ID_MAX} characters (e.g. the machine's "
            f"name), got {value!r:.80}",
            field="host_id",
        )
    if value == "*":
        raise ConfigError("setting 'host_id' cannot be '*': it marks the pools every host shares", field="host_id")
    return value


def _check_shared(shared: Resources | None, machine: Resources | None) -> None:
    """A resource is a pool of each host (machine) or one pool of the cluster (shared), never both."""
    both = sorted(set(shared or ()) & (set(MACHINE_RESOURCES) | set(machine or ())))
    if both:
        raise ConfigError(
            f"setting 'shared_resources': {', '.join(both)} is a machine resource (a pool of each host) and "
            f"cannot be shared; machine resources are {', '.join(MACHINE_RESOURCES)} and those named in "
            "'resources'",
            field="shared_resources",
        )
