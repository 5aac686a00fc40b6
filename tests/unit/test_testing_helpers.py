"""The public test helpers drive the real scheduler in virtual time."""

from __future__ import annotations

from pepper.testing import StateHarness, make_agent, make_task


def test_the_harness_runs_a_retry_after_its_backoff_in_virtual_time():
    harness = StateHarness([make_agent("a", capacity=1)])
    harness.submit(make_task("t", max_retries=1), make_task("after", dependencies=["t"]))
    assert [s.task_id for s in harness.started] == ["t"]
    harness.finish("t", error="flaky")
    assert harness.running() == []
    harness.advance(0.5)
    assert harness.running() == []  # default first retry waits 0.8-1.0 s
    harness.advance(1.0)
    assert harness.running() == ["t"]
    harness.finish("t", result=1)
    assert [s.task_id for s in harness.started] == ["t", "t", "after"]
