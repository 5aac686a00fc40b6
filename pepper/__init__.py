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
"""

from pepper.agents.base import BaseAgent
from pepper.core import Runtime, TaskOrchestrator, agent, default_runtime, init, load_agents, register_agent
from pepper.core.planning import Plan, plan
from pepper.core.schedules import schedule, schedules
from pepper.errors import PepperError
from pepper.model.run import TaskRun
from pepper.model.status import TaskError, TaskStatus, WaitReason
from pepper.model.task import Priority, Task, TaskState

__version__ = "0.1.0"


def connect(url: str | None = None, token: str | None = None, *, default: bool = False) -> Runtime:
    """A runtime that speaks to the pepper server at ``url`` (default ``$PEPPER_SERVER``) with ``token`` (default
    ``$PEPPER_TOKEN``): pass it as ``runtime=`` to the faces, or (``default=True``) make it the runtime that
    argument-less ones (``TaskOrchestrator()``) attach to. Needs the ``http`` extra."""
    from pepper.http.remote import RemoteRuntime  # httpx is loaded only by those who connect

    runtime = RemoteRuntime(url, token)
    if default:
        from pepper.core.runtime import set_default_runtime

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
