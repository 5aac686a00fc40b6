"""Monitoring maths and rules: windows and percentiles against numpy, health verdicts. Pure, no engine."""

from __future__ import annotations

import random
import statistics

import numpy
import pytest

from pepper.monitoring import health as rules
from pepper.monitoring.window import EventWindow, Observation, breakdown, percentile, summarize


@pytest.mark.parametrize("seed", range(10))
def test_percentiles_match_numpy_on_random_data(seed):
    rng = random.Random(seed)
    values = [rng.expovariate(1 / rng.uniform(0.01, 5)) for _ in range(rng.randint(1, 400))]
    for q in (0, 1, 25, 50, 90, 95, 99, 100):
        assert percentile(values, q) == pytest.approx(float(numpy.percentile(values, q)))
    assert percentile(values, 50) == pytest.approx(statistics.median(values))
    assert percentile([], 50) is None
    with pytest.raises(ValueError):
        percentile(values, 101)


def observations(rng, n, start, end, fail_rate=0.1):
    out = []
    for _ in range(n):
        at = rng.uniform(start, end)
        out.append(Observation(at, rng.choice("ab"), rng.choice(["x", "y", None]), rng.random() >= fail_rate,
                               rng.uniform(0, 0.5), rng.uniform(0.01, 1)))  # fmt: skip
    return out


@pytest.mark.parametrize("seed", range(5))
def test_a_window_counts_only_what_ended_inside_it(seed):
    rng = random.Random(seed)
    old = observations(rng, 200, 0, 40)  # ended before the window
    recent = observations(rng, 300, 41, 100)
    figures = summarize(old + recent, now=100.0, window=59.0)
    completed = sum(o.ok for o in recent)
    assert (figures.completed, figures.failed) == (completed, len(recent) - completed)
    assert figures.error_rate == pytest.approx((len(recent) - completed) / len(recent))
    runs = [o.run for o in recent]
    assert figures.run_time.p95 == pytest.approx(float(numpy.percentile(runs, 95)))
    assert figures.queue_wait.mean == pytest.approx(statistics.fmean(o.wait for o in recent))
    assert figures.throughput == pytest.approx(completed / figures.span) and figures.span <= 59.0
    parts = breakdown(old + recent, 100.0, 59.0, "task_type")
    assert sum(p.completed for p in parts.values()) == completed and set(parts) <= {"a", "b"}


def test_a_burst_is_measured_over_its_own_span_not_the_whole_window():
    burst = [Observation(100.0 + i * 0.001, "t", "a", True, 0.0, 0.001) for i in range(1000)]
    figures = summarize(burst, now=101.0, window=60.0)
    assert figures.span == pytest.approx(1.0, abs=0.01)  # from when the first attempt started
    assert figures.throughput == pytest.approx(1000, rel=0.02)
    assert summarize([], now=5.0, window=60.0).throughput == 0.0
    just_now = summarize([Observation(5.0, "t", "a", True, None, None)], now=5.0, window=60.0)
    assert just_now.throughput == pytest.approx(100.0)  # over the 10 ms floor, not a division by ~0


def test_the_event_window_forgets_what_is_older_than_its_horizon():
    window = EventWindow(horizon=10.0, limit=100)
    for i in range(50):
        window.add(Observation(float(i), "t", "a", True, 0.0, 0.0))
    assert len(window) == 11 and window.since(45.0)[0].at == 45.0
    small = EventWindow(horizon=1e9, limit=5)
    for i in range(9):
        small.add(Observation(float(i), "t", "a", True, 0.0, 0.0))
    assert [o.at for o in small.since(0)] == [4.0, 5.0, 6.0, 7.0, 8.0]


# -- health verdicts ------------------------------------------------------------------------------


