"""Declaring agents: ``@pepper.agent``, ``pepper.register_agent``, ``pepper.load_agents``."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Unpack

from pepper.agents.base import AgentOptions, BaseAgent
from pepper.agents.function import FunctionAgent
from pepper.agents.loader import read_agents
from pepper.core.default import resolve
from pepper.core.runtime import Runtime
from pepper.model.run import TaskRun


def agent(
    agent_id: str, *, task_types: Iterable[str], runtime: Runtime | None = None, **options: Unpack[AgentOptions]
) -> Callable[[Callable[[TaskRun], Any]], FunctionAgent]:
    """Register a function (async or not) as an agent::

        @pepper.agent("documentation_agent", task_types=["documentation"], skills=["markdown"])
        async def write_docs(task):
            return {"pages": 3}

    The function receives a ``TaskRun`` (``task.inputs``, ``task.dependency_results``)
    and returns the task's result. It is registered on the default runtime, or on ``runtime``.
    ``recovery`` (e.g. ``"retry(2) -> reassign"``) is what its failed tasks do when they have
    no recovery policy of their own.
    """

    def register(function: Callable[[TaskRun], Any]) -> FunctionAgent:
        built = FunctionAgent(function, agent_id, task_types=task_types, **options)
        resolve(runtime).register_agent(built)
        return built

    return register


def register_agent(agent: BaseAgent, runtime: Runtime | None = None) -> BaseAgent:
    """Register a ``BaseAgent`` instance on the default runtime (or ``runtime``)."""
    return resolve(runtime).register_agent(agent)


def load_agents(path: str | Path, runtime: Runtime | None = None) -> list[BaseAgent]:
    """Read agents from a YAML file or a folder of them and register them all.

    Every file is read and checked first, so a mistake anywhere registers nothing.
    """
    agents = read_agents(path)
    target = resolve(runtime)
    done: list[BaseAgent] = []
    try:
        for item in agents:
            done.append(target.register_agent(item))
    except BaseException:
        for item in done:
            target.unregister_agent(item.spec.agent_id)
        raise
    return done
