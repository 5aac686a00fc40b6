"""Distribution end to end: learned scores steer real work; selection and plans through the API."""

from __future__ import annotations

import threading
import time
from dataclasses import replace

import pytest

import pepper
from pepper.core import AgentSelector, LoadBalancer, ResourceAllocator, TaskOrchestrator
from pepper.engine.inspection import MOVED
from pepper.engine.service import EngineService
from pepper.errors import (
    AgentDefinitionError,
    AgentNotFoundError,
    CycleError,
    NoEligibleAgentError,
    TaskNotFoundError,
    ValidationError,
)
from pepper.model.requirements import Requirements
from pepper.model.task import TaskState
from pepper.scheduling.selection import choose
from tests.support import eventually

FAST = {"retry_delay": "10ms", "poll_interval": "20ms", "heartbeat_interval": "100ms", "shutdown_timeout": "2s"}


@pytest.fixture
def runtime(tmp_path):
    rt = pepper.Runtime(db=str(tmp_path / "d.db"), home=str(tmp_path / "home"), **FAST)
    yield rt
    rt.close()


def test_an_agent_failing_half_its_attempts_falls_behind_on_its_own(runtime):
    first_attempts = {"steady": [], "flaky": []}
    lock = threading.Lock()
    flaky_calls = [0]

    def work(name):
        def run(task):
            with lock:
                if task.attempt == 1:
                    first_attempts[name].append(task.task_id)
                if name == "flaky":
                    flaky_calls[0] += 1
                    fails = flaky_calls[0] % 2 == 1
                else:
                    fails = False
            time.sleep(0.02)
            if fails:
                raise RuntimeError("flaky failed again")
            return name

        return run

    pepper.agent("steady", task_types=["job"], runtime=runtime)(work("steady"))
    pepper.agent("flaky", task_types=["job"], runtime=runtime)(work("flaky"))
    orchestrator = TaskOrchestrator(runtime)
    warm_up = [f"warm-{i}" for i in range(40)]
    orchestrator.submit_tasks([{"id": i, "type": "job", "max_retries": 5} for i in warm_up])
    assert all(s.state is TaskState.COMPLETED for s in orchestrator.wait(warm_up, timeout=60))
    measured = [f"next-{i}" for i in range(40)]
    orchestrator.submit_tasks([{"id": i, "type": "job", "max_retries": 5} for i in measured])
    statuses = orchestrator.wait(measured, timeout=60)
    assert all(s.state is TaskState.COMPLETED for s in statuses)
    # With a backlog both work (two agents clear it sooner), but the failing one completes far less.
    assert sum(s.agent_id == "steady" for s in statuses) >= 0.6 * len(measured)
    # Given the choice, a task goes to the agent that does not fail.
    one_by_one = [f"alone-{i}" for i in range(10)]
    for task_id in one_by_one:
        orchestrator.submit_task(task_id, "job", max_retries=5)
        orchestrator.wait(task_id, timeout=10)
    assert sum(t.startswith("alone-") for t in first_attempts["steady"]) >= 9, first_attempts
    scores = {a: AgentSelector(runtime).get_agent_capabilities(a).performance_score for a in ("steady", "flaky")}
    assert scores["steady"] > scores["flaky"]


def test_the_selector_explains_every_rejection_and_ranks_the_rest(runtime):
    pepper.agent("docs", task_types=["documentation"], skills=["markdown", "api_docs"], runtime=runtime)(str)
    pepper.agent("basic", task_types=["documentation"], skills=["markdown"], capacity=2, runtime=runtime)(str)
    pepper.agent("review", task_types=["review"], runtime=runtime)(str)
    selector = AgentSelector(runtime)
    best = selector.select_agent("documentation", {"skills": ["markdown", "api_docs"], "availability": True})
    assert best.agent_id == "docs" and best.skills == {"markdown", "api_docs"}
    assert [p.agent_id for p in selector.rank_agents("documentation", {"skills": ["markdown"]})] == ["basic", "docs"]
    with pytest.raises(NoEligibleAgentError) as caught:
        selector.select_agent("documentation", {"skills": ["latex"], "performance_score": 0.9})
    assert set(caught.value.rejected) == {"docs", "basic", "review"}
    assert "lacks skill latex" in caught.value.rejected["docs"]
    assert caught.value.rejected["review"][0].startswith("does not accept task type 'documentation'")
    capabilities = selector.get_agent_capabilities("basic")
    assert (capabilities.capacity, capabilities.task_types) == (2, frozenset({"documentation"}))


