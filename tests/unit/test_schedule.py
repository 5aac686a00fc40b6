"""Ticks of schedules and which of them are due: pure, the time passed in."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from pepper.errors import InvalidScheduleError
from pepper.model import cron_ticks
from pepper.model.schedule import (
    MISFIRE_GRACE,
    ScheduleRecord,
    ScheduleSpec,
    check_timing,
    due,
    latest_tick,
    local_time,
    next_tick,
)


def _at(*fields: int) -> float:
    return datetime(*fields, tzinfo=UTC).timestamp()


def _spec(**fields) -> ScheduleSpec:
    return ScheduleSpec("s", "w", {"name": "w", "steps": []}, **fields)


def test_cron_ticks_follow_the_time_zone_across_a_change_of_daylight_saving_time():
    spec = _spec(cron="0 9 * * *", timezone="Europe/Paris")
    before = next_tick(spec, _at(2026, 3, 27, 12, 0), 0.0)  # 09:00 CET is 08:00 UTC
    after = next_tick(spec, before, 0.0)  # the clocks went forward that night: 09:00 CEST is 07:00 UTC
    assert before == _at(2026, 3, 28, 8, 0) and after == _at(2026, 3, 29, 7, 0)


def test_interval_ticks_count_from_the_schedules_creation():
    spec = _spec(every=600.0)
    assert next_tick(spec, 1000.0, 1000.0) == 1600.0
    assert next_tick(spec, 1600.0, 1000.0) == 2200.0
    assert next_tick(spec, 1999.0, 1000.0) == 2200.0


def test_a_tick_on_time_runs_once_and_missed_ticks_are_skipped_or_each_caught_up():
    record = ScheduleRecord(_spec(every=60.0), next_fire_at=1060.0, created_at=1000.0)
    assert due(record, 1059.0) is None
    on_time = due(record, 1060.0 + 30)  # a little late: still on time
    assert on_time is not None and on_time.run == (1060.0,) and on_time.next_fire_at == 1120.0
    late = due(record, 1060.0 + 3 * 60 + 30)  # three more ticks passed; the latest is 30s old: it runs
    assert late is not None and late.run == (1240.0,) and late.missed == (1060.0, 1180.0)
    assert late.next_fire_at == 1300.0 and on_time.missed is None
    catch = ScheduleRecord(_spec(every=3600.0, catch_up=True), next_fire_at=4600.0, created_at=1000.0)
    first = due(catch, 4600.0 + 3 * 3600 + 1200)
    assert first is not None and first.run == (4600.0,) and first.next_fire_at == 8200.0  # one at a time
    assert MISFIRE_GRACE < 1200
    skip = ScheduleRecord(_spec(every=3600.0), next_fire_at=4600.0, created_at=1000.0)
    missed = due(skip, 4600.0 + 3 * 3600 + 1200)
    assert missed is not None and missed.run == () and missed.next_fire_at == 4600.0 + 4 * 3600
    assert missed.missed == (4600.0, 4600.0 + 3 * 3600)


def test_every_tick_taken_within_the_grace_runs_once_even_when_a_later_one_is_due_too():
    record = ScheduleRecord(_spec(every=10.0), next_fire_at=1010.0, created_at=1000.0)
    now = 1025.0  # tick 1010 is 15 s late, tick 1020 5 s late: both on time
    first = due(record, now)
    assert first is not None and (first.run, first.next_fire_at, first.missed) == ((1010.0,), 1020.0, None)
    second = due(replace(record, next_fire_at=first.next_fire_at), now)
    assert second is not None and (second.run, second.next_fire_at, second.missed) == ((1020.0,), 1030.0, None)
    assert due(replace(record, next_fire_at=second.next_fire_at), now) is None
    # older than the grace: missed, and the first tick on time runs; one exactly the grace old is on time
    far = due(record, 1010.0 + 3 * MISFIRE_GRACE)  # 1190: ticks 1010-1120 missed, 1130 (60 s old) on time
    assert far is not None and far.missed == (1010.0, 1120.0) and far.run == (1130.0,) and far.next_fire_at == 1140.0
    hourly = ScheduleRecord(_spec(every=3600.0), next_fire_at=4600.0, created_at=1000.0)
    gone = due(hourly, 4600.0 + MISFIRE_GRACE + 1)
    assert gone is not None and (gone.run, gone.next_fire_at, gone.missed) == ((), 8200.0, (4600.0, 4600.0))
    minutely = ScheduleRecord(_spec(cron="* * * * *"), next_fire_at=_at(2026, 1, 1, 0, 1), created_at=0.0)
    both = due(minutely, _at(2026, 1, 1, 0, 2) + 30)  # 00:01 is 90 s late (missed), 00:02 30 s late (runs)
    assert both is not None and both.run == (_at(2026, 1, 1, 0, 2),) and both.missed == (_at(2026, 1, 1, 0, 1),) * 2


@pytest.mark.parametrize(
    ("cron", "every", "zone", "match"),
    [
        (None, None, "UTC", "one of them"),
        ("0 2 * * *", "1h", "UTC", "not both"),
        ("0 2 * *", None, "UTC", "not valid"),
        ("@daily", None, "UTC", "not valid"),
        (None, -5, "UTC", "negative"),
        ("0 2 * * *", None, "Europe/Pariss", "Did you mean 'Europe/Paris'"),
        ("0 0 30 2 *", None, "UTC", "'0 0 30 2 \\*' never fires"),
        ("0 0 31 4,6,9,11 *", None, "UTC", "never fires"),
        (None, 1e300, "UTC", "at most 366 days"),
        (None, "53w", "UTC", "at most 366 days"),
    ],
)
def test_bad_timing_is_a_typed_error(cron, every, zone, match):
    with pytest.raises(InvalidScheduleError, match=match):
        check_timing(cron, every, zone)


def _walk(cron: str, zone: str, start: datetime, count: int) -> list[str]:
    spec, at, seen = _spec(cron=cron, timezone=zone), start.timestamp(), []
    for _ in range(count):
        at = next_tick(spec, at, 0.0)
        seen.append(local_time(at, zone))
    return seen


@pytest.mark.parametrize(
    ("zone", "night", "first", "second"),
    [
        ("Europe/Paris", datetime(2026, 10, 24, 12, tzinfo=UTC), "2026-10-25 02:30:00 CEST", "2026-10-26 02:30:00 CET"),
        ("America/New_York", datetime(2026, 10, 31, 12, tzinfo=UTC), "2026-11-01 01:30:00 EDT",
         "2026-11-02 01:30:00 EST"),
    ],
)  # fmt: skip
def test_a_daily_cron_fires_once_on_the_night_clocks_go_back_at_the_first_occurrence(zone, night, first, second):
    hour = first[11:13]
    assert _walk(f"30 {int(hour)} * * *", zone, night, 2) == [first, second]


@pytest.mark.parametrize(
    ("zone", "night", "expected"),
    [
        ("Europe/Paris", datetime(2026, 3, 28, 12, tzinfo=UTC),
         ["2026-03-29 03:00:00 CEST", "2026-03-30 02:00:00 CEST", "2026-03-30 02:30:00 CEST"]),
        ("America/New_York", datetime(2026, 3, 7, 12, tzinfo=UTC),
         ["2026-03-08 03:00:00 EDT", "2026-03-09 02:00:00 EDT", "2026-03-09 02:30:00 EDT"]),
    ],
)  # fmt: skip
def test_the_times_of_a_skipped_hour_fire_once_right_after_the_jump(zone, night, expected):
    # 02:00 and 02:30 do not exist that night: one tick for both when the clocks jump to 03:00
    assert _walk("0,30 2 * * *", zone, night, 3) == expected


def test_a_cron_taking_every_hour_follows_the_running_clock_across_both_changes():
    autumn = _walk("0 * * * *", "Europe/Paris", datetime(2026, 10, 24, 23, 30, tzinfo=UTC), 4)
    assert autumn == ["2026-10-25 02:00:00 CEST", "2026-10-25 02:00:00 CET", "2026-10-25 03:00:00 CET",
                      "2026-10-25 04:00:00 CET"]  # fmt: skip
    spring = _walk("*/30 * * * *", "America/New_York", datetime(2026, 3, 8, 6, 10, tzinfo=UTC), 3)
    assert spring == ["2026-03-08 01:30:00 EST", "2026-03-08 03:00:00 EDT", "2026-03-08 03:30:00 EDT"]


@pytest.mark.parametrize("cron", ["0 2 * * *", "30 2 * * *", "*/20 * * * *", "0 1-3 * * *", "15 0 * * 0"])
@pytest.mark.parametrize("zone", ["Europe/Paris", "America/New_York", "Australia/Lord_Howe"])
def test_the_latest_tick_found_looking_back_is_the_one_walking_forward_reaches(cron, zone):
    spec = _spec(cron=cron, timezone=zone)
    for start in (_at(2026, 3, 26), _at(2026, 4, 3), _at(2026, 10, 2), _at(2026, 10, 23), _at(2026, 10, 30)):
        ticks = [next_tick(spec, start, 0.0)]
        while ticks[-1] < start + 4 * 86400:
            ticks.append(next_tick(spec, ticks[-1], 0.0))
        moments = [t + d for t in ticks[1:] for d in (-1.0, 0.0)] + [
            float(m) for m in range(int(ticks[0]), int(ticks[-1]), 4001)
        ]
        for now in moments:
            walked = max(t for t in ticks if t <= now)
            assert latest_tick(spec, ticks[0], now, 0.0) == walked, (local_time(now, zone), cron)


def test_missed_ticks_are_skipped_without_walking_them(monkeypatch):
    steps = []

    class Counting(cron_ticks.croniter):  # type: ignore[misc, valid-type]
        def get_next(self, *args, **kwargs):
            steps.append("next")
            return super().get_next(*args, **kwargs)

        def get_prev(self, *args, **kwargs):
            steps.append("prev")
            return super().get_prev(*args, **kwargs)

    monkeypatch.setattr(cron_ticks, "croniter", Counting)
    tick = _at(2026, 1, 1, 0, 1)
    record = ScheduleRecord(_spec(cron="* * * * *", timezone="Europe/Paris"), next_fire_at=tick, created_at=0.0)
    now = tick + 90 * 86400 + 30  # 90 days of minutes missed; the latest minute is 30s old
    decision = due(record, now)
    assert decision is not None and decision.run == (now - 30,) and decision.next_fire_at == now + 30
    assert decision.missed == (tick, now - 90)
    assert len(steps) < 20  # a handful of croniter steps, not one per missed minute (129600)
    interval = ScheduleRecord(_spec(every=1.0), next_fire_at=1.0, created_at=0.0)
    late = due(interval, 1e9 + 0.5)  # the ticks of the last 60 s are on time: the first of them runs first
    assert late is not None and late.run == (1e9 - 59,) and late.missed == (1.0, 1e9 - 60)
    assert late.next_fire_at == 1e9 - 58


def test_a_stored_tick_no_date_can_show_is_shown_in_seconds():
    assert local_time(1e300, "Europe/Paris") == "1e+300 seconds since the epoch"
    assert local_time(0.0, "UTC") == "1970-01-01 00:00:00 UTC"
