"""The firing of a configured alert rule over HTTP: listed by the alerts route with the monitors' alerts."""

from __future__ import annotations

import time

import httpx

import pepper
from pepper.http.app import create_app
from pepper.http.server import ThreadedServer
from pepper.http.tokens import create_token
from tests.conftest import FAST
from tests.http.conftest import PATIENCE
from tests.support import eventually

RULE = {"name": "always", "metric": "dead_letters", "threshold": 0, "comparison": ">=", "sinks": ["log"]}


def test_the_alerts_route_lists_the_firing_of_a_configured_rule(tmp_path) -> None:
    runtime = pepper.Runtime(db=str(tmp_path / "pepper.db"), home=str(tmp_path / "home"), alerts=[RULE],
                             **{**FAST, "sample_interval": "50ms"})  # fmt: skip
    server = None
    try:
        runtime.start()
        token = create_token(runtime.store, "test-read", "read", time.time())
        server = ThreadedServer(create_app(runtime))
        url = server.start()
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=PATIENCE) as client:
            # When the rule fires, the alerts route lists its firing, once
            items = eventually(lambda: client.get("/api/v1/alerts").json()["items"], "the firing to be listed")
        (alert,) = items
        assert alert["source"] == "config" and alert["rule_id"] == "always" and alert["metric"] == "dead_letters"
        assert alert["value"] == 0.0 and alert["threshold"] == 0.0 and alert["above"] is True
    finally:
        if server is not None:
            server.stop()
        runtime.close()
