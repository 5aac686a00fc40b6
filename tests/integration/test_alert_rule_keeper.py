"""Configured alert rules over one shared SQLite file: `for`, one firing per crossing across keepers, resolving;
what they fired is delivered when a worker stops, also at interpreter exit."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from threading import Thread

from pepper.engine.alert_rules import RuleKeeper
from pepper.model.alert_config import ConfiguredRule, Sink, parse_rule
from pepper.store.location import open_store


def test_a_rule_fires_after_holding_for_its_time_once_across_keepers_and_again_after_recovering(tmp_path):
    out = tmp_path / "fired.jsonl"
    sink = {"type": "command", "command": f"cat >> {out}; echo >> {out}"}
    rule = parse_rule({"name": "slow", "metric": "queue_wait_p95", "threshold": 5, "for": "10s", "sinks": [sink]})

    def fired() -> list[dict[str, object]]:
        for keeper in keepers:
            for thread in keeper.sent:
                thread.join(30)
        return [json.loads(line) for line in out.read_text().splitlines()] if out.exists() else []

    db = str(tmp_path / "p.db")
    stores = [open_store(db), open_store(db)]
    value = {"now": 9.0}
    keepers = [RuleKeeper(store, (rule,), lambda rule, now: value["now"]) for store in stores]
    try:
        # Given the value past the threshold from t=0: nothing fires before it held for 10s
        for t in (0.0, 5.0, 9.9):
            for keeper in keepers:
                keeper.tick(t)
        assert fired() == []
        # When it has held for 10s, both keepers see it: one notification
        for keeper in keepers:
            keeper.tick(10.0)
            keeper.tick(11.0)
        assert [(b["fired_count"], b["value"]) for b in fired()] == [(1, 9.0)]
        # an unknown value changes nothing
        value["now"] = None  # type: ignore[assignment]
        keepers[0].tick(12.0)
        assert stores[0].alert_states.states()["slow"].firing
        # When it recovers, the rule resolves; when it crosses again and holds, it fires again, once
        value["now"] = 1.0
        keepers[1].tick(20.0)
        assert not stores[0].alert_states.states()["slow"].firing
        value["now"] = 7.0
        for t in (30.0, 40.0, 41.0):
            for keeper in keepers:
                keeper.tick(t)
        assert [b["fired_count"] for b in fired()] == [1, 2]
    finally:
        for store in stores:
            store.close()


def test_flushing_a_notification_whose_sinks_may_take_longer_than_a_join_can_wait_never_crashes(tmp_path):
    # Given a rule made in code (rules read from configuration are bounded to 366 days) with a huge timeout,
    # whose command runs until the test lets it end
    go = tmp_path / "go"
    sink = Sink("command", command=f"while [ ! -e {go} ]; do sleep 0.01; done", timeout=1e12)
    rule = ConfiguredRule("long", "failed", 0.0, sinks=(sink,))
    store = open_store(str(tmp_path / "p.db"))
    try:
        keeper = RuleKeeper(store, (rule,), lambda rule, now: 1.0)
        keeper.tick(1.0)
        assert len(keeper.sent) == 1
        # When the worker stops while it is being sent
        flushed: list[object] = []

        def flush() -> None:
            try:
                flushed.append(keeper.flush())
            except Exception as exc:
                flushed.append(exc)

        stopping = Thread(target=flush)
        stopping.start()
        go.touch()
        stopping.join(60)
        # Then it waits for it, and ends well once it was sent
        assert flushed == [True]
    finally:
        store.close()


def test_a_flush_that_fails_ends_the_wait_of_a_closing_runtime(tmp_path):
    store = open_store(str(tmp_path / "p.db"))
    try:
        keeper = RuleKeeper(store, (), lambda rule, now: 1.0)

        def broken() -> bool:
            raise OSError("no thread could be joined")

        keeper.flush = broken  # type: ignore[method-assign]

        async def close() -> bool:
            return await asyncio.wait_for(keeper.flushed(), 60)

        assert asyncio.run(close()) is False  # told, not waiting for ever
    finally:
        store.close()


_AT_EXIT = """
import sys, time, pepper
from pepper.core.alert_rules import AlertRules
rules = [{"name": "done", "metric": "completed", "threshold": 0, "window": "10m",
          "sinks": [{"type": "webhook", "url": sys.argv[2], "retries": 2}]}]
pepper.init(db=sys.argv[1], sample_interval=0.05, alerts=rules)

@pepper.agent("a", task_types=["t"])
def a(task):
    return 1

orchestrator = pepper.TaskOrchestrator()
orchestrator.submit_task("x", "t")
orchestrator.get_result("x", timeout=60)
deadline = time.monotonic() + 60
while not AlertRules().list()[0]["firing"] and time.monotonic() < deadline:
    time.sleep(0.05)
print("fired" if AlertRules().list()[0]["firing"] else "not fired")
# the script ends here: pepper closes its runtime at exit
"""


def test_a_runtime_closed_at_exit_delivers_what_its_rules_fired_with_retries_and_deregisters(tmp_path):
    posts: list[bytes] = []

    class Failing(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            posts.append(self.rfile.read(int(self.headers["Content-Length"])))
            self.send_response(500)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Failing)
    Thread(target=server.serve_forever, daemon=True).start()
    db = str(tmp_path / "p.db")
    env = {k: v for k, v in os.environ.items() if k != "PEPPER_DB"}
    try:
        done = subprocess.run([sys.executable, "-c", _AT_EXIT, db, f"http://127.0.0.1:{server.server_address[1]}/h"],
                              env=env, cwd=tmp_path, capture_output=True, text=True, timeout=180)  # fmt: skip
    finally:
        server.shutdown()
        server.server_close()
    # Then closing at exit went as an explicit close does: no traceback, the notification tried 1 + 2 times
    assert done.returncode == 0 and done.stdout.strip() == "fired", done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    assert len(posts) == 3 and json.loads(posts[0])["rule"] == "done"
    # and the worker left: none is alive
    store = open_store(db)
    try:
        assert store.workers.live() == []
    finally:
        store.close()
