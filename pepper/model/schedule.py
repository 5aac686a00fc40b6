"""Schedules: when a workflow starts on its own, by a cron expression or a fixed interval, in a time zone.

Pure: the caller passes the time in. A schedule's ticks are the times its cron expression names in its time
zone (croniter), or ``created_at + k * every``. Which ticks start a run once the time is past them is decided
by ``due``:

- a tick is *on time* when it is at most ``MISFIRE_GRACE`` old: it starts one run, and so does each later
  tick that is due (several may be, for a schedule more frequent than the grace): one at a time, oldest first,
  each claimed on its own, so with several workers each starts exactly one run;
- ticks older than that were missed (no worker ran): with ``catch_up`` each of them starts a run of its own,
  oldest first (as Airflow's catchup runs each missed interval); without it they are skipped, and the first
  tick still on time runs (or the schedule waits for its next tick in the future). Skipping does not walk the
  missed ticks: the first tick on time is found straight from the time (arithmetic for an interval, a look
  back from ``now`` for a cron expression).

Across changes of daylight saving time a cron expression fires as cron does (``cron_ticks``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from croniter import CroniterError, croniter

from pepper.errors import InvalidScheduleError, ValidationError, shown, suggest
from pepper.model import codec, cron_ticks
from pepper.model.timing import MAX_DELAY
from pepper.model.units import parse_duration

#: How late a tick may be taken and still count as on time (a worker woken a little late, a busy database).
MISFIRE_GRACE = 60.0
#: The shortest interval a schedule may have.
MIN_EVERY = 1.0
_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}")
#: How far before a tick the tick preceding it is looked for (ticks are at least a second apart).
_BEFORE = 0.5
_CRON_FORMS = "five fields 'minute hour day-of-month month day-of-week', e.g. '0 2 * * *' (02:00 every day)"


@dataclass(frozen=True, slots=True)
class ScheduleSpec:
    """What a schedule says: its name, the workflow to start (its stored spec) and its inputs, and when."""

    name: str
    workflow: str
    spec: Mapping[str, Any]  # the workflow as ``WorkflowSpec.to_dict`` gives it
    cron: str | None = None
    every: float | None = None
    timezone: str = "UTC"
    catch_up: bool = False
    inputs: Mapping[str, Any] = field(default_factory=dict)

    @property
    def when(self) -> str:
        """``cron 0 2 * * * (Europe/Paris)`` or ``every 10m``: how it is shown."""
        if self.cron is not None:
            return f"cron {self.cron} ({self.timezone})"
        from pepper.model.units import format_duration

        return f"every {format_duration(self.every or 0.0)}"

    def same_timing(self, other: ScheduleSpec) -> bool:
        return (self.cron, self.every, self.timezone) == (other.cron, other.every, other.timezone)


@dataclass(frozen=True, slots=True)
class ScheduleRecord:
    """One row of the schedules table: the spec, whether it is paused, and its next and last ticks."""

    spec: ScheduleSpec
    next_fire_at: float
    created_at: float
    paused: bool = False
    last_fire_at: float | None = None
    last_run_id: str | None = None

    @property
    def name(self) -> str:
        return self.spec.name

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (``--json``)."""
        s = self.spec
        return {
            "name": s.name, "workflow": s.workflow, "cron": s.cron, "every": s.every, "timezone": s.timezone,
            "catch_up": s.catch_up, "inputs": dict(s.inputs), "paused": self.paused,
            "next_fire_at": self.next_fire_at,
            "next_fire": None if self.paused else local_time(self.next_fire_at, s.timezone),
            "last_fire_at": self.last_fire_at, "last_run_id": self.last_run_id, "created_at": self.created_at,
        }  # fmt: skip

    @classmethod
    def from_row(cls, row: codec.Row) -> ScheduleRecord:
        spec = ScheduleSpec(
            name=row["name"], workflow=row["workflow"], spec=codec.decode(row["spec"]), cron=row["cron"],
            every=row["every"], timezone=row["timezone"], catch_up=bool(row["catch_up"]),
            inputs=codec.decode(row["inputs"]) or {},
        )  # fmt: skip
        return cls(spec, row["next_fire_at"], row["created_at"], bool(row["paused"]), row["last_fire_at"],
                   row["last_run_id"])  # fmt: skip


