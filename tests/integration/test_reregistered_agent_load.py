"""An agent unregistered while its tasks run (they finish) and registered again under the same id: the attempts
still running count against the new registration's capacity, and their slots free as they end. The agent counts
its calls, and how many run at once; the test releases them with events."""

from __future__ import annotations

import threading

import pytest

import pepper
from pepper.core import LoadBalancer, TaskOrchestrator
from pepper.model.task import TaskState
from tests.support import eventually

CAPACITY = 2


class Counting:
    """Blocks each call until its gate opens; counts calls, calls running now and the most at once."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.now = self.most = 0
        self.calls: list[str] = []
        self.gates = {"old": threading.Event(), "new": threading.Event()}

    def __call__(self, task: pepper.Task) -> str:
        with self.lock:
            self.now += 1
            self.most = max(self.most, self.now)
            self.calls.append(task.task_id)
        try:
            assert self.gates[task.task_id[:3]].wait(60)
            return task.task_id
        finally:
            with self.lock:
                self.now -= 1


@pytest.fixture
def runtime(tmp_path):
    rt = pepper.Runtime(db=str(tmp_path / "pepper.db"), home=str(tmp_path / "home"), poll_interval="20ms")
    yield rt
    rt.close(timeout=5)


@pytest.mark.parametrize("skills", [[], ["extra"]], ids=["same-spec", "one-more-skill"])
def test_attempts_still_running_count_against_the_agent_registered_again(runtime, skills):
    agent = Counting()
    pepper.agent("ag", task_types=["t"], capacity=CAPACITY, runtime=runtime)(agent)
    o = TaskOrchestrator(runtime)
    old = [f"old{i}" for i in range(CAPACITY)]
    new = [f"new{i}" for i in range(CAPACITY)]
    o.submit_tasks([{"id": task_id, "type": "t"} for task_id in old])
    eventually(lambda: agent.now == CAPACITY, "the old tasks run")

    runtime.unregister_agent("ag")  # the running ones finish
    pepper.agent("ag", task_types=["t"], skills=skills, capacity=CAPACITY, runtime=runtime)(agent)
    o.submit_tasks([{"id": task_id, "type": "t"} for task_id in new])
    assert [o.get_task_status(task_id).state for task_id in new] == [TaskState.PENDING] * CAPACITY
    assert LoadBalancer(runtime).get_agent_load("ag").running == CAPACITY
    assert sorted(agent.calls) == old

    agent.gates["old"].set()  # the old calls end: their slots go to the new tasks
    eventually(lambda: sorted(agent.calls) == sorted(old + new), "the new tasks start")
    agent.gates["new"].set()
    statuses = o.wait(old + new, timeout=60)
    assert all(status.state is TaskState.COMPLETED for status in statuses)
    assert sorted(agent.calls) == sorted(old + new)  # each ran once
    assert agent.most == CAPACITY
    assert LoadBalancer(runtime).get_agent_load("ag").running == 0


def test_an_attempt_that_ends_while_its_agent_is_away_leaves_no_slot_taken(runtime):
    agent = Counting()
    pepper.agent("ag", task_types=["t"], capacity=CAPACITY, runtime=runtime)(agent)
    o = TaskOrchestrator(runtime)
    o.submit_tasks([{"id": "old0", "type": "t"}])
    eventually(lambda: agent.now == 1, "the old task runs")
    runtime.unregister_agent("ag")
    agent.gates["old"].set()
    assert o.wait("old0", timeout=60).state is TaskState.COMPLETED
    agent.gates["new"].set()
    pepper.agent("ag", task_types=["t"], capacity=CAPACITY, runtime=runtime)(agent)
    assert LoadBalancer(runtime).get_agent_load("ag").running == 0
    new = [f"new{i}" for i in range(CAPACITY)]
    o.submit_tasks([{"id": task_id, "type": "t"} for task_id in new])
    statuses = o.wait(new, timeout=60)
    assert all(status.state is TaskState.COMPLETED for status in statuses)
    assert sorted(agent.calls) == sorted(["old0", *new])
    assert agent.most <= CAPACITY