def test_load_and_plans_respect_capacity_skills_and_learned_durations(runtime):
    gate = threading.Event()
    pepper.agent("slow", task_types=["t"], runtime=runtime)(lambda task: gate.wait(10))
    pepper.agent("quick", task_types=["t"], capacity=2, runtime=runtime)(lambda task: gate.wait(10))
    orchestrator = TaskOrchestrator(runtime)
    orchestrator.submit_tasks([{"id": f"r{i}", "type": "t"} for i in range(5)])
    balancer = LoadBalancer(runtime)
    deadline = time.monotonic() + 10
    while balancer.get_agent_load("quick").running < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    load = balancer.get_agent_load("quick")
    assert (load.running, load.capacity, load.utilisation) == (2, 2, 1.0) and load.queued > 0
    live = {name: balancer.get_agent_load(name).queued for name in ("slow", "quick")}
    with pepper.Runtime(db=runtime.settings.db) as onlooker:  # another process, reading the database
        seen = LoadBalancer(onlooker)
        stored = {name: seen.get_agent_load(name).queued for name in ("slow", "quick")}
        assert seen.get_agent_load("quick").running == 2
        ranked = AgentSelector(onlooker).rank_agents("t")
    assert stored == pytest.approx(live) and sum(stored.values()) == pytest.approx(2.0)  # 5 tasks, 3 running
    assert {p.agent_id for p in ranked} == {"slow", "quick"}
    gate.set()
    orchestrator.wait([f"r{i}" for i in range(5)], timeout=20)
    plan = balancer.distribute_workload(
        [{"id": "a", "type": "t"}, {"id": "b", "type": "t"}, {"id": "c", "type": "gpu-job"}],
        ["slow", {"agent_id": "imagined", "task_types": ["t"], "capacity": 4}],
    )
    assert set(plan.assignments) == {"a", "b"} and set(plan.unassigned) == {"c"}
    assert "does not accept task type 'gpu-job'" in plan.unassigned["c"]["slow"][0]


def test_a_plan_rules_out_the_agents_the_selector_rules_out_for_a_tasks_resources(tmp_path):
    with pepper.Runtime(db=str(tmp_path / "r.db"), resources={"cpu": 4, "memory": 1000}, **FAST) as runtime:
        pepper.agent("w", task_types=["x"], runtime=runtime)(str)
        selector, balancer = AgentSelector(runtime), LoadBalancer(runtime)
        tasks = [{"id": "gpu", "type": "x", "resources": {"gpu": 1}}, {"id": "huge", "type": "x", "resources":
                 {"cpu": 1000}}, {"id": "fits", "type": "x", "resources": {"cpu": 2}}]  # fmt: skip
        plan = balancer.distribute_workload(tasks)
        assert plan.assignments == {"fits": "w"} and set(plan.unassigned) == {"gpu", "huge"}
        for task in tasks[:2]:
            with pytest.raises(NoEligibleAgentError) as caught:
                selector.select_agent("x", {"resources": task["resources"]})
            assert caught.value.rejected["w"] == plan.unassigned[task["id"]]["w"]
        assert plan.unassigned["gpu"]["w"] == ("has too few free resources: gpu short by 1",)
        ResourceAllocator(runtime).allocate("w", {"cpu": 1})  # w's budget: one core

        def budget_seen() -> bool:  # the engine reads the new budget from the store
            try:
                selector.select_agent("x", {"resources": {"cpu": 2}})
            except NoEligibleAgentError:
                return True
            return False

        eventually(budget_seen, "the selector to see w's budget")
        over = balancer.distribute_workload([{"id": "two", "type": "x", "resources": {"cpu": 2}}])
        assert over.placements == () and "cpu short by 1 core" in over.unassigned["two"]["w"][0]


