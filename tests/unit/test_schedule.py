"""Ticks of schedules and which of them are due: pure, the time passed in."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from pepper.errors import InvalidScheduleError
from pepper.model.schedule import MISFIRE_GRACE, ScheduleRecord, ScheduleSpec, check_timing, due, next_tick


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
    assert late is not None and late.run == (1240.0,) and late.skipped == 3 and late.next_fire_at == 1300.0
    catch = ScheduleRecord(_spec(every=3600.0, catch_up=True), next_fire_at=4600.0, created_at=1000.0)
    first = due(catch, 4600.0 + 3 * 3600 + 1200)
    assert first is not None and first.run == (4600.0,) and first.next_fire_at == 8200.0  # one at a time
    assert MISFIRE_GRACE < 1200
    skip = ScheduleRecord(_spec(every=3600.0), next_fire_at=4600.0, created_at=1000.0)
    missed = due(skip, 4600.0 + 3 * 3600 + 1200)
    assert missed is not None and missed.run == () and missed.next_fire_at == 4600.0 + 4 * 3600


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
    ],
)
def test_bad_timing_is_a_typed_error(cron, every, zone, match):
    with pytest.raises(InvalidScheduleError, match=match):
        check_timing(cron, every, zone)
