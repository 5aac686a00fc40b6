"""Monitoring on a real engine: figures that match what ran, alerts that fire once, health checks with
timeouts, and a Prometheus endpoint scraped over HTTP."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

import pepper
from pepper.core import HealthMonitor, PerformanceMonitor, TaskOrchestrator, WorkflowController
from pepper.core.prometheus import serve_metrics
from pepper.errors import ValidationError
from pepper.model.task import TaskState
from pepper.testing import ManualClock
from tests.conftest import VIRTUAL
from tests.support import eventually

FAST = {"retry_delay": "10ms", "poll_interval": "20ms", "heartbeat_interval": "100ms", "sample_interval": "50ms"}


@pytest.fixture
def runtime(tmp_path):
    rt = pepper.Runtime(db=str(tmp_path / "m.db"), home=str(tmp_path / "home"), **FAST)
    yield rt
    rt.close()


def _wait_for_samples(runtime, agent_id: str, count: int, timeout: float = 30.0) -> None:
    """Wait until the sampler has stored ``count`` more samples of ``agent_id`` (each tick then evaluates the
    alert rules)."""
    seen: set[float] = set()
    deadline = time.monotonic() + timeout
    while len(seen) <= count:
        assert time.monotonic() < deadline, f"the sampler stored {len(seen)} samples in {timeout:g}s"
        seen |= {at for _, at, _ in runtime.store.usage.of_agent(agent_id)}
        time.sleep(0.005)


def test_figures_of_2000_tasks_with_5_percent_failures_match_what_ran_and_the_alert_fires_once(runtime):
    calls = {"n": 0, "failed": 0, "due": 0}
    lock = threading.Lock()

    @pepper.agent("worker", task_types=["job"], capacity=8, runtime=runtime)
    async def job(task):
        with lock:  # one attempt in twenty fails (the very first included), never a task's retry
            calls["n"] += 1
            calls["due"] += calls["n"] % 20 == 1
            fail = calls["due"] > 0 and task.attempt == 1
            calls["due"] -= fail
            calls["failed"] += fail
        await asyncio.sleep(0)
        if fail:
            raise RuntimeError("injected")
        return 1

    fired = []
    monitor = PerformanceMonitor(runtime)
    monitor.set_alert("error_rate", 0.05, fired.append, window="60s")
    orchestrator = TaskOrchestrator(runtime)
    ids = [f"job-{i}" for i in range(2000)]
    before_submit = time.time()
    orchestrator.submit_tasks([{"id": i, "type": "job", "max_retries": 2} for i in ids])
    after_submit = time.time()
    statuses = orchestrator.wait(ids, timeout=120)
    assert [(s.task_id, s.state, s.attempts) for s in statuses if s.state is not TaskState.COMPLETED] == []
    before_report = time.time()
    report = monitor.get_performance(window="60s")
    after_report = time.time()
    deadline = time.monotonic() + 10  # the sampler evaluates the rule every 50 ms; the callback runs in a thread
    while not fired and time.monotonic() < deadline:
        time.sleep(0.05)
    _wait_for_samples(runtime, "worker", 5)  # a few more evaluations of the rule: it must not fire again
    actual = calls["failed"] / calls["n"]
    assert report.error_rate == pytest.approx(actual, abs=0.01) and abs(report.error_rate - 0.05) < 0.01
    assert report.overall.completed == 2000 and report.overall.failed == calls["failed"]
    # measured from when the tasks became ready (during the submit) to the report (however long each took)
    assert 2000 / (after_report - before_submit) <= report.throughput <= 2000 / (before_report - after_submit)
    assert report.overall.run_time.p99 is not None and report.overall.queue_wait.p50 is not None
    assert set(report.by_agent) == {"worker"} and set(report.by_task_type) == {"job"}
    assert len(fired) == 1 and fired[0].metric == "error_rate" and fired[0].value > 0.05
    assert [a["rule_id"] for a in runtime.store.alerts.recent()] == [fired[0].rule_id]

    only = monitor.get_performance(metrics=["throughput"], window="1m")
    assert only.error_rate is None and only.latency is None and only.throughput > 0
    with pytest.raises(ValidationError, match=r"unknown metric 'latncy'.*Did you mean 'latency'"):
        monitor.get_performance(metrics=["latncy"])
    with pytest.raises(ValidationError, match="window must be positive"):
        monitor.get_performance(window=0)


def test_an_agent_whose_health_check_hangs_is_unhealthy_within_its_timeout(runtime):
    class Hanging(pepper.BaseAgent):
        async def health_check(self) -> bool:
            await asyncio.sleep(3600)
            return True

        async def execute(self, task):
            return "never asked"

    class Fine(pepper.BaseAgent):
        async def execute(self, task):
            return "ok"

    runtime.register_agent(Hanging("stuck", task_types=["t"]))
    runtime.register_agent(Fine("fine", task_types=["t"]))
    monitor = HealthMonitor(runtime)
    started = time.perf_counter()
    report = monitor.check_health(components=["agents"], timeout=0.5)
    assert time.perf_counter() - started < 60  # the hanging check takes an hour: it was not waited for
    agents = report["agents"]
    assert report.status == "degraded" and agents.status == "degraded"
    assert agents.reasons == ("agent 'stuck' is unhealthy: its health_check() did not answer within 0.5s",)
    assert agents.metrics["unhealthy_agents"] == 1
    assert not runtime._service.engine.state.performance.healthy("stuck")  # its score halves while it is sick
    whole = monitor.check_health(timeout=0.5)
    assert set(whole.components) == {"agents", "resources", "workflows", "store", "engine"}
    assert whole["store"].metrics["writable"] is True and whole["engine"].metrics["engine_here"] is True
    with pytest.raises(ValidationError, match="unknown component 'agnets'; valid components: agents, resources"):
        monitor.check_health(components=["agnets"])
    assert set(monitor.get_health_metrics(["engine"])["engine"]) >= {"loop_lag", "live_workers"}


def test_health_without_any_worker_says_so_once_work_waits(tmp_path):
    with pepper.Runtime(db=str(tmp_path / "empty.db"), home=str(tmp_path / "home")) as runtime:
        monitor = HealthMonitor(runtime)
        assert monitor.check_health().status == "healthy"  # nothing waits: no worker is needed
        TaskOrchestrator(runtime).submit_tasks([{"id": "a", "type": "build"}, {"id": "b", "type": "build"}])
        report = monitor.check_health()
    assert report.status == "degraded" and report.exit_code == 1
    assert report["engine"].reasons == ("no worker is running: 2 tasks wait until one starts (`pepper worker`)",)
    assert report["agents"].reasons == ("no agent is registered: 2 tasks wait until a worker starts",)


def test_tasks_no_agent_online_can_take_make_health_degraded(runtime):
    pepper.agent("builder", task_types=["build"], runtime=runtime)(lambda task: "ok")
    orchestrator = TaskOrchestrator(runtime)
    orchestrator.submit_tasks([{"id": "g", "type": "gpu"}, {"id": "p", "type": "build", "agent": "nobody"},
                               {"id": "b", "type": "build"}])  # fmt: skip
    orchestrator.wait(["b"], timeout=10)
    reasons = HealthMonitor(runtime).check_health(["agents"])["agents"].reasons
    assert sorted(reasons) == [
        "1 task waits for agent 'nobody', and no agent online is one",
        "1 task waits for an agent taking 'gpu' tasks, and no agent online is one",
    ]


def test_tasks_pinned_to_an_online_agent_that_cannot_take_them_say_why(runtime):
    pepper.agent("w", task_types=["x"], skills=["a"], runtime=runtime)(lambda task: "ok")
    orchestrator = TaskOrchestrator(runtime)
    orchestrator.submit_tasks([{"id": "p1", "type": "zzz", "agent": "w"},
                               {"id": "p2", "type": "x", "agent": "w", "requirements": {"skills": ["b"]}},
                               {"id": "ok", "type": "x"}])  # fmt: skip
    orchestrator.wait(["ok"], timeout=10)
    reasons = HealthMonitor(runtime).check_health(["agents"])["agents"].reasons
    assert sorted(reasons) == [
        "1 task waits for agent 'w', which is online but does not accept task type 'zzz' (accepts x)",
        "1 task waits for agent 'w', which is online but lacks skill b",
    ]


def test_metrics_scraped_over_http_parse_and_match_the_store(runtime):
    @pepper.agent("a", task_types=["t", "u"], capacity=4, runtime=runtime)
    async def work(task):
        if task.inputs.get("fail"):
            raise ValueError("no")
        return 1

    orchestrator = TaskOrchestrator(runtime)
    specs = [{"id": f"t{i}", "type": "t" if i % 3 else "u", "inputs": {"fail": i % 10 == 0}} for i in range(60)]
    for spec in specs[::20]:  # of those that fail, three park for a person instead
        spec["policy"] = "dead_letter"
    orchestrator.submit_tasks(specs)
    orchestrator.wait([s["id"] for s in specs], timeout=30)
    server = serve_metrics(runtime, port=0)
    try:
        url = f"http://127.0.0.1:{server.server_port}/metrics"
        with urllib.request.urlopen(url, timeout=10) as response:
            assert response.headers["Content-Type"].startswith("text/plain")
            text = response.read().decode()
        with pytest.raises(urllib.error.HTTPError):
            urllib.request.urlopen(f"http://127.0.0.1:{server.server_port}/other", timeout=10)
    finally:
        server.close()
    with socket.socket() as probe:  # closed: nothing listens there any more (connections may linger)
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind(("127.0.0.1", server.server_port))
    samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    stored = runtime.store.counts_by_state_and_type()
    for state, task_type, n in stored:
        assert samples[("pepper_tasks", (("state", state), ("task_type", task_type)))] == n
    assert samples[("pepper_dead_letters", ())] == len(runtime.store.errors.parked()) == 3
    assert runtime.store.errors.parked_ids() == [r.task.task_id for r in runtime.store.errors.parked()]
    completed = sum(n for state, _, n in stored if state == "completed")
    failed = sum(n for state, _, n in stored if state == "failed")
    counted = {name: sum(v for (sample, _), v in samples.items() if sample == name)
               for name in ("pepper_completed_total", "pepper_failed_total", "pepper_submitted_total")}  # fmt: skip
    assert counted == {"pepper_completed_total": completed, "pepper_failed_total": failed,
                       "pepper_submitted_total": 60}  # fmt: skip
    assert samples[("pepper_run_seconds_count", (("agent", "a"), ("task_type", "t")))] == sum(
        n for state, task_type, n in stored if state == "completed" and task_type == "t"
    )


def test_a_hanging_sync_health_check_is_not_called_again_while_it_hangs(runtime):
    release, calls = threading.Event(), []

    class Stuck(pepper.BaseAgent):
        def health_check(self) -> bool:
            calls.append(time.monotonic())
            release.wait(30)
            return True

        async def execute(self, task):
            return "ok"

    class Fine(pepper.BaseAgent):
        def health_check(self) -> bool:
            return True

        async def execute(self, task):
            return "ok"

    runtime.register_agent(Stuck("stuck", task_types=["t"]))
    runtime.register_agent(Fine("fine", task_types=["t"]))
    monitor = HealthMonitor(runtime)
    try:
        for _ in range(8):  # more than the default thread pool has threads
            reasons = monitor.check_health(["agents"], timeout=0.1)["agents"].reasons
            assert len(reasons) == 1 and reasons[0].startswith("agent 'stuck' is unhealthy")
        assert len(calls) == 1 and "still running" in reasons[0]
    finally:
        release.set()
    deadline = time.monotonic() + 10
    while monitor.check_health(["agents"], timeout=1)["agents"].status != "healthy" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert monitor.check_health(["agents"], timeout=1)["agents"].status == "healthy" and len(calls) >= 2


def test_per_agent_figures_blame_the_agent_that_failed_not_the_one_that_took_over(runtime):
    @pepper.agent("bad", task_types=["t"], runtime=runtime, recovery="reassign")
    def bad(task):
        raise RuntimeError("broken")

    pepper.agent("good", task_types=["t"], runtime=runtime)(lambda task: "ok")
    orchestrator = TaskOrchestrator(runtime)
    orchestrator.submit_tasks([{"id": f"r{i}", "type": "t", "agent": None} for i in range(6)])
    statuses = orchestrator.wait([f"r{i}" for i in range(6)], timeout=30)
    assert all(s.state is TaskState.COMPLETED for s in statuses)
    report = PerformanceMonitor(runtime).get_performance(window="60s")
    assert report.by_agent["good"].failed == 0 and report.by_agent["good"].completed == 6
    assert report.by_agent.get("bad") is None or report.by_agent["bad"].completed == 0


def test_a_throughput_below_alert_fires_when_work_stops(tmp_path):
    clock, fired, told = ManualClock(time.time()), [], threading.Event()
    settings = {**VIRTUAL, "sample_interval": "1s"}
    with pepper.Runtime(db=str(tmp_path / "m.db"), home=str(tmp_path / "home"), clock=clock, **settings) as runtime:
        pepper.agent("w", task_types=["t"], runtime=runtime)(lambda task: "ok")
        alert = PerformanceMonitor(runtime).set_alert(
            "throughput", 0.01, lambda a: (fired.append(a), told.set()), window="30s", above=False
        )
        TaskOrchestrator(runtime).submit_task("only", "t")
        TaskOrchestrator(runtime).wait(["only"], timeout=10)
        clock.advance(20)  # Given one task in the last 30 s: 1/30 a second, above the threshold
        assert not fired
        clock.advance(20)  # When the window has no task left in it
        assert told.wait(30)  # Then the alert fires (its callback runs in a thread)
    assert fired[0].value == 0.0 and fired[0].metric == "throughput" and fired[0].rule_id == alert


def test_health_counts_tasks_in_a_retry_delay_but_not_parked_ones(tmp_path):
    db, home = str(tmp_path / "h.db"), str(tmp_path / "home")
    clock = ManualClock(time.time())
    with pepper.Runtime(db=db, home=home, clock=clock, **VIRTUAL) as runtime:

        @pepper.agent("flaky", task_types=["t"], runtime=runtime)
        def flaky(task):
            raise ConnectionError("the registry is down")

        orchestrator = TaskOrchestrator(runtime)
        orchestrator.submit_task("later", "t", policy="retry(3, delay=10m)")
        orchestrator.submit_task("parked", "t", policy="dead_letter")
        assert orchestrator.wait("parked", timeout=30).state is TaskState.PARKED
        clock.wait_for_timer(earliest=1, latest=1800)  # the first attempt of "later" failed: its retry is armed
    with pepper.Runtime(
        db=db, home=home
    ) as runtime:  # no worker: the retry waits for one, the parked task for a person
        report = HealthMonitor(runtime).check_health()
    assert report["engine"].reasons == ("no worker is running: 1 task waits until one starts (`pepper worker`)",)
    assert report["agents"].metrics["waiting_tasks"] == 1


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_runs_waiting_for_an_approval_or_a_step_delay_are_not_stuck_and_only_steps_of_runs_count_as_parked(
    request, tmp_path, kind
):
    db = request.getfixturevalue("postgres_url") if kind == "postgres" else str(tmp_path / "h.db")
    clock = ManualClock(time.time())
    with pepper.Runtime(db=db, home=str(tmp_path / "home"), clock=clock, **VIRTUAL) as runtime:
        pepper.agent("w", task_types=["work"], runtime=runtime)(lambda task: 1)

        @pepper.agent("broken", task_types=["fails"], runtime=runtime)
        def broken(task):
            raise RuntimeError("always")

        gated = WorkflowController("gated", runtime=runtime)
        gated.add_step("build", "work")
        gated.add_step("gate", dependencies=["build"], approval={"timeout": "2h"})
        delayed = WorkflowController("delayed", runtime=runtime)
        delayed.add_step("later", "work", delay="1h")
        release = threading.Event()
        pepper.agent("busy", task_types=["held"], capacity=1, runtime=runtime)(lambda task: release.wait(60))
        TaskOrchestrator(runtime).submit_task("hog", "held")  # takes the one slot: the next "held" task waits
        eventually(lambda: TaskOrchestrator(runtime).get_task_status("hog").state is TaskState.IN_PROGRESS, "hog")
        idle = WorkflowController("idle", runtime=runtime)
        idle.add_step("queued", "held")  # waits for the slot: the run stands still
        parking = WorkflowController("parking", runtime=runtime)
        parking.add_step("load", "fails", recovery="dead_letter")
        runs = {wf.name: wf.start() for wf in (gated, delayed, idle, parking)}
        orchestrator = TaskOrchestrator(runtime)
        orchestrator.submit_task("etl/load", "fails", policy="dead_letter")  # a plain task with '/' in its id
        eventually(lambda: gated.status(runs["gated"])["gate"].status == "waiting", "the approval request")
        parked_step = f"{runs['parking']}/load"
        for task_id in ("etl/load", parked_step):
            assert orchestrator.wait(task_id, timeout=30).state is TaskState.PARKED
        clock.advance(11 * 60)
        health = HealthMonitor(runtime).check_health(["workflows"])["workflows"]
        release.set()
    assert health.reasons == (
        f"run {runs['idle']!r} has not moved for 11m00s",
        f"step {parked_step!r} is parked in the dead-letter queue",
    )
    assert (health.metrics["stuck_runs"], health.metrics["parked_steps"]) == (1, 1)