def test_applying_a_plan_pins_waiting_tasks_to_the_chosen_agents(runtime):
    ran_on = {}
    for name in ("left", "right"):
        pepper.agent(name, task_types=["t"], runtime=runtime)(
            lambda task, name=name: ran_on.setdefault(task.task_id, name)
        )
    orchestrator = TaskOrchestrator(runtime)
    with pepper.Runtime(db=runtime.settings.db) as planner:  # another process: it sees the live workers' agents
        TaskOrchestrator(planner).submit_tasks([{"id": f"other-{i}", "type": "nobody-yet"} for i in range(2)])
        runtime.start()
        plan = LoadBalancer(planner).distribute_workload([{"id": "x", "type": "t"}, {"id": "y", "type": "t"}])
        assert set(plan.assignments) == {"x", "y"} and set(plan.assignments.values()) <= {"left", "right"}
    orchestrator.submit_tasks([{"id": f"p{i}", "type": "t", "dependencies": ["gate"]} for i in range(4)])
    plan = LoadBalancer(runtime).distribute_workload(["p0", "p1", "p2", "p3"], ["left", "right"], apply=True)
    orchestrator.submit_task("gate", "t")  # now the placed tasks may run
    orchestrator.wait(["p0", "p1", "p2", "p3"], timeout=20)
    assert {tid: ran_on[tid] for tid in plan.assignments} == plan.assignments


def test_a_plan_is_applied_only_to_stored_tasks_and_registered_agents(runtime):
    pepper.agent("real", task_types=["t"], runtime=runtime)(lambda task: "done")
    orchestrator = TaskOrchestrator(runtime)
    orchestrator.submit_task("held", "t", dependencies=["later"])
    balancer = LoadBalancer(runtime)
    ghost = {"agent_id": "ghost-agent", "task_types": ["*"]}
    with pytest.raises(ValidationError, match="agent 'ghost-agent' is described, not registered"):
        balancer.distribute_workload(["held"], [ghost], apply=True)
    with pytest.raises(ValidationError, match="task 'fresh' is not stored"):
        balancer.distribute_workload(["held", {"id": "fresh", "type": "t"}], ["real"], apply=True)
    assert orchestrator.get_task_status("held").agent_id is None  # refused: nothing was pinned
    assert set(balancer.distribute_workload(["held"], [ghost]).assignments.values()) == {"ghost-agent"}  # planned
    assert balancer.distribute_workload(["held"], ["real"], apply=True).assignments == {"held": "real"}


def test_scores_are_learned_from_stored_history_after_a_restart(tmp_path):
    db = str(tmp_path / "h.db")
    with pepper.Runtime(db=db, **FAST) as first:
        pepper.agent("bad", task_types=["t"], runtime=first)(lambda task: 1 / 0)
        orchestrator = TaskOrchestrator(first)
        orchestrator.submit_tasks([{"id": f"f{i}", "type": "t"} for i in range(10)])
        orchestrator.wait([f"f{i}" for i in range(10)], timeout=20)
        before = AgentSelector(first).get_agent_capabilities("bad").score_details.success
    with pepper.Runtime(db=db, **FAST) as second:
        pepper.agent("bad", task_types=["t"], runtime=second)(lambda task: 1 / 0)
        after = AgentSelector(second).get_agent_capabilities("bad").score_details.success
    assert after == pytest.approx(before, abs=0.02) and after < 0.2


def test_feedback_is_stored_and_moves_the_score(runtime):
    pepper.agent("writer", task_types=["t"], runtime=runtime)(lambda task: "text")
    orchestrator = TaskOrchestrator(runtime)
    orchestrator.submit_task("w", "t")
    orchestrator.wait("w", timeout=10)
    selector = AgentSelector(runtime)
    before = selector.get_agent_capabilities("writer").performance_score
    feedback = orchestrator.add_feedback("w", rating=1, comment="wrong tone", metrics={"edits": 12})
    assert (feedback.agent_id, feedback.task_type, feedback.rating) == ("writer", "t", 1)
    assert selector.get_agent_capabilities("writer").performance_score < before
    assert [f.comment for f in orchestrator.get_feedback("w")] == ["wrong tone"]


