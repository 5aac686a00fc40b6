"""How an agent becomes a Ray actor: the actor's options (from the agent's budget and capacity) and what the
actor is made from; and what can be told before Ray runs it: whether Ray is installed, whether a ``ray://``
address has the client package it needs, whether Ray can serialise the actor's payload, whether a node of the
cluster can hold the actor. Ray itself is not imported here (``executors.ray`` makes the actor)."""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from pepper.engine.executors.protocol import AgentHandle
from pepper.errors import AgentDefinitionError, ExecutorUnavailableError
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


def no_ray(agent_id: str, cause: str) -> ExecutorUnavailableError:
    """The error of an agent on Ray in a process where Ray cannot be imported (``cause``: why)."""
    return ExecutorUnavailableError(
        f"agent {agent_id!r} runs on Ray (executor='ray'), but Ray cannot be imported here ({cause}); "
        "install it (pip install \"pepper[ray]\") or run the agent here (executor='local')"
    )


def check_ray_installed(spec: AgentSpec, default_executor: str | None, address: str | None = None) -> None:
    """Refuse (``ExecutorUnavailableError``) an agent on Ray (by its own executor, else ``default_executor``)
    when Ray is not installed, or ``address`` needs Ray's client package and it is not; nothing is imported."""
    if (spec.executor or default_executor) != "ray":
        return
    try:
        found = importlib.util.find_spec("ray") is not None
    except (ImportError, ValueError):  # a broken or half-imported package
        found = False
    if not found:
        raise no_ray(spec.agent_id, "no module named 'ray'")
    missing = client_missing(address)
    if missing is not None:
        raise ExecutorUnavailableError(f"agent {spec.agent_id!r} cannot run on Ray: {missing}")


def check_for_ray(agent: AgentHandle, default_executor: str | None, address: str | None) -> None:
    """Refuse an agent on Ray that could never run there from this process: Ray or the client package its
    ``address`` needs is missing (``ExecutorUnavailableError``), or Ray cannot serialise what its actor is made
    from (``AgentDefinitionError``). Ray is imported only for an agent on Ray."""
    check_ray_installed(agent.spec, default_executor, address)
    if (agent.spec.executor or default_executor) != "ray":
        return
    try:
        importlib.import_module("pepper.engine.executors.ray")
    except ImportError as exc:
        raise no_ray(agent.spec.agent_id, str(exc)) from exc
    sendable_payload(agent, importlib.import_module("ray.cloudpickle").dumps)


def sendable_payload(agent: AgentHandle, dumps: Callable[[Any], bytes]) -> tuple[Any, ...]:
    """What ``agent``'s actor is made from (``actor_payload``), once ``dumps`` (Ray's serialiser) took it; an
    ``AgentDefinitionError`` that names what it cannot serialise, else."""
    payload = actor_payload(agent)
    problem = not_serialisable(payload, dumps)
    if problem is not None:
        raise AgentDefinitionError(f"agent {agent.spec.agent_id!r} cannot run on Ray: {problem}")
    return payload


def client_missing(address: str | None) -> str | None:
    """Why ``address`` cannot be reached from here: a ``ray://`` address needs Ray's client package (grpcio,
    ``pip install "pepper[ray-client]"``); None when nothing is missing."""
    if address is None or not address.startswith("ray://"):
        return None
    try:
        found = importlib.util.find_spec("grpc") is not None
    except (ImportError, ValueError):
        found = False
    if found:
        return None
    return (
        f"the Ray address {address} goes through Ray's client, whose package is not installed here; "
        'install it (pip install "pepper[ray-client]", i.e. ray[client]) or give the address of a cluster '
        "this machine belongs to ('auto', or host:port)"
    )


def not_serialisable(payload: tuple[Any, ...], dumps: Callable[[Any], bytes]) -> str | None:
    """What of an actor's payload ``dumps`` (Ray's serialiser) cannot serialise, said shortly; None when it can."""
    try:
        dumps(payload)
    except Exception as exc:  # noqa: BLE001 - whatever pickling raises
        whole = exc
    else:
        return None
    if payload[0] == "object":
        for name, value in payload[2].items():
            try:
                dumps(value)
            except Exception as exc:  # noqa: BLE001
                return (f"its attribute {name!r} ({type(value).__name__}) cannot be serialised to send the agent "
                        f"to its actor ({_short(exc)}); make such objects in initialize(), which runs in the "
                        "actor")  # fmt: skip
    what = "its function" if payload[0] == "function" else "the agent"
    return f"{what} cannot be serialised to send it to its actor ({_short(whole)})"


def _short(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else ""
    text = text if len(text) <= 200 else text[:200] + "..."
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def placement_problem(options: Mapping[str, Any], nodes: Sequence[Mapping[str, float]]) -> str | None:
    """What an actor with ``options`` asks that none of ``nodes`` (each node's Ray resources) has, said shortly;
    None when one node has it all."""
    need = {"CPU": options.get("num_cpus", 0), "GPU": options.get("num_gpus", 0), "memory": options.get("memory", 0),
            **options.get("resources", {})}  # fmt: skip
    need = {name: amount for name, amount in need.items() if amount}
    if not need:
        return None
    if any(all(have.get(name, 0) >= amount for name, amount in need.items()) for have in nodes):
        return None
    most = {name: max((have.get(name, 0) for have in nodes), default=0) for name in need}
    return f"{_amounts(need)}, which no node of the Ray cluster has (the most one node has: {_amounts(most)})"


def _amounts(amounts: Mapping[str, float]) -> str:
    return ", ".join(f"{name} {amount / 2**20:g} MB" if name == "memory" else f"{name} {amount:g}"
                     for name, amount in amounts.items())  # fmt: skip
