"""The SQLite store: pepper's embedded default, one file (or ``:memory:``) shared by the processes of one machine.

One connection guarded by a lock, WAL mode, short ``BEGIN IMMEDIATE`` transactions (which serialise
writers across processes). The store's logic is ``SqlStore``'s; this module opens the file, keeps a
transaction's change number in a temporary table, and turns SQLite's exceptions into pepper's.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from pepper.store.connection import connect, damaged, migrate, transaction
from pepper.store.params import typed_errors
from pepper.store.sql_store import Connection, SqlStore
from pepper.store.statements import queries


class SQLiteStore(SqlStore):
    """Durable state in one SQLite file (or ``:memory:``)."""

    kind = "SQLite"

    def __init__(
        self, path: str, *, busy_timeout: float = 10.0, synchronous: str = "normal", create: bool = True
    ) -> None:
        super().__init__(queries("sqlite"))
        self.lock = threading.RLock()  # one connection, shared by the threads of this process
        self.path = path
        self._conn: sqlite3.Connection | None = connect(
            path, busy_timeout=busy_timeout, synchronous=synchronous, create=create
        )
        migrate(self._conn)
        self._conn.execute(self._q["create_tx_table"])
        self._conn.execute(self._q["init_tx_seq"])

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

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        with self.checked(), self.lock, transaction(self.conn) as conn:
            yield conn  # type: ignore[misc]  # sqlite3's cursor types are narrower than the protocol's

    def fetch(self, sql: str, params: Any = ()) -> list[Any]:
        with self.checked(), self.lock:
            return self.conn.execute(sql, params).fetchall()

    def begin_change(self, conn: Connection) -> int:
        seq = int(conn.execute(self._q["next_change_seq"]).fetchone()[0])
        conn.execute(self._q["set_tx_seq"], (seq,))
        return seq

    def typed_errors(self) -> Any:
        return typed_errors()

    def expand(self, sql: str, count: int) -> str:
        return sql.replace("{ids}", ",".join("?" * count))

    def data_version(self) -> int:
        """Changes when another connection commits (cheap check before polling)."""
        with self.lock:
            return int(self.conn.execute("PRAGMA data_version").fetchone()[0])

    def close(self) -> None:
        with self.lock:
            if self._conn is not None:
                try:
                    if self.path != ":memory:":
                        self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
                finally:
                    self._conn.close()
                    self._conn = None

    @property
    def closed(self) -> bool:
        return self._conn is None

    # -- SQLite's own ---------------------------------------------------------------------

    def probe_write(self) -> str | None:
        """Try to take the write lock (and let it go at once): None if the database is writable, else why not."""
        try:
            with self.lock:
                self.conn.execute("BEGIN IMMEDIATE")
                self.conn.execute("ROLLBACK")
        except sqlite3.Error as exc:
            return str(exc)
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
        with self.checked(), self.lock, typed_errors():
            self.conn.execute("VACUUM")
            self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    @contextmanager
    def checked(self) -> Iterator[None]:
        """Turn SQLite's word that the file is damaged into ``DatabaseDamagedError`` (naming the file)."""
        try:
            yield
        except sqlite3.DatabaseError as exc:
            error = damaged(exc, self.path)
            if error is None:
                raise
            raise error from None