def test_a_plan_places_a_task_after_those_it_needs_and_refuses_cycles(runtime):
    pepper.agent("writer", task_types=["doc"], capacity=2, runtime=runtime)(lambda task: "written")
    orchestrator = TaskOrchestrator(runtime)
    orchestrator.submit_task("outline", "doc")
    assert orchestrator.wait("outline", timeout=20).state is TaskState.COMPLETED
    balancer = LoadBalancer(runtime)
    plan = balancer.distribute_workload([
        {"id": "draft", "type": "doc", "needs": ["outline"]},  # stored and done: nothing to wait for
        {"id": "review", "type": "doc", "needs": ["draft"]},
    ])  # fmt: skip
    draft, review = sorted(plan.placements, key=lambda p: p.start)
    assert (draft.task_id, review.task_id) == ("draft", "review") and draft.start == 0.0
    assert review.start == pytest.approx(draft.end) and plan.makespan == pytest.approx(review.end)
    cycle = [{"id": "x", "type": "doc", "needs": ["y"]}, {"id": "y", "type": "doc", "needs": ["x"]}]
    with pytest.raises(CycleError, match="dependency cycle: x -> y -> x"):
        balancer.distribute_workload(cycle, apply=True)
    assert [t.task_id for t in orchestrator.list_tasks()] == ["outline"]  # refused: nothing was stored
    later = balancer.distribute_workload([{"id": "x", "type": "doc", "needs": ["submitted-later"]}])
    assert later.assignments == {"x": "writer"}  # as submit_tasks takes it: outside the plan, not waited for


def test_bad_distribution_input_gets_typed_errors(runtime):
    pepper.agent("a", task_types=["t"], runtime=runtime)(str)
    orchestrator = TaskOrchestrator(runtime)
    orchestrator.submit_task("pending-one", "nobody-takes-this")
    selector, balancer = AgentSelector(runtime), LoadBalancer(runtime)
    with pytest.raises(NoEligibleAgentError):
        selector.select_agent("no-such-type", {"skills": ["no-such-skill"]})  # fine input: it just matches nobody
    for error, call in [
        (ValidationError, lambda: selector.select_agent("t", {"performance_score": 1.5})),
        (ValidationError, lambda: selector.select_agent("", None)),
        (AgentNotFoundError, lambda: selector.get_agent_capabilities("ghost")),
        (AgentNotFoundError, lambda: balancer.get_agent_load("ghost")),
        (AgentNotFoundError, lambda: balancer.distribute_workload([{"id": "x", "type": "t"}], ["ghost"])),
        (TaskNotFoundError, lambda: balancer.distribute_workload(["no-such-task"])),
        (AgentDefinitionError, lambda: balancer.distribute_workload([{"id": "x", "type": "t"}], [{"capacity": 2}])),
        (AgentDefinitionError, lambda: balancer.distribute_workload([{"id": "x", "type": "t"}], [{"agent_id": [1]}])),
        (ValidationError, lambda: balancer.distribute_workload("pending-one")),
        (ValidationError, lambda: orchestrator.add_feedback("pending-one", rating=6)),
        (ValidationError, lambda: orchestrator.add_feedback("pending-one", rating=4)),  # it has not run yet
        (TaskNotFoundError, lambda: orchestrator.add_feedback("ghost-task", rating=4)),
    ]:
        with pytest.raises(error):
            call()


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_the_same_requirements_asked_again_follow_agents_that_come_go_change_and_get_busy(
    request, tmp_path, monkeypatch, kind
):
    db = request.getfixturevalue("postgres_url") if kind == "postgres" else str(tmp_path / "fresh.db")
    started, release = threading.Event(), threading.Event()
    executions: dict[str, int] = {}

    def work(name):
        def run(task):
            executions[name] = executions.get(name, 0) + 1
            started.set()
            assert release.wait(60)
            return name

        return run

    in_place = [0]
    read_still = EngineService.read_agents_still

    def counting(self, question):
        answer = read_still(self, question)
        in_place[0] += answer is not MOVED
        return answer

    monkeypatch.setattr(EngineService, "read_agents_still", counting)
    asked = {"skills": ["py"]}  # one dict, asked again after each change
    available = {"skills": ["py"], "availability": True}
    with pepper.Runtime(db=db, home=str(tmp_path / "home"), **FAST) as runtime:
        for name in ("b", "c"):
            pepper.agent(name, task_types=["t"], skills=["py"], runtime=runtime)(work(name))
        runtime.start()
        selector = AgentSelector(runtime)

        def select(requirements):  # the first read after a change indexes the agents; then it is read in place
            first = selector.select_agent("t", requirements)
            for _ in range(100):  # (unless an event is being handled just then: that read goes to the engine)
                reads = in_place[0]
                again = selector.select_agent("t", requirements)  # (a busy agent's projected finish moves on)
                assert replace(again, projected_finish=None) == replace(first, projected_finish=None)
                if in_place[0] > reads:
                    return first
            pytest.fail("the answer was never read in place")

        assert select(asked).agent_id == "b"  # none has a record: the first idle one by id
        pepper.agent("a", task_types=["t"], skills=["py"], capacity=2, runtime=runtime)(work("a"))
        assert select(asked).agent_id == "a"
        runtime.unregister_agent("a")
        assert select(asked).agent_id == "b"
        runtime.unregister_agent("b")
        assert select(asked).agent_id == "c"
        pepper.agent("b", task_types=["t"], skills=["py", "go"], capacity=3, runtime=runtime)(work("b"))
        chosen = select(asked)
        assert (chosen.agent_id, chosen.capacity, chosen.skills) == ("b", 3, {"py", "go"})
        runtime.unregister_agent("c")
        pepper.agent("c", task_types=["t"], skills=["py"], runtime=runtime)(work("c"))
        orchestrator = TaskOrchestrator(runtime)
        orchestrator.submit_task("on-c", "t", agent="c")
        assert started.wait(60)
        assert selector.get_agent_capabilities("c").running == 1
        assert select(available).agent_id == "b"
        runtime.unregister_agent("b")
        with pytest.raises(NoEligibleAgentError, match="at capacity 1/1"):  # the only one left is busy
            select(available)
        assert select(asked).agent_id == "c"  # busy, yet eligible without availability
        release.set()
        assert orchestrator.wait(["on-c"], timeout=60)[0].state is TaskState.COMPLETED
        chosen = select(available)
        assert (chosen.agent_id, chosen.running) == ("c", 0)
    assert executions == {"c": 1}


