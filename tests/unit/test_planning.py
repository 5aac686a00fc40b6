"""Planning: every plan is checked by a validator; bounds, known optima, determinism, size. Virtual time only."""

from __future__ import annotations

import random
import time

import pytest

import pepper
from pepper.core import TaskOrchestrator
from pepper.errors import CycleError, DuplicateTaskError, ValidationError
from pepper.scheduling.planning import (
    PlanTask,
    Slot,
    check_schedule,
    critical_path,
    upward_ranks,
)
from pepper.scheduling.work_bound import least_time


@pytest.fixture
def runtime():
    rt = pepper.Runtime(db=":memory:")
    yield rt
    rt.close()


def pool_of(agents):
    from pepper.core.plan_inputs import read_agents

    return read_agents(agents, None)


def valid(plan, tasks, agents):
    """The plan passes the validator (dependencies, eligibility, durations, capacity, budgets)."""
    plan_tasks = [PlanTask(t["id"], t["type"], plan.durations[t["id"]], tuple(t.get("needs", ())),
                           frozenset(t.get("skills", ())), _resources(t.get("resources")), t.get("agent"))
                  for t in tasks if t["id"] not in plan.unplaced]  # fmt: skip
    return check_schedule(plan.schedule, plan_tasks, pool_of(agents))


def _resources(value):
    from pepper.model.resources import Resources

    return Resources.parse(value or {})


def random_case(seed, n_tasks=60):
    rng = random.Random(seed)
    types = ["build", "test", "doc"]
    agents = [
        {"agent_id": f"a{i}", "task_types": rng.sample(types, rng.randint(1, 3)), "capacity": rng.randint(1, 3),
         "speed": rng.choice([0.5, 1.0, 1.5, 2.0]), "skills": rng.sample(["gpu", "net"], rng.randint(0, 2)),
         "resources": {"memory": 1000}}
        for i in range(rng.randint(2, 5))
    ]  # fmt: skip
    for t in types:  # every type has a taker with every skill
        agents.append({"agent_id": f"all-{t}", "task_types": [t], "skills": ["gpu", "net"], "capacity": 2,
                       "resources": {"memory": 1000}})  # fmt: skip
    tasks = []
    for i in range(n_tasks):
        earlier = [t["id"] for t in tasks]
        tasks.append({"id": f"t{i}", "type": rng.choice(types), "duration": round(rng.uniform(0.5, 20), 2),
                      "needs": rng.sample(earlier, min(len(earlier), rng.randint(0, 3))),
                      "skills": rng.sample(["gpu", "net"], rng.randint(0, 1)),
                      "resources": {"memory": rng.choice([100, 400, 700])}})  # fmt: skip
    return tasks, agents


@pytest.mark.parametrize("policy", ["default", "critical_path", "round_robin"])
@pytest.mark.parametrize("seed", range(6))
def test_every_plan_respects_dependencies_skills_capacity_and_budgets(runtime, policy, seed):
    tasks, agents = random_case(seed)
    plan = pepper.plan(tasks, agents, policy=policy, runtime=runtime)
    assert plan.unplaced == ()
    assert valid(plan, tasks, agents) == []
    assert plan.makespan >= plan.lower_bound - 1e-9
    assert plan.lower_bound == max(plan.critical_path_length, plan.work_bound, plan.resource_bound)


def test_the_validator_catches_what_is_wrong():
    agents = pool_of([{"agent_id": "a", "task_types": ["t"], "capacity": 1, "resources": {"memory": 100}}])
    tasks = [PlanTask("x", "t", 2.0), PlanTask("y", "t", 1.0, ("x",), resources=_resources({"memory": 200}))]
    wrong = [Slot("x", "a", 0.0, 2.0), Slot("y", "a", 1.0, 3.0)]
    problems = check_schedule(wrong, tasks, agents)
    assert "y takes 2s, not 1s" in problems
    assert "y starts at 1 before its dependency x ends" in problems
    assert "a runs 2 tasks at once, over its capacity" in problems
    assert "y is placed on a, which cannot run it" in problems  # it needs more memory than a's budget
    assert check_schedule([Slot("x", "a", 0.0, 2.0)], tasks, agents) == ["y is not placed"]


