"""The PostgreSQL store: one database shared by workers and submitters on many machines.

Requires the ``postgres`` extra (psycopg 3 and its pool); this module is imported only when a
``postgresql://`` URL is opened. The store's logic is ``SqlStore``'s: this module opens a pool of
connections, creates and migrates the schema, serialises write transactions with an advisory lock
(so a lease grant or a change number never races, as with SQLite's write lock), and learns of other
processes' commits from ``LISTEN``/``NOTIFY`` instead of asking the server.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext, suppress
from importlib import resources
from typing import Any

import psycopg
from psycopg import errors as pg_errors
from psycopg.pq import TransactionStatus
from psycopg_pool import ConnectionPool, PoolTimeout

from pepper.errors import (
    ConfigError,
    DatabaseReadOnlyError,
    DatabaseUnreachableError,
    DiskFullError,
    StoreBusyError,
    StoreError,
    WriteRefusedError,
)
from pepper.store.location import check_database_url, redact
from pepper.store.pg_listen import ChangeListener, notify
from pepper.store.pg_pool import checked_connection, quiet_pool_notes
from pepper.store.pg_rows import Columns, Row, array_parameters, shaped_bulk
from pepper.store.retention import TABLES
from pepper.store.sql_store import Connection, Cursor, SqlStore
from pepper.store.statements import queries

log = logging.getLogger("pepper.store")

#: Advisory lock keys ("pepper" in ASCII, then a number): one serialises writers, one migrations.
WRITE_LOCK = 0x7065707065720001
MIGRATE_LOCK = 0x7065707065720002


class _Conn:
    """A pooled connection inside a transaction, with sqlite3's ``execute``/``executemany`` shape."""

    def __init__(self, conn: psycopg.Connection[Any], change_seq: int) -> None:
        self._conn = conn
        self.change_seq = change_seq  # the change number this transaction took as it began

    def execute(self, sql: str, params: Any = ()) -> Cursor:
        return self._conn.execute(sql, params or None)  # type: ignore[return-value]

    def executemany(self, sql: str, rows: Iterable[Any]) -> Cursor:
        cursor = self._conn.cursor()
        cursor.executemany(sql, list(rows))
        return cursor  # type: ignore[return-value]


def _connect_error(url: str, exc: BaseException) -> DatabaseUnreachableError:
    detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    detail = detail.replace(url, redact(url))
    password = _password(url)
    if password:
        detail = detail.replace(password, "***")
    return DatabaseUnreachableError(redact(url), detail)


def _password(url: str) -> str | None:
    try:
        return psycopg.conninfo.conninfo_to_dict(url).get("password")  # type: ignore[return-value]
    except psycopg.Error:
        return None


