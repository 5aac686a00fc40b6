"""The SQLite store: pepper's embedded default, one file (or ``:memory:``) shared by the processes of one machine.

One connection guarded by a lock, WAL mode, short ``BEGIN IMMEDIATE`` transactions (which serialise
writers across processes). The store's logic is ``SqlStore``'s; this module opens the file, answers a
transaction's change number to its statements (``pepper_tx_seq()``, a function of the connection: taking the
number writes nothing), and turns SQLite's exceptions into pepper's (``sqlite_errors``): no call of the store lets
one of SQLite's own through.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from itertools import chain
from types import TracebackType
from typing import Any

from pepper.errors import DatabaseReadOnlyError
from pepper.store.checkpoints import BACKSTOP_PAGES, Checkpointer
from pepper.store.connection import connect, migrate, out_of_space, read_only_remedy
from pepper.store.sql_store import Connection, SqlStore
from pepper.store.sqlite_errors import store_error
from pepper.store.statements import queries

log = logging.getLogger(__name__)

#: Rows of a new tasks' insert bound to one statement: one statement a row costs a third more (50 rows of 17
#: values stay far below every SQLite build's limit on parameters, 999 at the least).
_INSERT_BLOCK = 50


def insert_block(insert: str, rows: int) -> str | None:
    """``insert`` (``INSERT ... VALUES (...) ON CONFLICT ...``) inserting ``rows`` rows in one statement, each
    row's conflict handled on its own as before; None if the statement is not of that form."""
    head, found, rest = insert.partition("VALUES")
    row, conflict, tail = rest.partition("ON CONFLICT")
    if not found or not conflict:
        return None
    return f"{head}VALUES {', '.join([row.strip()] * rows)}\n{conflict}{tail}"


class _ChangeNumber:
    """The change number the store's write transaction took, as ``pepper_tx_seq()`` answers it to statements."""

    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = 0

    def __call__(self) -> int:
        return self.value


class _Transaction:
    """One ``BEGIN IMMEDIATE`` ... ``COMMIT`` under the store's lock (see ``SQLiteStore.transaction``).

    A class rather than a generator: every group commit of the engine goes through it.
    """

    __slots__ = ("conn", "store")

    def __init__(self, store: SQLiteStore) -> None:
        self.store = store

    def __enter__(self) -> Connection:
        store = self.store
        store.lock.acquire()
        try:
            conn = self.conn = store.conn
            conn.execute("BEGIN IMMEDIATE")
        except BaseException as exc:
            store.lock.release()
            self._reraise(exc)
            raise
        return conn  # type: ignore[return-value]  # sqlite3's cursor types are narrower than the protocol's

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        conn = self.conn
        try:
            if exc is None:
                try:
                    conn.execute("COMMIT")
                except sqlite3.Error:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    raise
            elif conn.in_transaction:  # SQLite may have rolled back itself (a full disk, say)
                conn.execute("ROLLBACK")
        except BaseException as failed:
            self.store.lock.release()
            self._reraise(failed)
            raise
        self.store.lock.release()
        if exc is not None:
            self._reraise(exc)

    def _reraise(self, exc: BaseException) -> None:
        """Raise SQLite's ``exc`` as pepper's (``store_error``); return for anything else."""
        if isinstance(exc, (sqlite3.Error, OverflowError)):
            raise self.store.error(exc) from exc


def _log_writable(path: str) -> bool:
    """Whether the write-ahead log of database ``path`` (``-wal`` and ``-shm``) can be written, or created in
    its folder."""
    folder = os.path.dirname(os.path.abspath(os.path.expanduser(path)))
    if os.access(folder, os.W_OK):
        return True
    return all(os.access(path + suffix, os.W_OK) for suffix in ("-wal", "-shm"))