def test_a_known_optimum_is_found_by_the_critical_path_policy(runtime):
    # Two identical agents. A long chain a1 -> a2 -> a3 (3 x 4 s) and six 2 s tasks. The optimum (12 s) runs
    # the chain back to back on one agent and the six short tasks on the other; serving short tasks first
    # (in submission order) delays the chain.
    tasks = [{"id": f"s{i}", "type": "t", "duration": 2} for i in range(6)]
    tasks += [{"id": "a1", "type": "t", "duration": 4}, {"id": "a2", "type": "t", "duration": 4, "needs": ["a1"]},
              {"id": "a3", "type": "t", "duration": 4, "needs": ["a2"]}]  # fmt: skip
    agents = [{"agent_id": "x", "task_types": ["t"]}, {"agent_id": "y", "task_types": ["t"]}]
    best = pepper.plan(tasks, agents, policy="critical_path", runtime=runtime)
    assert best.makespan == pytest.approx(12.0) and best.lower_bound == pytest.approx(12.0)
    assert best.critical_path == ("a1", "a2", "a3")
    naive = pepper.plan(tasks, agents, policy="default", runtime=runtime)
    assert naive.makespan > best.makespan
    assert valid(best, tasks, agents) == [] and valid(naive, tasks, agents) == []


def test_faster_agents_get_the_work_and_the_bottleneck_is_named(runtime):
    tasks = [{"id": f"t{i}", "type": "t", "duration": 3} for i in range(8)]
    agents = [{"agent_id": "slow", "task_types": ["t"]}, {"agent_id": "fast", "task_types": ["t"], "speed": 3}]
    plan = pepper.plan(tasks, agents, runtime=runtime)
    on_fast = sum(1 for s in plan.schedule if s.agent_id == "fast")
    assert on_fast == 6 and plan.makespan == pytest.approx(6.0) == plan.lower_bound  # the optimum
    assert plan.utilisation == {"slow": 1.0, "fast": 1.0} and plan.bottleneck in ("slow", "fast")
    two = pepper.plan(tasks[:2], agents, runtime=runtime)  # the slow one would finish later than both on fast
    assert {s.agent_id for s in two.schedule} == {"fast"} and two.makespan == pytest.approx(2.0)
    assert two.bottleneck == "fast" and two.utilisation["slow"] == 0.0


def test_plans_are_deterministic(runtime):
    tasks, agents = random_case(99)
    first = pepper.plan(tasks, agents, policy="critical_path", runtime=runtime)
    second = pepper.plan(tasks, agents, policy="critical_path", runtime=runtime)
    assert first.schedule == second.schedule and first.to_json() == second.to_json()


def test_a_5000_task_plan_takes_seconds_not_minutes(runtime):
    rng = random.Random(5)
    tasks, previous = [], []
    for layer in range(50):
        current = [f"l{layer}-{i}" for i in range(100)]
        for tid in current:
            tasks.append({"id": tid, "type": "t", "duration": rng.uniform(1, 10),
                          "needs": rng.sample(previous, 2) if previous else []})  # fmt: skip
        previous = current
    agents = [{"agent_id": f"a{i}", "task_types": ["t"], "capacity": 4, "speed": 1 + i / 4} for i in range(5)]
    started = time.process_time()  # CPU time of this process: what other processes do does not count
    plan = pepper.plan(tasks, agents, policy="critical_path", runtime=runtime)
    assert time.process_time() - started < 30.0  # about 2 s; a quadratic step would take minutes
    assert len(plan.schedule) == 5000 and valid(plan, tasks, agents) == []


def test_ranks_and_critical_paths_of_a_small_dag():
    tasks = [PlanTask("a", "t", 1), PlanTask("b", "t", 5, ("a",)), PlanTask("c", "t", 2, ("a",)),
             PlanTask("d", "t", 1, ("b", "c"))]  # fmt: skip
    cost = {t.task_id: t.duration for t in tasks}
    assert upward_ranks(tasks, cost) == {"d": 1, "b": 6, "c": 3, "a": 7}
    assert critical_path(tasks, cost) == (7, ["a", "b", "d"])


