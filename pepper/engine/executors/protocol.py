"""The executor protocol: where an attempt runs.

An executor turns one attempt (an agent and a ``TaskRun``) into a coroutine.
``Attempts`` owns everything around it, the same for every executor:

- **result**: the coroutine's value is the agent's result (made JSON by ``Attempts``);
- **error**: what it raises fails the attempt; ``AgentCrashed`` (the process or actor
  running the agent died) is recorded as a crash; the task's recovery policy decides;
- **cancel and timeout**: ``Attempts`` cancels the coroutine; the executor stops the agent
  (sets ``task.cancelled``, kills the command's process group, cancels the Ray call);
- **progress**: ``task.report_progress`` reaches the engine from wherever the agent runs.

The local executors live in ``local``; ``ray`` is imported only when an agent uses it.
"""

from __future__ import annotations

from collections.abc import Coroutine
from typing import Any, Protocol

from pepper.model.agent import AgentSpec
from pepper.model.run import TaskRun

#: The executors an agent may name (``executor="ray"``); ``local`` picks the loop, a thread or a subprocess.
EXECUTOR_NAMES = ("local", "ray")


class AgentHandle(Protocol):
    """What the engine needs of an agent object (``pepper.agents.BaseAgent`` provides it)."""

    spec: AgentSpec

    def execute(self, task: TaskRun) -> Any: ...

    def record_outcome(self, ok: bool, duration: float) -> None: ...


class AgentCrashed(Exception):
    """The process or actor running the agent died during the attempt."""


class Executor(Protocol):
    """Runs attempts somewhere; one instance serves every agent that runs there."""

    #: ``async`` (the engine's loop), ``sync`` (a thread), ``command`` (a subprocess) or ``ray``.
    name: str

    def call(self, agent: AgentHandle, run: TaskRun) -> Coroutine[Any, Any, Any]:
        """The attempt as a coroutine: its value is the result, what it raises the failure; cancelling it
        stops the attempt."""
        ...

    def health(self) -> str | None:
        """Why attempts cannot run here now (e.g. the cluster cannot be reached), or None when they can."""
        ...

    def close(self) -> None:
        """Start nothing more and let go of what the executor holds."""
        ...
