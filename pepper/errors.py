"""Every error pepper raises, in one tree.

Over 400 lines, kept whole: the tree is read (and its docstring kept true) in one place.

Each error also subclasses the builtin a Python programmer would reach for
(``ValueError`` for bad input, ``LookupError`` for unknown ids, ...), so
``except ValueError`` keeps working. Data travels on attributes, not only in
the message::

    PepperError
    ├── ValidationError (ValueError)         bad input; nothing was changed
    │   ├── InvalidPriorityError
    │   ├── CycleError                       .cycle: the ids around the loop
    │   ├── DuplicateTaskError               same id, different spec
    │   ├── DuplicateTokenError              an API token name already in use (.name)
    │   ├── NotSerializableError             inputs/results that are not JSON
    │   │   └── InvalidTextError             text that is not valid Unicode (a lone surrogate)
    │   ├── ConfigError                      settings, pepper.toml, env vars
    │   ├── AgentDefinitionError             .path, .line of the agent YAML
    │   ├── WorkflowDefinitionError          a bad step or workflow file (.path, .line, .step_id)
    │   ├── ExpressionError                  a `when` condition or ${{ }} reference that cannot be read
    │   ├── RequestTooLargeError             a request body over the server's limit (.limit, in bytes)
    │   ├── InvalidDelayError                a bad delay or not_before (negative, unreadable, both, naive time)
    │   └── InvalidScheduleError             a bad schedule (cron, every, time zone, name)
    ├── NotFoundError (LookupError)
    │   ├── TaskNotFoundError
    │   ├── AgentNotFoundError
    │   ├── AllocationNotFoundError
    │   ├── RunNotFoundError
    │   ├── ScheduleNotFoundError            no schedule of this name (.name)
    │   ├── StepNotFoundError                a run's workflow has no such step (.run_id, .step_id)
    │   ├── TokenNotFoundError               no live API token of this name (.name)
    │   └── NoEligibleAgentError             .rejected: agent id -> why it cannot take the task
    ├── ConflictError (RuntimeError)
    │   ├── InvalidTransitionError           a state change the table forbids
    │   ├── AgentAlreadyRegisteredError
    │   ├── ResourceUnavailableError         .shortfall: what is missing, per resource
    │   ├── LeaseEndedError                  renewing a released or expired lease
    │   ├── RerunError                       a re-run of a run that has not ended, or of an unknown step
    │   └── NotWaitingError                  approving a step that does not wait for a decision (now)
    ├── TaskFailedError (RuntimeError)       get_result() of a failed task
    │   └── TaskParkedError                  get_result() of a task parked in the dead-letter queue
    ├── TaskCancelledError (RuntimeError)    get_result() of a cancelled task
    ├── WaitTimeoutError (TimeoutError)      wait() ran out of time
    │   └── WorkflowTimeoutError             a run outlived its timeout and was cancelled (.result)
    ├── StoreError (RuntimeError)            the database refused a write, or cannot be read
    │   ├── StoreBusyError                   busy, locked, full or unreachable: try the write again later
    │   ├── WriteRefusedError                a write that fails the same way every time (a constraint)
    │   └── DatabaseDamagedError             a damaged (corrupt) database file (.path)
    ├── AccessDeniedError (PermissionError)  the caller may not do this
    │   ├── AuthenticationError              no token, or one that is unknown or revoked
    │   ├── ScopeError                       the token's scope is too small (.needed, .scope)
    │   ├── NotApproverError                 deciding an approval one is not among the approvers of
    │   └── ForbiddenWorkflowError           a workflow sent to a server that defines agents of its own
    ├── ServerUnreachableError (ConnectionError)  a pepper server that does not answer (.url)
    ├── RemoteUnsupportedError (NotImplementedError)  a call a remote runtime cannot make over HTTP
    ├── RuntimeClosedError (RuntimeError)    the runtime was closed
    └── BlockingCallError (RuntimeError)     a sync call made on the engine's own thread
"""

from __future__ import annotations

import shlex
from collections.abc import Iterable, Sequence
from difflib import get_close_matches
from typing import Any


