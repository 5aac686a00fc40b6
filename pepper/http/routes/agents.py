"""``/api/v1/agents``: the agents of live workers, with load, capacity, score and skills."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from pepper.core.online import online_agents
from pepper.http.auth import READ
from pepper.http.lists import Limit, Page, listed
from pepper.http.routes import runtime_of

router = APIRouter(prefix="/agents", tags=["agents"])


@router.get("", dependencies=[READ], response_model=Page)
def list_agents(request: Request, limit: Limit = 1000) -> Page:
    """The agents online, as `pepper agents --json` lists them."""
    listed(limit)
    return Page(items=online_agents(runtime_of(request))[:limit])


@router.get("/{agent_id}", dependencies=[READ], response_model=dict[str, Any])
def get_agent(request: Request, agent_id: str) -> dict[str, Any]:
    """One agent online (the first worker's entry when several run it; `workers` lists them all)."""
    entries = online_agents(runtime_of(request), agent_id)
    return {**entries[0], "workers": [e["worker_id"] for e in entries]}
