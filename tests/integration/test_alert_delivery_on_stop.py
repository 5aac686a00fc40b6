"""A worker that stops delivers the alerts it has fired (within its sinks' timeouts) before it is gone."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest

import pepper
from tests.support import WebhookReceiver, eventually

FAST = {"poll_interval": "50ms", "heartbeat_interval": "100ms", "sample_interval": "50ms", "shutdown_timeout": "2s"}


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    # the first try fails: the alert is still being sent (backing off) when the stop comes
    r = WebhookReceiver(refuse=1)
    yield r
    r.close()


def _runtime(tmp_path, url: str, retries: int) -> pepper.Runtime:
    rule = {"name": "always", "metric": "dead_letters", "threshold": 0, "comparison": ">=",
            "sinks": [{"type": "webhook", "url": url, "timeout": "10s", "retries": retries}]}  # fmt: skip
    return pepper.Runtime(db=str(tmp_path / "pepper.db"), home=str(tmp_path / "home"), alerts=[rule], **FAST)


def _fired(runtime: pepper.Runtime) -> bool:
    state = runtime.store.alert_states.states().get("always")
    return state is not None and state.firing


def test_a_stopping_worker_delivers_the_alert_it_fired_exactly_once(tmp_path, receiver):
    runtime = _runtime(tmp_path, receiver.url, retries=2)
    try:
        runtime.start()
        # Given a worker that has just fired an alert, whose first try was refused
        eventually(lambda: _fired(runtime), "the rule to fire")
        eventually(lambda: receiver.refused == 1, "the first try")
    finally:
        # When it stops at once
        runtime.close()
    # Then by the time it has stopped, the alert was delivered, once
    accepted = [json.loads(body) for body, _ in receiver.posts]
    assert [body["rule"] for body in accepted] == ["always"]
    assert accepted[0]["fired_count"] == 1 and receiver.refused == 1


def test_a_stopping_worker_gives_up_on_an_alert_its_sink_cannot_take_and_still_stops(tmp_path, caplog):
    dead = WebhookReceiver(refuse=10**6)
    dead_url = dead.url
    dead.close()  # nothing listens there any more: every try is refused at once
    runtime = _runtime(tmp_path, dead_url, retries=1)
    caplog.set_level(logging.ERROR, logger="pepper.alerts")
    try:
        runtime.start()
        eventually(lambda: _fired(runtime), "the rule to fire")
    finally:
        runtime.close()
    # the delivery ended (failed after its tries) before the worker was gone, and said so
    assert "after 2 tries; giving up" in caplog.text