def suggest(value: str, valid: Iterable[str]) -> str:
    """Return ' Did you mean 'x'?' when ``value`` is close to a valid name, else ''."""
    match = get_close_matches(str(value), list(valid), n=1, cutoff=0.6)
    return f" Did you mean {match[0]!r}?" if match else ""


def shown(value: Any, limit: int = 80) -> str:
    """``repr(value)`` for a message, cut to ``limit`` characters (a huge int has no repr at all)."""
    try:
        text = repr(value)
    except ValueError:  # an int past Python's digit limit for str()
        return f"an integer of {value.bit_length()} bits"
    return text if len(text) <= limit else f"{text[: limit - 5]}...{text[-2:]}"


class PepperError(Exception):
    """Root of every error raised by pepper."""


# --- bad input -----------------------------------------------------------------


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

    def __init__(self, task_id: str, differences: Sequence[str]) -> None:
        what = ", ".join(differences)
        super().__init__(
            f"task {task_id!r} already exists with a different {what}; re-submitting "
            "the same id is only allowed with the same specification (choose a new id, "
            "or omit task_id to get a generated one)",
            field="task_id",
        )
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


# --- unknown ids ---------------------------------------------------------------


class NotFoundError(PepperError, LookupError):
    """Something named by id does not exist."""


class TaskNotFoundError(NotFoundError):
    """No task with this id was ever submitted (to this database)."""

    def __init__(self, task_id: str) -> None:
        super().__init__(f"no task with id {task_id!r}; `pepper tasks` lists the known tasks")
        self.task_id = task_id


class AgentNotFoundError(NotFoundError):
    """No agent with this id is registered."""

    def __init__(self, agent_id: str, known: Iterable[str] = ()) -> None:
        known = sorted(known)
        listing = ", ".join(known) if known else "none are registered"
        super().__init__(f"no agent with id {agent_id!r} (registered: {listing}).{suggest(agent_id, known)}")
        self.agent_id = agent_id
        self.known = tuple(known)


class AllocationNotFoundError(NotFoundError):
    """No lease (allocation) with this id was ever granted."""

    def __init__(self, allocation_id: str) -> None:
        super().__init__(f"no allocation with id {allocation_id!r}; `pepper leases` lists the current ones")
        self.allocation_id = allocation_id


class RunNotFoundError(NotFoundError):
    """No workflow run has this id."""

    def __init__(self, run_id: str) -> None:
        super().__init__(f"no workflow run with id {run_id!r}; `pepper runs` lists the runs")
        self.run_id = run_id


class ScheduleNotFoundError(NotFoundError):
    """No schedule has this name."""

    def __init__(self, name: str) -> None:
        super().__init__(f"no schedule named {name!r}; `pepper schedules` lists the schedules")
        self.name = name


class StepNotFoundError(NotFoundError):
    """A run's workflow has no step with this id."""

    def __init__(self, run_id: str, step_id: str, steps: Sequence[str]) -> None:
        super().__init__(
            f"run {run_id!r} has no step {step_id!r}; its steps: {', '.join(steps) or 'none'}.{suggest(step_id, steps)}"
        )
        self.run_id = run_id
        self.step_id = step_id


class TokenNotFoundError(NotFoundError):
    """No live API token has this name."""

    def __init__(self, name: str) -> None:
        super().__init__(f"no live token named {name!r}; `pepper token list` lists the tokens")
        self.name = name


class NoEligibleAgentError(NotFoundError):
    """No agent can take the task; ``rejected`` says, per agent, why not."""

    def __init__(self, task_type: str, rejected: dict[str, tuple[str, ...]]) -> None:
        if rejected:
            lines = "; ".join(f"{agent}: {', '.join(reasons)}" for agent, reasons in sorted(rejected.items()))
            detail = f"every agent was ruled out - {lines}"
        else:
            detail = "no agents are registered (start a `pepper worker` or register one)"
        super().__init__(f"no eligible agent for a {task_type!r} task: {detail}")
        self.task_type = task_type
        self.rejected = dict(rejected)


# --- state conflicts -------------------------------------------------------------


class ConflictError(PepperError, RuntimeError):
    """The request clashes with the current state."""


