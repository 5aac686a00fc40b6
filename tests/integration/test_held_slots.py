"""A synchronous agent's call that outlives its attempt keeps its agent's slot until it really returns.

Python cannot stop a thread: an attempt that times out ends at its timeout (its retry is decided then),
but its call runs on. An agent never runs more calls at once than its capacity, so the next task (or the
retry) waits until the abandoned call returns; a call that never returns keeps its slot, and stopping the
engine does not wait for it; the agent's load counts such a slot as taken and says so, also once the agent
is unregistered and registered again. Time is a manual clock; the agent blocks on events the test sets, and counts
how many of its calls run at once.
"""

from __future__ import annotations

import asyncio
import re
import threading
from pathlib import Path

import pytest

import pepper
from pepper.core import LoadBalancer, TaskOrchestrator
from pepper.core.prometheus import exposition
from pepper.engine.clock import ManualClock
from pepper.model.task import TaskState
from tests.conftest import VIRTUAL
from tests.support import eventually


class Single:
    """A capacity-1 sync agent: ``slow`` blocks until ``release`` is set; counts calls, and calls at once."""

    def __init__(self, runtime: pepper.Runtime, capacity: int = 1) -> None:
        self.lock = threading.Lock()
        self.now = self.most = 0
        self.calls: list[tuple[str, int]] = []
        self.started = {name: threading.Event() for name in ("slow", "other")}
        self.release = threading.Event()
        self.gate = threading.Event()  # what the other tasks wait for (open unless a test closes it)
        self.gate.set()
        self.started["third"] = threading.Event()
        pepper.agent("single", task_types=["job"], capacity=capacity, runtime=runtime)(self.run)

    def run(self, task):
        with self.lock:
            self.now += 1
            self.most = max(self.most, self.now)
            self.calls.append((task.task_id, task.attempt))
        try:
            self.started[task.task_id].set()
            if task.task_id == "slow" and task.attempt == 1:
                self.release.wait(60)  # ignores its timeout and the cancel flag
            else:
                assert self.gate.wait(60)
            return task.task_id
        finally:
            with self.lock:
                self.now -= 1


def time_out(clock: ManualClock, seconds: float) -> None:
    """Move the clock to the attempt's timeout, once it is armed."""
    clock.advance(clock.wait_for_timer(seconds - 0.01, seconds + 0.01) - clock.now())


def test_the_slot_of_a_timed_out_call_stays_held_until_the_call_returns(virtual, clock):
    agent = Single(virtual)
    o = TaskOrchestrator(virtual)
    o.submit_task("slow", "job", timeout=5, max_retries=1)
    o.submit_task("other", "job")
    assert agent.started["slow"].wait(30)
    time_out(clock, 5)
    # The attempt ended at its timeout: its retry is decided and waits out its back-off.
    status = eventually(lambda: (s := o.get_task_status("slow")).state is TaskState.PENDING and s, "the retry")
    assert status.attempts == 1 and status.error.kind == "timeout"
    # Its call still runs, so the agent is full: nothing else started, and the waiting task says why.
    other = o.get_task_status("other")
    assert other.state is TaskState.PENDING
    assert any("held by calls that outlived their attempt" in w.message for w in other.waiting_on), other.waiting_on
    assert agent.calls == [("slow", 1)]
    with pytest.raises(pepper.errors.NoEligibleAgentError, match="single: is at capacity 1/1"):  # the held slot counts
        pepper.core.AgentSelector(virtual).select_agent("job", {"availability": True})
    agent.release.set()  # the call returns: the slot is free, the waiting work starts
    assert o.wait("other", timeout=30).state is TaskState.COMPLETED
    retry_at = o.get_task_status("slow").next_attempt_at
    assert retry_at is not None
    clock.set(max(clock.now(), retry_at))  # the retry's back-off, and no further: its own timeout stays ahead
    assert o.wait("slow", timeout=30).state is TaskState.COMPLETED
    assert agent.calls == [("slow", 1), ("other", 1), ("slow", 2)]
    assert agent.most == 1


def test_a_call_that_never_returns_keeps_its_slot_and_does_not_hold_up_a_stop(tmp_path: Path, clock):
    runtime = pepper.Runtime(db=str(tmp_path / "pepper.db"), home=str(tmp_path / "home"), clock=clock, **VIRTUAL)
    agent = Single(runtime, capacity=2)
    o = TaskOrchestrator(runtime)
    o.submit_task("slow", "job", timeout=5, max_retries=0)
    assert agent.started["slow"].wait(30)
    time_out(clock, 5)
    assert o.wait("slow", timeout=30).state is TaskState.FAILED
    agent.gate.clear()
    o.submit_task("other", "job")  # one slot of two is left: it runs, and blocks
    o.submit_task("third", "job")
    assert agent.started["other"].wait(30)
    third = o.get_task_status("third")  # the claim of "other" was made in the turn that would have started it
    assert third.state is TaskState.PENDING
    assert [w.message for w in third.waiting_on] == [
        "agent 'single' has 1 of its 2 slot(s) held by calls that outlived their attempt (a timeout or cancel a "
        "thread cannot obey) and still run; each is freed when its call returns"
    ]
    agent.gate.set()
    assert [s.state for s in o.wait(["other", "third"], timeout=30)] == [TaskState.COMPLETED] * 2
    assert agent.calls == [("slow", 1), ("other", 1), ("third", 1)] and agent.most == 2
    stopped = threading.Event()
    closer = threading.Thread(target=lambda: (runtime.close(), stopped.set()), daemon=True)
    closer.start()
    assert stopped.wait(60), "closing the runtime waited for a call that never returns"
    agent.release.set()