class PostgresStore(SqlStore):
    """Durable state in a PostgreSQL database, shared by every process that opens the same URL."""

    kind = "PostgreSQL"

    def __init__(
        self,
        url: str,
        *,
        create: bool = True,
        connect_timeout: float = 5.0,
        busy_timeout: float = 10.0,
        pool_size: int = 4,
    ) -> None:
        check_database_url(url)  # a URL the driver cannot read is refused here, with its password hidden
        super().__init__(queries("postgres"))
        self.url = url
        self._busy_ms = max(1, int(busy_timeout * 1000))
        self.location = redact(url)
        #: Connections a call looks at, at most, past those the server dropped (one more than the pool holds).
        self._tries = pool_size + 1
        quiet_pool_notes()
        #: What this store's commits say as they notify: the others count them, this store's listener does not.
        self.sender = uuid.uuid4().hex
        try:
            with psycopg.connect(url, autocommit=True, connect_timeout=max(1, int(connect_timeout))) as conn:
                migrate(conn, self.location, create=create)
        except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
            raise _connect_error(url, exc) from None
        self._pool: ConnectionPool[Any] | None = ConnectionPool(
            url,
            min_size=1,
            max_size=pool_size,
            kwargs={"autocommit": True, "row_factory": Row.factory, "connect_timeout": max(1, int(connect_timeout))},
            configure=self._configure,
            # a request waits for a free connection as a writer waits for the lock: then it is told "busy"
            timeout=max(connect_timeout, busy_timeout),
            name="pepper",
            open=False,
        )
        try:
            self._pool.open(wait=True, timeout=max(connect_timeout, 5.0))
        except PoolTimeout as exc:
            self._pool.close()
            raise _connect_error(url, exc) from None
        self._listener = ChangeListener(url, self.sender, connect_timeout)
        self._commit = self._q["notify_and_commit"].replace("{sender}", self.sender)
        #: Sent as one: statements with no parameters may go together (PostgreSQL's simple protocol).
        self._begin_write = "; ".join(
            ("BEGIN", self._q["serialise_writers"].rstrip("; \n").replace("%s", str(WRITE_LOCK)),
             self._q["take_change_seq"].rstrip("; \n"))
        )  # fmt: skip

    def _configure(self, conn: psycopg.Connection[Any]) -> None:
        # a writer waits this long for the write lock (as SQLite's busy timeout), then the write is "busy"
        conn.execute(f"SET lock_timeout = {self._busy_ms}")

    @property
    def pool(self) -> ConnectionPool[Any]:
        if self._pool is None:
            raise StoreBusyError(f"the store at {self.location} is closed")
        return self._pool

    def _connection(self) -> AbstractContextManager[Any]:
        """A pooled connection the server has not dropped (one it did is replaced on the way)."""
        return checked_connection(self.pool, self._tries)

    # -- what SqlStore asks of a database -------------------------------------------------

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """A write transaction. It begins holding the write lock and its change number, and ends telling the
        other processes as it commits: one round trip to the server each (statements sent together). One whose
        connection the server had dropped fails at its ``BEGIN``, before anything of it was sent: it begins again
        on another connection."""
        with self._errors():
            for tries_left in range(self._tries - 1, -1, -1):
                with self._connection() as conn:
                    try:
                        cursor = conn.execute(self._begin_write)
                        while cursor.nextset():  # the change number is the result of the last statement
                            pass
                        change_seq = int(cursor.fetchone()[0])
                    except psycopg.OperationalError:
                        if tries_left and conn.broken:
                            continue  # nothing began: the server ends a transaction its connection left
                        raise
                    try:
                        yield _Conn(conn, change_seq)
                        conn.execute(self._commit)
                    except BaseException:
                        if not conn.closed and conn.info.transaction_status != TransactionStatus.IDLE:
                            with suppress(psycopg.Error):
                                conn.execute("ROLLBACK")
                        raise
                    return

    def write_alone(self, name: str, rows: Sequence[Sequence[Any]]) -> int:
        """Outside the writers' turns and without telling the others: each row commits on its own."""
        with self._errors(), self._connection() as conn:
            cursor = conn.cursor()
            cursor.executemany(self._q[name], list(rows))
            return int(cursor.rowcount)

    def fetch(self, sql: str, params: Any = ()) -> list[Any]:
        with self._errors():
            for tries_left in range(self._tries - 1, -1, -1):
                with self._connection() as conn:
                    try:
                        rows: list[Any] = conn.execute(sql, params or None).fetchall()
                        return rows
                    except psycopg.OperationalError:
                        # a connection the server dropped as it was taken (it restarted): a read goes again
                        if not tries_left or not conn.broken:
                            raise
        raise AssertionError("unreachable")

    def begin_change(self, conn: Connection) -> int:
        return int(conn.change_seq)  # type: ignore[attr-defined]  # taken as the transaction began

    def typed_errors(self) -> Any:
        return nullcontext()  # ``transaction`` and ``fetch`` already turn psycopg's exceptions into pepper's

    def write_rows(self, conn: Connection, name: str, rows: Sequence[Sequence[Any]]) -> int:
        """Many rows of a statement with a ``_bulk`` form go as one statement, a column per parameter: one
        execution on the server instead of one per row (rows naming one task twice take the slow way)."""
        if not isinstance(rows, Columns):
            rows = self.prepare_rows(name, list(rows))  # type: ignore[arg-type]
        if not isinstance(rows, Columns):
            return super().write_rows(conn, name, rows)
        return int(conn.execute(self._q[f"{name}_bulk"], rows.arrays).rowcount)

    def prepare_rows(self, name: str, rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
        """Rows of a statement with a ``_bulk`` form as its array parameters, built before the transaction."""
        bulk = self._q.get(f"{name}_bulk")
        if (
            bulk is None
            or len(rows) < 2
            or (name.startswith("save_task") and len({row[-2] for row in rows}) < len(rows))
        ):
            return rows
        return array_parameters(bulk, rows)

    def shaped_bulk(self, bulk: str, keep: Sequence[int]) -> str | None:
        return shaped_bulk(bulk, keep)

    def expand(self, sql: str, count: int) -> str:
        return sql.replace("{ids}", ",".join(["%s"] * count))

    def data_version(self) -> int:
        return self._listener.version

    def subscribe(self, callback: Callable[[], None]) -> Callable[[], None] | None:
        callbacks = self._listener.callbacks
        callbacks.append(callback)
        return lambda: callbacks.remove(callback) if callback in callbacks else None

    @property
    def closed(self) -> bool:
        return self._pool is None

    def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            self._listener.stop(lambda channel: notify(pool, channel))
            pool.close()

    @contextmanager
    def _errors(self) -> Iterator[None]:
        """psycopg's exceptions as the store protocol's (the server named, never the password)."""
        try:
            yield
        except (pg_errors.ReadOnlySqlTransaction, pg_errors.InsufficientPrivilege) as exc:
            raise DatabaseReadOnlyError(
                self.location,
                self._scrub(exc),
                "give pepper's user the right to write there (not a standby "
                "server, not a read-only transaction or role), or give another --db",
            ) from None
        except pg_errors.DiskFull as exc:
            raise DiskFullError(self.location, self._scrub(exc)) from None
        except pg_errors.LockNotAvailable as exc:
            raise StoreBusyError(
                f"the pepper database at {self.location} is locked by another process, still after waiting "
                f"{self._busy_ms / 1000:g} s (busy_timeout) for it ({self._scrub(exc)}); try again, or give a longer "
                "busy_timeout in pepper.toml"
            ) from None
        except (pg_errors.IntegrityError, pg_errors.DataError) as exc:
            raise WriteRefusedError(self._scrub(exc)) from None
        except (psycopg.OperationalError, psycopg.InterfaceError, PoolTimeout) as exc:
            raise StoreBusyError(f"{self.location}: {self._scrub(exc)}") from None
        except psycopg.Error as exc:  # anything else the server refuses fails the same way next time
            raise WriteRefusedError(f"{self.location}: {self._scrub(exc)}") from None

    def _scrub(self, exc: BaseException) -> str:
        text, password = str(exc), _password(self.url)
        return text.replace(password, "***") if password else text

    # -- PostgreSQL's own -----------------------------------------------------------------

    def reclaim_space(self) -> None:
        """A plain VACUUM of the tables pruning deletes from: their free space is reused, without locking them."""
        with self._errors(), self._connection() as conn:
            conn.execute(f"VACUUM {', '.join(TABLES)}")

    def probe_write(self) -> str | None:
        """None if the database takes writes, else why not: a row written over itself in a transaction that is
        rolled back (a read-only server, role or transaction refuses it; nothing is changed)."""
        try:
            with self._errors(), self._connection() as conn, conn.transaction(force_rollback=True):
                conn.execute(self._q["probe_write"])
        except StoreError as exc:
            return str(exc)
        return None

    def file_sizes_mb(self) -> tuple[float | None, float | None]:
        """The database's size in MB (PostgreSQL has no write-ahead log of its own per database: None)."""
        return int(self.query("database_size")[0][0]) / 2**20, None


# -- the schema ---------------------------------------------------------------------------


def migrations() -> list[tuple[int, str, str]]:
    """``(version, file name, sql)`` of every PostgreSQL migration, in order."""
    folder = resources.files("pepper.store").joinpath("migrations/postgres")
    found = [(int(e.name[:4]), e.name, e.read_text()) for e in folder.iterdir() if e.name[:4].isdigit()]
    return sorted(found)


def schema_sql() -> str:
    """The complete current PostgreSQL schema (``sql/postgres_schema.sql``)."""
    return resources.files("pepper.store").joinpath("sql/postgres_schema.sql").read_text()


def schema_version(conn: psycopg.Connection[Any]) -> int:
    """The highest migration applied, 0 for a database pepper has not written to."""
    row = conn.execute("SELECT to_regclass('schema_version') IS NOT NULL").fetchone()
    if not row or not row[0]:
        return 0
    found = conn.execute("SELECT COALESCE(MAX(version), 0) FROM schema_version").fetchone()
    return int(found[0]) if found else 0


def migrate(conn: psycopg.Connection[Any], location: str, *, create: bool = True) -> int:
    """Create or bring up to date pepper's tables (one process at a time); return the schema version.

    A database of a newer schema is refused; so is one with other tables but not pepper's, and (unless
    ``create``) one where pepper has stored nothing yet."""
    latest = migrations()[-1][0]
    conn.execute("SELECT pg_advisory_lock(%s)", (MIGRATE_LOCK,))
    try:
        current = schema_version(conn)
        if current > latest:
            raise ConfigError(
                f"the database at {location} was written by a newer pepper (schema {current}, this one knows up "
                f"to {latest}); upgrade pepper to open it",
                field="db",
            )
        if current == 0:
            _check_new(conn, location, create)
        for version, _name, sql in migrations():
            if version > current:
                with conn.transaction():
                    conn.execute(sql.encode())  # a script: several statements, sent as they are
                    conn.execute(
                        "INSERT INTO schema_version (version, applied_at) VALUES (%s, %s)", (version, time.time())
                    )
        return schema_version(conn)
    finally:
        conn.execute("SELECT pg_advisory_unlock(%s)", (MIGRATE_LOCK,))


def _check_new(conn: psycopg.Connection[Any], location: str, create: bool) -> None:
    rows = conn.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() ORDER BY 1"
    ).fetchall()
    tables = [row[0] for row in rows]
    if tables:
        raise ConfigError(
            f"the database at {location} is not a pepper one (its tables: {', '.join(tables[:5])}); "
            "give pepper a database of its own",
            field="db",
        )
    if not create:
        raise ConfigError(
            f"no pepper database at {location}: nothing has been stored there yet "
            "(check the --db option or $PEPPER_DB)",
            field="db",
        )
