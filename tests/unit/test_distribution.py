"""Learned performance, agent selection and workload plans: pure, in virtual time."""

from __future__ import annotations

import random

import pytest

from pepper.errors import CycleError
from pepper.model.agent import AgentSpec
from pepper.model.requirements import Requirements
from pepper.scheduling.balance import PlanTask, distribute, round_robin
from pepper.scheduling.performance import Performance
from pepper.scheduling.selection import Candidate, choose, rejection_reasons
from pepper.testing import StateHarness, make_agent, make_task

HOUR = 3600.0


def spec(agent_id, types=("docs",), skills=(), capacity=1):
    return AgentSpec.build(agent_id, task_types=list(types), skills=list(skills), capacity=capacity)


# -- scores -------------------------------------------------------------------------------


def test_a_new_agent_has_no_evidence_and_a_neutral_score_so_it_gets_tried():
    parts = Performance().parts("new", now=0.0)
    assert (parts.success, parts.timeliness, parts.rating) == (0.75, None, None)
    assert parts.score == 0.75 and not parts.evidence


@pytest.mark.parametrize("tasks", [1, 3, 10, 200])
def test_a_flawless_record_without_ratings_scores_at_least_0_9(tasks):
    alone, with_peer = Performance(), Performance()
    for i in range(tasks):
        alone.record("a", "docs", True, 1.0, float(i))
        with_peer.record("a", "docs", True, 1.0, float(i))
        with_peer.record("peer", "docs", True, 1.0, float(i))  # just as fast: on time
    assert alone.parts("a", float(tasks)).evidence
    assert alone.score("a", float(tasks)) >= 0.9
    assert with_peer.score("a", float(tasks)) >= 0.9


def test_missing_signals_do_not_count_against_an_agent():
    perf = Performance()
    for i in range(10):
        perf.record("a", "docs", True, 1.0, float(i))
    parts = perf.parts("a", 10.0)
    # no other agent ran docs and nobody rated it: both are left out, not guessed
    assert parts.timeliness is None and parts.rating is None
    assert parts.score == pytest.approx(parts.success)


@pytest.mark.parametrize("tasks", [2, 10, 100])
def test_an_agent_failing_half_its_tasks_falls_below_0_6_even_when_fast(tasks):
    perf = Performance()
    for i in range(tasks):
        perf.record("flaky", "docs", i % 2 == 0, 1.0 if i % 2 == 0 else None, float(i))
        perf.record("slow", "docs", True, 5.0, float(i))  # a peer it beats on time
    parts = perf.parts("flaky", float(tasks))
    assert parts.timeliness == 1.0 and parts.score < 0.6


def test_an_agent_rated_1_of_5_falls_below_0_6_whatever_its_record():
    perf = Performance()
    for i in range(50):
        perf.record("a", "docs", True, 1.0, float(i))
        perf.record("slow", "docs", True, 5.0, float(i))
    perf.rate("a", 1, 50.0)
    parts = perf.parts("a", 50.0)
    assert parts.success > 0.99 and parts.timeliness == 1.0 and parts.rating == 0.0
    assert parts.score < 0.6
    perf.rate("only-rated", 1, 0.0)
    assert perf.score("only-rated", 0.0) < 0.6


def test_the_score_rises_with_successes_and_good_ratings_and_falls_with_failures():
    perf = Performance()
    start = perf.score("a", 0.0)
    for i in range(10):
        perf.record("a", "docs", True, 1.0, float(i))
    after_successes = perf.score("a", 10.0)
    perf.rate("a", 5, 10.0)
    after_rating = perf.score("a", 10.0)
    for i in range(10):
        perf.record("a", "docs", False, None, 11.0 + i)
    after_failures = perf.score("a", 21.0)
    assert start < after_successes < after_rating and after_failures < after_successes
    perf.rate("b", 1, 0.0)
    assert perf.score("b", 0.0) < start


def test_recent_results_weigh_more_than_old_ones():
    improved, declined = Performance(half_life=HOUR), Performance(half_life=HOUR)
    for i in range(20):  # the same outcomes, in opposite orders, two days apart
        improved.record("a", "docs", False, None, 0.0 + i)
        improved.record("a", "docs", True, 1.0, 2 * 24 * HOUR + i)
        declined.record("a", "docs", True, 1.0, 0.0 + i)
        declined.record("a", "docs", False, None, 2 * 24 * HOUR + i)
    now = 2 * 24 * HOUR + 30
    assert improved.parts("a", now).success > 0.9 > 0.1 > declined.parts("a", now).success
    # and with nothing new, everything fades back towards the prior
    assert declined.parts("a", now + 30 * 24 * HOUR).success == pytest.approx(0.75, abs=0.01)