def test_bad_planning_input_is_refused(runtime):
    agents = [{"agent_id": "a", "task_types": ["t"]}]
    with pytest.raises(ValidationError, match="unknown planning policy 'fastest'"):
        pepper.plan([{"id": "x", "type": "t"}], agents, policy="fastest", runtime=runtime)
    with pytest.raises(CycleError, match="x -> y -> x"):
        pepper.plan([{"id": "x", "type": "t", "needs": ["y"]}, {"id": "y", "type": "t", "needs": ["x"]}], agents,
                    runtime=runtime)  # fmt: skip
    with pytest.raises(ValidationError, match="needs 'z', which is not among the tasks"):
        pepper.plan([{"id": "x", "type": "t", "needs": ["z"]}], agents, runtime=runtime)
    with pytest.raises(ValidationError, match=r"speed must be a number from 0\.001 to 1000"):
        pepper.plan([{"id": "x", "type": "t"}], [{"agent_id": "a", "task_types": ["t"], "speed": 0}], runtime=runtime)
    with pytest.raises(ValidationError, match="unknown task field 'durration'"):
        pepper.plan([{"id": "x", "type": "t", "durration": 3}], agents, runtime=runtime)
    lonely = pepper.plan([{"id": "x", "type": "t"}, {"id": "q", "type": "quantum"}], agents, runtime=runtime)
    assert lonely.unplaced == ("q",) and "1s assumed" in lonely.notes[0]


def test_an_id_given_twice_to_plan_is_refused_as_submit_tasks_refuses_it(runtime):
    agents = [{"agent_id": "a", "task_types": ["t", "u"]}]
    with pytest.raises(DuplicateTaskError, match="'x' appears twice in the tasks to plan, with different task_type"):
        pepper.plan([{"id": "x", "type": "t"}, {"id": "x", "type": "u"}], agents, runtime=runtime)
    with pytest.raises(DuplicateTaskError, match="'x' appears twice in the tasks to plan, with different metadata"):
        pepper.plan([{"id": "x", "type": "t", "duration": 2}, {"id": "x", "type": "t", "duration": 3}], agents,
                    runtime=runtime)  # fmt: skip
    with pytest.raises(DuplicateTaskError) as submitted:
        TaskOrchestrator(runtime).submit_tasks([{"id": "x", "type": "t"}, {"id": "x", "type": "u"}])
    assert "'x' appears twice in this submission, with different task_type" in str(submitted.value)
    same = pepper.plan([{"id": "x", "type": "t"}, {"id": "x", "type": "t"}], agents, runtime=runtime)
    assert [entry.task_id for entry in same.schedule] == ["x"]  # the same task given twice is one task


def test_a_plan_draws_and_serialises(runtime, tmp_path):
    from matplotlib.image import imread

    tasks, agents = random_case(3, n_tasks=20)
    plan = pepper.plan(tasks, agents, runtime=runtime)
    path = plan.to_gantt(tmp_path / "plan.png")
    assert imread(path).shape[0] > 100
    data = plan.to_dict()
    assert len(data["schedule"]) == 20 and data["makespan"] == plan.makespan and data["bottleneck"] == plan.bottleneck
    first = plan.schedule[0]
    assert data["schedule"][0] == {key: first[key] for key in ("task_id", "agent_id", "start", "end")}
    assert first.duration == first.end - first.start and plan.utilization == plan.utilisation


def _brute_force(work, rate):
    """The largest, over every union of the groups, of the work confined to it over its rate."""
    unions = {frozenset()}
    for group in work:
        unions |= {u | group for u in unions}
    unions.discard(frozenset())
    return max(sum(w for g, w in work.items() if g <= u) / sum(rate[a] for a in u) for u in unions)


def test_the_work_bound_counts_overlapping_groups_of_agents():
    # x only on A, y on A or B, z only on B, w on C: no single group is the bottleneck, A and B together are
    work = {frozenset("A"): 10.0, frozenset("AB"): 10.0, frozenset("B"): 10.0, frozenset("C"): 1.0}
    rate = {"A": 1.0, "B": 1.0, "C": 5.0}
    assert least_time(work, rate) == pytest.approx(15.0)  # 30 s of work on A and B, nothing else may help
    assert least_time({}, rate) == 0.0
    assert least_time({frozenset("ABC"): 14.0}, rate) == pytest.approx(2.0)


