"""Every error pepper raises, in one tree.

The tree is read here, in one place; its families live in the modules beside this one (``validation``,
``not_found``, ``conflict``, ``outcomes``, ``store``, ``access``, ``runtime``) and everything is imported from
``pepper.errors``.

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
    │   │   ├── NestingTooDeepError          lists and objects nested deeper than pepper keeps (.limit)
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
    │   ├── RunEndedError                    recovering by hand a step of a run that has ended (.run_id)
    │   ├── FanOutStepError                  replaying a fan-out step's own task: its items are replayed (.parked)
    │   └── NotWaitingError                  approving a step that does not wait for a decision (now)
    ├── TaskFailedError (RuntimeError)       get_result() of a failed task
    │   └── TaskParkedError                  get_result() of a task parked in the dead-letter queue
    ├── TaskCancelledError (RuntimeError)    get_result() of a cancelled task
    ├── WaitTimeoutError (TimeoutError)      wait() ran out of time
    │   └── WorkflowTimeoutError             a run outlived its timeout and was cancelled (.result)
    ├── StoreError (RuntimeError)            the database refused a write, or cannot be read
    │   ├── StoreBusyError                   busy, locked, full or unreachable: try the write again later
    │   │   ├── DatabaseReadOnlyError        the database takes no writes (a read-only file or folder, .location)
    │   │   └── DiskFullError                no space is left where the database is kept (.location)
    │   ├── WriteRefusedError                a write that fails the same way every time (a constraint)
    │   └── DatabaseDamagedError             a damaged (corrupt) database file (.path)
    ├── AccessDeniedError (PermissionError)  the caller may not do this
    │   ├── AuthenticationError              no token, or one that is unknown or revoked
    │   ├── ScopeError                       the token's scope is too small (.needed, .scope)
    │   ├── NotApproverError                 deciding an approval one is not among the approvers of
    │   ├── ImpersonationError               over HTTP, deciding in the name of someone else than the token
    │   └── ForbiddenWorkflowError           a workflow sent to a server that defines agents of its own
    ├── ServerUnreachableError (ConnectionError)  a pepper server that does not answer (.url)
    ├── RemoteUnsupportedError (NotImplementedError)  a call a remote runtime cannot make over HTTP
    ├── RuntimeClosedError (RuntimeError)    the runtime was closed
    ├── AgentStartError (RuntimeError)       agents whose initialize() failed, left out (.failures)
    ├── ExecutorUnavailableError (RuntimeError)  an agent's attempts cannot run on its executor (e.g. no Ray here)
    └── BlockingCallError (RuntimeError)     a sync call made on the engine's own thread
"""

from __future__ import annotations

from pepper.errors.access import (
    AccessDeniedError,
    AuthenticationError,
    ForbiddenWorkflowError,
    ImpersonationError,
    NotApproverError,
    ScopeError,
)
from pepper.errors.base import PepperError, shown, suggest
from pepper.errors.conflict import (
    AgentAlreadyRegisteredError,
    ConflictError,
    FanOutStepError,
    InvalidTransitionError,
    LeaseEndedError,
    NotWaitingError,
    RerunError,
    ResourceUnavailableError,
    RunEndedError,
)
from pepper.errors.not_found import (
    AgentNotFoundError,
    AllocationNotFoundError,
    NoEligibleAgentError,
    NotFoundError,
    RunNotFoundError,
    ScheduleNotFoundError,
    StepNotFoundError,
    TaskNotFoundError,
    TokenNotFoundError,
)
from pepper.errors.outcomes import (
    TaskCancelledError,
    TaskFailedError,
    TaskParkedError,
    WaitTimeoutError,
    WorkflowTimeoutError,
)
from pepper.errors.runtime import (
    AgentStartError,
    BlockingCallError,
    ExecutorUnavailableError,
    RemoteUnsupportedError,
    RuntimeClosedError,
    ServerUnreachableError,
)
from pepper.errors.store import (
    DatabaseDamagedError,
    DatabaseReadOnlyError,
    DatabaseUnreachableError,
    DiskFullError,
    StoreBusyError,
    StoreError,
    WriteRefusedError,
)
from pepper.errors.validation import (
    AgentDefinitionError,
    ConfigError,
    CycleError,
    DuplicateTaskError,
    DuplicateTokenError,
    ExpressionError,
    InvalidDelayError,
    InvalidPriorityError,
    InvalidScheduleError,
    InvalidTextError,
    NestingTooDeepError,
    NotSerializableError,
    RequestTooLargeError,
    ValidationError,
    WorkflowDefinitionError,
)

__all__ = [
    "AccessDeniedError",
    "AgentAlreadyRegisteredError",
    "AgentDefinitionError",
    "AgentNotFoundError",
    "AgentStartError",
    "AllocationNotFoundError",
    "AuthenticationError",
    "BlockingCallError",
    "ConfigError",
    "ConflictError",
    "CycleError",
    "DatabaseDamagedError",
    "DatabaseReadOnlyError",
    "DatabaseUnreachableError",
    "DiskFullError",
    "DuplicateTaskError",
    "DuplicateTokenError",
    "ExecutorUnavailableError",
    "ExpressionError",
    "FanOutStepError",
    "ForbiddenWorkflowError",
    "ImpersonationError",
    "InvalidDelayError",
    "InvalidPriorityError",
    "InvalidScheduleError",
    "InvalidTextError",
    "InvalidTransitionError",
    "LeaseEndedError",
    "NestingTooDeepError",
    "NoEligibleAgentError",
    "NotApproverError",
    "NotFoundError",
    "NotSerializableError",
    "NotWaitingError",
    "PepperError",
    "RemoteUnsupportedError",
    "RequestTooLargeError",
    "RerunError",
    "ResourceUnavailableError",
    "RunEndedError",
    "RunNotFoundError",
    "RuntimeClosedError",
    "ScheduleNotFoundError",
    "ScopeError",
    "ServerUnreachableError",
    "StepNotFoundError",
    "StoreBusyError",
    "StoreError",
    "TaskCancelledError",
    "TaskFailedError",
    "TaskNotFoundError",
    "TaskParkedError",
    "TokenNotFoundError",
    "ValidationError",
    "WaitTimeoutError",
    "WorkflowDefinitionError",
    "WorkflowTimeoutError",
    "WriteRefusedError",
    "shown",
    "suggest",
]