def test_timeliness_rewards_the_faster_of_two_agents_and_estimates_fall_back_sensibly():
    perf = Performance()
    for i in range(5):
        perf.record("fast", "docs", True, 1.0, float(i))
        perf.record("slow", "docs", True, 3.0, float(i))
    # as fast as the others or faster is on time; three times slower than them is half as timely
    assert perf.parts("fast", 5.0).timeliness == 1.0
    assert perf.parts("slow", 5.0).timeliness == pytest.approx(0.5)
    assert perf.estimate("fast", "docs", 5.0) == pytest.approx(1.0)
    assert perf.estimate("newcomer", "docs", 5.0) == pytest.approx(2.0)  # the type's mean
    assert perf.estimate("newcomer", "unknown", 5.0) == 1.0  # nothing known: one second


def test_failing_health_checks_halve_the_score():
    perf = Performance()
    before = perf.score("a", 0.0)
    perf.set_health("a", False)
    assert perf.score("a", 0.0) == pytest.approx(before / 2)


def test_expected_time_counts_retries():
    perf = Performance()
    for i in range(40):
        perf.record("steady", "docs", True, 1.0, float(i))
        perf.record("flaky", "docs", i % 2 == 0, 1.0 if i % 2 == 0 else None, float(i))
    assert perf.expected_time("flaky", "docs", 40.0) > 1.8 * perf.expected_time("steady", "docs", 40.0)


# -- selection ----------------------------------------------------------------------------


def test_every_rejection_carries_its_reason():
    busy_sick = Candidate(spec("a", skills=["md"]), running=1, healthy=False, score=0.3,
                          free_resources={"cpu": 0.5})  # fmt: skip
    req = Requirements.parse({"skills": ["md", "latex"], "availability": True, "performance_score": 0.8,
                              "resources": {"cpu": 1}})  # fmt: skip
    reasons = rejection_reasons(busy_sick, "review", req)
    assert reasons == (
        "does not accept task type 'review' (accepts docs)",
        "lacks skill latex",
        "is failing its health checks",
        "is at capacity 1/1",
        "has performance score 0.30, below the 0.80 asked for",
        "has too few free resources: cpu short by 0.5 cores",
    )
    assert rejection_reasons(Candidate(spec("b")), "docs", Requirements()) == ()


def test_a_minimum_score_filters_agents_by_their_record_but_not_new_agents():
    req = Requirements.parse({"performance_score": 0.8})
    proven = Candidate(spec("proven"), score=0.95)
    poor = Candidate(spec("poor"), score=0.5)
    new = Candidate(spec("new"), score=0.75, evidence=False)
    choice = choose([proven, poor, new], "docs", req)
    assert [c.agent_id for c in choice.eligible] == ["proven", "new"]
    assert choice.rejected == {"poor": ("has performance score 0.50, below the 0.80 asked for",)}
    assert choice.notes == {"new": ("has no results or ratings yet, so the minimum score 0.80 does not apply to it",)}
    # ruled out for another reason: its reasons still say the score was not held against it
    reasons = rejection_reasons(new, "review", req)
    assert reasons[0].startswith("does not accept task type 'review'")
    assert reasons[-1] == "has no results or ratings yet, so the minimum score 0.80 does not apply to it"


def test_busy_agents_stay_eligible_unless_availability_is_asked():
    busy = Candidate(spec("busy"), running=1, available_in=2.0)
    assert choose([busy], "docs", Requirements()).best is busy
    assert choose([busy], "docs", Requirements(availability=True)).best is None


def test_the_earliest_projected_finish_wins_then_the_higher_score():
    slow_free = Candidate(spec("slow"), estimate=5.0, score=0.9)
    fast_busy = Candidate(spec("fast"), running=1, estimate=1.0, score=0.9, available_in=2.0)
    choice = choose([slow_free, fast_busy], "docs", Requirements())
    assert choice.best is fast_busy  # 2 + 1.1 beats 0 + 5.6
    twin_a, twin_b = Candidate(spec("a"), score=0.7, expected=1.0), Candidate(spec("b"), score=0.9, expected=1.0)
    assert choose([twin_a, twin_b], "docs", Requirements()).best is twin_b


# -- workload plans -------------------------------------------------------------------------


def durations(table):
    return lambda agent_id, task_type: table[task_type]


def test_longest_first_reaches_a_known_optimum():
    sizes = {"t4": 4.0, "t3": 3.0, "t2": 2.0}
    tasks = [PlanTask(f"{kind}-{i}", kind) for i, kind in enumerate(["t4", "t3", "t3", "t2", "t2", "t2"])]
    agents = [Candidate(spec("a", types=["*"])), Candidate(spec("b", types=["*"]))]
    plan = distribute(tasks, agents, durations(sizes))
    assert plan.makespan == 8.0  # 16 units of work on two agents: the optimum
    assert len(plan.placements) == 6 and not plan.unassigned


