"""Schedules: stored, shared by every worker on the database, each tick one run, on the virtual clock."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

import pepper
from pepper.core import WorkflowController
from pepper.errors import InvalidScheduleError, ScheduleNotFoundError
from pepper.testing import ManualClock
from tests.conftest import VIRTUAL
from tests.support import eventually

# 2026-03-01 01:59:00 UTC: one minute before a nightly tick at 02:00 UTC
START = datetime(2026, 3, 1, 1, 59, tzinfo=UTC).timestamp()
TICK = START + 60

FLOW = "name: nightly\nsteps:\n  - id: only\n    type: echo\n"


def _flow(tmp_path: Path, extra: str = "") -> Path:
    path = tmp_path / "nightly.yaml"
    path.write_text(FLOW + extra)
    return path


def _worker(tmp_path: Path, clock: ManualClock, db: str | None = None) -> pepper.Runtime:
    rt = pepper.Runtime(db=db or str(tmp_path / "s.db"), home=str(tmp_path / "home"), clock=clock, **VIRTUAL)
    pepper.agent("echo", task_types=["echo"], runtime=rt)(lambda task: "ok")
    return rt


def _runs(rt: pepper.Runtime) -> list:
    return rt.store.runs.list(limit=1000)


def test_a_cron_schedule_starts_one_run_at_each_tick_labelled_with_its_name(tmp_path):
    clock = ManualClock(START)
    with _worker(tmp_path, clock) as rt:
        record = pepper.schedule("nightly", _flow(tmp_path), cron="0 2 * * *", inputs={"n": 1}, runtime=rt)
        assert record.next_fire_at == TICK
        rt.start()
        clock.advance(59)
        assert _runs(rt) == []
        clock.advance(1)
        runs = eventually(lambda: _runs(rt), "the tick's run")
        assert [(r.schedule, r.workflow, dict(r.inputs)) for r in runs] == [("nightly", "nightly", {"n": 1})]
        stored = rt.store.schedules.get("nightly")
        assert stored.next_fire_at == TICK + 86400 and stored.last_fire_at == TICK
        assert stored.last_run_id == runs[0].run_id
        clock.advance(86400)
        eventually(lambda: len(_runs(rt)) == 2, "the next night's run")


def test_a_schedule_in_a_time_zone_ticks_at_that_zones_hour(tmp_path):
    clock = ManualClock(START)
    with _worker(tmp_path, clock) as rt:
        record = pepper.schedule("paris", _flow(tmp_path), cron="0 2 * * *", timezone="Europe/Paris", runtime=rt)
        # 02:00 in Paris (UTC+1 in March) is 01:00 UTC, already past on the 1st: the next is the 2nd
        assert record.next_fire_at == datetime(2026, 3, 2, 1, 0, tzinfo=UTC).timestamp()
        assert record.to_dict()["next_fire"] == "2026-03-02 02:00:00 CET"


def test_two_workers_on_one_database_start_exactly_one_run_per_tick(tmp_path):
    clock = ManualClock(START)
    db = str(tmp_path / "shared.db")
    with pepper.Runtime(db=db, home=str(tmp_path / "home"), clock=clock, **VIRTUAL) as admin:
        pepper.schedule("every-minute", _flow(tmp_path), every="1m", runtime=admin)
    first, second = _worker(tmp_path, clock, db), _worker(tmp_path, clock, db)
    with first, second:
        first.start()
        second.start()
        for minute in range(1, 6):
            clock.advance(60)  # both engines wake at the tick
            eventually(lambda m=minute: len(_runs(first)) == m, f"the run of tick {minute}")
        runs = _runs(first)
        assert len(runs) == 5 and {r.schedule for r in runs} == {"every-minute"}
        started = [*first._service.ticks.started, *second._service.ticks.started]  # type: ignore[union-attr]
        assert sorted(tick for _, tick, _ in started) == [START + 60 * m for m in range(1, 6)]


def test_ticks_taken_late_but_within_the_grace_each_start_one_run_on_two_workers(tmp_path):
    clock = ManualClock(START)
    db = str(tmp_path / "shared.db")
    with pepper.Runtime(db=db, home=str(tmp_path / "home"), clock=clock, **VIRTUAL) as admin:
        pepper.schedule("often", _flow(tmp_path), every="10s", runtime=admin)
    clock.advance(25)  # no worker ran: tick +10 is 15 s late, tick +20 5 s late, both within the grace (60 s)
    first, second = _worker(tmp_path, clock, db), _worker(tmp_path, clock, db)
    with first, second:
        first.start()
        second.start()

        def ticks() -> list[float]:
            started = [*first._service.ticks.started, *second._service.ticks.started]  # type: ignore[union-attr]
            return sorted(tick for _, tick, _ in started)

        eventually(lambda: ticks() == [START + 10, START + 20], "the runs of both late ticks, each once")
        assert first.store.schedules.get("often").next_fire_at == START + 30 and len(_runs(first)) == 2
        clock.advance(5)
        eventually(lambda: ticks() == [START + 10, START + 20, START + 30], "the run of the next tick")
        assert len(_runs(first)) == 3


def test_missed_ticks_are_skipped_without_catch_up_and_each_run_with_it(tmp_path):
    clock = ManualClock(START)
    db = str(tmp_path / "s.db")
    with pepper.Runtime(db=db, home=str(tmp_path / "home"), clock=clock, **VIRTUAL) as admin:
        pepper.schedule("skip", _flow(tmp_path), every="1h", runtime=admin)
        pepper.schedule("catch", _flow(tmp_path), every="1h", catch_up=True, runtime=admin)
    clock.advance(3 * 3600 + 600)  # three ticks pass while no worker runs
    with _worker(tmp_path, clock, db) as rt:
        rt.start()
        eventually(lambda: len(_runs(rt)) == 3, "the three missed ticks of the catching-up schedule")
        assert {r.schedule for r in _runs(rt)} == {"catch"}
        eventually(lambda: rt.store.schedules.get("skip").next_fire_at == START + 4 * 3600, "the skipped ticks")
        assert {r.schedule for r in _runs(rt)} == {"catch"}
        assert rt.store.schedules.get("catch").next_fire_at == START + 4 * 3600


def test_a_worker_back_after_months_skips_the_missed_minutes_at_once_and_runs_the_latest(tmp_path):
    clock = ManualClock(START)
    db = str(tmp_path / "s.db")
    with pepper.Runtime(db=db, home=str(tmp_path / "home"), clock=clock, **VIRTUAL) as admin:
        pepper.schedule("minutely", _flow(tmp_path), cron="* * * * *", runtime=admin)
    back = START + 60 + 90 * 86400  # 90 days later, half a minute past a minute: that minute's tick is on time
    clock.set(back + 30)
    with _worker(tmp_path, clock, db) as rt:
        rt.start()
        eventually(lambda: len(_runs(rt)) == 1, "the run of the latest tick")
        assert rt.store.schedules.get("minutely").next_fire_at == back + 60
        assert len(_runs(rt)) == 1 and _runs(rt)[0].schedule == "minutely"


def test_pause_resume_and_delete(tmp_path):
    clock = ManualClock(START)
    with _worker(tmp_path, clock) as rt:
        pepper.schedule("nightly", _flow(tmp_path), cron="0 2 * * *", runtime=rt)
        rt.start()
        from pepper.core.schedules import delete_schedule, pause_schedule, resume_schedule

        assert pause_schedule("nightly", runtime=rt).paused
        clock.advance(60)
        assert rt.store.schedules.get("nightly").paused
        resumed = resume_schedule("nightly", runtime=rt)
        assert not resumed.paused and resumed.next_fire_at == TICK + 86400  # the paused tick is not run
        assert _runs(rt) == []
        delete_schedule("nightly", runtime=rt)
        assert pepper.schedules(runtime=rt) == []
        with pytest.raises(ScheduleNotFoundError):
            delete_schedule("nightly", runtime=rt)


def test_a_workflow_files_own_schedule_is_used(tmp_path):
    clock = ManualClock(START)
    with _worker(tmp_path, clock) as rt:
        path = _flow(tmp_path, "schedule:\n  every: 15m\n  catch_up: true\n")
        record = pepper.schedule("from-file", path, runtime=rt)
        assert (record.spec.every, record.spec.catch_up, record.spec.cron) == (900.0, True, None)


def test_a_controller_can_be_scheduled(tmp_path):
    clock = ManualClock(START)
    with _worker(tmp_path, clock) as rt:
        flow = WorkflowController("built", runtime=rt)
        flow.add_step("a", "echo")
        rt.start()
        pepper.schedule("built", flow, every=30, runtime=rt)
        clock.advance(30)
        runs = eventually(lambda: _runs(rt), "the run of the built workflow")
        assert runs[0].workflow == "built" and runs[0].schedule == "built"


@pytest.mark.parametrize(
    ("fields", "match"),
    [
        ({"cron": "0 2 * *"}, "not valid"),
        ({"cron": "61 * * * *"}, "not valid"),
        ({"cron": "0 0 30 2 *"}, "'0 0 30 2 \\*' never fires"),
        ({"cron": "0 2 * * *", "every": "1h"}, "not both"),
        ({}, "one of them"),
        ({"every": "soon"}, "not a duration"),
        ({"every": 0}, "at least"),
        ({"every": 1e300}, "at most 366 days"),
        ({"every": "1000000w"}, "at most 366 days"),
        ({"cron": "0 2 * * *", "timezone": "Mars/Olympus"}, "unknown time zone"),
        ({"every": "1h", "inputs": [1]}, "inputs must be a mapping"),
        ({"every": "1h", "inputs": "x"}, "inputs must be a mapping"),
    ],
)
def test_a_bad_schedule_is_refused_and_nothing_is_stored(tmp_path, fields, match):
    clock = ManualClock(START)
    with _worker(tmp_path, clock) as rt:
        with pytest.raises(InvalidScheduleError, match=match):
            pepper.schedule("bad", _flow(tmp_path), runtime=rt, **fields)
        with pytest.raises(InvalidScheduleError, match="name"):
            pepper.schedule("no spaces", _flow(tmp_path), every="1m", runtime=rt)
        assert pepper.schedules(runtime=rt) == []


def test_a_schedule_whose_runs_could_never_start_for_a_missing_input_is_refused(tmp_path):
    clock = ManualClock(START)
    with _worker(tmp_path, clock) as rt:
        path = tmp_path / "needs.yaml"
        path.write_text(FLOW.replace("type: echo\n", "type: echo\n    inputs: {day: '${{ inputs.day }}'}\n"))
        with pytest.raises(InvalidScheduleError, match=r"step 'only' of workflow 'nightly': .*each run would fail"):
            pepper.schedule("needs", path, every="1h", runtime=rt)
        assert pepper.schedules(runtime=rt) == []
        assert pepper.schedule("needs", path, every="1h", inputs={"day": "monday"}, runtime=rt).name == "needs"


def test_two_workers_on_postgresql_start_exactly_one_run_per_tick(tmp_path, postgres_url):
    clock = ManualClock(START)
    with pepper.Runtime(db=postgres_url, home=str(tmp_path / "home"), clock=clock, **VIRTUAL) as admin:
        pepper.schedule("every-minute", _flow(tmp_path), every="1m", runtime=admin)
    first, second = _worker(tmp_path, clock, postgres_url), _worker(tmp_path, clock, postgres_url)
    with first, second:
        first.start()
        second.start()
        for minute in range(1, 4):
            clock.advance(60)
            eventually(lambda m=minute: len(_runs(first)) == m, f"the run of tick {minute}")
        started = [*first._service.ticks.started, *second._service.ticks.started]  # type: ignore[union-attr]
        assert sorted(tick for _, tick, _ in started) == [START + 60 * m for m in range(1, 4)]
        assert len(_runs(second)) == 3


def test_running_workers_see_a_schedule_another_process_adds(tmp_path):
    clock = ManualClock(START)
    db = str(tmp_path / "shared.db")
    first, second = _worker(tmp_path, clock, db), _worker(tmp_path, clock, db)
    with first, second:
        first.start()
        second.start()
        with pepper.Runtime(db=db, home=str(tmp_path / "home"), clock=clock, **VIRTUAL) as admin:
            pepper.schedule("nightly", _flow(tmp_path), cron="0 2 * * *", runtime=admin)
        # each worker notices the other process's write and sleeps until the tick
        armed = lambda: sum(1 for at, _, timer in list(clock._timers) if at == TICK and not timer.cancelled)  # noqa: E731
        eventually(lambda: armed() >= 2, "both workers to arm a timer at the tick")
        clock.set(TICK)
        runs = eventually(lambda: _runs(first), "the tick's run")
        assert [r.schedule for r in runs] == ["nightly"]
        started = [*first._service.ticks.started, *second._service.ticks.started]  # type: ignore[union-attr]
        assert [tick for _, tick, _ in started] == [TICK]


def test_show_names_the_schedule_that_started_a_run_and_nothing_for_a_run_started_by_hand(tmp_path):
    from click.testing import CliRunner

    from pepper.cli.main import cli

    clock = ManualClock(START)
    db = str(tmp_path / "s.db")
    with _worker(tmp_path, clock, db) as rt:
        flow = WorkflowController("nightly", runtime=rt)
        flow.add_step("only", "echo")
        rt.start()
        pepper.schedule("nightly-report", flow, every=30, runtime=rt)
        clock.advance(30)
        (scheduled,) = eventually(lambda: _runs(rt), "the tick's run")
        assert flow.wait(scheduled.run_id, timeout=30).status == "completed"
        by_hand = flow.run(timeout=30).run_id

    def show(run_id: str, *extra: str) -> str:
        done = CliRunner().invoke(cli, ["show", run_id, "--db", db, *extra], terminal_width=120)
        assert done.exit_code == 0, done.output
        return done.output

    lines = [line.split() for line in show(scheduled.run_id).splitlines()]
    assert ["schedule", "nightly-report"] in lines
    assert not any(line[:1] == ["schedule"] for line in (x.split() for x in show(by_hand).splitlines()))
    assert '"schedule": "nightly-report"' in show(scheduled.run_id, "--json")
    assert '"schedule": null' in show(by_hand, "--json")
