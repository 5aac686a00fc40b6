"""``PerformanceMonitor.set_alert`` over ``pepper.connect``: the rule is evaluated in the calling process on the
server's figures, and its callback is called there; the alert rules that need the server's machine are refused
saying where to set them."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterator

import pytest

from pepper.core import HealthMonitor, PerformanceMonitor, TaskOrchestrator
from pepper.errors import NotFoundError, RemoteUnsupportedError, ValidationError
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


def test_alert_rules_that_need_the_servers_machine_say_where_to_set_them(watching: RemoteRuntime) -> None:
    with pytest.raises(RemoteUnsupportedError, match=r"pepper\.toml"):
        HealthMonitor(watching).set_alert("agents.unhealthy_agents", 0, print)
    with pytest.raises(ValidationError, match="callback must be callable"):
        PerformanceMonitor(watching).set_alert("error_rate", 0.05, "print")
    with pytest.raises(ValidationError, match="unknown metric"):
        PerformanceMonitor(watching).set_alert("errors", 0.05, print)