def test_a_call_that_returns_just_before_its_timeout_frees_its_slot_at_once(virtual, clock):
    agent = Single(virtual)
    agent.release.set()  # no call outlives its attempt
    o = TaskOrchestrator(virtual)
    for name in ("slow", "other"):
        o.submit_task(name, "job", timeout=5)
    assert [s.state for s in o.wait(["slow", "other"], timeout=30)] == [TaskState.COMPLETED] * 2
    assert agent.calls == [("slow", 1), ("other", 1)] and agent.most == 1


def hold_the_slot(runtime: pepper.Runtime, clock: ManualClock) -> tuple[Single, TaskOrchestrator]:
    """The only slot of "single" is held by the call of "slow", which timed out and failed."""
    agent = Single(runtime)
    o = TaskOrchestrator(runtime)
    o.submit_task("slow", "job", timeout=5, max_retries=0)
    assert agent.started["slow"].wait(30)
    time_out(clock, 5)
    assert o.wait("slow", timeout=30).state is TaskState.FAILED
    return agent, o


def gauges(runtime: pepper.Runtime, name: str) -> dict[str, float]:
    found = re.findall(rf'^{name}{{agent="([^"]+)"}} (\S+)$', exposition(runtime, stored=False), flags=re.MULTILINE)
    return {agent: float(value) for agent, value in found}


def test_the_load_of_an_agent_counts_a_held_slot_as_taken_and_says_so(virtual, clock):
    agent, o = hold_the_slot(virtual, clock)
    load = LoadBalancer(virtual).get_agent_load("single")
    assert (load.running, load.held, load.busy, load.capacity, load.utilisation) == (0, 1, 1, 1, 1.0)
    assert "1 of its 1 slot(s) held by calls that outlived their attempt" in (load.note or "")
    assert load.to_dict()["held"] == 1 and load.to_dict()["utilisation"] == 1.0
    assert gauges(virtual, "pepper_running") == {"single": 1.0}
    assert gauges(virtual, "pepper_held_slots") == {"single": 1.0}
    agent.release.set()
    o.submit_task("other", "job")
    assert o.wait("other", timeout=30).state is TaskState.COMPLETED  # it ran once the call returned
    load = LoadBalancer(virtual).get_agent_load("single")
    assert (load.running, load.held, load.utilisation, load.note) == (0, 0, 0.0, None)
    assert gauges(virtual, "pepper_held_slots") == {"single": 0.0}
    assert agent.calls == [("slow", 1), ("other", 1)] and agent.most == 1


def test_an_agent_registered_again_while_its_call_is_held_keeps_that_slot_taken(virtual, clock):
    agent, o = hold_the_slot(virtual, clock)
    virtual.unregister_agent("single")
    pepper.agent("single", task_types=["job"], runtime=virtual)(agent.run)
    o.submit_task("other", "job")
    other = o.get_task_status("other")
    assert other.state is TaskState.PENDING
    assert any("held by calls that outlived their attempt" in w.message for w in other.waiting_on), other.waiting_on
    assert LoadBalancer(virtual).get_agent_load("single").held == 1
    assert agent.calls == [("slow", 1)]
    agent.release.set()  # the call returns: the agent registered again takes the waiting task
    assert o.wait("other", timeout=30).state is TaskState.COMPLETED
    assert agent.calls == [("slow", 1), ("other", 1)] and agent.most == 1


def test_the_slot_of_a_cancelled_call_stays_held_until_the_call_returns(virtual):
    agent = Single(virtual)
    o = TaskOrchestrator(virtual)
    o.submit_task("slow", "job")
    o.submit_task("other", "job")
    assert agent.started["slow"].wait(30)
    assert o.cancel_task("slow", "not wanted") is True
    assert o.get_task_status("slow").state is TaskState.CANCELLED
    # The cancelled call ignores the cancel and still runs: the agent is full, the next task waits and says why.
    other = o.get_task_status("other")
    assert other.state is TaskState.PENDING
    assert any("held by calls that outlived their attempt" in w.message for w in other.waiting_on), other.waiting_on
    eventually(lambda: virtual._service.engine.attempts.stuck_threads == 1, "the call is left to its thread")
    assert o.get_task_status("other").state is TaskState.PENDING and agent.calls == [("slow", 1)]
    agent.release.set()  # the cancelled call returns: its slot is free, the waiting task starts
    assert o.wait("other", timeout=30).state is TaskState.COMPLETED
    assert agent.calls == [("slow", 1), ("other", 1)] and agent.most == 1


def test_a_cancelled_async_call_stops_and_gives_its_slot_to_the_next_task(virtual):
    calls: list[str] = []

    @pepper.agent("waiter", task_types=["wait"], capacity=1, runtime=virtual)
    async def waiter(task):
        calls.append(task.task_id)
        if task.task_id == "first":
            await asyncio.Event().wait()  # stops only when cancelled
        return task.task_id

    o = TaskOrchestrator(virtual)
    o.submit_task("first", "wait")
    o.submit_task("second", "wait")
    eventually(lambda: calls == ["first"], "the first call runs")
    assert o.cancel_task("first") is True
    assert o.wait("second", timeout=30).state is TaskState.COMPLETED
    assert calls == ["first", "second"] and o.get_task_status("first").state is TaskState.CANCELLED
