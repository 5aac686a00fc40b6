"""Bad input: the call or file was invalid and nothing was changed."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pepper.errors.base import PepperError, shown, suggest


class ValidationError(PepperError, ValueError):
    """An argument or file was invalid; the call changed nothing.

    ``field`` names the offending argument or key when there is one.
    """

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class InvalidDelayError(ValidationError):
    """A ``delay`` or ``not_before`` that cannot be used: negative, unreadable, naive, or both given."""


class InvalidScheduleError(ValidationError):
    """A schedule that cannot be stored: a bad cron expression or interval, an unknown time zone, a bad name."""


class InvalidPriorityError(ValidationError):
    """A priority that is neither a known name nor an integer."""

    def __init__(self, value: Any, valid: Sequence[str]) -> None:
        hint = suggest(value, valid) if isinstance(value, str) else ""
        super().__init__(
            f"unknown priority {shown(value)}; use one of {', '.join(valid)} or an integer "
            f"from -1000000 to 1000000 (higher runs first).{hint}",
            field="priority",
        )
        self.value = value
        self.valid = tuple(valid)


class CycleError(ValidationError):
    """Dependencies that loop back on themselves; ``cycle`` lists the loop."""

    def __init__(self, cycle: Sequence[str]) -> None:
        path = " -> ".join(cycle)
        super().__init__(
            f"dependency cycle: {path}; a task cannot (even indirectly) depend on itself",
            field="dependencies",
        )
        self.cycle = tuple(cycle)


class DuplicateTaskError(ValidationError):
    """A task id already used by a task with a different specification."""

    def __init__(
        self, task_id: str, differences: Sequence[str], *, in_batch: bool = False, batch: str = "this submission"
    ) -> None:
        """``in_batch``: the id appears twice among the tasks given together (``batch`` names them)."""
        what = ", ".join(differences)
        if in_batch:
            message = (f"task id {task_id!r} appears twice in {batch}, with different {what}; give each "
                       "task its own id (the same id twice is only allowed with the same specification)")  # fmt: skip
        else:
            message = (f"task {task_id!r} already exists with different {what}; re-submitting the same id is only "
                       "allowed with the same specification (choose a new id, or omit task_id to get a generated "
                       "one)")  # fmt: skip
        super().__init__(message, field="task_id")
        self.task_id = task_id
        self.differences = tuple(differences)


class DuplicateTokenError(ValidationError):
    """An API token name that a live token already has."""

    def __init__(self, name: str) -> None:
        super().__init__(
            f"a token named {name!r} already exists; choose another name, or revoke it first "
            f"(`pepper token revoke {name}`) to reuse the name",
            field="name",
        )
        self.name = name


class NotSerializableError(ValidationError):
    """A value that pepper must store is not JSON-serialisable."""

    def __init__(self, what: str, detail: str) -> None:
        super().__init__(
            f"{what} must be JSON-serialisable (dicts, lists, strings, numbers, booleans, None): {detail}",
            field=what,
        )


class NestingTooDeepError(NotSerializableError):
    """A value nesting lists and objects deeper than pepper keeps (``.limit`` levels)."""

    def __init__(self, what: str, limit: int) -> None:
        ValidationError.__init__(
            self,
            f"{what} nests lists and objects more than {limit} levels deep; at most {limit} levels are kept (flatten "
            "it, or pass the deep part as text)",
            field=what,
        )
        self.limit = limit


class InvalidTextError(NotSerializableError):
    """Text SQLite cannot store: a string with a lone surrogate, as ``os.listdir`` gives for a non-UTF-8 name."""

    def __init__(self, what: str, where: str, value: str) -> None:
        ValidationError.__init__(
            self,
            f"{where} is not valid Unicode text: {shown(value)} holds a lone surrogate (as os.listdir or sys.argv "
            "give for a name that is not UTF-8); pass valid text, e.g. os.fsencode(name).decode('utf-8', 'replace')",
            field=what,
        )
        self.value = value


class ConfigError(ValidationError):
    """A setting that is unknown or has a bad value."""


def _located(message: str, path: str | None, line: int | None) -> str:
    """``message`` behind ``path:line: `` (or ``path: ``) when it came from a file."""
    if path is None:
        return message
    return f"{path}:{line}: {message}" if line is not None else f"{path}: {message}"


class AgentDefinitionError(ValidationError):
    """An agent definition (YAML or code) that cannot be used.

    ``path`` and ``line`` locate the problem in a file when it came from one.
    """

    def __init__(
        self, message: str, *, path: str | None = None, line: int | None = None, field: str | None = None
    ) -> None:
        super().__init__(_located(message, path, line), field=field)
        self.path = path
        self.line = line


class WorkflowDefinitionError(ValidationError):
    """A workflow that cannot run: a bad step, an unknown dependency, a cycle, a bad file.

    ``path`` and ``line`` locate the problem in a workflow file; ``step_id`` names the step.
    """

    def __init__(
        self,
        message: str,
        *,
        path: str | None = None,
        line: int | None = None,
        step_id: str | None = None,
        field: str | None = None,
    ) -> None:
        super().__init__(_located(message, path, line), field=field)
        self.path = path
        self.line = line
        self.step_id = step_id


class ExpressionError(ValidationError):
    """A ``when`` condition or ``${{ ... }}`` reference that is malformed or cannot be evaluated."""

    def __init__(self, message: str, *, expression: str | None = None) -> None:
        super().__init__(message, field="expression")
        self.expression = expression


class RequestTooLargeError(ValidationError):
    """A request body over the server's limit; nothing was read further, nothing changed."""

    def __init__(self, limit: int) -> None:
        super().__init__(
            f"the request body is larger than {limit:,} bytes, the most this server accepts; send less per request "
            "(e.g. submit tasks in several batches)",
            field="body",
        )
        self.limit = limit
