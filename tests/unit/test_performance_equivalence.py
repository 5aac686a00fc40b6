"""The performance model reads exactly as its reference (every sum decayed on its own) after any history."""

from __future__ import annotations

import math
import random

import pytest

from pepper.scheduling.performance import Performance
from tests.unit.performance_reference import Performance as Reference

AGENTS = ("a", "b", "c", "d")
TYPES = ("fast", "slow", "once")


def _same(got: object, want: object) -> None:
    if isinstance(want, float) and isinstance(got, float):
        assert math.isclose(got, want, rel_tol=1e-12, abs_tol=1e-300), (got, want)
    else:
        assert got == want


def _history(seed: int, half_life: float) -> list[tuple[str, tuple[object, ...]]]:
    """Results (in order, at the same time, late), failures, missing durations, ratings and health changes."""
    rng = random.Random(seed)
    at, events = 1000.0, []
    for _ in range(400):
        at += rng.choice((0.0, 0.0, 0.001, 0.5, half_life / 7, half_life * 3))
        when = at - rng.uniform(0, half_life) if rng.random() < 0.1 else at  # now and then a late result
        kind = rng.random()
        agent, task_type = rng.choice(AGENTS), rng.choice(TYPES)
        if kind < 0.8:
            ok = rng.random() < 0.7
            duration = rng.choice((None, -1.0, 0.0, rng.uniform(0.001, 30.0)))
            events.append(("record", (agent, task_type, ok, duration, when)))
        elif kind < 0.93:
            events.append(("rate", (agent, rng.randint(1, 5), when)))
        else:
            events.append(("set_health", (agent, rng.random() < 0.6)))
    return events


def _compare(model: Performance, reference: Reference, now: float, *, floor: bool = True) -> None:
    assert model.known_agents() == reference.known_agents()
    for agent in (*AGENTS, "never"):
        for task_type in (*TYPES, "unseen"):  # before and after a score is kept for the agent
            estimate = model.estimate(agent, task_type, now)
            ceiling = model.expected_ceiling(agent, estimate, now)
            assert model.expected_time(agent, task_type, now) <= ceiling
            assert model.expected_ceiling(agent, estimate, now) == ceiling
        got, want = model.parts(agent, now), reference.parts(agent, now)
        for field in ("score", "success", "timeliness", "rating", "healthy", "observations", "ratings"):
            _same(getattr(got, field), getattr(want, field))
        assert got.evidence == want.evidence
        _same(model.score(agent, now), reference.score(agent, now))
        assert model.has_evidence(agent, now) == reference.has_evidence(agent, now)
        assert model.healthy(agent) == reference.healthy(agent)
        assert model.known(agent) == reference.known(agent)
        for task_type in (*TYPES, "unseen"):
            _same(model.estimate(agent, task_type, now), reference.estimate(agent, task_type, now))
            _same(model.expected_time(agent, task_type, now), reference.expected_time(agent, task_type, now))
            standing = reference.standing(agent, task_type, now)
            for got_one, want_one in zip(model.standing(agent, task_type, now), standing, strict=True):
                _same(got_one, want_one)
    for task_type in (*TYPES, "unseen"):
        _same(model.type_estimate(task_type, now), reference.type_estimate(task_type, now))
        _same(model.unknown_expected(task_type, now), reference.unknown_expected(task_type, now))
        if floor:  # never asked of a reader: it prunes a heap the reader shares with its owner
            _same(model.estimate_floor(task_type, now), reference.estimate_floor(task_type, now))


@pytest.mark.parametrize("half_life", [0.05, 60.0, 3600.0])
@pytest.mark.parametrize("seed", range(6))
def test_every_figure_matches_the_reference_along_a_history(seed: int, half_life: float) -> None:
    model, reference = Performance(half_life), Reference(half_life)
    last = 0.0
    for step, (name, args) in enumerate(_history(seed, half_life)):
        getattr(model, name)(*args)
        getattr(reference, name)(*args)
        last = max(last, float(args[-1])) if name != "set_health" else last
        if step % 37 == 0:  # read now, a while later, and before the latest result (it counts undecayed)
            for now in (last, last + half_life / 3, last + half_life * 40, last - half_life / 2):
                _compare(model, reference, now)
    for now in (last, last + 1.0, last + half_life * 2, last + half_life * 2000):  # long after: evidence fades
        _compare(model, reference, now)


def test_a_reader_reads_the_same_figures_and_records_nothing() -> None:
    model, reference = Performance(60.0), Reference(60.0)
    for name, args in _history(7, 60.0):
        getattr(model, name)(*args)
        getattr(reference, name)(*args)
    reader = model.reader()
    reader.record("a", "fast", True, 1.0, 1e9)  # a reader does not learn
    now = 1e6
    _compare(reader, reference, now, floor=False)
    _compare(model, reference, now)
    assert model.known_agents() == reference.known_agents()
