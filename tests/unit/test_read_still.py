"""Reading an engine state from another thread: an answer is kept only if no event was handled while it was
read; the reader writes nothing the engine reads, and answers as a read on the engine's thread does."""

from __future__ import annotations

from typing import Any

import pytest

from pepper.engine.inspection import MOVED, AgentsView, directory, live_agents, read_still
from pepper.engine.state import EngineState
from pepper.model.agent import AgentSpec
from pepper.model.events import AgentAdded, HealthChanged, HistoryLoaded

NOW = 1000.0


def state_with_agents() -> EngineState:
    state = EngineState("w1")
    for agent_id, skills in (("a", ["py"]), ("b", ["py", "go"]), ("c", ["go"])):
        spec = AgentSpec.build(agent_id, task_types=["t"], capacity=2, skills=skills)
        state.handle(AgentAdded(spec, 0.0))
    outcomes = (("a", "t", True, 2.0, 900.0), ("a", "t", False, None, 950.0), ("b", "t", True, 1.0, 990.0))
    state.handle(HistoryLoaded(outcomes, (("b", 2, 990.0),), 990.0))
    return state


def standing(view: AgentsView) -> list[tuple[Any, ...]]:
    return [tuple(view.candidate(agent, "t")) for agent in view.directory().agents.values()]


def test_a_still_state_is_read_in_place_as_on_the_engine_thread() -> None:
    state = state_with_agents()
    assert read_still(state, NOW, standing) is MOVED  # the agents are not indexed yet: the engine's thread does
    directory(state)
    assert read_still(state, NOW, standing) == standing(live_agents(state, NOW))
    best = read_still(state, NOW, lambda view: view.best_in(view.directory().pool("t", frozenset({"py"})), "t"))
    assert best == live_agents(state, NOW).best_in(directory(state).pool("t", frozenset({"py"})), "t")


def test_the_reader_writes_nothing_the_engine_reads() -> None:
    state = state_with_agents()
    directory(state)
    performance = state.performance
    caches = (dict(performance._scores), dict(performance._ranked))
    read_still(state, NOW + 50.0, standing)
    assert (performance._scores, performance._ranked) == caches
    standing(live_agents(state, NOW + 50.0))  # the same questions on the engine's thread do fill them
    assert (performance._scores, performance._ranked) != caches


def test_an_answer_read_while_an_event_was_handled_is_asked_again() -> None:
    state = state_with_agents()
    directory(state)
    asked = []

    def moving_once(view: AgentsView) -> int:
        asked.append(state.changes)
        if len(asked) == 1:  # as if the engine's thread handled an event meanwhile
            state.handle(HealthChanged("a", False, NOW))
        return len(asked)

    assert read_still(state, NOW, moving_once) == 2
    assert asked[1] == asked[0] + 2


def test_a_state_that_keeps_moving_is_left_to_the_engine_thread() -> None:
    state = state_with_agents()
    directory(state)
    asked = [0]

    def moving(view: AgentsView) -> int:
        asked[0] += 1
        state.handle(HealthChanged("a", asked[0] % 2 == 0, NOW))
        return 1

    assert read_still(state, NOW, moving) is MOVED
    assert 1 < asked[0] <= 5  # asked again a few times, then given up


def test_no_read_while_an_event_is_being_handled() -> None:
    state = state_with_agents()
    directory(state)
    state.changes += 1  # what ``handle`` does as it begins
    asked = []
    assert read_still(state, NOW, lambda view: asked.append(1)) is MOVED
    assert asked == []


def test_an_error_counts_only_if_the_state_held_still() -> None:
    state = state_with_agents()
    directory(state)
    calls = [0]

    def torn_then_fine(view: AgentsView) -> str:
        calls[0] += 1
        if calls[0] == 1:
            state.handle(HealthChanged("b", False, NOW))
            raise RuntimeError("dictionary changed size during iteration")
        return "fine"

    assert read_still(state, NOW, torn_then_fine) == "fine"

    def missing(view: AgentsView) -> None:
        raise KeyError("nobody")

    with pytest.raises(KeyError, match="nobody"):
        read_still(state, NOW, missing)


def test_an_agent_joining_is_read_on_the_engine_thread_until_indexed_there() -> None:
    state = state_with_agents()
    directory(state)
    state.handle(AgentAdded(AgentSpec.build("d", task_types=["t"], capacity=1), NOW))
    assert read_still(state, NOW, standing) is MOVED
    directory(state)
    assert [c[0].agent_id for c in read_still(state, NOW, standing)] == ["a", "b", "c", "d"]  # type: ignore[union-attr]
