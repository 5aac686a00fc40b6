"""Every ``set_alert`` refuses a threshold its metric can never cross, or is always past, naming the valid range."""

from __future__ import annotations

import pytest

import pepper
from pepper.core import HealthMonitor, PerformanceMonitor, ResourceMonitor
from pepper.errors import ValidationError


@pytest.fixture
def monitors(runtime: pepper.Runtime) -> tuple[PerformanceMonitor, ResourceMonitor, HealthMonitor]:
    pepper.agent("worker", task_types=["t"], runtime=runtime)(str)
    return PerformanceMonitor(runtime), ResourceMonitor(runtime), HealthMonitor(runtime)


def test_a_threshold_out_of_range_is_refused_by_every_monitor(monitors):
    performance, resources, health = monitors
    for call, says in [
        (lambda: performance.set_alert("error_rate", 5, print), r"'error_rate' is a share from 0 to 1 \(0.05 is 5%\)"),
        (lambda: performance.set_alert("error_rate", 1, print), "never above 1, so the alert could never fire"),
        (lambda: performance.set_alert("latency_p95", -1, print, agent="worker"), "give one 0 or more"),
        (lambda: performance.set_alert("throughput", 0, print, above=False), "never below 0"),
        (lambda: resources.set_alert("worker", "cpu", -5, print), "'cpu' is a CPU percentage, 100 for each busy"),
        (lambda: resources.set_alert("worker", "memory", -1, print), "give one 0 or more"),
        (lambda: health.set_alert("store.writable", 2, print), r"1 \(yes\) or 0 \(no\)"),
        (lambda: health.set_alert("agents.unhealthy_agents", -1, print), "give one 0 or more"),
    ]:
        with pytest.raises(ValidationError, match=says) as caught:
            call()
        assert caught.value.field == "threshold"


def test_thresholds_within_range_are_taken_and_can_be_removed(monitors):
    performance, resources, health = monitors
    rules = [
        (performance, performance.set_alert("error_rate", 0.05, print)),
        (performance, performance.set_alert("throughput", 1, print, above=False)),
        (resources, resources.set_alert("worker", "cpu", 250, print)),  # two and a half cores: more than 100
        (health, health.set_alert("engine.loop_lag", 0.5, print)),
    ]
    for monitor, rule_id in rules:
        monitor.remove_alert(rule_id)


@pytest.mark.parametrize("above", ["no", 1, None])
def test_above_that_is_not_true_or_false_is_refused_by_every_monitor(monitors, above):
    performance, resources, health = monitors
    for call in (
        lambda: performance.set_alert("completed", 0, print, above=above),
        lambda: resources.set_alert("worker", "cpu", 50, print, above=above),
        lambda: health.set_alert("engine.loop_lag", 0.5, print, above=above),
    ):
        with pytest.raises(ValidationError, match=r"above must be True .* or False") as caught:
            call()
        assert caught.value.field == "above"
