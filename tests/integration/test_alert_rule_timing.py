"""A configured rule on a worker's virtual clock: `for` counts from when the engine saw the condition come true
(a dip starts it again), and its firing is listed with the other alerts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading

import pepper
from pepper.core import ResourceMonitor
from pepper.testing import ManualClock
from tests.support import eventually

TICK = 10.0  # the sample interval: configured rules are evaluated once per tick
RULE = {"name": "parked", "metric": "dead_letters", "threshold": 0, "for": "30s", "sinks": [{"type": "log"}],
        "description": "a task waits in the dead-letter queue"}  # fmt: skip
SETTINGS = {"poll_interval": "1h", "heartbeat_interval": "1h", "retry_delay": "1m", "shutdown_timeout": "2s"}


def test_for_counts_from_the_tick_that_saw_the_condition_and_a_dip_starts_it_again(tmp_path):
    clock = ManualClock(1_700_000_000.0)
    start = clock.now()
    db = str(tmp_path / "pepper.db")
    runtime = pepper.Runtime(db=db, home=str(tmp_path / "home"), clock=clock, sample_interval=f"{TICK}s",
                             alerts=[RULE], **SETTINGS)  # fmt: skip
    runs = {"n": 0}
    lock = threading.Lock()

    @pepper.agent("breaker", task_types=["bad"], runtime=runtime)
    def breaker(task: pepper.TaskRun) -> object:
        with lock:
            runs["n"] += 1
        raise RuntimeError("broken on purpose")

    orchestrator = pepper.TaskOrchestrator(runtime)

    def tick() -> float:
        """Move to the sampler's next tick and wait until it has evaluated the rules."""
        due = start + TICK * (int((clock.now() - start) // TICK) + 1) - clock.now()
        clock.advance(clock.wait_for_timer(due - 0.01, due + 0.01) - clock.now())
        clock.wait_for_timer(TICK - 0.01, TICK + 0.01)  # armed again: that tick is over
        return clock.now() - start

    def park(task_id: str) -> None:
        orchestrator.submit_task(task_id, "bad", policy="dead_letter")
        eventually(lambda: orchestrator.get_task_status(task_id).state.value == "parked", f"{task_id} to park")

    def firing() -> bool:
        state = runtime.store.alert_states.states().get("parked")
        return state is not None and state.firing

    try:
        runtime.start()
        # Given a worker that has run for a while with nothing parked
        for _ in range(5):
            tick()
        assert not firing()
        # When a task parks between ticks, and the condition holds for two ticks
        clock.advance(TICK / 2)
        park("first")
        assert tick() == 6 * TICK  # the tick that sees it: `for` counts from here
        assert tick() == 7 * TICK and not firing()
        # and dips (the parked task is cancelled) before it held for 30s
        orchestrator.cancel_task("first")
        eventually(lambda: orchestrator.get_task_status("first").state.value == "cancelled", "the cancel")
        assert tick() == 8 * TICK and not firing()
        # and comes back: the count starts again
        clock.advance(TICK / 2)
        park("second")
        seen = tick()
        assert seen == 9 * TICK
        # Then nothing fires before it held for 30s since that tick
        while clock.now() - start < seen + 30 - TICK:
            tick()
            assert not firing(), f"fired {clock.now() - start - seen:g}s after the condition came back"
        # and it fires on the tick 30s after
        assert tick() == seen + 30 and firing()
        assert runs["n"] == 2
        # and the firing is listed with the other alerts, once, at the engine's time
        (alert,) = ResourceMonitor(runtime).alerts()
        assert alert["source"] == "config" and alert["rule_id"] == "parked" and alert["metric"] == "dead_letters"
        assert alert["value"] == 1.0 and alert["threshold"] == 0.0 and alert["above"] is True
        assert alert["at"] == start + seen + 30 and "dead_letters is 1" in alert["message"]
        # and it stays listed once while the condition holds
        tick()
        assert len(ResourceMonitor(runtime).alerts()) == 1
    finally:
        runtime.close()
    env = {k: v for k, v in os.environ.items() if k != "PEPPER_DB"}
    listed = subprocess.run([sys.executable, "-m", "pepper", "alerts", "--db", db, "--json"], env=env,
                            capture_output=True, text=True)  # fmt: skip
    assert listed.returncode == 0, listed.stderr
    assert [(a["source"], a["rule_id"]) for a in json.loads(listed.stdout)] == [("config", "parked")]