@pytest.mark.parametrize("seed", range(30))
def test_the_work_bound_equals_the_best_set_of_agents(seed):
    rng = random.Random(seed)
    agents = [f"a{i}" for i in range(rng.randint(1, 6))]
    rate = {a: rng.choice([0.5, 1.0, 2.0, 3.0]) * rng.randint(1, 3) for a in agents}
    work = {frozenset(rng.sample(agents, rng.randint(1, len(agents)))): rng.uniform(1, 100) for _ in range(6)}
    assert least_time(work, rate) == pytest.approx(_brute_force(work, rate), rel=1e-9)
    assert least_time(work, rate) <= _brute_force(work, rate)  # a true lower bound, never above


def test_speeds_are_kept_however_long_the_virtual_run(runtime):
    chain = [{"id": f"s{i}", "type": "t", "duration": 36000, "needs": [f"s{i - 1}"] if i else []} for i in range(10)]
    agents = [{"agent_id": "slow", "task_types": ["t"]}, {"agent_id": "fast", "task_types": ["t"], "speed": 2}]
    plan = pepper.plan(chain, agents, runtime=runtime)  # 50 virtual hours: no learned estimate may fade
    assert {s.agent_id for s in plan.schedule} == {"fast"} and plan.makespan == pytest.approx(180000)


def test_tasks_of_no_duration_are_valid_and_bounds_count_only_what_can_run(runtime):
    agents = [{"agent_id": "x", "task_types": ["t"]}]
    tasks = [{"id": "z", "type": "t", "duration": 0}, {"id": "b", "type": "t", "duration": 1, "needs": ["z"]}]
    plan = pepper.plan(tasks, agents, runtime=runtime)
    assert valid(plan, tasks, agents) == [] and plan.makespan == 1.0
    stranded = [{"id": "a", "type": "t", "duration": 5}, {"id": "b", "type": "nobody", "duration": 100, "needs": ["a"]}]
    plan = pepper.plan(stranded, agents, runtime=runtime)
    assert plan.unplaced == ("b",) and plan.lower_bound == 5.0 and plan.critical_path == ("a",)
    assert plan.lower_bound <= plan.makespan


def test_a_pool_with_none_of_a_resource_runs_nothing_that_needs_it(runtime):
    tasks = [{"id": "g", "type": "t", "duration": 1, "resources": {"gpu": 1}}, {"id": "c", "type": "t", "duration": 1}]
    plan = pepper.plan(tasks, [{"agent_id": "x", "task_types": ["t"]}], pool={"gpu": 0}, runtime=runtime)
    assert plan.unplaced == ("g",) and [s.task_id for s in plan.schedule] == ["c"]


def test_durations_and_speeds_are_checked(runtime):
    tasks, agents = [{"id": "x", "type": "t"}], [{"agent_id": "a", "task_types": ["t"]}]
    with pytest.raises(ValidationError, match=r"durations names 'xx', which is neither.*Did you mean 'x'"):
        pepper.plan(tasks, agents, durations={"xx": 3}, runtime=runtime)
    with pytest.raises(ValidationError, match="durations must map task ids or task types"):
        pepper.plan(tasks, agents, durations=[1, 2], runtime=runtime)
    for speed in (float("nan"), float("inf"), True, 1e-300, 1e300):
        with pytest.raises(ValidationError, match=r"speed must be a number from 0\.001 to 1000"):
            pepper.plan(tasks, [{"agent_id": "a", "task_types": ["t"], "speed": speed}], runtime=runtime)
    for duration in (1e300, "367d"):
        with pytest.raises(ValidationError, match="duration of x must be at most 366 days"):
            pepper.plan(tasks, agents, durations={"t": duration}, runtime=runtime)
    assert pepper.plan(tasks, agents, durations={"t": "2s"}, runtime=runtime).makespan == 2.0


