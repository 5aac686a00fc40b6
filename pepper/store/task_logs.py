"""Reads and writes of the ``task_logs`` table: what attempts wrote, in chunks (see model.task_log)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from pepper.model.task_log import LogChunk

if TYPE_CHECKING:
    from pepper.store.sql_store import SqlStore

#: ``(task_id, attempt, seq, start_byte, end_byte, at, body, ended)``: one chunk to store.
ChunkRow = tuple[str, int, int, int, int, float, str, int]
#: ``(task_id, attempt, seq)``: a chunk cut from the middle of a log that outgrew its cap.
ChunkKey = tuple[str, int, int]


class TaskLogStore:
    """Chunks of attempts' logs: appended while attempts run, the middle of a long log dropped."""

    def __init__(self, store: SqlStore) -> None:
        self._store = store

    def write(self, appends: Sequence[ChunkRow], drops: Sequence[ChunkKey] = ()) -> None:
        """Store new chunks and drop cut ones, in one transaction."""
        if not appends and not drops:
            return
        with self._store.typed_errors(), self._store.transaction() as conn:
            if appends:
                conn.executemany(self._store.statement("append_log"), [_clean(row) for row in appends])
            if drops:
                conn.executemany(self._store.statement("drop_log_chunk"), drops)

    def read(self, task_id: str, attempt: int, from_seq: int = 0) -> list[LogChunk]:
        """The stored chunks of one attempt from ``from_seq`` on, in order."""
        return [LogChunk.from_row(r) for r in self._store.query("log_chunks", (task_id, attempt, from_seq))]

    def before(self, task_id: str, attempt: int, seq: int) -> LogChunk | None:
        """The stored chunk just before ``seq`` (to tell whether bytes were cut right after it)."""
        rows = self._store.query("log_chunk_before", (task_id, attempt, seq))
        return LogChunk.from_row(rows[0]) if rows else None

    def attempts(self, task_id: str) -> list[int]:
        """The attempts of a task that wrote something, first to last."""
        return [int(row[0]) for row in self._store.query("logged_attempts", (task_id,))]


def _clean(row: ChunkRow) -> Any:
    """PostgreSQL's text cannot hold NUL characters: they are stored as U+FFFD (as undecodable bytes are)."""
    body = row[6]
    if "\x00" in body:
        return (*row[:6], body.replace("\x00", "\ufffd"), row[7])
    return row
