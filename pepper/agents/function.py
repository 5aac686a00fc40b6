"""Agents made from a plain function (what ``@pepper.agent`` builds)."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterable
from typing import Any, Unpack

from pepper.agents.base import AgentOptions, BaseAgent
from pepper.errors import AgentDefinitionError
from pepper.model.run import TaskRun


class FunctionAgent(BaseAgent):
    """An agent whose ``execute`` is a given function of one argument, the ``TaskRun``.

    Async functions run on the engine's loop; plain functions run in a thread.
    The agent stays callable like the function it wraps.
    """

    def __init__(
        self, function: Callable[[TaskRun], Any], agent_id: str, *, task_types: Iterable[str],
        **options: Unpack[AgentOptions],
    ) -> None:  # fmt: skip
        if not callable(function):
            raise AgentDefinitionError(f"agent {agent_id!r}: expected a function, got {function!r}")
        _check_signature(agent_id, function)
        options["type"] = options.get("type") or getattr(function, "__name__", "function")
        super().__init__(agent_id, task_types=task_types, **options)
        self.function = function
        # A sync function stands in for the async ``execute``; the engine checks which it is and runs it in a thread.
        self.execute = function  # type: ignore[method-assign, assignment]
        functools.update_wrapper(self, function, updated=())

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.function(*args, **kwargs)


def _check_signature(agent_id: str, function: Callable[..., Any]) -> None:
    try:
        signature = inspect.signature(function)
        signature.bind(object())
    except TypeError:
        raise AgentDefinitionError(
            f"agent {agent_id!r}: its function must accept one argument, the task "
            f"(e.g. `def {getattr(function, '__name__', 'handle')}(task): ...`)"
        ) from None
    except ValueError:  # some builtins have no signature; let them be
        return
