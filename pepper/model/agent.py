"""The description of an agent that the scheduler needs (not the code it runs)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pepper.errors import AgentDefinitionError, ValidationError
from pepper.model import codec
from pepper.model.agent_options import OPTION_NAMES, check_options
from pepper.model.recovery import Policy
from pepper.model.requirements import parse_names
from pepper.model.resources import EMPTY, Resources

_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:\-]{0,127}$")
#: Accepts every task type.
ANY_TASK_TYPE = "*"
AGENT_KINDS = ("python", "command")


def check_agent_id(agent_id: Any) -> str:
    """Validate an agent id: letters, digits, ``_ . : -``, up to 128 characters."""
    if not isinstance(agent_id, str) or not _ID_RE.match(agent_id):
        raise AgentDefinitionError(
            f"agent id {agent_id!r} is not valid; use letters, digits, '_', '.', ':' or '-' "
            "(starting with a letter or digit), e.g. 'documentation_agent'"
        )
    return agent_id


@dataclass(frozen=True, slots=True)
class AgentSpec:
    """Who an agent is and what it can take on.

    ``kind`` is ``python`` (a function or BaseAgent subclass running in this
    process) or ``command`` (each task runs ``command`` as a subprocess).
    """

    agent_id: str
    task_types: frozenset[str]
    skills: frozenset[str] = frozenset()
    capacity: int = 1
    resources: Resources = EMPTY
    type: str = "python"
    kind: str = "python"
    command: str | None = None
    config: Mapping[str, Any] = field(default_factory=dict)
    recovery: Policy | None = None  # what its failed tasks do, when they have no policy of their own
    executor: str | None = None  # where its attempts run (``local``, ``ray``); None: the runtime's choice

    @classmethod
    def build(
        cls, agent_id: Any, *, task_types: Any, kind: str = "python", command: str | None = None, **options: Any
    ) -> AgentSpec:
        """Validate user-supplied fields (``options``: those of ``AgentOptions``); errors name the agent and
        the field."""
        agent_id = check_agent_id(agent_id)
        try:
            types = parse_names(task_types, "task_types")
            if not types:
                raise ValidationError(
                    "task_types must list at least one task type (or '*' for any type)",
                    field="task_types",
                )
            if kind not in AGENT_KINDS:
                raise ValidationError(f"kind must be one of {', '.join(AGENT_KINDS)}, got {kind!r}", field="kind")
            if kind == "command" and (not isinstance(command, str) or not command.strip()):
                raise ValidationError("a command agent needs a non-empty 'command' string", field="command")
            if command is not None:
                codec.encode_checked(command, "command")
        except ValidationError as exc:
            raise AgentDefinitionError(f"agent {agent_id!r}: {exc}", field=exc.field) from None
        values = check_options(agent_id, options)
        values["type"] = values["type"] or kind
        return cls(agent_id=agent_id, task_types=types, kind=kind, command=command, **values)

    def accepts(self, task_type: str) -> bool:
        """True when this agent takes tasks of ``task_type``."""
        return task_type in self.task_types or ANY_TASK_TYPE in self.task_types

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, as stored in the agents table and shown by ``pepper agents``."""
        return {
            "agent_id": self.agent_id,
            "type": self.type,
            "kind": self.kind,
            "task_types": sorted(self.task_types),
            "skills": sorted(self.skills),
            "capacity": self.capacity,
            "resources": self.resources.to_dict(),
            "command": self.command,
            "config": dict(self.config),
            "recovery": None if self.recovery is None else self.recovery.to_data(),
            **({"executor": self.executor} if self.executor is not None else {}),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AgentSpec:
        """An agent from its ``to_dict`` form, or one described by hand (``agent_id`` and ``task_types`` at least)."""
        missing = [key for key in ("agent_id", "task_types") if key not in data]
        if missing:
            raise AgentDefinitionError(
                f"an agent described as a dict needs {' and '.join(repr(k) for k in missing)}, e.g. "
                f"{{'agent_id': 'writer', 'task_types': ['docs']}}; got the keys "
                f"{', '.join(map(repr, data)) or 'none'}",
                field=missing[0],
            )
        return cls.build(
            data["agent_id"],
            task_types=data["task_types"],
            kind=data.get("kind", "python"),
            command=data.get("command"),
            **{name: data.get(name) for name in OPTION_NAMES},
        )


@dataclass(frozen=True, slots=True)
class AgentMetrics:
    """Counters an agent reports about itself (``BaseAgent.get_metrics``)."""

    tasks_completed: int = 0
    tasks_failed: int = 0
    average_processing_time: float = 0.0

    @property
    def tasks_total(self) -> int:
        return self.tasks_completed + self.tasks_failed

    @property
    def success_rate(self) -> float:
        return self.tasks_completed / self.tasks_total if self.tasks_total else 0.0

    @property
    def error_rate(self) -> float:
        return self.tasks_failed / self.tasks_total if self.tasks_total else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "tasks_completed": self.tasks_completed,
            "tasks_failed": self.tasks_failed,
            "average_processing_time": self.average_processing_time,
            "error_rate": self.error_rate,
            "success_rate": self.success_rate,
        }