def test_with_nobody_eligible_every_agent_is_named_with_the_reasons_ranking_every_candidate_gives():
    with pepper.Runtime(db=":memory:") as runtime:
        for name, types, skills in (("a", ["build"], ["py"]), ("b", ["build", "test"], ["go"]),
                                    ("c", ["test"], ["py", "go"]), ("d", ["build"], ["py", "go"])):  # fmt: skip
            pepper.agent(name, task_types=types, skills=skills, runtime=runtime)(str)
        runtime.start()
        selector = AgentSelector(runtime)
        assert selector.select_agent("build", {"skills": ["py", "go"]}).agent_id == "d"

        def pause(backend):  # on the engine's thread: d stops taking tasks, as an agent waiting for its budget
            state = backend.engine.state
            state.changes += 2
            state.agents["d"].accepting, state.agents["d"].note = False, "waits for its budget"

        runtime.read(pause)
        for task_type, asked in [("build", {"skills": ["py", "go"]}), ("deploy", None), ("test", {"skills": ["rust"]}),
                                 ("build", {"skills": ["go", "py"], "performance_score": 0.5}),
                                 ("build", {"skills": ["py", "go"], "availability": True})]:  # fmt: skip
            with pytest.raises(NoEligibleAgentError) as caught:
                selector.select_agent(task_type, asked)
            req = Requirements.parse(asked)

            def everyone(view, task_type=task_type, req=req):
                return choose([view.candidate(a, task_type) for a in view.directory().agents.values()], task_type, req)

            assert caught.value.rejected == dict(runtime.read_agents(everyone).rejected)
            assert set(caught.value.rejected) == {"a", "b", "c", "d"}
        assert caught.value.rejected["d"] == ("waits for its budget",)
        assert "lacks skill py" in caught.value.rejected["b"]
