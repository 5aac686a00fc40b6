"""How an agent becomes a Ray actor: the actor's options (from the agent's budget and capacity) and what the
actor is made from. Ray itself is not imported here (``executors.ray`` makes the actor)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pepper.engine.executors.protocol import AgentHandle
from pepper.model.agent import AgentSpec

_MB = 1024 * 1024
_CONTROL_CALLS = 4  # calls an actor serves at once: start, collect, cancel, running


def actor_options(spec: AgentSpec) -> dict[str, Any]:
    """Ray actor options from the agent's budget and capacity."""
    budget: Mapping[str, float] = spec.resources
    custom = {name: float(amount) for name, amount in budget.items() if name not in ("cpu", "gpu", "memory")}
    options: dict[str, Any] = {
        "num_cpus": float(budget.get("cpu", 0)),
        "max_concurrency": _CONTROL_CALLS,  # attempts run on the actor's own threads, ``capacity`` of them
        "max_restarts": 0,  # pepper replaces a dead actor itself, after the crash went through recovery
    }
    if budget.get("gpu"):
        options["num_gpus"] = float(budget["gpu"])
    if budget.get("memory"):
        options["memory"] = int(budget["memory"] * _MB)
    if custom:
        options["resources"] = custom
    return options


def actor_payload(agent: AgentHandle) -> tuple[Any, ...]:
    """What the actor needs to run the agent (pickled by Ray)."""
    if agent.spec.kind == "command":
        return ("command", agent.spec)
    function = getattr(agent, "function", None)
    if function is not None:
        return ("function", function)
    state = {name: value for name, value in vars(agent).items() if name != "_lock"}  # locks do not pickle
    return ("object", type(agent), state)
