"""Task logs: what a running attempt writes, kept bounded and written to the store while it runs.

An ``AttemptLog`` takes bytes (a command's stderr, formatted log records) and keeps the first
half of its cap (the head) and the latest half (the tail): past the head, older tail bytes are
dropped in memory before they are ever written, and stored tail chunks are deleted as newer ones
come, so neither memory nor the stored log grows past the cap however much an attempt writes.
The ``LogWriter`` thread takes what every open log gathered, a few times a second, and writes it
in one transaction; ``finish`` writes an attempt's last chunk (marked ``ended``) before its end is
reported, so a reader following the log has every line once the attempt's end is visible.
Attempts that write nothing cost no row and no write.
"""

from __future__ import annotations

import codecs
import logging
import threading
from collections import deque
from collections.abc import Callable

from pepper.errors import TaskNotFoundError, ValidationError
from pepper.model.task import TaskState
from pepper.model.task_log import TaskLog
from pepper.store.protocol import Store
from pepper.store.task_logs import ChunkKey, ChunkRow

log = logging.getLogger("pepper.engine")

_CHUNK = 64 * 1024  # bytes per stored chunk at most
_INTERVAL = 0.25  # seconds between writes of what open logs gathered
_MAX_SEQ = 2**63 - 1  # the largest chunk number a database's integer holds