class RerunError(ConflictError):
    """A re-run that cannot be made: the run has not ended yet, a step it names does not exist, or nothing is
    left to run again."""

    def __init__(self, run_id: str, message: str) -> None:
        super().__init__(message)
        self.run_id = run_id


class NotWaitingError(ConflictError):
    """A decision for a step that does not wait for one: not an approval step, not reached yet, decided
    already, or its run ended. ``task_id`` names the step's task."""

    def __init__(self, message: str, *, task_id: str) -> None:
        super().__init__(message)
        self.task_id = task_id


class InvalidTransitionError(ConflictError):
    """A task state change that the transition table does not allow."""

    def __init__(self, task_id: str, source: str, target: str, allowed: Iterable[str]) -> None:
        options = ", ".join(sorted(allowed)) or "none (it is final)"
        super().__init__(
            f"task {task_id!r} cannot go from {source!r} to {target!r}; from {source!r} it may go to: {options}"
        )
        self.task_id = task_id
        self.source = source
        self.target = target


class AgentAlreadyRegisteredError(ConflictError):
    """Another agent with the same id is already registered on this runtime."""

    def __init__(self, agent_id: str) -> None:
        super().__init__(
            f"an agent with id {agent_id!r} is already registered on this runtime; "
            "agent ids must be unique (unregister the old one first)"
        )
        self.agent_id = agent_id


class ResourceUnavailableError(ConflictError):
    """The resources asked for are not free now; ``shortfall`` says how much is missing."""

    def __init__(self, message: str, shortfall: dict[str, float]) -> None:
        super().__init__(message)
        self.shortfall = dict(shortfall)


class LeaseEndedError(ConflictError):
    """The lease was released or has expired, so it cannot be renewed."""

    def __init__(self, allocation_id: str, how: str) -> None:
        super().__init__(f"allocation {allocation_id!r} {how}; allocate again instead of renewing")
        self.allocation_id = allocation_id


# --- outcomes --------------------------------------------------------------------


class TaskFailedError(PepperError, RuntimeError):
    """The task ended ``failed``; ``error`` holds what the agent raised."""

    def __init__(self, task_id: str, error: Any) -> None:
        detail = f"{error.type}: {error.message}" if error is not None else "no error recorded"
        super().__init__(f"task {task_id!r} failed: {detail}")
        self.task_id = task_id
        self.error = error


class TaskParkedError(TaskFailedError):
    """The task is parked in the dead-letter queue: it has no result, and waits for a person to replay or drop
    it. A ``TaskFailedError``, so code that handles failures handles it too."""

    def __init__(self, task_id: str, error: Any) -> None:
        super().__init__(task_id, error)
        detail = f"{error.type}: {error.message}" if error is not None else "no error recorded"
        self.args = (
            f"task {task_id!r} is parked in the dead-letter queue ({detail}); `pepper dlq replay {task_id}` runs "
            f"it again, `pepper dlq drop {task_id}` gives it up",
        )


class TaskCancelledError(PepperError, RuntimeError):
    """The task ended ``cancelled``; ``reason`` says why."""

    def __init__(self, task_id: str, reason: str | None) -> None:
        super().__init__(f"task {task_id!r} was cancelled: {reason or 'no reason given'}")
        self.task_id = task_id
        self.reason = reason


class WaitTimeoutError(PepperError, TimeoutError):
    """``wait`` returned before the tasks finished; ``pending`` lists those still open."""

    def __init__(self, pending: Sequence[str], timeout: float) -> None:
        shown = ", ".join(repr(t) for t in pending[:5])
        more = f" and {len(pending) - 5} more" if len(pending) > 5 else ""
        super().__init__(
            f"timed out after {timeout:g}s waiting for {shown}{more}; `pepper status TASK` says why a task is waiting"
        )
        self.pending = tuple(pending)
        self.timeout = timeout