class SQLiteStore(SqlStore):
    """Durable state in one SQLite file (or ``:memory:``)."""

    kind = "SQLite"

    def __init__(
        self, path: str, *, busy_timeout: float = 10.0, synchronous: str = "normal", create: bool = True
    ) -> None:
        super().__init__(queries("sqlite"))
        self.lock = threading.RLock()  # one connection, shared by the threads of this process
        self.path = path
        self.busy_timeout = busy_timeout
        self._conn: sqlite3.Connection | None = connect(
            path, busy_timeout=busy_timeout, synchronous=synchronous, create=create
        )
        try:
            migrate(self._conn)
        except (sqlite3.Error, OverflowError) as exc:
            self._conn.close()
            raise self.error(exc) from exc
        except BaseException:
            self._conn.close()
            raise
        self._change = _ChangeNumber()
        self._insert_block: str | None = None  # ``insert_task`` for ``_INSERT_BLOCK`` rows ("": none), once made
        # not deterministic: the number differs from one transaction to the next
        self._conn.create_function("pepper_tx_seq", 0, self._change)
        self.checkpoints: Checkpointer | None = None  # see ``checkpoint_in_background``

    @property
    def conn(self) -> sqlite3.Connection:
        if self._conn is None:
            raise sqlite3.ProgrammingError("the store is closed")
        return self._conn

    @property
    def location(self) -> str:
        """Where the data lives, for people."""
        return self.path

    # -- what SqlStore asks of a database -------------------------------------------------

    def transaction(self) -> AbstractContextManager[Connection]:
        """``BEGIN IMMEDIATE`` (the write lock at once: no upgrade deadlocks), committed unless the block raised.

        A commit that fails rolls back, so the connection never stays in a transaction a later write cannot begin
        in. SQLite's exceptions come out as pepper's (``error``).
        """
        return _Transaction(self)

    def write_transaction(self) -> AbstractContextManager[Connection]:
        """``transaction()``: SQLite's exceptions are typed either way."""
        return _Transaction(self)

    def error(self, exc: sqlite3.Error | OverflowError) -> Exception:
        """pepper's error for one of SQLite's met on this store (``sqlite_errors.store_error``)."""
        return store_error(exc, self.path, self.busy_timeout)

    @contextmanager
    def typed_errors(self) -> Iterator[None]:
        """SQLite's exceptions within as pepper's (``error``)."""
        try:
            yield
        except (sqlite3.Error, OverflowError) as exc:
            raise self.error(exc) from exc

    def write_rows(self, conn: Connection, name: str, rows: Sequence[Sequence[Any]]) -> int:
        """``SqlStore.write_rows``; new tasks go ``_INSERT_BLOCK`` rows a statement."""
        if name != "insert_task" or len(rows) < _INSERT_BLOCK:
            return super().write_rows(conn, name, rows)
        block = self._insert_block
        if block is None:
            block = self._insert_block = insert_block(self._q[name], _INSERT_BLOCK) or ""
        if not block:
            return super().write_rows(conn, name, rows)
        whole = len(rows) - len(rows) % _INSERT_BLOCK
        changed = 0
        for start in range(0, whole, _INSERT_BLOCK):
            changed += conn.execute(block, list(chain.from_iterable(rows[start : start + _INSERT_BLOCK]))).rowcount
        if whole < len(rows):
            changed += super().write_rows(conn, name, rows[whole:])
        return changed

    def fetch(self, sql: str, params: Any = ()) -> list[Any]:
        with self.typed_errors(), self.lock:
            return self.conn.execute(sql, params).fetchall()

    def begin_change(self, conn: Connection) -> int:
        seq = self._change.value = int(conn.execute(self._q["next_change_seq"]).fetchone()[0])
        return seq

    def expand(self, sql: str, count: int) -> str:
        return sql.replace("{ids}", ",".join("?" * count))

    def data_version(self) -> int:
        """Changes when another connection commits (cheap check before polling)."""
        with self.typed_errors(), self.lock:
            return int(self.conn.execute("PRAGMA data_version").fetchone()[0])

    def checkpoint_in_background(self) -> None:
        """Fold the write-ahead log back into the file on a thread of its own (``store.checkpoints``), not in
        this connection's commits; until ``close``. Nothing for ``:memory:``."""
        if self.path == ":memory:" or self.checkpoints is not None:
            return
        checkpoints = Checkpointer(self.path)
        try:
            checkpoints.start()
        except sqlite3.Error as exc:  # not worth stopping for: the commits go on checkpointing themselves
            log.warning("SQLite's checkpoints stay within the commits (no connection for their own thread: %s)", exc)
            return
        try:
            with self.typed_errors(), self.lock:
                self.conn.execute(f"PRAGMA wal_autocheckpoint = {BACKSTOP_PAGES}")
        except BaseException:
            checkpoints.stop()
            raise
        self.checkpoints = checkpoints

    def close(self) -> None:
        """Fold the write-ahead log back into the file if it can, and close. Never raises for the database: a
        checkpoint that fails (a full disk, a read-only file) is logged, and the log is folded back next time."""
        checkpoints, self.checkpoints = self.checkpoints, None
        if checkpoints is not None:
            checkpoints.stop()
        with self.lock:
            if self._conn is not None:
                try:
                    if self.path != ":memory:":
                        self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
                except sqlite3.Error as exc:  # read-only: nothing to fold back (another process's to do)
                    error = self.error(exc)
                    quiet = isinstance(error, DatabaseReadOnlyError)
                    log.log(logging.DEBUG if quiet else logging.WARNING, "closing %s: %s", self.path, error)
                finally:
                    try:
                        self._conn.close()
                    except sqlite3.Error as exc:
                        log.warning("closing %s: %s", self.path, self.error(exc))
                    self._conn = None

    @property
    def closed(self) -> bool:
        return self._conn is None

    # -- SQLite's own ---------------------------------------------------------------------

    def probe_write(self) -> str | None:
        """None if the database takes writes, else why not. Takes the write lock and writes a row over itself,
        rolled back (the write reaches SQLite's pager, so a read-only file or folder refuses it; nothing is
        changed), and looks at the free space on the file's device (a rolled-back write never meets a full disk).
        """
        if out_of_space(self.path):
            return f"no space is left on the device of {self.path}; free some space"
        if self.path != ":memory:" and not os.access(self.path, os.W_OK):
            return f"{self.path} is read-only for this user; {read_only_remedy(self.path)}"
        if self.path != ":memory:" and not _log_writable(self.path):
            return f"the folder of {self.path} is read-only for this user; {read_only_remedy(self.path)}"
        try:
            with self.lock:
                conn = self.conn
                conn.execute("BEGIN IMMEDIATE")
                try:
                    conn.execute(self._q["probe_write"])
                finally:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
        except (sqlite3.Error, OverflowError) as exc:
            return str(self.error(exc))
        return None

    def file_sizes_mb(self) -> tuple[float | None, float | None]:
        """The database file's size and its write-ahead log's, in MB (None for ``:memory:`` or a missing file)."""
        if self.path == ":memory:":
            return None, None
        sizes: list[float | None] = []
        for suffix in ("", "-wal"):
            try:
                sizes.append(os.path.getsize(self.path + suffix) / 2**20)
            except OSError:
                sizes.append(0.0 if suffix else None)
        return sizes[0], sizes[1]

    def reclaim_space(self) -> None:
        """VACUUM (rewrites the file without the free pages), then fold the log back so the file shrinks."""
        if self.path == ":memory:":
            return
        checkpoints = self.checkpoints
        with self.lock, self.typed_errors(), checkpoints.lock if checkpoints else nullcontext():
            self.conn.execute("VACUUM")
            self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # (with no checkpoint of the thread's meanwhile)
