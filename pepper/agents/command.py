"""Command agents: each task runs a shell command as a subprocess."""

from __future__ import annotations

import shlex
import shutil
from collections.abc import Iterable, Mapping
from typing import Any, Unpack

from pepper.agents.base import AgentOptions, BaseAgent
from pepper.errors import AgentDefinitionError
from pepper.model.run import TaskRun


class CommandAgent(BaseAgent):
    """Runs ``command`` (via ``/bin/sh -c``) once per task, in the agent's own working directory.

    The task reaches the command through its environment (``PEPPER_TASK_ID``,
    ``PEPPER_TASK_TYPE``, ``PEPPER_ATTEMPT``, ``PEPPER_TASK_INPUTS``) and as a
    JSON document on stdin; never through the command line. ``PEPPER_PYTHON``
    is the Python interpreter running pepper (a script can use its packages); ``PEPPER_WORKER_ID``
    names the worker running it (should that worker die, another worker of the host stops what the
    command left running by it, before the task runs again). Stdout is the
    result (JSON when it parses); a non-zero exit fails the task. ``env`` adds
    environment variables.

    Limits: stdout is read up to ``max_result_mb`` (10 MB by default); past it the
    command is stopped and the attempt fails with ``ResultTooLarge``. Of stderr the
    first and last 64 KB are kept (the end of it is quoted in the task's error). When
    the command's shell exits, what it left running in its process group is stopped
    (SIGTERM, then SIGKILL): a background child neither holds the task nor outlives
    it. A timeout or cancel stops the whole group the same way. The command's
    memory allocation (``resources={"memory": MB}``) is a hard cap.
    """

    kind = "command"

    def __init__(
        self, agent_id: str, command: str, *, task_types: Iterable[str], env: Mapping[str, str] | None = None,
        max_result_mb: float | None = None, **options: Unpack[AgentOptions],
    ) -> None:  # fmt: skip
        settings = dict(options.get("config") or {})
        if env is not None:
            if not isinstance(env, Mapping):
                raise AgentDefinitionError(f"agent {agent_id!r}: env must be a mapping of names to values")
            settings["env"] = {str(k): str(v) for k, v in env.items()}
        if max_result_mb is not None:
            settings["max_result_mb"] = max_result_mb
        options["config"] = settings
        options["type"] = options.get("type") or "command"
        super().__init__(agent_id, task_types=task_types, command=command, **options)
        self.command = command

    async def execute(self, task: TaskRun) -> Any:
        raise AgentDefinitionError("command agents are run by pepper's engine (register the agent and submit tasks)")

    async def health_check(self) -> bool:
        """True when the command's program can be found."""
        try:
            program = shlex.split(self.command)[0]
        except (ValueError, IndexError):
            return False
        return program in _SHELL_BUILTINS or "/" in program or shutil.which(program) is not None


_SHELL_BUILTINS = frozenset(
    {"cd", "echo", "exec", "export", "printf", "test", "true", "false", ".", "set", "exit", "read"}
)
