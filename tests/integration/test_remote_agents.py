"""``AgentSelector`` and ``LoadBalancer`` over ``pepper.connect``: the same answers as on the server's own runtime,
the same typed errors, and bad input refused."""

from __future__ import annotations

import httpx
import pytest

from pepper.core import AgentSelector, LoadBalancer
from pepper.errors import AgentNotFoundError, NoEligibleAgentError, ValidationError
from tests.integration.served import PATIENCE, Served, served  # noqa: F401

DOCS = {"skills": ["markdown", "api_docs"], "availability": True, "performance_score": 0.8}


def test_the_seed_selection_answers_as_on_the_server(served: Served) -> None:  # noqa: F811
    local, remote = AgentSelector(served.local), AgentSelector(served.reader)
    chosen = remote.select_agent(task_type="documentation", requirements=DOCS)
    assert chosen == local.select_agent(task_type="documentation", requirements=DOCS)
    assert chosen.agent_id == "documentation_agent"
    assert remote.select_agent("review") == local.select_agent("review")
    assert remote.rank_agents("documentation", {"skills": ["markdown"]}) == local.rank_agents(
        "documentation", {"skills": ["markdown"]}
    )
    assert {p.agent_id for p in remote.rank_agents("documentation")} == {"documentation_agent", "review_agent"}
    assert remote.rank_agents("documentation", {"skills": ["rust"]}) == []
    profile = remote.get_agent_capabilities("review_agent")
    assert profile == local.get_agent_capabilities("review_agent")
    assert profile.task_types == frozenset({"documentation", "review"}) and profile.capacity == 2


def test_the_agent_load_answers_as_on_the_server(served: Served) -> None:  # noqa: F811
    report = LoadBalancer(served.reader).get_agent_load("review_agent")
    assert report == LoadBalancer(served.local).get_agent_load("review_agent")
    assert (report.capacity, report.running, report.utilisation) == (2, 0, 0.0)


def test_errors_come_back_typed_with_the_servers_words(served: Served) -> None:  # noqa: F811
    remote, local = AgentSelector(served.reader), AgentSelector(served.local)
    with pytest.raises(NoEligibleAgentError) as remote_error:
        remote.select_agent("documentation", {"skills": ["rust"]})
    with pytest.raises(NoEligibleAgentError) as local_error:
        local.select_agent("documentation", {"skills": ["rust"]})
    assert str(remote_error.value) == str(local_error.value)
    assert "documentation_agent" in str(remote_error.value)
    balancer = LoadBalancer(served.reader)
    for call in (lambda: remote.get_agent_capabilities("nobody"), lambda: balancer.get_agent_load("nobody")):
        with pytest.raises(AgentNotFoundError, match="nobody"):
            call()
    with pytest.raises(AgentNotFoundError):
        remote.get_agent_capabilities("a/b")  # one id, slash and all: not a sub-resource
    with pytest.raises(ValidationError, match="task_type"):
        remote.select_agent("")
    with pytest.raises(ValidationError, match="unknown requirement 'skill'"):
        remote.rank_agents("documentation", {"skill": ["markdown"]})


def test_the_routes_validate_their_bodies_and_need_a_token(served: Served) -> None:  # noqa: F811
    with httpx.Client(base_url=served.url + "/api/v1", timeout=PATIENCE) as anonymous:
        assert anonymous.post("/agents/select", json={"task_type": "documentation"}).status_code == 401
    headers = {"Authorization": f"Bearer {served.tokens['read']}"}
    with httpx.Client(base_url=served.url + "/api/v1", headers=headers, timeout=PATIENCE) as client:
        missing = client.post("/agents/select", json={"requirements": {}})
        assert missing.status_code == 422
        assert (
            missing.json()["error"]["type"] == "ValidationError" and "task_type" in missing.json()["error"]["message"]
        )
        wrong = client.post("/agents/rank", json={"task_type": "documentation", "requirements": {"score": 1}})
        assert wrong.status_code == 400 and "unknown requirement 'score'" in wrong.json()["error"]["message"]
        paths = client.get("/openapi.json").json()["paths"]
    for path in ("/api/v1/agents/select", "/api/v1/agents/rank", "/api/v1/agents/{agent_id}/profile",
                 "/api/v1/agents/{agent_id}/load"):  # fmt: skip
        assert path in paths
