"""The faces' questions a server answers, for a runtime connected to one (``pepper.connect``).

Most questions the faces ask their runtime cross HTTP as they are (``Backend``); the ones they ask as a closure
over the engine's view of the agents, or of the database, cannot. A runtime that speaks to a server is a
``Server``: a face asks it the matching route of the server's API instead, with the question's arguments as
JSON, and turns the answer back into the object the local call returns. The server answers each route with the
same face, so both answers come from one rule.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol, cast

from pepper.core.runtime import Runtime
from pepper.errors import ValidationError
from pepper.model.task import Task


class Server(Protocol):
    """A runtime whose answers come from a pepper server's API."""

    def ask_server(
        self, method: str, path: Sequence[str], body: Any = None, params: Mapping[str, Any] | None = None
    ) -> Any:
        """The server's JSON answer to ``method`` on ``/api/v1/<path segments>`` (each segment escaped whole);
        an error answer raises the same ``PepperError`` the server raised."""
        ...


#: The most items one page of a server's list holds (``pepper.http.lists.MAX_LIMIT``).
_PAGE = 1000


def server_of(runtime: Runtime) -> Server | None:
    """``runtime`` when its answers come from a server, else None (the face answers here, as always)."""
    return cast(Server, runtime) if hasattr(runtime, "ask_server") else None  # cheaper than a Protocol check


def every_item(server: Server, path: Sequence[str], params: Mapping[str, Any] | None = None) -> list[Any]:
    """The items of every page of the server's list at ``path`` (``{"items", "next_cursor"}`` pages), in order."""
    items: list[Any] = []
    cursor = None
    while True:
        page = server.ask_server("GET", path, params={**(params or {}), "limit": _PAGE, "cursor": cursor})
        items.extend(page["items"])
        cursor = page.get("next_cursor")
        if not cursor:
            return items


def plan_task(item: Any) -> str | dict[str, Any]:
    """A task of a workload plan as the server reads it: a dict as given, a task's id, type, requirements and
    dependencies (the plan reads nothing else of it), or the id of a stored task."""
    if isinstance(item, Mapping):
        return dict(item)
    task = item if isinstance(item, Task) else getattr(item, "task", None)  # a Task, or a stored record
    if isinstance(task, Task):
        return {"task_id": task.task_id, "task_type": task.task_type, "requirements": task.requirements.to_dict(),
                "dependencies": list(task.dependencies)}  # fmt: skip
    return stored_task_id(item)


def stored_task_id(item: Any) -> str:
    """The id of the stored task ``item`` names (its id, or an object with a ``task_id``, such as a status)."""
    task_id = item if isinstance(item, str) else getattr(item, "task_id", None)
    if not isinstance(task_id, str):
        raise ValidationError(
            f"cannot read a task from {item!r}; give a Task, a dict such as {{'id': 't1', 'type': 'review'}} or "
            "the id of a stored task",
            field="tasks",
        )
    return task_id


def plan_agent(item: Any) -> str | dict[str, Any]:
    """An agent of a workload plan as the server reads it: a dict describing one as given, else its id."""
    if isinstance(item, Mapping):
        return dict(item)
    agent_id = item if isinstance(item, str) else getattr(item, "agent_id", None)
    if not isinstance(agent_id, str):
        raise ValidationError(f"cannot read an agent from {item!r}; give its id, an agent or a dict", field="agents")
    return agent_id