def check_name(name: Any) -> str:
    """A schedule's name: 1-100 letters, digits, ``_``, ``.`` or ``-``."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise InvalidScheduleError(
            f"a schedule's name must be 1-100 letters, digits, '_', '.' or '-' (not starting with '.' or '-'), "
            f"got {shown(name)}",
            field="name",
        )
    return name


def check_timezone(value: Any) -> str:
    """The name of a time zone of the IANA database (``UTC``, ``Europe/Paris``...)."""
    if not isinstance(value, str) or not value:
        raise InvalidScheduleError(f"timezone must be a name such as 'UTC' or 'Europe/Paris', got {shown(value)}",
                                   field="timezone")  # fmt: skip
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        hint = suggest(value, sorted(available_timezones()))
        raise InvalidScheduleError(
            f"unknown time zone {value!r}; use a name of the IANA time zone database such as 'UTC', "
            f"'Europe/Paris' or 'America/New_York'.{hint}",
            field="timezone",
        ) from None
    return value


def check_timing(cron: Any, every: Any, timezone: Any) -> tuple[str | None, float | None, str]:
    """Validated ``(cron, every, timezone)``: exactly one of a cron expression and an interval."""
    if (cron is None) == (every is None):
        raise InvalidScheduleError(
            "give a schedule either cron (e.g. cron='0 2 * * *') or every (e.g. every='10m'), "
            + ("not both" if cron is not None else "one of them"),
            field="cron",
        )
    zone = check_timezone(timezone)
    if cron is not None:
        if not isinstance(cron, str) or len(cron.split()) != 5 or not croniter.is_valid(cron):
            raise InvalidScheduleError(f"cron expression {shown(cron)} is not valid; give {_CRON_FORMS}", field="cron")
        cron = " ".join(cron.split())
        try:  # fields each valid may still name no real date (February 30th): it would never fire
            croniter(cron, datetime(2000, 1, 1)).get_next(float)
        except CroniterError:
            raise InvalidScheduleError(
                f"cron expression {cron!r} never fires: no date matches it; its day of the month must exist in "
                f"one of its months (e.g. '0 0 28 2 *', not '0 0 30 2 *')",
                field="cron",
            ) from None
        return cron, None, zone
    try:
        seconds = parse_duration(every, "every")
    except ValidationError as exc:
        raise InvalidScheduleError(str(exc), field="every") from None
    if seconds < MIN_EVERY:
        raise InvalidScheduleError(f"every must be at least {MIN_EVERY:g}s, got {shown(every)}", field="every")
    if seconds > MAX_DELAY:  # a tick is a time: it must stay one a date can show
        raise InvalidScheduleError(
            f"every must be at most 366 days, got {shown(every)}; for rarer runs give a cron expression "
            "(e.g. cron='0 2 1 1 *', once a year)",
            field="every",
        )
    return None, seconds, zone


def next_tick(spec: ScheduleSpec, after: float, anchor: float) -> float:
    """The first tick of ``spec`` strictly after ``after`` (``anchor``: when an interval counts from)."""
    if spec.every is not None:
        steps = math.floor((after - anchor) / spec.every) + 1
        return anchor + max(1, steps) * spec.every
    return cron_ticks.following(spec.cron or "", spec.timezone, after)


def latest_tick(spec: ScheduleSpec, tick: float, now: float, anchor: float) -> float:
    """The last tick of ``spec`` at or before ``now``, given ``tick``, one at or before ``now``; found without
    going through the ticks in between."""
    if spec.every is not None:
        steps = math.floor((now - anchor) / spec.every)
        found = anchor + steps * spec.every
        if found > now:  # rounding
            found -= spec.every
        return max(tick, found)
    return cron_ticks.latest(spec.cron or "", spec.timezone, now, tick)


@dataclass(frozen=True, slots=True)
class Due:
    """What to do with a schedule whose next tick has come: the ticks to run (oldest first) and the tick after
    them (what ``next_fire_at`` becomes); ``missed``: the oldest and the latest tick skipped, if any were."""

    run: tuple[float, ...]
    next_fire_at: float
    missed: tuple[float, float] | None = None


def due(record: ScheduleRecord, now: float) -> Due | None:
    """The tick due at ``now`` (see the module docstring); None when the next tick is still to come. One tick
    is handed out at a time - a missed one with ``catch_up``, else the first on time - each claimed on its
    own; the ticks missed before it are skipped without ``catch_up``."""
    spec, tick = record.spec, record.next_fire_at
    if tick > now:
        return None
    anchor = record.created_at
    if spec.catch_up or now - tick <= MISFIRE_GRACE:
        return Due((tick,), next_tick(spec, tick, anchor))
    # ``tick`` was missed: so was every tick up to the last one more than the grace old
    last_missed = latest_tick(spec, tick, now - MISFIRE_GRACE, anchor)
    if now - last_missed <= MISFIRE_GRACE:  # (exactly the grace old: on time after all)
        last_missed = latest_tick(spec, tick, last_missed - _BEFORE, anchor)
    first_on_time = next_tick(spec, last_missed, anchor)
    if first_on_time > now:
        return Due((), first_on_time, (tick, last_missed))
    return Due((first_on_time,), next_tick(spec, first_on_time, anchor), (tick, last_missed))


def local_time(at: float, timezone: str) -> str:
    """``2026-03-01 02:00 CET``: a time as people of that zone read it (a time no date can show, as a stored
    row of an older version may hold, is given in seconds since the epoch)."""
    try:
        return datetime.fromtimestamp(at, ZoneInfo(timezone)).strftime("%Y-%m-%d %H:%M:%S %Z")
    except (OverflowError, ValueError, OSError):
        return f"{at!r} seconds since the epoch"
