"""A worker that stops delivers the alerts it has fired (within its sinks' timeouts) before it is gone."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

import pepper
from tests.support import eventually

FAST = {"poll_interval": "50ms", "heartbeat_interval": "100ms", "sample_interval": "50ms", "shutdown_timeout": "2s"}


class Receiver:
    """A webhook on 127.0.0.1 that answers 503 to its first ``refuse`` POSTs and 204 to the others."""

    def __init__(self, refuse: int) -> None:
        self.accepted: list[dict[str, object]] = []
        self.refused = 0
        lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with lock:
                    turn_down = outer.refused < refuse
                    if turn_down:
                        outer.refused += 1
                    else:
                        outer.accepted.append(body)
                self.send_response(503 if turn_down else 204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver(refuse=1)  # the first try fails: the alert is still being sent (backing off) when the stop comes
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
    assert [body["rule"] for body in receiver.accepted] == ["always"]
    assert receiver.accepted[0]["fired_count"] == 1 and receiver.refused == 1


def test_a_stopping_worker_gives_up_on_an_alert_its_sink_cannot_take_and_still_stops(tmp_path, caplog):
    dead = Receiver(refuse=10**6)
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
