"""The chooser's indexes (free agents per route, start times in order, bounds on expected times) pick exactly
what looking at every agent picks: on random pools, histories and loads (slots held by calls that outlived
their attempt among them), step by step, for both."""

from __future__ import annotations

import random

import pytest

from pepper.engine.state import EngineState
from pepper.model.events import CallHeld, CallReturned
from pepper.scheduling.choice import MARGIN, Chooser
from pepper.scheduling.load import AgentLoad
from pepper.scheduling.performance import Performance
from pepper.scheduling.routing import RouteInfo
from pepper.testing import StateHarness, make_agent, make_task

# -- the full scans the indexes replace (the objective as docs/design.md states it) ------------------


def scan_available_in(state: EngineState, agent: AgentLoad, now: float) -> float:
    if agent.free > 0:
        return 0.0
    soonest = float("inf")
    for task_id in agent.running:
        t = state.tasks[task_id]
        elapsed = max(0.0, now - (t.started_at or 0.0))
        estimate = state.performance.estimate(agent.spec.agent_id, t.task.task_type, now)
        soonest = min(soonest, estimate - elapsed if estimate > elapsed else elapsed)
    if soonest == float("inf") and len(agent.held) >= agent.spec.capacity:
        return soonest  # calls that outlived their attempt hold every slot: none frees at a known time
    return soonest if soonest != float("inf") else 0.0


def scan_best_free(state: EngineState, agents: list[AgentLoad], task_type: str, now: float) -> AgentLoad | None:
    free = [a for a in agents if a.free > 0]
    if not free:
        return None
    expected = state.performance.expected_time
    return min(free, key=lambda a: (expected(a.spec.agent_id, task_type, now), a.utilisation, a.order))


def scan_defer(state: EngineState, agent: AgentLoad, agents: list[AgentLoad], task_type: str, now: float,
               backlog: int) -> float | None:  # fmt: skip
    if len(agents) == 1:
        return None
    expected = state.performance.expected_time
    mine = expected(agent.spec.agent_id, task_type, now)
    if now + mine <= now:  # it would be through before the clock moves: looking again then would be now
        return None
    for other in agents:
        if other is agent or other.free > 0 or not other.accepting:
            continue
        through = (
            scan_available_in(state, other, now)
            + expected(other.spec.agent_id, task_type, now) * max(1, backlog) / other.spec.capacity
        )
        if through < mine * (1 - MARGIN):
            return now + mine
    return None


def check(state: EngineState, info: RouteInfo, rng: random.Random, now: float) -> None:
    chooser: Chooser = state.chooser
    for agent in info.agents:
        assert chooser.available_in(agent, now) == scan_available_in(state, agent, now)
    idle, known = state.routing.candidates(info)
    fast = chooser.best_free([idle, *known.values()] if idle is not None else known.values(), "task", now)
    assert fast is scan_best_free(state, info.agents, "task", now)
    assert chooser.best_among(idle, known, "task", now) is fast
    for agent in rng.sample(info.agents, k=min(len(info.agents), 12)):
        backlog = rng.choice([1, 2, 5, 50, 1000])
        assert chooser.defer(agent, info.agents, "task", now, None, backlog, max_capacity=info.max_capacity) == (
            scan_defer(state, agent, info.agents, "task", now, backlog)
        )


