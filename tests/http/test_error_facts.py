"""An error answered by a server arrives as the same exception with the same facts (ids, lists) as raised on the
server's machine; a location or a value a caller sent never travels."""

from __future__ import annotations

import pytest

from pepper.core import AgentSelector, ResourceAllocator, TaskOrchestrator
from pepper.errors import (
    AgentNotFoundError,
    NoEligibleAgentError,
    ResourceUnavailableError,
    TaskNotFoundError,
)
from pepper.errors.base import facts, with_facts
from tests.integration.served import Served, served  # noqa: F401


def test_an_unknown_task_names_its_id_on_both_sides(served: Served) -> None:  # noqa: F811
    with pytest.raises(TaskNotFoundError) as remote:
        TaskOrchestrator(runtime=served.remote).get_task_status("no/such task")
    with pytest.raises(TaskNotFoundError) as local:
        TaskOrchestrator(runtime=served.local).get_task_status("no/such task")
    assert remote.value.task_id == local.value.task_id == "no/such task"
    assert str(remote.value) == str(local.value)


def test_no_eligible_agent_says_per_agent_why_on_both_sides(served: Served) -> None:  # noqa: F811
    asked = ("documentation", {"skills": ["latex"]})
    with pytest.raises(NoEligibleAgentError) as remote:
        AgentSelector(served.reader).select_agent(*asked)
    with pytest.raises(NoEligibleAgentError) as local:
        AgentSelector(served.local).select_agent(*asked)
    assert remote.value.task_type == "documentation"
    assert remote.value.rejected == local.value.rejected
    assert set(remote.value.rejected) >= {"documentation_agent", "review_agent"}


def test_a_shortfall_and_unknown_agent_arrive_with_their_facts(served: Served) -> None:  # noqa: F811
    allocator = ResourceAllocator(runtime=served.remote)
    held = allocator.allocate("facts-holder", {"cpu": 3})  # of the pool's 4
    try:
        with pytest.raises(ResourceUnavailableError) as short:
            allocator.allocate("facts-holder", {"cpu": 3})
    finally:
        allocator.release(held)
    assert short.value.shortfall == {"cpu": pytest.approx(2.0)}
    with pytest.raises(AgentNotFoundError) as unknown:
        AgentSelector(served.reader).get_agent_capabilities("nobody-here")
    assert unknown.value.agent_id == "nobody-here"


def test_only_plain_facts_travel() -> None:
    error = TaskNotFoundError("t-1")
    error.location = "postgresql://user:secret@db/pepper"  # type: ignore[attr-defined]
    error.task_type = object()  # type: ignore[attr-defined]  # not JSON: left out
    assert facts(error) == {"task_id": "t-1"}
    rebuilt = with_facts(
        TaskNotFoundError.__new__(TaskNotFoundError), {"task_id": "t-1", "location": "x", "cycle": ["a", "b"]}
    )
    assert rebuilt.task_id == "t-1" and rebuilt.cycle == ("a", "b") and not hasattr(rebuilt, "location")  # type: ignore[attr-defined]
