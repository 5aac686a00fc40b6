"""Agents joining and leaving an engine.

An agent joins with its start-up (``initialize``) done (an agent on Ray checked first: Ray can be imported,
its address needs no package missing here, and it can serialise the agent), its budget leased from the pool
or waited for (``engine.budgets``), its record stored under this worker and ``AgentAdded`` told to the state machine; it
leaves in the reverse order, its budget released and its clean-up run last.
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
from collections.abc import Mapping
from typing import TYPE_CHECKING

from pepper.engine.attempts import AgentHandle
from pepper.engine.budgets import budget_lease_id, grant_budget, off_host, reload_leases
from pepper.engine.executors.ray_options import no_ray
from pepper.errors import AgentAlreadyRegisteredError, AgentDefinitionError, AgentNotFoundError, AllocationNotFoundError
from pepper.model.events import AgentAdded, AgentRemoved
from pepper.model.resources import Resources, describe_shortfall

if TYPE_CHECKING:
    from pepper.engine.shell import Engine


async def add_agent(engine: Engine, handle: AgentHandle) -> None:
    """Register ``handle``'s agent with the engine; it takes tasks once its budget is granted."""
    spec = handle.spec
    if spec.agent_id in engine.handles:
        raise AgentAlreadyRegisteredError(spec.agent_id)
    on_ray = off_host(engine, spec)
    budget = spec.resources if on_ray is None else on_ray.pooled  # on Ray: only the shared pools it names
    check_budget_fits(spec.agent_id, budget, engine.state.resources.capacity)  # before its start-up runs
    if on_ray is not None:
        await admit_on_ray(engine, handle)
    initialize = getattr(handle, "initialize", None)
    if initialize is not None:
        outcome = initialize()
        if inspect.isawaitable(outcome):
            await outcome
    waiting = None
    if budget:
        waiting = grant_budget(engine, spec)
        if waiting is not None:
            engine.budget_waiting[spec.agent_id] = spec
        reload_leases(engine)
    engine.handles[spec.agent_id] = handle
    now = engine.clock.now()
    engine.store.workers.register_agent(spec, engine.worker_id, now)
    engine.dispatch(AgentAdded(spec, now, waiting, f"agent:{spec.agent_id}", on_ray))


async def admit_on_ray(engine: Engine, handle: AgentHandle) -> None:
    """Check what can be checked of an agent on Ray before it joins (``ExecutorUnavailableError``: Ray cannot be
    imported, or its address needs a package missing here; ``AgentDefinitionError``: Ray cannot serialise what
    its actor is made from), and keep what its actor is made from as it is now, before its ``initialize()``."""
    try:  # Ray is heavy to import: not on the engine's thread
        await asyncio.to_thread(importlib.import_module, "pepper.engine.executors.ray")
    except ImportError as exc:
        raise no_ray(handle.spec.agent_id, str(exc)) from exc
    executor = engine.attempts.executor_for(handle)
    admit = getattr(executor, "admit", None)
    if admit is not None:
        admit(handle)


def check_budget_fits(agent_id: str, budget: Resources, capacity: Mapping[str, float]) -> None:
    """Refuse (``AgentDefinitionError``) a budget the whole pool (``capacity``) can never give."""
    beyond = budget.shortfall(capacity) if budget else None
    if beyond:
        raise AgentDefinitionError(
            f"agent {agent_id!r} asks for a budget the whole pool cannot give: {describe_shortfall(beyond)}; "
            "lower its resources or give the pool more (pepper.init(resources=...))"
        )


async def remove_agent(engine: Engine, agent_id: str) -> AgentHandle:
    """Unregister an agent: its budget goes back to the pool, then its clean-up runs; its handle."""
    handle = engine.handles.pop(agent_id, None)
    if handle is None:
        raise AgentNotFoundError(agent_id, engine.handles)
    engine.dispatch(AgentRemoved(agent_id, engine.clock.now(), f"agent:{agent_id}"))
    engine.store.workers.unregister_agent(agent_id, engine.worker_id)
    engine.budget_waiting.pop(agent_id, None)
    engine.attempts.forget(handle)
    if handle.spec.resources:
        lease_id = budget_lease_id(agent_id, engine.worker_id)
        try:
            engine.store.leases.release(lease_id, engine.clock.now())
        except AllocationNotFoundError:
            pass  # it was still waiting for its budget
        reload_leases(engine)
    cleanup = getattr(handle, "cleanup", None)
    if cleanup is not None:
        outcome = cleanup()
        if inspect.isawaitable(outcome):
            await outcome
    return handle
