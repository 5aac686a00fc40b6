"""``BaseAgent``: the lifecycle every agent follows."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from typing import Any, TypeVar, Unpack

from pepper.model.agent import AgentMetrics, AgentSpec
from pepper.model.agent_options import OPTION_NAMES, AgentOptions
from pepper.model.run import TaskRun

_T = TypeVar("_T")


class BaseAgent:
    """A worker that runs tasks. Subclass it and implement ``execute``.

    The lifecycle: ``initialize()`` once when registered, ``execute(task)`` for
    each task (async, or a plain function run in a thread), ``cleanup()`` when
    unregistered or the runtime closes. ``health_check()`` and
    ``collect_feedback()`` are asked for by monitors; ``get_metrics()`` reports
    the counters pepper keeps for the agent.

    A result is at most 10 MB as JSON (a larger one fails the attempt); ``max_result_mb`` in
    ``config`` sets another cap for the agent.

    Class attributes (``agent_id``, ``task_types``, ``skills``, ``capacity``,
    ``resources``) are defaults for the constructor's arguments::

        class ReviewAgent(BaseAgent):
            task_types = ["review"]
            skills = ["markdown"]

            async def execute(self, task):
                return {"approved": "TODO" not in task.inputs["text"]}

        pepper.register_agent(ReviewAgent("review_agent"))
    """

    agent_id: str | None = None
    task_types: Iterable[str] = ()
    skills: Iterable[str] = ()
    capacity: int = 1
    resources: Mapping[str, Any] | None = None
    recovery: Any = None  # a recovery policy for its failed tasks, e.g. "retry(2) -> reassign"
    kind = "python"

    def __init__(
        self,
        agent_id: str | None = None,
        *,
        task_types: Iterable[str] | None = None,
        command: str | None = None,
        **options: Unpack[AgentOptions],
    ) -> None:
        cls = type_of(self)
        # An option not given (or None) falls back to the class attribute of that name, if the class has one.
        given: dict[str, Any] = dict(options)
        values = {name: _given_or(given.pop(name, None), getattr(cls, name, None)) for name in OPTION_NAMES}
        values["skills"] = _names(values["skills"])
        values["type"] = values["type"] or cls.__name__
        self.spec = AgentSpec.build(
            agent_id if agent_id is not None else cls.agent_id,
            task_types=_names(task_types if task_types is not None else cls.task_types),
            kind=self.kind,
            command=command,
            **values,
            **given,  # names that are no option: refused by the spec, which names the valid ones
        )
        # Plain attributes mirror the spec, so agents read like the YAML that defines them.
        self.agent_id = self.spec.agent_id
        self.task_types = self.spec.task_types
        self.skills = self.spec.skills
        self.capacity = self.spec.capacity
        self.resources = self.spec.resources
        self.config = self.spec.config
        self._lock = threading.Lock()
        self._completed = 0
        self._failed = 0
        self._busy_seconds = 0.0

    async def initialize(self) -> None:
        """Prepare resources (connections, models, files) before the first task."""

    async def execute(self, task: TaskRun) -> Any:
        """Run one task and return its result (JSON-serialisable). Raise to fail it."""
        raise NotImplementedError(f"{type_of(self).__name__} must implement execute(task)")

    async def collect_feedback(self) -> dict[str, Any]:
        """What the agent reports about its own work (by default its metrics)."""
        return self.get_metrics().to_dict()

    async def cleanup(self) -> None:
        """Release what ``initialize`` acquired."""

    async def health_check(self) -> bool:
        """True while the agent can take work."""
        return True

    def get_metrics(self) -> AgentMetrics:
        """Tasks completed and failed here, and the average processing time."""
        with self._lock:
            done = self._completed + self._failed
            average = self._busy_seconds / done if done else 0.0
            return AgentMetrics(self._completed, self._failed, average)

    def record_outcome(self, ok: bool, duration: float) -> None:
        """Called by the engine after each attempt."""
        with self._lock:
            if ok:
                self._completed += 1
            else:
                self._failed += 1
            self._busy_seconds += max(0.0, duration)

    def __repr__(self) -> str:
        return f"<{type_of(self).__name__} {self.spec.agent_id!r} types={sorted(self.spec.task_types)}>"


def type_of(obj: _T) -> type[_T]:
    """``type(obj)`` (named so, since ``type`` is an argument name above)."""
    return obj.__class__


def _given_or(value: Any, default: Any) -> Any:
    return default if value is None else value


def _names(value: Any) -> Any:
    """A list of names from any iterable; a lone string stays whole (one name, not its letters)."""
    return value if isinstance(value, str) or not isinstance(value, Iterable) else list(value)
