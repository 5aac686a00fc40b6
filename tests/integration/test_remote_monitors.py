"""``HealthMonitor.get_health_metrics``, ``ResourceManager.get_resource_usage`` and ``ResourceMonitor.get_usage``
over ``pepper.connect``: the server's answers, as the same objects its own runtime gives."""

from __future__ import annotations

import httpx
import pytest

from pepper.core import HealthMonitor, ResourceAllocator, ResourceManager, ResourceMonitor
from pepper.errors import AgentNotFoundError, ValidationError
from pepper.model.usage import AgentUsage
from tests.integration.served import PATIENCE, Served, served  # noqa: F401


def test_health_metrics_are_the_servers(served: Served) -> None:  # noqa: F811
    remote, local = HealthMonitor(served.reader), HealthMonitor(served.local)
    found = remote.get_health_metrics()
    here = local.get_health_metrics()
    assert set(found) == set(here) == {"agents", "resources", "workflows", "store", "engine"}
    for component, metrics in found.items():
        assert set(metrics) == set(here[component]), component
    assert found["agents"] == here["agents"]
    assert set(remote.get_health_metrics(["agents", "store"])) == {"agents", "store"}
    with pytest.raises(ValidationError, match="unknown component 'agent'"):
        remote.get_health_metrics(["agent"])


def test_an_agents_resources_and_usage_are_the_servers(served: Served) -> None:  # noqa: F811
    lease = ResourceAllocator(served.local).allocate("documentation_agent", {"cpu": 1}, "1h")
    try:
        usage = ResourceManager(served.reader).get_resource_usage("documentation_agent")
        here = ResourceManager(served.local).get_resource_usage("documentation_agent")
        assert (usage.agent_id, usage.allocated, usage.leased_by_tasks) == (here.agent_id, here.allocated,
                                                                            here.leased_by_tasks)  # fmt: skip
        assert usage.allocations == here.allocations == (lease,)
        assert usage.allocated == {"cpu": 1.0}
        assert isinstance(usage.measured, AgentUsage) and set(usage.measured.measurements) == {"cpu", "memory",
                                                                                              "storage"}  # fmt: skip
    finally:
        ResourceAllocator(served.local).release(lease)
    measured = ResourceMonitor(served.reader).get_usage("review_agent", metrics=["cpu", "memory"])
    assert measured.agent_id == "review_agent" and set(measured.measurements) == {"cpu", "memory"}
    assert measured.memory is not None and measured.memory.unit == "MB"
    assert ResourceMonitor(served.reader).get_usage("review_agent", metrics=[]).measurements == {}
    with pytest.raises(AgentNotFoundError, match="nobody"):
        ResourceManager(served.reader).get_resource_usage("nobody")
    with pytest.raises(AgentNotFoundError, match="nobody"):
        ResourceMonitor(served.reader).get_usage("nobody")
    with pytest.raises(ValidationError, match="unknown metric 'gpu'"):
        ResourceMonitor(served.reader).get_usage("review_agent", metrics=["gpu"])
    with pytest.raises(ValidationError, match="agent id"):
        ResourceManager(served.reader).get_resource_usage("not an id")


def test_the_pool_is_the_servers(served: Served) -> None:  # noqa: F811
    lease = ResourceAllocator(served.local).allocate("review_agent", {"cpu": 1})
    try:
        pool = ResourceManager(served.reader).pool()
        assert pool == ResourceManager(served.local).pool()
        assert pool.capacity["cpu"] == 4 and pool.held == {"cpu": 1.0} and lease in pool.leases
    finally:
        ResourceAllocator(served.local).release(lease)


def test_the_routes_need_a_token_and_are_described(served: Served) -> None:  # noqa: F811
    with httpx.Client(base_url=served.url + "/api/v1", timeout=PATIENCE) as anonymous:
        assert anonymous.get("/health/metrics").status_code == 401
        assert anonymous.get("/agents/review_agent/usage").status_code == 401
    headers = {"Authorization": f"Bearer {served.tokens['read']}"}
    with httpx.Client(base_url=served.url + "/api/v1", headers=headers, timeout=PATIENCE) as client:
        wrong = client.get("/agents/review_agent/usage", params={"metrics": "cpu,gpu"})
        assert wrong.status_code == 400 and "unknown metric 'gpu'" in wrong.json()["error"]["message"]
        paths = client.get("/openapi.json").json()["paths"]
    for path in ("/api/v1/health/metrics", "/api/v1/agents/{agent_id}/resources", "/api/v1/agents/{agent_id}/usage"):
        assert path in paths
