"""The work queued ahead of a task, per agent, as a process without an engine reads it from the store."""

from __future__ import annotations

import pytest

from pepper.model.agent import AgentSpec
from pepper.scheduling.backlog import Waiting, work_ahead
from pepper.scheduling.eligibility import Route


def test_each_task_ahead_brings_its_expected_time_shared_among_the_agents_that_may_take_it():
    plain, rust = Route("review", None, frozenset()), Route("review", None, frozenset({"rust"}))
    docs = Route("docs", None, frozenset())
    waiting = [
        Waiting("plain-1", plain, 0, 0.0, 0),  # either agent may take it: half of it falls to each
        Waiting("rust-1", rust, 0, 1.0, 1),  # only the rustacean
        Waiting("docs-1", docs, 0, 2.0, 2),  # neither reviewer: not ahead of a review
        Waiting("me", plain, 0, 3.0, 3),
        Waiting("later", plain, 0, 4.0, 4),  # behind it
    ]
    agents = [
        AgentSpec.build("generalist", task_types=["review"]),
        AgentSpec.build("rustacean", task_types=["review"], skills=["rust"]),
        AgentSpec.build("writer", task_types=["docs"]),
    ]
    seconds = {("generalist", "review"): 10.0, ("rustacean", "review"): 4.0}

    work = work_ahead(waiting[3], waiting, agents, 10.0, lambda agent, task_type: seconds[agent, task_type])

    assert work == pytest.approx({"generalist": 10.0 / 2, "rustacean": 4.0 / 2 + 4.0})
    assert work_ahead(waiting[0], waiting, agents, 10.0, lambda a, t: 1.0) == {"generalist": 0.0, "rustacean": 0.0}
