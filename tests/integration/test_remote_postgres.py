"""The faces over ``pepper.connect`` against a server on PostgreSQL: choosing agents, planning, leases and
handling an error answer as the server's own runtime does."""

from __future__ import annotations

from pathlib import Path

import pytest

from pepper.core import AgentSelector, ErrorHandler, LoadBalancer, ResourceAllocator, ResourceManager, TaskOrchestrator
from pepper.errors import ScopeError
from tests.integration.served import serving


def test_the_faces_answer_over_a_server_on_postgres(postgres_url: str, tmp_path: Path) -> None:
    with serving(postgres_url, str(tmp_path / "home")) as served:
        there, here = AgentSelector(served.reader), AgentSelector(served.local)
        docs = {"skills": ["markdown", "api_docs"]}
        assert there.select_agent("documentation", docs) == here.select_agent("documentation", docs)
        remote, local = LoadBalancer(served.reader), LoadBalancer(served.local)
        assert remote.get_agent_load("review_agent") == local.get_agent_load("review_agent")
        tasks = [{"id": "p1", "type": "documentation"}, {"id": "p2", "type": "review"}]
        assert remote.distribute_workload(tasks) == local.distribute_workload(tasks)
        lease = ResourceManager(served.remote).allocate_resources("documentation_agent", {"cpu": 2}, "1h")
        assert lease.worker_id == "token:faces-write"
        assert ResourceAllocator(served.local).get(lease.lease_id) == lease
        usage = ResourceManager(served.reader).get_resource_usage("documentation_agent")
        assert usage.allocations == (lease,)
        with pytest.raises(ScopeError):
            ResourceAllocator(served.reader).release(lease)
        assert ResourceAllocator(served.remote).release(lease) is True
        TaskOrchestrator(runtime=served.remote).submit_task("pg/blocked", "documentation", dependencies=["pg/never"])
        outcome = ErrorHandler(served.remote).handle_error_now("pg/blocked", "registry down", "retry")
        assert (outcome.task_id, outcome.action) == ("pg/blocked", "retry")
        history = ErrorHandler(served.local).get_error_history("pg/blocked")
        assert [r.error.message for r in history] == ["registry down"]
        assert served.runs == {"documentation_agent": 0, "review_agent": 0, "gated": 0, "breaker": 0}