def test_a_faster_agent_gets_more_and_capacity_means_parallel_slots():
    tasks = [PlanTask(f"t{i}", "docs") for i in range(6)]
    agents = [Candidate(spec("quick")), Candidate(spec("double", capacity=2))]
    plan = distribute(tasks, agents, lambda agent, _type: 1.0 if agent == "quick" else 2.0)
    assert plan.makespan == 4.0  # the optimum: e.g. quick 4 in a row, double 2 side by side
    assert len(plan.by_agent()["quick"]) >= 3
    assert max(p.end for p in plan.placements if p.agent_id == "double") <= 4.0


def test_tasks_no_agent_can_take_are_listed_with_the_reasons():
    plan = distribute([PlanTask("x", "translate"), PlanTask("y", "docs", Requirements.parse({"skills": ["gpu"]}))],
                      [Candidate(spec("a"))], durations({"docs": 1.0, "translate": 1.0}))  # fmt: skip
    assert plan.placements == ()
    assert plan.unassigned["x"]["a"][0].startswith("does not accept task type 'translate'")
    assert plan.unassigned["y"]["a"] == ("lacks skill gpu",)


def test_a_task_starts_after_the_tasks_of_the_plan_it_depends_on_and_a_cycle_is_refused():
    agents = [Candidate(spec("a", types=["t"], capacity=2))]
    tasks = [PlanTask("docs", "t", dependencies=("build",)), PlanTask("build", "t"), PlanTask("lint", "t"),
             PlanTask("ship", "t", dependencies=("docs", "lint", "done-before"))]  # fmt: skip
    plan = distribute(tasks, agents, lambda agent, task_type: 2.0)
    at = {p.task_id: (p.start, p.end) for p in plan.placements}
    assert at == {"build": (0.0, 2.0), "lint": (0.0, 2.0), "docs": (2.0, 4.0), "ship": (4.0, 6.0)}
    assert plan.makespan == 6.0  # two slots, yet a chain of three: each waits for the one before it
    with pytest.raises(CycleError, match="dependency cycle: x -> y -> x"):
        distribute([PlanTask("x", "t", dependencies=("y",)), PlanTask("y", "t", dependencies=("x",))], agents,
                   lambda agent, task_type: 1.0)  # fmt: skip


def test_the_dependents_of_a_task_that_cannot_be_placed_are_listed_with_it():
    tasks = [PlanTask("render", "gpu"), PlanTask("upload", "t", dependencies=("render",)),
             PlanTask("announce", "t", dependencies=("upload",)), PlanTask("free", "t")]  # fmt: skip
    plan = distribute(tasks, [Candidate(spec("a", types=["t"]))], lambda agent, task_type: 1.0)
    assert plan.assignments == {"free": "a"} and set(plan.unassigned) == {"render", "upload", "announce"}
    assert plan.unassigned["upload"] == {"a": ("waits for task 'render', which could not be placed",)}
    assert plan.unassigned["announce"] == {"a": ("waits for task 'upload', which could not be placed",)}


@pytest.mark.parametrize("seed", range(40))
def test_on_random_cases_the_plan_is_never_worse_than_round_robin(seed):
    rng = random.Random(seed)
    types = ["a", "b", "c"]
    agents = [Candidate(spec(f"g{i}", types=rng.sample(types, rng.randint(1, 3)), capacity=rng.randint(1, 3)))
              for i in range(rng.randint(2, 6))]  # fmt: skip
    speed = {a.agent_id: rng.uniform(0.5, 2.0) for a in agents}
    base = {t: rng.uniform(1, 10) for t in types}
    tasks = [PlanTask(f"t{i}", rng.choice(types)) for i in range(rng.randint(5, 60))]
    expected = lambda agent_id, task_type: base[task_type] / speed[agent_id]  # noqa: E731
    ours, theirs = distribute(tasks, agents, expected), round_robin(tasks, agents, expected)
    assert ours.assignments.keys() == theirs.assignments.keys()
    assert ours.makespan <= theirs.makespan + 1e-9


# -- the live scheduler ----------------------------------------------------------------------


def test_a_free_agent_leaves_a_task_to_a_much_better_busy_one_and_looks_again_later():
    harness = StateHarness([make_agent("good"), make_agent("poor")])
    for i in range(20):  # learned: "poor" fails half its attempts
        harness.state.performance.record("good", "task", True, 1.0, 0.0)
        harness.state.performance.record("poor", "task", i % 2 == 0, 1.0, 0.0)
    harness.submit(make_task("first"))
    harness.advance(0.5)  # good will be free in about half a second
    harness.submit(make_task("second", now=0.5))
    assert [(s.task_id, s.agent_id) for s in harness.started] == [("first", "good")]  # "second" waits for good
    (recheck,) = [a for a in harness.actions if a.__class__.__name__ == "WakeAt" and a.key[0] == "fill"]
    harness.advance(0.4)
    harness.finish("first", result=1)
    assert [(s.task_id, s.agent_id) for s in harness.started][-1] == ("second", "good")
    assert recheck.at > harness.clock.now()