def test_a_workflow_file_without_agents_is_planned_on_the_registered_ones(runtime, tmp_path):
    path = tmp_path / "flow.yaml"
    path.write_text("name: flow\nsteps:\n  - id: a\n    type: t\n  - id: b\n    type: t\n    needs: a\n")
    pepper.agent("w", task_types=["t"], runtime=runtime)(lambda task: None)
    plan = pepper.plan(path, durations={"t": 1}, runtime=runtime)
    assert plan.makespan == 2.0 and {s.agent_id for s in plan.schedule} == {"w"}


def test_the_critical_path_policy_ranks_steps_even_before_any_agent_is_known(runtime):
    from pepper.core import WorkflowController
    from pepper.core.planning import prepare_run

    flow = WorkflowController("ranked", runtime)
    flow.add_step("long", "t")
    flow.add_step("after-long", "t", dependencies=["long"])
    flow.add_step("alone", "t")
    spec, timeline = prepare_run(flow.spec, runtime, "critical_path")  # no agent: nothing to predict on
    priority = {s.step_id: s.template.priority for s in spec.steps}
    assert timeline is None and priority["long"] > priority["alone"] and priority["long"] > priority["after-long"]


def test_the_bound_counts_what_the_pool_can_hold_at_once(runtime):
    tasks = [{"id": f"t{i}", "type": "t", "duration": 10, "resources": {"cpu": 1}} for i in range(6)]
    agents = [
        {"agent_id": "a", "task_types": ["t"], "capacity": 4},
        {"agent_id": "b", "task_types": ["t"], "capacity": 4},
    ]
    plan = pepper.plan(tasks, agents, pool={"cpu": 2}, runtime=runtime)  # two at a time, whatever the agents
    assert plan.resource_bound == plan.lower_bound == plan.makespan == 30.0
    assert pepper.plan(tasks, agents, runtime=runtime).lower_bound == 10.0  # no pool limit given


@pytest.mark.parametrize("policy", ["default", "critical_path"])
@pytest.mark.parametrize("seed", range(4))
def test_plans_never_hold_more_than_the_pool(runtime, policy, seed):
    rng = random.Random(seed)
    agents = [{"agent_id": f"a{i}", "task_types": ["t"], "capacity": rng.randint(1, 4)} for i in range(3)]
    tasks = [
        {"id": f"t{i}", "type": "t", "duration": rng.uniform(1, 9), "resources": {"cpu": rng.choice([1, 2])},
         "needs": rng.sample([f"t{j}" for j in range(i)], min(i, rng.randint(0, 2)))}
        for i in range(40)
    ]  # fmt: skip
    plan = pepper.plan(tasks, agents, pool={"cpu": 3}, policy=policy, runtime=runtime)
    plan_tasks = [PlanTask(t["id"], "t", t["duration"], tuple(t["needs"]), resources=_resources(t["resources"]))
                  for t in tasks]  # fmt: skip
    assert check_schedule(plan.schedule, plan_tasks, pool_of(agents), pool={"cpu": 3}) == []
    assert check_schedule(plan.schedule, plan_tasks, pool_of(agents), pool={"cpu": 1.5}) != []  # it can tell
    assert plan.makespan >= plan.lower_bound >= plan.resource_bound > 0


def test_budgets_that_together_exceed_the_pool_are_refused_and_caught(runtime):
    agents = [{"agent_id": n, "task_types": ["t"], "capacity": 2, "resources": {"cpu": 2}} for n in ("a", "b")]
    tasks = [{"id": f"t{i}", "type": "t", "duration": 10, "resources": {"cpu": 1}} for i in range(4)]
    with pytest.raises(ValidationError, match="budgets together ask for more than the pool has: cpu short by 2"):
        pepper.plan(tasks, agents, pool={"cpu": 2}, runtime=runtime)
    plan = pepper.plan(tasks, agents, pool={"cpu": 4}, runtime=runtime)
    plan_tasks = [PlanTask(t["id"], "t", 10, resources=_resources(t["resources"])) for t in tasks]
    assert check_schedule(plan.schedule, plan_tasks, pool_of(agents), pool={"cpu": 4}) == []
    (problem,) = check_schedule(plan.schedule, plan_tasks, pool_of(agents), pool={"cpu": 2})
    assert problem.startswith("the agents' budgets alone hold more than the pool has")
