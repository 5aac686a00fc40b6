"""One bad agent never makes the runtime unusable. Registered before the engine starts, an agent is checked as far
as can be known then (a budget the pool can never give is refused at once, nothing registered). One whose start-up
(``initialize()``) fails as the engine starts is left out: not registered, its error logged, kept in
``failed_agents()`` and told by the health check, raised once by an explicit ``start()`` as ``AgentStartError``;
the other agents run and every other call works. Executions are counted in the agents."""

from __future__ import annotations

import logging
import threading
from collections import Counter

import pytest

import pepper
from pepper.core import HealthMonitor, TaskOrchestrator
from pepper.errors import AgentDefinitionError, AgentStartError, PepperError
from pepper.model.task import TaskState
from tests.conftest import FAST


class Counted:
    """Calls of the agents, by what was called."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self._lock = threading.Lock()

    def count(self, what: str) -> None:
        with self._lock:
            self.calls[what] += 1


def flaky_agent(counted: Counted, agent_id: str = "flaky", *, fails: bool = True) -> pepper.BaseAgent:
    class Flaky(pepper.BaseAgent):
        async def initialize(self):
            counted.count(f"{agent_id}.initialize")
            if fails:
                raise ConnectionError("model server not up yet")

        async def execute(self, task):
            counted.count(f"{agent_id}.execute")
            return "flaky"

    return Flaky(agent_id, task_types=["y"])


@pytest.fixture
def runtime(tmp_path):
    rt = pepper.Runtime(db=str(tmp_path / "p.db"), home=str(tmp_path / "home"), resources={"cpu": 4}, **FAST)
    yield rt
    rt.close()


def good_agent(runtime: pepper.Runtime, counted: Counted) -> None:
    @pepper.agent("good", task_types=["x"], runtime=runtime)
    def good(task):
        counted.count("good.execute")
        return "good"


def test_a_budget_the_pool_can_never_give_is_refused_at_registration_and_the_rest_works(runtime):
    counted = Counted()
    good_agent(runtime, counted)
    with pytest.raises(AgentDefinitionError, match="'gpu_agent' asks for a budget the whole pool cannot give"):
        pepper.agent("gpu_agent", task_types=["y"], runtime=runtime, resources={"gpu": 1})(lambda task: "gpu")
    with pytest.raises(AgentDefinitionError, match="cpu short by 60"):
        pepper.agent("greedy", task_types=["y"], runtime=runtime, resources={"cpu": 64})(lambda task: "cpu")
    # a budget the pool can give is accepted before the engine starts
    pepper.agent("small", task_types=["y"], runtime=runtime, resources={"cpu": 1})(lambda task: "small")
    assert [a.spec.agent_id for a in runtime.agents()] == ["good", "small"] and not runtime.running
    orchestrator = TaskOrchestrator(runtime)
    orchestrator.submit_task("t", "x")
    orchestrator.submit_task("s", "y")
    assert orchestrator.get_result("t", timeout=30) == "good"
    assert orchestrator.get_result("s", timeout=30) == "small"
    assert HealthMonitor(runtime).check_health().components["agents"].status == "healthy"
    assert counted.calls == Counter({"good.execute": 1})
    assert runtime.failed_agents() == {}


def test_an_agent_whose_initialize_fails_is_left_out_and_every_other_call_works(runtime, caplog):
    counted = Counted()
    good_agent(runtime, counted)
    runtime.register_agent(flaky_agent(counted))
    orchestrator = TaskOrchestrator(runtime)
    with caplog.at_level(logging.ERROR, logger="pepper"):
        orchestrator.submit_task("t0", "x")  # starts the engine: nothing of the flaky agent is raised here
    assert any("'flaky' could not start" in r.getMessage() and r.exc_info for r in caplog.records)
    orchestrator.submit_task("t1", "x")
    orchestrator.submit_task("waits", "y")  # only the flaky agent took this type: it waits
    assert [s.state for s in orchestrator.wait(["t0", "t1"], timeout=30)] == [TaskState.COMPLETED] * 2
    assert [a.spec.agent_id for a in runtime.agents()] == ["good"]
    assert runtime.failed_agents() == {"flaky": "ConnectionError: model server not up yet"}
    agents = HealthMonitor(runtime).check_health().components["agents"]
    assert agents.status == "degraded"
    assert any("'flaky'" in r and "could not start and is not registered: ConnectionError" in r for r in agents.reasons)
    assert orchestrator.get_task_status("waits").state is TaskState.PENDING
    # an explicit start() tells of the agents left out, once; the engine runs on
    with pytest.raises(AgentStartError, match="'flaky': ConnectionError: model server not up yet") as told:
        runtime.start()
    assert told.value.failures == {"flaky": "ConnectionError: model server not up yet"}
    runtime.start()
    assert counted.calls == Counter({"good.execute": 2, "flaky.initialize": 1})
    # registered again once its cause is fixed, it takes the task that waited
    runtime.register_agent(flaky_agent(counted, fails=False))
    assert orchestrator.get_result("waits", timeout=30) == "flaky"
    assert runtime.failed_agents() == {}
    assert HealthMonitor(runtime).check_health().components["agents"].status == "healthy"
    assert counted.calls == Counter({"good.execute": 2, "flaky.initialize": 2, "flaky.execute": 1})


def test_an_explicit_start_raises_once_for_the_agents_left_out_and_the_engine_runs(runtime):
    counted = Counted()
    good_agent(runtime, counted)
    runtime.register_agent(flaky_agent(counted, "one"))
    runtime.register_agent(flaky_agent(counted, "two"))
    with pytest.raises(AgentStartError, match="2 agents could not start") as told:
        runtime.start()
    assert set(told.value.failures) == {"one", "two"} and isinstance(told.value, PepperError)
    assert runtime.running and [a.spec.agent_id for a in runtime.agents()] == ["good"]
    assert [a.spec.agent_id for a in runtime.store.workers.agents()] == ["good"]
    orchestrator = TaskOrchestrator(runtime)
    orchestrator.submit_task("t", "x")
    assert orchestrator.get_result("t", timeout=30) == "good"
    assert counted.calls == Counter({"good.execute": 1, "one.initialize": 1, "two.initialize": 1})


def test_with_the_engine_running_a_failing_initialize_is_a_typed_error_and_nothing_is_registered(runtime):
    counted = Counted()
    good_agent(runtime, counted)
    runtime.start()
    with pytest.raises(AgentStartError, match="'flaky': ConnectionError: model server not up yet") as refused:
        runtime.register_agent(flaky_agent(counted))
    assert isinstance(refused.value.__cause__, ConnectionError)
    assert [a.spec.agent_id for a in runtime.agents()] == ["good"]
    assert [a.spec.agent_id for a in runtime.store.workers.agents()] == ["good"]
    with pytest.raises(AgentDefinitionError, match="the whole pool cannot give"):
        pepper.agent("gpu_agent", task_types=["y"], runtime=runtime, resources={"gpu": 1})(lambda task: "gpu")
    orchestrator = TaskOrchestrator(runtime)
    orchestrator.submit_task("t", "x")
    assert orchestrator.get_result("t", timeout=30) == "good"
    assert counted.calls == Counter({"good.execute": 1, "flaky.initialize": 1})


def test_when_every_agent_fails_to_start_the_runtime_still_answers(runtime):
    counted = Counted()
    runtime.register_agent(flaky_agent(counted))
    orchestrator = TaskOrchestrator(runtime)
    orchestrator.submit_task("t", "y")
    assert orchestrator.get_task_status("t").state is TaskState.PENDING
    report = HealthMonitor(runtime).check_health()
    assert report.components["agents"].status == "unhealthy"
    assert runtime.agents() == [] and counted.calls == Counter({"flaky.initialize": 1})
