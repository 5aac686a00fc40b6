"""``/api/v1/resources`` and ``/api/v1/leases``: the pool, and leases of it for agents."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from pepper.core import ResourceAllocator, ResourceManager
from pepper.http.auth import READ, WRITE
from pepper.http.lists import Cursor, Limit, Page, listed, ordered_page
from pepper.http.routes import runtime_of
from pepper.model.lease import Lease
from pepper.store.tokens import TokenRecord

router = APIRouter(tags=["resources"])


class LeaseBody(BaseModel):
    agent_id: str = Field(description="The agent the resources are leased to (its budget).")
    resources: dict[str, Any] = Field(description='What to lease, e.g. {"cpu": 2, "memory": "4Gi"}.')
    duration: float | str | None = Field(default=None, description='Seconds or "30s", "1h"; none: until released.')


@router.get("/resources", dependencies=[READ], response_model=dict[str, Any])
def pool(request: Request) -> dict[str, Any]:
    """The pool: capacity, what leases hold, what is free, and every live lease."""
    return ResourceManager(runtime_of(request)).pool().to_dict()


@router.get("/leases", dependencies=[READ], response_model=Page)
def list_leases(request: Request, agent_id: str | None = None, limit: Limit = 1000, cursor: Cursor = None) -> Page:
    """A page of the live leases (of one agent, with `agent_id`), oldest first."""
    listed(limit)
    leases = ResourceAllocator(runtime_of(request)).allocations(agent_id)
    return ordered_page(leases, limit, cursor, lambda lease: (lease.granted_at, lease.lease_id), Lease.to_dict)


class RenewBody(BaseModel):
    duration: float | str | None = Field(default=None, description="From now; none: the lease's own length.")


@router.get("/leases/{lease_id}", dependencies=[READ], response_model=dict[str, Any])
def get_lease(request: Request, lease_id: str) -> dict[str, Any]:
    """One lease, live or ended (404 if none was ever granted)."""
    return ResourceAllocator(runtime_of(request)).get(lease_id).to_dict()


@router.post("/leases", status_code=201, response_model=dict[str, Any])
def create_lease(request: Request, body: LeaseBody, token: TokenRecord = WRITE) -> dict[str, Any]:
    """Lease resources to an agent now, whole or not at all (409 naming what is short); the lease names the
    token that took it (`worker_id`: `token:<name>`) and expires as any other."""
    allocator = ResourceAllocator(runtime_of(request))
    return allocator.allocate(body.agent_id, body.resources, body.duration, taken_by=f"token:{token.name}").to_dict()


@router.post("/leases/{lease_id}/renew", dependencies=[WRITE], response_model=dict[str, Any])
def renew_lease(request: Request, lease_id: str, body: RenewBody) -> dict[str, Any]:
    """Extend a live lease to `duration` from now (by default its original length); 409 once it ended."""
    return ResourceAllocator(runtime_of(request)).renew(lease_id, body.duration).to_dict()


@router.delete("/leases/{lease_id}", dependencies=[WRITE], response_model=dict[str, Any])
def delete_lease(request: Request, lease_id: str) -> dict[str, Any]:
    """Give a lease back; `released` is false if it already was (or expired)."""
    allocator = ResourceAllocator(runtime_of(request))
    allocator.get(lease_id)  # an unknown lease is a 404
    return {"lease_id": lease_id, "released": allocator.release(lease_id)}