def test_agents_are_judged_by_their_checks_their_errors_and_stuck_tasks():
    ok = rules.AgentFacts("a", check_ok=True, attempts=10, failures=1)
    assert rules.agents_health([ok]).status == rules.HEALTHY
    hanging = rules.AgentFacts("b", check_error="its health_check() did not answer within 2s")
    one_bad = rules.agents_health([ok, hanging])
    assert one_bad.status == rules.DEGRADED and "did not answer within 2s" in one_bad.reasons[0]
    assert rules.agents_health([hanging]).status == rules.UNHEALTHY
    assert rules.agents_health([rules.AgentFacts("c", worker_alive=False)]).status == rules.UNHEALTHY
    flaky = rules.agents_health([rules.AgentFacts("d", attempts=10, failures=6)])
    assert flaky.status == rules.DEGRADED and "failed 6 of its last 10 attempts" in flaky.reasons[0]
    assert rules.agents_health([rules.AgentFacts("e", attempts=3, failures=3)]).status == rules.HEALTHY  # too few
    stuck = rules.agents_health([rules.AgentFacts("f", stalled=(("t1", 600.0, 10.0),))])
    assert stuck.status == rules.DEGRADED and "may be stuck" in stuck.reasons[0]
    assert rules.agents_health([]).status == rules.HEALTHY  # nothing to run, nothing missing
    idle = rules.agents_health([], waiting=3)
    assert idle.status == rules.DEGRADED
    assert idle.reasons == ("no agent is registered: 3 tasks wait until a worker starts",)
    nobody = "an agent taking 'gpu' tasks, and no agent online is one"
    stranded = rules.agents_health([ok], waiting=5, stranded=[(nobody, 2)])
    assert stranded.status == rules.DEGRADED
    assert stranded.reasons == ("2 tasks wait for an agent taking 'gpu' tasks, and no agent online is one",)
    assert rules.stalled(61.0, 10.0) and not rules.stalled(49.0, 10.0) and not rules.stalled(100.0, 30.0)


def test_resources_workflows_store_and_engine_rules():
    busy = rules.ResourceFacts({"gpu": 2, "cpu": 8}, {"gpu": 0, "cpu": 6}, waiting=3)
    verdict = rules.resources_health(busy)
    assert verdict.status == rules.DEGRADED and verdict.reasons == (
        "gpu is nearly exhausted: 0 of 2 free; 3 tasks wait for resources",
    )
    assert verdict.metrics["cpu_free"] == 6
    assert rules.resources_health(rules.ResourceFacts({"cpu": 8}, {"cpu": 8})).status == rules.HEALTHY
    assert rules.workflows_health(rules.WorkflowFacts(1, stuck=(("r1", 900.0),))).status == rules.DEGRADED
    assert rules.workflows_health(rules.WorkflowFacts(0, finished=4, failed=2)).status == rules.DEGRADED
    assert rules.workflows_health(rules.WorkflowFacts(0, finished=4, failed=1)).status == rules.HEALTHY
    assert rules.store_health(rules.StoreFacts(False, "disk I/O error")).status == rules.UNHEALTHY
    assert rules.store_health(rules.StoreFacts(True, wal_mb=900)).status == rules.DEGRADED
    assert rules.engine_health(rules.EngineFacts(False, live_workers=0)).status == rules.HEALTHY  # no work
    assert rules.engine_health(rules.EngineFacts(False, live_workers=0, waiting=1)).status == rules.DEGRADED
    assert rules.engine_health(rules.EngineFacts(True, 1, loop_lag=2.0)).status == rules.DEGRADED
    assert rules.engine_health(rules.EngineFacts(True, 1, loop_lag=30.0)).status == rules.UNHEALTHY
    assert rules.engine_health(rules.EngineFacts(True, 1, loop_lag=0.01)).status == rules.HEALTHY


def test_the_overall_verdict_is_the_worst_component():
    components = [rules.ComponentHealth("a", rules.HEALTHY), rules.ComponentHealth("b", rules.DEGRADED)]
    report = rules.report(components, 1.0)
    assert (report.status, report.exit_code, report.healthy) == (rules.DEGRADED, 1, False)
    assert rules.report([*components, rules.ComponentHealth("c", rules.UNHEALTHY)], 1.0).exit_code == 2
    assert rules.report([], 1.0).status == rules.HEALTHY


def test_alert_rules_refuse_numbers_that_are_not_finite():
    from pepper.errors import ValidationError
    from pepper.monitoring.alerts import AlertRule

    for bad in ({"threshold": float("nan")}, {"threshold": "0.5"}, {"cooldown": float("inf")},
                {"hysteresis": "x"}, {"hysteresis": -1}, {"window": 0}):  # fmt: skip
        with pytest.raises(ValidationError):
            AlertRule(**{"rule_id": "r", "source": "performance", "metric": "throughput", "threshold": 1.0, **bad})
    with pytest.raises(ValueError, match="at least one observation"):
        EventWindow(limit=0)


def test_an_executor_that_cannot_run_attempts_degrades_the_engine_and_says_why():
    why = "the Ray cluster at ray://gpu-head:10001 cannot be reached: connection refused"
    verdict = rules.engine_health(rules.EngineFacts(True, 1, loop_lag=0.0, executors=(("ray", why),)))
    assert verdict.status == rules.DEGRADED
    assert any(why in reason and "tasks wait" in reason for reason in verdict.reasons)
    assert rules.engine_health(rules.EngineFacts(True, 1, loop_lag=0.0)).status == rules.HEALTHY