class AttemptLog:
    """The log of one running attempt, bounded to ``limit`` bytes (thread-safe)."""

    def __init__(self, task_id: str, attempt: int, limit: int, now: Callable[[], float]) -> None:
        self.task_id = task_id
        self.attempt = attempt
        self._now = now
        self._head_room = limit // 2  # head bytes still to take
        self._tail_keep = max(1, limit - limit // 2)
        self._chunk = max(1, min(_CHUNK, self._tail_keep))
        self._lock = threading.Lock()
        self._position = 0  # bytes taken so far (the whole stream, cut bytes included)
        self._head = bytearray()  # head bytes not yet written
        self._head_start = 0
        self._tail = bytearray()  # tail bytes not yet written, the latest _tail_keep at most
        self._tail_start = 0
        self._stored_tail: deque[tuple[int, int]] = deque()  # (seq, size) of stored tail chunks, oldest first
        self._stored_tail_bytes = 0
        self._seq = 0
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._written = 0  # the stream's byte where the last written chunk ends
        self._ended = False
        self.done = False  # its last chunk was written

    def write(self, data: bytes) -> None:
        """Take ``data``: into the head while it has room, else into the tail (its oldest bytes dropped)."""
        if not data:
            return
        with self._lock:
            if self._ended:  # the attempt is over: its log is closed
                return
            if self._head_room > 0:
                part = data[: self._head_room]
                self._head += part
                self._head_room -= len(part)
                self._position += len(part)
                data = data[len(part) :]
                if not data:
                    return
            if not self._tail:
                self._tail_start = self._position
            self._tail += data
            self._position += len(data)
            extra = len(self._tail) - self._tail_keep
            if extra > 0:
                del self._tail[:extra]
                self._tail_start += extra

    def end(self) -> None:
        """Nothing more comes: the next ``take`` gives the last chunk."""
        with self._lock:
            self._ended = True

    def take(self) -> tuple[list[ChunkRow], list[ChunkKey]]:
        """The chunks to store now and the stored tail chunks to drop (so the tail stays within its half)."""
        with self._lock:
            rows: list[ChunkRow] = []
            if self._head:
                self._emit(rows, self._head, self._head_start, tail=False)
                self._head_start += len(self._head)
                self._head = bytearray()
            if self._tail:
                self._emit(rows, self._tail, self._tail_start, tail=True)
                self._tail = bytearray()
            if self._ended and not self.done:
                if rows:
                    last = rows[-1]
                    rows[-1] = (*last[:7], 1)
                elif self._seq:  # something was written before: an empty chunk says the log ended
                    rows.append((self.task_id, self.attempt, self._seq, self._position, self._position, self._now(),
                                 "", 1))  # fmt: skip
                    self._seq += 1
                self.done = True
            drops: list[ChunkKey] = []
            while self._stored_tail_bytes > self._tail_keep and len(self._stored_tail) > 1:
                seq, size = self._stored_tail.popleft()
                self._stored_tail_bytes -= size
                drops.append((self.task_id, self.attempt, seq))
            return rows, drops

    def _emit(self, rows: list[ChunkRow], data: bytearray, start: int, *, tail: bool) -> None:
        if tail and start > self._written:
            self._decoder.reset()  # bytes were cut: a character split by the cut is replaced
        at = self._now()
        for offset in range(0, len(data), self._chunk):
            piece = bytes(data[offset : offset + self._chunk])
            final = self._ended and offset + self._chunk >= len(data)
            text = self._decoder.decode(piece, final)
            rows.append((self.task_id, self.attempt, self._seq, start + offset, start + offset + len(piece), at,
                         text, 0))  # fmt: skip
            if tail:
                self._stored_tail.append((self._seq, len(piece)))
                self._stored_tail_bytes += len(piece)
            self._seq += 1
        self._written = start + len(data)


class LogWriter:
    """Writes open attempts' logs to the store from a thread of its own, every ``interval`` seconds, and at
    once when an attempt ends (attempts ending together share one write)."""

    def __init__(self, store: Store, now: Callable[[], float], limit: int, interval: float = _INTERVAL) -> None:
        self.store = store
        self.now = now
        self.limit = limit
        self.interval = interval
        self._open: set[AttemptLog] = set()
        self._cond = threading.Condition()  # guards the fields below
        self._writing = threading.Lock()  # one write at a time, so an attempt's chunks are stored in order
        self._requested = 0  # flushes asked for by ending attempts
        self._flushed = 0  # ... of which done
        self._ended: list[tuple[AttemptLog, Callable[[], object]]] = []  # ended logs, and whom to tell once written
        self._thread: threading.Thread | None = None
        self._closed = False

    def open(self, task_id: str, attempt: int) -> AttemptLog:
        """A new log for a running attempt, written from now on."""
        opened = AttemptLog(task_id, attempt, self.limit, self.now)
        with self._cond:
            self._open.add(opened)
            if self._thread is None and not self._closed:
                self._thread = threading.Thread(target=self._loop, name="pepper-task-logs", daemon=True)
                self._thread.start()
        return opened

    def finish(self, attempt_log: AttemptLog, written: Callable[[], object]) -> None:
        """The attempt ended: its last chunk (marked ended) is written at once, then ``written()`` is called
        (from the writer's thread). Attempts ending together share one write."""
        attempt_log.end()
        with self._cond:
            if self._thread is not None:
                self._ended.append((attempt_log, written))
                self._requested += 1
                self._cond.notify_all()
                return
        self._write([attempt_log])  # no thread (closing): written here
        written()

    def close(self) -> None:
        """Write what open logs gathered, then stop the thread."""
        with self._cond:
            self._closed = True
            thread, self._thread = self._thread, None
            self._cond.notify_all()
        if thread is not None:
            thread.join(timeout=5.0)
        with self._cond:
            remaining = list(self._open)
            ended, self._ended = self._ended, []
        self._write(remaining)
        self._tell(ended)

    def _loop(self) -> None:
        while True:
            with self._cond:
                if self._closed:
                    return
                if self._requested == self._flushed:
                    self._cond.wait(self.interval)
                target = self._requested
                logs = list(self._open)
                ended, self._ended = self._ended, []
            self._write(logs)
            with self._cond:
                self._flushed = max(self._flushed, target)
                self._open -= {attempt_log for attempt_log in logs if attempt_log.done}
            self._tell(ended)

    @staticmethod
    def _tell(ended: list[tuple[AttemptLog, Callable[[], object]]]) -> None:
        for _, written in ended:
            try:
                written()
            except Exception:
                log.debug("could not tell that a task log was written", exc_info=True)

    def _write(self, logs: list[AttemptLog]) -> None:
        with self._writing:
            appends: list[ChunkRow] = []
            drops: list[ChunkKey] = []
            for attempt_log in logs:
                rows, cut = attempt_log.take()
                appends += rows
                drops += cut
            if not appends and not drops:
                return
            try:
                self.store.logs.write(appends, drops)
            except Exception:
                log.exception("could not store task logs (%d chunks)", len(appends))


def read_task_log(store: Store, task_id: str, attempt: int | None = None, from_seq: int = 0) -> TaskLog:
    """One attempt's log (the latest attempt when ``attempt`` is None), from chunk ``from_seq`` on.

    ``ended`` is true once nothing more comes: its last chunk was stored, or the task's row shows the attempt
    over (the row is read first: a worker stores an attempt's last chunk before it records its end).
    """
    if isinstance(from_seq, bool) or not isinstance(from_seq, int) or not 0 <= from_seq <= _MAX_SEQ:
        raise ValidationError(f"after (the chunk to read from) must be a whole number from 0 to {_MAX_SEQ}, "
                              f"got {from_seq!r:.40}", field="after")  # fmt: skip
    record = store.get_tasks([task_id]).get(task_id)
    if record is None:
        raise TaskNotFoundError(task_id)
    latest = record.attempts
    if attempt is None:
        attempt = latest
    elif isinstance(attempt, bool) or not isinstance(attempt, int) or not 1 <= attempt <= max(latest, 1):
        valid = f"1 to {latest}" if latest > 1 else "1" if latest == 1 else "none yet: it has not started"
        raise ValidationError(f"task {task_id!r} has no attempt {attempt!r}; its attempts: {valid}", field="attempt")
    if latest == 0:  # never started: over only if it never will (cancelled, failed or parked by hand)
        over = record.state not in (TaskState.PENDING, TaskState.BLOCKED)
    else:
        over = attempt < latest or record.state is not TaskState.IN_PROGRESS
    chunks = tuple(store.logs.read(task_id, attempt, from_seq)) if attempt > 0 else ()
    previous = store.logs.before(task_id, attempt, from_seq) if from_seq > 0 else None
    ended = over or any(chunk.ended for chunk in chunks)
    previous_end = previous.start + previous.size if previous is not None else 0
    return TaskLog(task_id, attempt, chunks, ended, previous_end, from_seq)
