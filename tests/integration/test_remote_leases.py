"""Leases over ``pepper.connect``: ``ResourceManager.allocate_resources`` and ``ResourceAllocator.allocate``,
``get``, ``allocations``, ``renew`` and ``release`` take and give back the server's leases (a write token), each
naming the token that took it, and expiring as leases taken on the server do."""

from __future__ import annotations

import threading
import time

import pytest

from pepper.core import ResourceAllocator, ResourceManager
from pepper.errors import (
    AllocationNotFoundError,
    LeaseEndedError,
    ResourceUnavailableError,
    ScopeError,
    ValidationError,
)
from tests.integration.served import PATIENCE, Served, served  # noqa: F401


def test_the_seed_allocation_is_the_servers_and_names_the_token(served: Served) -> None:  # noqa: F811
    lease = ResourceManager(served.remote).allocate_resources(
        agent_id="documentation_agent", requirements={"cpu": 1}, duration="1h"
    )
    try:
        assert ResourceAllocator(served.local).get(lease.lease_id) == lease
        assert lease.holder == "documentation_agent" and lease.worker_id == "token:faces-write"
        assert lease.expires_at is not None and lease.expires_at - lease.granted_at == 3600
        remote = ResourceAllocator(served.reader)
        assert remote.get(lease.lease_id) == lease
        assert lease in remote.allocations("documentation_agent")
        renewed = ResourceAllocator(served.remote).renew(lease, "2h")
        assert renewed.lease_id == lease.lease_id and renewed.expires_at is not None
        assert renewed.expires_at > lease.expires_at
        assert ResourceAllocator(served.local).get(lease.lease_id) == renewed
    finally:
        assert ResourceAllocator(served.remote).release(lease) is True
    assert ResourceAllocator(served.remote).release(lease.lease_id) is False  # already given back
    assert ResourceAllocator(served.local).get(lease.lease_id).released_at is not None
    with pytest.raises(LeaseEndedError):
        ResourceAllocator(served.remote).renew(lease)


def test_a_remote_lease_expires_as_a_local_one(served: Served) -> None:  # noqa: F811
    lease = ResourceAllocator(served.remote).allocate("review_agent", {"cpu": 1}, duration=0.2)
    assert lease.expires_at is not None and lease.expires_at - lease.granted_at == pytest.approx(0.2)
    deadline, tick = time.monotonic() + PATIENCE, threading.Event()
    while lease in ResourceAllocator(served.reader).allocations("review_agent"):
        assert time.monotonic() < deadline, "the lease never expired"
        tick.wait(0.05)
    assert lease not in ResourceAllocator(served.local).allocations("review_agent")


def test_refusals_are_typed_and_change_nothing(served: Served) -> None:  # noqa: F811
    allocator = ResourceAllocator(served.remote)
    before = ResourceAllocator(served.local).allocations()
    with pytest.raises(ScopeError):
        ResourceAllocator(served.reader).allocate("documentation_agent", {"cpu": 1})
    with pytest.raises(ValidationError, match="whole pool"):
        allocator.allocate("documentation_agent", {"cpu": 5})
    with pytest.raises(ValidationError, match="resources must ask for something"):
        allocator.allocate("documentation_agent", {})
    with pytest.raises(ValidationError, match="duration"):
        allocator.allocate("documentation_agent", {"cpu": 1}, duration=-1)
    with pytest.raises(AllocationNotFoundError):
        allocator.release("alloc-nowhere")
    with pytest.raises(AllocationNotFoundError):
        allocator.renew("alloc-nowhere")
    assert ResourceAllocator(served.local).allocations() == before
    everything = allocator.allocate("documentation_agent", {"cpu": 4})
    try:
        with pytest.raises(ScopeError):
            ResourceAllocator(served.reader).release(everything)
        with pytest.raises(ResourceUnavailableError, match="cpu"):
            allocator.allocate("review_agent", {"cpu": 1})
        with pytest.raises(ResourceUnavailableError):
            ResourceManager(served.remote).allocate_resources("review_agent", {"cpu": 1}, wait=True, timeout=0.1)
    finally:
        allocator.release(everything)
    assert ResourceAllocator(served.local).allocations() == before