class WorkflowTimeoutError(WaitTimeoutError):
    """A workflow run did not finish within its timeout; it was cancelled. ``result`` is where it stood."""

    def __init__(self, run_id: str, timeout: float, unfinished: Sequence[str], result: Any = None) -> None:
        PepperError.__init__(
            self,
            f"workflow run {run_id!r} did not finish within {timeout:g}s and was cancelled; "
            f"unfinished steps: {', '.join(unfinished) or 'none'}",
        )
        self.pending = tuple(unfinished)
        self.timeout = timeout
        self.run_id = run_id
        self.result = result


class StoreError(PepperError, RuntimeError):
    """The database refused a write (the rest of its batch was stored), or cannot be used at all."""


class StoreBusyError(StoreError):
    """The database cannot take the write now (busy, locked, full or unreachable); the same write may pass later."""


class WriteRefusedError(StoreError):
    """The database refuses the write itself (a constraint, a value it cannot hold): retrying fails the same way."""


class DatabaseUnreachableError(StoreError):
    """The database server cannot be reached or refuses the connection. ``location`` names the server (never
    the password)."""

    def __init__(self, location: str, detail: str) -> None:
        super().__init__(
            f"cannot connect to the pepper database at {location}: {detail}; check that the server runs and that "
            "the URL's host, port, user, password and database name are right (--db or $PEPPER_DB)"
        )
        self.location = location


class DatabaseDamagedError(StoreError):
    """The database file is damaged (corrupt pages): pepper cannot read it. ``path`` names the file."""

    def __init__(self, path: str, detail: str) -> None:
        super().__init__(
            f"the pepper database {path!r} is damaged and cannot be read (SQLite says: {detail}); restore it "
            f"from a backup, or save what is left with `sqlite3 {shlex.quote(path)} .recover | sqlite3 "
            "recovered.db` and use --db recovered.db"
        )
        self.path = path


class RequestTooLargeError(ValidationError):
    """A request body over the server's limit; nothing was read further, nothing changed."""

    def __init__(self, limit: int) -> None:
        super().__init__(
            f"the request body is larger than {limit:,} bytes, the most this server accepts; send less per request "
            "(e.g. submit tasks in several batches)",
            field="body",
        )
        self.limit = limit


class AccessDeniedError(PepperError, PermissionError):
    """The caller may not do this (a server's tokens and rules)."""


class AuthenticationError(AccessDeniedError):
    """No token was given, or it is unknown or revoked."""


class NotApproverError(AccessDeniedError):
    """The approval names its approvers, and the one deciding is not among them."""

    def __init__(self, task_id: str, who: str | None, approvers: Sequence[str]) -> None:
        name = repr(who) if who else "someone who did not say who they are (give --by, or the 'by' field)"
        super().__init__(f"step {task_id!r} waits for {' or '.join(approvers)}; {name} is not among them")
        self.task_id = task_id


class ScopeError(AccessDeniedError):
    """The token is valid but its scope is too small for the call; ``needed`` and ``scope`` name both."""

    def __init__(self, needed: str, scope: str) -> None:
        super().__init__(
            f"this needs a token with scope {needed!r} (or above); the token given has scope {scope!r}. Create one "
            f"with `pepper token create --scope {needed} --name NAME`"
        )
        self.needed = needed
        self.scope = scope


class ForbiddenWorkflowError(AccessDeniedError):
    """A workflow sent to a server that defines agents (code the server would run); only agents already
    registered by workers may be named."""


class ServerUnreachableError(PepperError, ConnectionError):
    """A pepper server (``pepper.connect``, ``--server``) that could not be reached; ``url`` names it."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(
            f"cannot reach the pepper server at {url}: {reason}. Is `pepper serve` running there, and is the "
            "URL right (scheme, host, port)?"
        )
        self.url = url


class RemoteUnsupportedError(PepperError, NotImplementedError):
    """A call a runtime connected to a server cannot make: it needs the database or an engine in this process."""

    def __init__(self, what: str, instead: str) -> None:
        super().__init__(f"{what} is not offered by a remote pepper server; {instead}")


class RuntimeClosedError(PepperError, RuntimeError):
    """The runtime was closed; create a new one (or call ``pepper.init``)."""


class BlockingCallError(PepperError, RuntimeError):
    """A blocking call was made from the engine's own thread, where it would deadlock."""