# -- the fast path of selection ----------------------------------------------------------------


@pytest.mark.parametrize("seed", range(20))
def test_the_fast_best_choice_agrees_with_ranking_every_candidate(seed):
    from pepper.engine.inspection import best_matching, candidate, directory, live_agents

    rng = random.Random(seed)
    types, skills = ["a", "b", "c"], ["x", "y", "z"]
    agents = [
        make_agent(f"agent-{i:02d}", rng.sample(types, rng.randint(1, 2)), skills=rng.sample(skills, rng.randint(0, 3)),
                   capacity=rng.randint(1, 2))
        for i in range(rng.randint(1, 25))
    ]  # fmt: skip
    harness = StateHarness(agents)
    state = harness.state
    for i in range(rng.randint(0, 60)):  # a learned history: some fast, some failing
        agent = rng.choice(agents).agent_id
        state.performance.record(agent, rng.choice(types), rng.random() < 0.8, rng.uniform(0.1, 3.0), i * 0.1)
    harness.clock.set(6.0)
    harness.submit(*[make_task(f"t{i}", rng.choice(types), now=6.0) for i in range(rng.randint(0, 20))])
    for agent in rng.sample(list(state.agents.values()), k=len(state.agents) // 4):
        agent.accepting = False
    now = 6.5
    for task_type in types:
        for wanted in ([], ["x"], ["x", "y"], ["z"]):
            req = Requirements.parse({"skills": wanted})
            matching = directory(state).matching(task_type, req.skills)
            fast = best_matching(state, matching, task_type, now)
            everyone = [candidate(state, a, task_type, now) for a in state.agents.values()]
            full = choose(everyone, task_type, req).best
            assert (fast and fast.agent_id) == (full and full.agent_id)
            pool = directory(state).pool(task_type, req.skills)
            found = live_agents(state, now).best_agent_in(pool, task_type)  # the agent, without its candidate
            assert (found and (found[0].spec.agent_id, found[1])) == (full and (full.agent_id, full.projected_finish))
            assert live_agents(state, now).best_in(pool, task_type) == full
            assert {a.agent_id for a in matching} == {
                a.agent_id for a in state.agents.values() if a.spec.accepts(task_type) and req.skills <= a.spec.skills
            }


# -- the stored backlog (what the CLI sees without an engine) ------------------------------------


def test_only_tasks_the_same_agents_would_serve_count_as_ahead():
    from pepper.scheduling.backlog import Waiting, ahead_of, shares
    from pepper.scheduling.eligibility import Route

    md, rust = Route("review", None, frozenset({"md"})), Route("review", None, frozenset({"rust"}))
    plain = Route("review", None, frozenset())
    waiting = [
        Waiting("md-1", md, 0, 0.0, 0),  # nobody has "md": it never blocks anyone else
        Waiting("plain-1", plain, 0, 0.0, 1),
        Waiting("plain-urgent", plain, 10, 5.0, 2),
        Waiting("rust-1", rust, 0, 1.0, 3),
        Waiting("plain-late", plain, 0, 9.0, 4),
    ]
    agents = [spec("generalist", ["review"]), spec("rustacean", ["review"], skills=["rust"])]
    me = waiting[3]
    # plain-1 (older) and plain-urgent (higher priority) go to agents that could run rust-1; md-1 to nobody
    assert ahead_of(me, waiting, agents, ageing_per_minute=10.0) == 2
    assert ahead_of(waiting[0], waiting, agents, ageing_per_minute=10.0) == 0
    assert ahead_of(waiting[0], waiting, [], ageing_per_minute=10.0) == 0
    assert ahead_of(waiting[4], waiting, [], ageing_per_minute=10.0) == 2  # no agents: its own route only
    split = shares(waiting, agents)
    assert split == pytest.approx({"generalist": 1.5, "rustacean": 2.5})


def test_names_may_be_a_list_or_one_string_separated_by_commas():
    from pepper.errors import ValidationError
    from pepper.model.requirements import parse_names

    assert parse_names(["a", " b "], "skills") == {"a", "b"}
    assert parse_names("latex", "skills") == {"latex"}
    assert parse_names("build, test", "task_types") == {"build", "test"}
    with pytest.raises(ValidationError, match="skills must be a list of strings"):
        parse_names(5, "skills")
