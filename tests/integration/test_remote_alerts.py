"""A monitor's ``set_alert`` over ``pepper.connect``: the rule is evaluated in the calling process on the server's
figures (its attempts, its health numbers, its agents' measured usage), and its callback is called there."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterator

import pytest

from pepper.core import HealthMonitor, PerformanceMonitor, ResourceAllocator, ResourceMonitor, TaskOrchestrator
from pepper.errors import AgentNotFoundError, NotFoundError, ValidationError
from pepper.http.remote import RemoteRuntime
from pepper.monitoring.alerts import Alert
from tests.integration.served import PATIENCE, Served, served  # noqa: F401


@pytest.fixture
def watching(served: Served) -> Iterator[RemoteRuntime]:  # noqa: F811
    """A remote runtime of its own (its rules end with it), sampling often."""
    runtime = RemoteRuntime(served.url, served.tokens["read"])
    runtime.settings = dataclasses.replace(runtime.settings, sample_interval=0.05)
    try:
        yield runtime
    finally:
        runtime.close()


def test_a_performance_alert_fires_here_on_the_servers_figures(served: Served, watching: RemoteRuntime) -> None:  # noqa: F811
    fired: list[Alert] = []
    rang = threading.Event()

    def callback(alert: Alert) -> None:
        fired.append(alert)
        rang.set()

    monitor = PerformanceMonitor(watching)
    rule_id = monitor.set_alert(metric="completed", threshold=0.5, callback=callback, window="1h",
                                task_type="review")  # fmt: skip
    TaskOrchestrator(runtime=served.remote).submit_task("alerted/review", "review")
    assert rang.wait(PATIENCE), "the alert never fired"
    (alert,) = fired[:1]
    assert (alert.rule_id, alert.metric, alert.source, alert.subject) == (rule_id, "completed", "performance", "review")
    assert alert.value >= 1.0 and alert.threshold == 0.5
    monitor.remove_alert(rule_id)
    with pytest.raises(NotFoundError, match=rule_id):
        monitor.remove_alert(rule_id)


def test_a_health_alert_fires_here_on_the_servers_health_numbers(served: Served, watching: RemoteRuntime) -> None:  # noqa: F811
    fired: list[Alert] = []
    rang = threading.Event()

    def callback(alert: Alert) -> None:
        fired.append(alert)
        rang.set()

    monitor = HealthMonitor(watching)
    rule_id = monitor.set_alert("resources.leases", 0.5, callback)
    assert not rang.is_set()
    lease = ResourceAllocator(runtime=served.remote).allocate("alerted-holder", {"cpu": 1})
    try:
        assert rang.wait(PATIENCE), "the alert never fired"
    finally:
        ResourceAllocator(runtime=served.remote).release(lease)
    (alert,) = fired[:1]
    assert (alert.rule_id, alert.metric, alert.source) == (rule_id, "resources.leases", "health")
    assert alert.value >= 1.0
    monitor.remove_alert(rule_id)


def test_a_resource_alert_fires_here_on_the_agents_measured_usage(served: Served, watching: RemoteRuntime) -> None:  # noqa: F811
    fired: list[Alert] = []
    rang = threading.Event()

    def callback(alert: Alert) -> None:
        fired.append(alert)
        rang.set()

    monitor = ResourceMonitor(watching)
    # (an agent running in pepper's own process has its storage measured, not its CPU or memory: those are pepper's)
    rule_id = monitor.set_alert("documentation_agent", "storage", 1, callback, above=False)
    assert rang.wait(PATIENCE), "the alert never fired"
    (alert,) = fired[:1]
    assert (alert.rule_id, alert.metric, alert.source, alert.subject) == (
        rule_id, "storage", "resources", "documentation_agent"
    )  # fmt: skip
    assert alert.value == 0.0 and not alert.above
    monitor.remove_alert(rule_id)


def test_the_servers_recorded_alerts_read_over_it(served: Served, watching: RemoteRuntime) -> None:  # noqa: F811
    rang = threading.Event()
    here = HealthMonitor(served.local)  # a rule of the server's own process: its firings are recorded
    rule_id = here.set_alert("resources.cpu_capacity", 1, lambda alert: rang.set())
    try:
        assert rang.wait(PATIENCE), "the alert never fired"
    finally:
        here.remove_alert(rule_id)
    listed = ResourceMonitor(watching).alerts(limit=5)
    assert listed and listed == ResourceMonitor(served.local).alerts(limit=5)
    assert rule_id in {alert["rule_id"] for alert in listed}


def test_remote_alert_rules_are_checked_as_local_ones(watching: RemoteRuntime) -> None:
    with pytest.raises(AgentNotFoundError, match="nobody"):
        ResourceMonitor(watching).set_alert("nobody", "cpu", 80, print)
    with pytest.raises(ValidationError, match="unknown health metric"):
        HealthMonitor(watching).set_alert("agents.unhappy_agents", 0, print)
    with pytest.raises(ValidationError, match="callback must be callable"):
        PerformanceMonitor(watching).set_alert("error_rate", 0.05, "print")
    with pytest.raises(ValidationError, match="unknown metric"):
        PerformanceMonitor(watching).set_alert("errors", 0.05, print)
    assert not watching._watches.watches  # nothing refused is watched
