"""SQLite statement parameters from the store protocol's records, and SQLite's exceptions as the protocol's.

The order of each tuple is the order of the ``?`` in the named statement (``sql/queries.sql``).
"""

from __future__ import annotations

import sqlite3
from typing import Any

from pepper.errors import StoreBusyError, WriteRefusedError
from pepper.model import codec
from pepper.model.events import RecordAttempt, RecordError
from pepper.model.record import STORED_FIELDS, initial_state
from pepper.model.recovery import NO_RECOVERY
from pepper.model.task import Task, TaskState
from pepper.store.protocol import TaskSave

_PENDING = TaskState.PENDING  # (read from the class, a member costs a look-up through its metaclass)


def insert_params(task: Task, writer: str) -> tuple[Any, ...]:
    """Parameters of ``insert_task`` for a newly submitted task."""
    state = initial_state(task)
    ready_at = task.created_at if state is _PENDING else None
    return (*task.to_row(), state._value_, ready_at, writer)  # (``_value_``: ``value`` is a slower property)


#: The fields ``save_task`` sets, in order: the stored fields, ``result`` held as its JSON text (``result_json``)
SAVED_FIELDS = tuple(name for name in STORED_FIELDS if name != "result")
_STATE, _RESULT, _ERROR, _CANCEL, _RECOVERY, _OUTCOME = (
    STORED_FIELDS.index(name) for name in ("state", "result", "error", "cancel_requested", "recovery", "outcome")
)
#: The column each of ``SAVED_FIELDS`` is written to, in ``save_task``'s order.
SAVE_COLUMNS = tuple("result" if name == "result_json" else name for name in SAVED_FIELDS)
#: The ``state`` values after which a task is not written again in the common case.
FINAL_VALUES = frozenset(state.value for state in TaskState if state.is_final)


_UNKNOWN = object()  # equal to nothing else: the columns ``INSERTED`` does not vouch for are always written
_DEFAULTS = {"attempts": 0, "failures": 0, "cancel_requested": 0}
#: The first ``len(SAVE_COLUMNS)`` values of ``save_params`` of a row at version 1, as ``insert_task`` left it: the
#: columns an insert does not write hold their defaults; ``state`` and ``ready_at``, which it writes, are unknown.
INSERTED: tuple[Any, ...] = tuple(
    _UNKNOWN if name in ("state", "ready_at") else _DEFAULTS.get(name) for name in SAVE_COLUMNS
)


def save_params(save: TaskSave, writer: str) -> tuple[Any, ...]:
    """Parameters of ``save_task``: the stored fields, the writer, then the task id and the expected version."""
    values = list(save.values)
    values[_STATE] = values[_STATE]._value_
    error = values[_ERROR]
    values[_ERROR] = codec.encode(error.to_dict()) if error is not None else None
    values[_CANCEL] = int(values[_CANCEL])
    recovery = values[_RECOVERY]
    values[_RECOVERY] = None if recovery is NO_RECOVERY else codec.encode(recovery.to_data())
    outcome = values[_OUTCOME]
    values[_OUTCOME] = None if outcome is None else outcome.value
    del values[_RESULT]  # its JSON text (``result_json``) is what the column holds
    return (*values, writer, save.task.task_id, save.version)


def attempt_params(a: RecordAttempt, writer: str) -> tuple[Any, ...]:
    """Parameters of the ``record_attempt`` statement."""
    error = codec.encode(a.error.to_dict()) if a.error is not None else None
    return (a.task_id, a.attempt, a.agent_id, writer, a.task_type, a.started_at, a.ended_at, a.outcome, error)


def error_params(e: RecordError, writer: str) -> tuple[Any, ...]:
    """Parameters of the ``record_error`` statement."""
    err = e.error
    return (e.task_id, e.attempt, e.agent_id, writer, e.task_type, e.at, err.type, err.message, err.traceback,
            err.kind, e.strategy or None, e.action, e.detail or None)  # fmt: skip


def typed_error(exc: sqlite3.Error | OverflowError) -> StoreBusyError | WriteRefusedError:
    """The store protocol's error for one of SQLite's (an ``OverflowError``: an integer wider than its 64 bits)."""
    if isinstance(exc, sqlite3.OperationalError) or type(exc) is sqlite3.DatabaseError:
        return StoreBusyError(str(exc))
    return WriteRefusedError(str(exc))
