"""pepper: orchestrate tasks across a pool of agents.

Quick tour::

    import pepper
    from pepper.core import TaskOrchestrator

    pepper.init(db=":memory:")

    @pepper.agent("echo", task_types=["echo"])
    def echo(task):
        return task.inputs

    orchestrator = TaskOrchestrator()
    orchestrator.submit_task("t1", "echo", inputs={"hello": "world"})
    print(orchestrator.get_result("t1"))

``import pepper`` loads nothing more: each public name below loads its module the first time it is used.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pepper.agents.base import BaseAgent
    from pepper.core import Runtime, TaskOrchestrator, agent, default_runtime, init, load_agents, register_agent
    from pepper.core.planning import Plan, plan
    from pepper.core.schedules import schedule, schedules
    from pepper.errors import PepperError
    from pepper.model.run import TaskRun
    from pepper.model.status import TaskError, TaskStatus, WaitReason
    from pepper.model.task import Priority, Task, TaskState

__version__ = "0.1.0"

#: Each public name and the module that defines it, loaded on first use.
_HOMES = {
    "BaseAgent": "pepper.agents.base",
    "Runtime": "pepper.core",
    "TaskOrchestrator": "pepper.core",
    "agent": "pepper.core",
    "default_runtime": "pepper.core",
    "init": "pepper.core",
    "load_agents": "pepper.core",
    "register_agent": "pepper.core",
    "Plan": "pepper.core.planning",
    "plan": "pepper.core.planning",
    "schedule": "pepper.core.schedules",
    "schedules": "pepper.core.schedules",
    "PepperError": "pepper.errors",
    "TaskRun": "pepper.model.run",
    "TaskError": "pepper.model.status",
    "TaskStatus": "pepper.model.status",
    "WaitReason": "pepper.model.status",
    "Priority": "pepper.model.task",
    "Task": "pepper.model.task",
    "TaskState": "pepper.model.task",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:  # a subpackage (``pepper.errors``, ``pepper.core``...) is loaded on first use too
        try:
            return import_module(f"pepper.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"pepper.{name}":
                raise
            raise AttributeError(f"module 'pepper' has no attribute {name!r}") from None
    value = getattr(import_module(home), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_HOMES))


def connect(url: str | None = None, token: str | None = None, *, default: bool = False) -> Runtime:
    """A runtime that speaks to the pepper server at ``url`` (default ``$PEPPER_SERVER``) with ``token`` (default
    ``$PEPPER_TOKEN``): pass it as ``runtime=`` to the faces, or (``default=True``) make it the runtime that
    argument-less ones (``TaskOrchestrator()``) attach to. Needs the ``http`` extra."""
    from pepper.http.remote import RemoteRuntime  # httpx is loaded only by those who connect

    runtime = RemoteRuntime(url, token)
    if default:
        from pepper.core.default import set_default_runtime

        set_default_runtime(runtime)
    return runtime


__all__ = [
    "BaseAgent",
    "PepperError",
    "Plan",
    "Priority",
    "Runtime",
    "Task",
    "TaskError",
    "TaskOrchestrator",
    "TaskRun",
    "TaskState",
    "TaskStatus",
    "WaitReason",
    "__version__",
    "agent",
    "connect",
    "default_runtime",
    "init",
    "load_agents",
    "plan",
    "register_agent",
    "schedule",
    "schedules",
]
