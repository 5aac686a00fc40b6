"""What a SQL database brings to pepper's stores, and the named statements run on it.

``SqlDatabase`` is the base of ``SqlStore``: a subclass (SQLite, PostgreSQL) says how to open a write
transaction, read rows, number a transaction's changes and notice other processes' writes; the named
statements of ``sql/queries.sql`` run through it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import Any, Protocol

_CHUNK = 500  # ids per IN (...) list, well under either database's limit on parameters


def chunks(items: Sequence[str]) -> Iterable[Sequence[str]]:
    for start in range(0, len(items), _CHUNK):
        yield items[start : start + _CHUNK]


class Cursor(Protocol):
    """What pepper reads from a statement it ran (sqlite3's and psycopg's cursors both have it)."""

    rowcount: int

    def fetchone(self) -> Any: ...
    def fetchall(self) -> list[Any]: ...
    def __iter__(self) -> Iterator[Any]: ...


class Connection(Protocol):
    """A connection inside an open write transaction."""

    def execute(self, sql: str, params: Any = ()) -> Cursor: ...
    def executemany(self, sql: str, rows: Iterable[Any]) -> Cursor: ...


class SqlDatabase:
    """A database of named SQL statements; subclasses bring the database itself."""

    #: a short name for people: "SQLite", "PostgreSQL"
    kind = "SQL"

    def __init__(self, statements: Mapping[str, str]) -> None:
        self._q = dict(statements)

    # -- what a database brings ---------------------------------------------------------

    def transaction(self) -> AbstractContextManager[Connection]:
        """A write transaction, serialised with every other writer of the database (all processes)."""
        raise NotImplementedError

    def write_transaction(self) -> AbstractContextManager[Connection]:
        """``transaction()`` with the database's exceptions typed as ``typed_errors()`` types them."""
        return self._typed_transaction()

    @contextmanager
    def _typed_transaction(self) -> Iterator[Connection]:
        with self.typed_errors(), self.transaction() as conn:
            yield conn

    def fetch(self, sql: str, params: Any = ()) -> list[Any]:
        """Rows of one read statement, outside any write transaction."""
        raise NotImplementedError

    def begin_change(self, conn: Connection) -> int:
        """Number this write transaction's task changes (called first thing in it)."""
        raise NotImplementedError

    def typed_errors(self) -> AbstractContextManager[None]:
        """The database's exceptions as ``StoreBusyError`` (may pass later) or ``WriteRefusedError`` (will not)."""
        raise NotImplementedError

    def expand(self, sql: str, count: int) -> str:
        """``sql`` with its ``{ids}`` marker replaced by ``count`` placeholders."""
        raise NotImplementedError

    def data_version(self) -> int:
        """Changes when another process commits (cheap check before polling)."""
        raise NotImplementedError

    def subscribe(self, callback: Callable[[], None]) -> Callable[[], None] | None:
        """Have ``callback`` called (from any thread) soon after another process commits; returns the way to
        stop. None: this database does not tell (SQLite), so callers poll ``data_version``."""
        return None

    @property
    def closed(self) -> bool:
        raise NotImplementedError

    def probe_write(self) -> str | None:
        """Take the write lock and let it go at once: None if the database takes writes, else why not."""
        raise NotImplementedError

    def file_sizes_mb(self) -> tuple[float | None, float | None]:
        """The database's size and its write-ahead log's in MB, where the database has such figures."""
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def checkpoint_in_background(self) -> None:
        """Keep the database's own upkeep of its files off the writers' commits, for a process that writes
        much (an engine), until ``close``; nothing, where the database does that itself."""

    def reclaim_space(self) -> None:
        """Give the space of deleted rows back (after a prune): to the file system, or for reuse."""
        raise NotImplementedError

    def write_rows(self, conn: Connection, name: str, rows: Sequence[Sequence[Any]]) -> int:
        """Within an open write transaction: run a named write once per row; the number of rows it changed."""
        return int(conn.executemany(self._q[name], rows).rowcount)

    def prepare_rows(self, name: str, rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
        """The rows of a later ``write_rows`` of ``name``, made ready before its transaction begins (so that a
        database whose writers take turns holds its turn for the writing alone); as they are, by default."""
        return rows

    def shaped_bulk(self, bulk: str, keep: Sequence[int]) -> str | None:
        """``bulk`` (a ``save_task_bulk``) taking only the parameters at ``keep``; None: this database has none."""
        return None

    # -- named statements ---------------------------------------------------------------

    @property
    def statements(self) -> Mapping[str, str]:
        """Every named statement, as this database runs it."""
        return self._q

    def statement(self, name: str) -> str:
        """The SQL of a named statement (for helpers that write inside their own transaction)."""
        return self._q[name]

    def query(self, name: str, params: Any = ()) -> list[Any]:
        """Rows of the named query."""
        return self.fetch(self._q[name], params)

    def execute(self, name: str, params: Sequence[Any] = ()) -> int:
        """Run a named write in its own transaction; the number of rows changed."""
        with self.transaction() as conn:
            return int(conn.execute(self._q[name], params).rowcount)

    def write_alone(self, name: str, rows: Sequence[Sequence[Any]]) -> int:
        """Run a named write once per row, on rows that only their writer touches and that no other process waits
        to hear of (a heartbeat, a usage sample): a database whose writers take turns lets it skip the turn. The
        number of rows changed."""
        with self.transaction() as conn:
            return int(conn.executemany(self._q[name], rows).rowcount)

    def write_returning(self, name: str, params: Sequence[Any] = ()) -> list[Any]:
        """Run a named ``... RETURNING`` write in its own transaction; the rows it returned."""
        with self.transaction() as conn:
            return conn.execute(self._q[name], params).fetchall()
