"""The ticks of a cron expression in a time zone, across changes of daylight saving time, as cron does.

A cron expression names wall-clock times (``0 2 * * *``: 02:00 every day). Twice a year a zone's clocks jump:

- clocks go back (a wall-clock hour is lived twice): a time in that hour fires once, at its first occurrence;
- clocks go forward (a wall-clock hour never happens): the times of the skipped hour fire once, right after
  the jump (at the instant the clocks change).

An expression whose hours field takes every hour (``* * * * *``, ``0 * * * *``, ``*/15 * * * *``) follows the
clock as it runs instead: its times in a repeated hour fire on each pass, and the times of a skipped hour do
not exist. That is cron's own rule (jobs run more often than hourly are scheduled normally); it keeps such a
schedule's pace steady, an hour never without ticks.

Ticks are found by stepping through wall-clock matches with croniter (naive times) and turning each into its
instants; never one croniter step per skipped tick: ``latest`` looks backwards from a time.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from croniter import croniter

#: How far around a time a change of the zone's offset is looked for (zones change at most once a day).
_AROUND = 86400.0


@lru_cache(maxsize=512)
def every_hour(cron: str) -> bool:
    """Whether ``cron``'s hours field takes all 24 hours (it then follows the running clock)."""
    hours = croniter(cron).expanded[1]
    return hours == ["*"] or len(set(hours)) == 24


def _offset(zone: ZoneInfo, at: float) -> float:
    offset = datetime.fromtimestamp(at, zone).utcoffset()
    return offset.total_seconds() if offset is not None else 0.0


def _offsets(zone: ZoneInfo, at: float) -> tuple[float, float]:
    """The smallest and largest offsets from UTC (seconds) the zone has within a day of ``at``."""
    found = [_offset(zone, at + d) for d in (-_AROUND, 0.0, _AROUND)]
    return min(found), max(found)


def _wall(at: float, offset: float) -> datetime:
    """The naive wall-clock time of instant ``at`` read with ``offset``."""
    return datetime(1970, 1, 1) + timedelta(seconds=at + offset)


def _switch(zone: ZoneInfo, before: float, after: float) -> float:
    """The instant (whole second) in ``(before, after]`` at which the zone's offset changes to that at ``after``."""
    low, high = math.floor(before), math.ceil(after)
    target = _offset(zone, high)
    while high - low > 1:
        mid = (low + high) // 2
        if _offset(zone, mid) == target:
            high = mid
        else:
            low = mid
    return float(high)


def instants(wall: datetime, zone: ZoneInfo, hourly: bool) -> tuple[float, ...]:
    """The ticks of one wall-clock match ``wall`` (naive) in ``zone``; ``hourly``: the expression takes every
    hour (see the module docstring)."""
    first = wall.replace(tzinfo=zone, fold=0).timestamp()
    second = wall.replace(tzinfo=zone, fold=1).timestamp()
    if first == second:
        return (first,)
    if second > first:  # clocks went back: the time is lived twice
        return (first, second) if hourly else (first,)
    # clocks went forward: the time never shows; fold=1 reads it before the jump, fold=0 after
    return () if hourly else (_switch(zone, second, first),)


def following(cron: str, timezone: str, after: float) -> float:
    """The first tick of ``cron`` in ``timezone`` strictly after ``after``."""
    zone, hourly = ZoneInfo(timezone), every_hour(cron)
    low, high = _offsets(zone, after)
    steps = croniter(cron, _wall(after, low))  # every wall time with a tick after ``after`` comes later
    best: float | None = None
    while True:
        wall = steps.get_next(datetime)
        # a wall time's ticks are at least ``wall - high``: once past the best, later ones cannot beat it
        if best is not None and (wall - datetime(1970, 1, 1)).total_seconds() - high >= best:
            return best
        for tick in instants(wall, zone, hourly):
            if tick > after and (best is None or tick < best):
                best = tick


def latest(cron: str, timezone: str, at: float, floor: float) -> float:
    """The last tick of ``cron`` in ``timezone`` at or before ``at``, ``floor`` (a tick at or before ``at``) if
    none comes after it. Looks back from ``at``: as cheap for a gap of months as for a minute."""
    zone, hourly = ZoneInfo(timezone), every_hour(cron)
    low, high = _offsets(zone, at)
    steps = croniter(cron, _wall(at, high) + timedelta(seconds=1))  # every wall time with a tick by ``at`` is earlier
    best = floor
    while True:
        wall = steps.get_prev(datetime)
        # a wall time's ticks are at most ``wall - low``: once below the best, earlier ones cannot beat it
        if (wall - datetime(1970, 1, 1)).total_seconds() - low < best:
            return best
        for tick in instants(wall, zone, hourly):
            if best < tick <= at:
                best = tick
