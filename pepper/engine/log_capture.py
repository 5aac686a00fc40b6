"""Which attempt a log record belongs to: a context variable, set while a Python agent's attempt runs.

The variable is set in the attempt's own asyncio task (and copied into the thread of a sync agent),
so attempts running at once on one loop or in several threads never mix their records. Records are
caught where they are made (a log record factory), so the handlers an application configured are
left as they were; a record is kept at the level its logger lets through.
"""

from __future__ import annotations

import contextvars
import logging
import threading
from collections.abc import Callable
from typing import Any

from pepper.engine.task_logs import AttemptLog, LogWriter

_FORMAT = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")


class LogSlot:
    """Where one attempt's log goes; the log itself is opened at the first line (none for a silent attempt)."""

    __slots__ = ("attempt", "closed", "log", "task_id", "writer")

    def __init__(self, writer: LogWriter, task_id: str, attempt: int) -> None:
        self.writer = writer
        self.task_id = task_id
        self.attempt = attempt
        self.log: AttemptLog | None = None
        self.closed = False  # the attempt ended: what a thread it left behind still logs is dropped

    def write(self, data: bytes) -> None:
        """Add raw bytes (a command's stderr) to the attempt's log."""
        if self.closed:
            return
        if self.log is None:
            self.log = self.writer.open(self.task_id, self.attempt)
        self.log.write(data)

    def record(self, record: logging.LogRecord) -> None:
        """Add a log record, formatted as one line (with its traceback, if any)."""
        try:
            line = _FORMAT.format(record)
        except Exception:  # noqa: BLE001 - a record whose message cannot be made is shown as its template
            line = f"{record.levelname} {record.name}: {record.msg!r}"
        self.write((line + "\n").encode("utf-8", "replace"))

    def line(self, message: str, level: str = "INFO") -> None:
        """Add a line written by the agent through ``task.log``."""
        record = logging.LogRecord("task", logging.getLevelName(level), "", 0, message, None, None)
        self.record(record)

    def end(self) -> None:
        """The attempt ended: its last chunk is written by the log thread (never blocks)."""
        self.closed = True
        if self.log is not None:
            self.log.end()

    def finish(self, written: Callable[[], object]) -> None:
        """The attempt ended: its last chunk is written soon, then ``written()`` is called (from another thread)."""
        self.closed = True
        if self.log is None:
            written()
        else:
            self.writer.finish(self.log, written)


#: The attempt whose log records made in this context go to.
CURRENT: contextvars.ContextVar[LogSlot | None] = contextvars.ContextVar("pepper_attempt_log", default=None)

_installed = False
_install_lock = threading.Lock()


def install() -> None:
    """Catch log records made while an attempt's context is current (once per process)."""
    global _installed
    with _install_lock:
        if _installed:
            return
        previous = logging.getLogRecordFactory()

        def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
            record = previous(*args, **kwargs)
            slot = CURRENT.get()
            if slot is not None:
                try:
                    slot.record(record)
                except Exception:  # noqa: BLE001, S110 - logging must never fail the caller
                    pass
            return record

        logging.setLogRecordFactory(factory)
        _installed = True