@pytest.mark.parametrize("seed", range(40))
def test_the_indexed_choice_is_the_full_scans_on_random_pools(seed: int) -> None:
    rng = random.Random(seed)
    count = rng.choice([2, 3, 8, 30, 120])
    specs = [make_agent(f"agent-{i:03d}", capacity=rng.choice([1, 1, 2, 4])) for i in range(count)]
    harness = StateHarness(specs)
    state = harness.state
    known = rng.sample(specs, k=rng.randint(0, count))  # some agents have a record, the others none
    for i in range(rng.randint(0, 4 * count)):
        if not known:
            break
        agent = rng.choice(known).agent_id
        speed = 1.0 + (hash(agent) % 7) / 3  # each its own pace, with noise
        state.performance.record(agent, "task", rng.random() < 0.85, speed * rng.uniform(0.5, 1.5), i * 0.01)
    for agent in rng.sample(known, k=len(known) // 5):
        state.performance.rate(agent.agent_id, rng.randint(1, 5), 0.5)
    harness.clock.set(10.0)
    serial = 0
    info = None
    held: list[tuple[str, str, int]] = []
    for _step in range(60):
        move = rng.random()
        if move < 0.45:
            batch = [make_task(f"t{serial + i}", now=harness.clock.now()) for i in range(rng.randint(1, count))]
            serial += len(batch)
            harness.submit(*batch)
        elif move < 0.8 and harness.running():
            for task_id in rng.sample(harness.running(), k=rng.randint(1, len(harness.running()))):
                if rng.random() < 0.1:  # its call outlives the attempt and keeps the slot
                    t = state.tasks[task_id]
                    assert t.agent_id is not None
                    state.handle(CallHeld(t.agent_id, task_id, t.attempts, harness.clock.now()))
                    held.append((t.agent_id, task_id, t.attempts))
                harness.finish(task_id, error="boom" if rng.random() < 0.1 else None, result=1)
        elif move < 0.85 and held:
            agent_id, task_id, attempt = held.pop(rng.randrange(len(held)))
            harness._apply(state.handle(CallReturned(agent_id, task_id, attempt, harness.clock.now())))
        else:
            harness.advance(rng.choice([0.01, 0.3, 1.0, 2.5, 7.0]))
        if info is None and state.tasks:
            info = next(iter(state.tasks.values())).route
        if info is not None:
            check(state, info, rng, harness.clock.now())
    assert info is not None


@pytest.mark.parametrize("seed", range(40))
def test_among_many_free_agents_with_records_the_choice_is_the_full_scans(seed: int) -> None:
    # Most agents free and known, as when one task at a time follows a burst: looked at in order of their mean
    # durations. Some agents have no mean of the type (only failures, only ratings, only another type's results),
    # some means are equal (exact durations), and some fade (no result for thirty half-lives).
    rng = random.Random(seed)
    count = rng.choice([9, 12, 40, 150])
    specs = [make_agent(f"agent-{i:03d}", ["task", "other"], capacity=rng.choice([1, 1, 2, 3])) for i in range(count)]
    harness = StateHarness(specs)
    state = harness.state
    performance = state.performance
    exact = rng.random() < 0.5  # durations without noise: many agents share a mean
    paces = {spec.agent_id: rng.choice([0.5, 1.0, 1.0, 2.0, 3.0]) for spec in specs}

    def learn(agent_id: str, at: float) -> None:
        move = rng.random()
        if move < 0.1:
            performance.rate(agent_id, rng.randint(1, 5), at)
        elif move < 0.2:
            performance.record(agent_id, "other", True, rng.uniform(0.1, 5.0), at)
        else:
            took = paces[agent_id] * (1.0 if exact else rng.uniform(0.8, 1.2))
            performance.record(agent_id, "task", rng.random() < 0.9, took, at)

    for i in range(rng.randint(count, 4 * count)):
        learn(rng.choice(specs).agent_id, i * 0.01)
    harness.clock.set(10.0)
    serial = 0
    info = None
    for _step in range(40):
        move = rng.random()
        if move < 0.35:
            batch = [make_task(f"t{serial + i}", now=harness.clock.now()) for i in range(rng.randint(1, 3))]
            serial += len(batch)
            harness.submit(*batch)
        elif move < 0.65 and harness.running():
            for task_id in rng.sample(harness.running(), k=rng.randint(1, len(harness.running()))):
                harness.finish(task_id, error="boom" if rng.random() < 0.1 else None, result=1)
        elif move < 0.8:
            for spec in rng.sample(specs, k=rng.randint(1, 4)):
                learn(spec.agent_id, harness.clock.now())
        elif move < 0.85:
            harness.clock.set(harness.clock.now() + rng.choice([40 * 3600.0, 120_000.0]))  # idle agents' means fade
        else:
            harness.advance(rng.choice([0.01, 0.5, 1.0, 3.0]))
        if info is None and state.tasks:
            info = next(iter(state.tasks.values())).route
        if info is not None:
            now = harness.clock.now()
            best = state.chooser.best_among(*state.routing.candidates(info), "task", now)
            assert best is scan_best_free(state, info.agents, "task", now)
            check_selection(state, now)
            barred = set(rng.sample(sorted(info.free), k=len(info.free) // 3))  # as if they lacked the resources

            def usable(a: AgentLoad, barred: set[str] = barred) -> bool:
                return a.spec.agent_id not in barred

            best = state.chooser.best_usable(info.free, "task", now, usable)
            assert best is scan_best_free(state, [a for a in info.agents if usable(a)], "task", now)
            if rng.random() < 0.3:  # asked at an earlier time (a wall clock set back; a reader's older read)
                earlier = now - rng.choice([0.5, 40 * 3600.0])
                best = state.chooser.best_among(*state.routing.candidates(info), "task", earlier)
                assert best is scan_best_free(state, info.agents, "task", earlier)
                check_selection(state, earlier)
    assert info is not None


def check_selection(state: EngineState, now: float) -> None:
    """``select_agent``'s choice over a directory pool is the best of ranking every agent of it, on the engine's
    thread and on a reader's (which leaves the index of means as it is)."""
    from pepper.engine.inspection import AgentsView, directory, live_agents

    reader = state.performance.reader()
    for view in (
        live_agents(state, now),
        AgentsView(directory(state), reader, Chooser(reader, state.running_info), now, state.routing.queued_share,
                   lambda agent_id: 0.0),
    ):  # fmt: skip
        pool = directory(state).pool("task", frozenset())
        fast, full = view.best_in(pool, "task"), view.best_matching(pool.agents, "task")
        assert (fast and fast.agent_id) == (full and full.agent_id)


def test_an_agent_whose_mean_faded_is_ranked_by_the_types_estimate() -> None:
    # "slow" was the fastest once, long ago: its mean faded and its estimate is the type's now, slower than
    # "steady"'s own. Nine more agents make the chooser walk the agents in order of their means.
    harness = StateHarness([make_agent(name) for name in ("slow", "steady", *(f"x{i}" for i in range(9)))])
    state = harness.state
    performance = state.performance
    performance.record("slow", "task", True, 0.1, 0.0)
    for i in range(9):
        performance.record(f"x{i}", "task", True, 50.0, 0.0)
    harness.clock.set(40 * 3600.0)
    performance.record("steady", "task", True, 2.0, harness.clock.now())
    performance.record("x0", "task", True, 100.0, harness.clock.now())
    now = harness.clock.now()
    assert performance.estimate("slow", "task", now) == performance.type_estimate("task", now)
    harness.submit(make_task("t0", now=now))
    info = state.tasks["t0"].route
    assert info is not None and state.tasks["t0"].agent_id == "steady"
    harness.finish("t0", result=1)
    assert state.chooser.best_among(*state.routing.candidates(info), "task", now) is state.agents["steady"]
    assert scan_best_free(state, info.agents, "task", now) is state.agents["steady"]


def test_an_agent_that_gets_its_first_record_while_free_is_ranked_by_it() -> None:
    harness = StateHarness([make_agent("a"), make_agent("b")])
    state = harness.state
    harness.submit(make_task("t0"))
    harness.advance(1.0)
    harness.finish("t0", result=1)  # "a" ran it in a second: it is known now, "b" is not
    info = state.tasks["t0"].route
    assert info is not None
    state.performance.record("b", "task", True, 0.01, 1.0)  # "b" learns it is very fast while free
    assert state.chooser.best_among(*state.routing.candidates(info), "task", 1.0) is state.agents["b"]
    assert scan_best_free(state, info.agents, "task", 1.0) is state.agents["b"]


def test_an_agent_that_stops_taking_tasks_leaves_the_free_agents_and_comes_back() -> None:
    from pepper.model import events as ev

    harness = StateHarness([make_agent("a"), make_agent("b")])
    state = harness.state
    harness.submit(make_task("t0"))
    info = state.tasks["t0"].route
    assert info is not None and set(info.free) == {"b"}
    harness._apply(state.handle(ev.AgentAdded(make_agent("c"), 0.0, waiting_for="waits for its budget")))
    assert "c" not in info.free
    harness._apply(state.handle(ev.AgentReady("c", 0.0)))
    assert "c" in info.free
    harness._apply(state.handle(ev.AgentRemoved("b", 0.0)))
    idle, known = state.routing.candidates(info)
    assert set(info.free) == {"c"} and (idle is not None or known)


@pytest.mark.parametrize("seed", range(30))
def test_select_agents_index_picks_what_ranking_every_agent_picks(seed: int) -> None:
    from pepper.engine.inspection import directory, live_agents
    from pepper.model.requirements import Requirements

    rng = random.Random(seed)
    types, skills = ["a", "b", "c"], ["x", "y", "z"]
    specs = [
        make_agent(f"agent-{i:03d}", rng.sample(types, rng.randint(1, 2)), skills=rng.sample(skills, rng.randint(0, 3)),
                   capacity=rng.choice([1, 2, 3]))
        for i in range(rng.choice([1, 5, 40, 150]))
    ]  # fmt: skip
    harness = StateHarness(specs)
    state = harness.state
    # Scores are recomputed on every read here: reused for a second, which of two near-equal agents ranks first
    # would depend on which of them was read last, whatever the way they are looked at.
    state.performance.SCORE_REUSE = 0.0
    for i in range(rng.randint(0, len(specs))):  # a history for some agents only
        agent = rng.choice(specs).agent_id
        state.performance.record(agent, rng.choice(types), rng.random() < 0.8, rng.uniform(0.1, 3.0), i * 0.1)
    harness.clock.set(6.0)
    serial = 0
    for _step in range(8):
        batch = [make_task(f"t{serial + i}", rng.choice(types), now=6.0) for i in range(rng.randint(0, len(specs)))]
        serial += len(batch)
        harness.submit(*batch)
        if harness.running() and rng.random() < 0.5:
            for task_id in rng.sample(harness.running(), k=rng.randint(1, len(harness.running()))):
                harness.finish(task_id, result=1)
        for agent in rng.sample(list(state.agents.values()), k=len(state.agents) // 6):
            agent.accepting = rng.random() < 0.5
        harness.advance(rng.uniform(0.0, 2.0))
        now = harness.clock.now()
        view = live_agents(state, now)
        for task_type in types:
            for wanted in ([], ["x"], ["x", "y"], ["z"]):
                req = Requirements.parse({"skills": wanted})
                pool = directory(state).pool(task_type, req.skills)
                fast = view.best_in(pool, task_type)
                full = view.best_matching(pool.agents, task_type)  # every matching agent ranked
                assert (fast and fast.agent_id) == (full and full.agent_id)
                takers = [a for a in state.agents.values() if a.spec.accepts(task_type)]
                assert {a.agent_id for a in pool.agents} == {a.agent_id for a in takers if req.skills <= a.spec.skills}


def test_a_failure_stamped_after_now_never_makes_an_agent_look_faster_than_its_estimate() -> None:
    # Results may carry another clock than the engine's (outcomes read from other workers' history): a failure
    # stamped after ``now`` counts in the attempts while the successes are read decayed. The agent's success
    # must stay at most 1, or its expected time drops below its estimate and the bounds that skip agents lie.
    performance = Performance(3600.0)
    for i in range(20_000):
        performance.record("busy", "task", True, 1.0, 1000.0 * i / 20_000)
    performance.record("busy", "task", False, None, 1100.0)
    now = 1000.0
    assert performance.parts("busy", now).success <= 1.0
    assert performance.expected_time("busy", "task", now) >= performance.estimate("busy", "task", now)
    free, big = AgentLoad(make_agent("free", capacity=1), 0), AgentLoad(make_agent("big", capacity=4096), 2)
    chooser = Chooser(performance, lambda agent: agent.starts)
    for capacity in range(1, 60):
        busy = AgentLoad(make_agent("busy", capacity=capacity), 1)
        for i in range(capacity):
            busy.take(f"r{i}", "task", now - 1.0 + 1e-9)  # all but done
        agents = [free, busy, big]
        for backlog in range(1, 2 * capacity + 4):
            mine = performance.expected_time("free", "task", now)
            through = (
                chooser.available_in(busy, now) + performance.expected_time("busy", "task", now) * backlog / capacity
            )
            want = now + mine if through < mine * (1 - MARGIN) else None
            assert chooser.defer(free, agents, "task", now, None, backlog, max_capacity=4096) == want, (
                capacity,
                backlog,
            )


def test_a_free_agent_never_waits_for_a_busy_one_when_it_would_finish_before_the_clock_moves() -> None:
    # Durations too short for the clock to show (zero, in virtual time): looking again "when it would have
    # finished" is looking again now, for ever. It starts the task instead.
    harness = StateHarness([make_agent("quick"), make_agent("quicker")])
    state = harness.state
    state.performance.record("quicker", "task", True, 1e-30, 0.0)
    state.performance.record("quick", "task", True, 1e-20, 0.0)
    harness.clock.set(10.0)
    harness.submit(make_task("t0", now=10.0), make_task("t1", now=10.0))
    assert {state.tasks["t0"].agent_id, state.tasks["t1"].agent_id} == {"quick", "quicker"}
    quick = state.agents["quick"]
    info = state.tasks["t0"].route
    assert info is not None
    assert state.chooser.defer(quick, info.agents, "task", 10.0, None, 1, max_capacity=1) is None


def test_a_pool_walks_its_own_agents_once_the_order_of_means_holds_still_and_the_whole_order_after_a_result() -> None:
    from pepper.engine.inspection import directory, live_agents

    specs = [make_agent(f"a{i:02d}", skills=["py"] if i % 3 == 0 else ["go"]) for i in range(30)]
    harness = StateHarness(specs)
    state = harness.state
    performance = state.performance
    for i, spec in enumerate(specs[:-1]):  # every agent but the last has a mean; a29 only a failure
        performance.record(spec.agent_id, "task", i % 7 != 3, 1.0 + (i * 37 % 11) / 10, 0.5)
    performance.record("a29", "task", False, None, 0.5)
    pool = directory(state).pool("task", frozenset({"go"}))
    ordered, _fading = performance.fastest_first("task", 1.0)
    everyone = [agent_id for _mean, agent_id in ordered]
    assert len(everyone) == 25  # those that failed have no mean: a03, a10, a17, a24 and a29

    assert pool.narrowed(performance, "task", ordered) is ordered  # asked once at this order: the whole order
    narrowed = pool.narrowed(performance, "task", ordered)  # again, nothing changed: the pool's agents alone
    members = {a.agent_id for a in pool.agents}
    assert [agent_id for _mean, agent_id in narrowed] == [a for a in everyone if a in members]
    assert pool.narrowed(performance, "task", ordered) is narrowed  # kept
    assert [a.agent_id for a in pool.unlisted(performance, "task")] == ["a10", "a17", "a29"]  # no mean of "task"

    performance.record("a10", "task", True, 0.2, 2.0)  # its first mean: the fastest of all now
    ordered, _fading = performance.fastest_first("task", 2.0)
    assert pool.narrowed(performance, "task", ordered) is ordered
    narrowed = pool.narrowed(performance, "task", ordered)
    assert narrowed[0][1] == "a10" and [agent_id for _mean, agent_id in narrowed] == [
        agent_id for _mean, agent_id in ordered if agent_id in members
    ]
    assert [a.agent_id for a in pool.unlisted(performance, "task")] == ["a17", "a29"]
    best = live_agents(state, 2.0).best_in(pool, "task")
    assert best is not None and best.agent_id == "a10"
