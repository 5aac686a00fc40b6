"""Opening a SQLite database the way pepper needs it, and keeping its schema current."""

from __future__ import annotations

import os
import re
import shlex
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from importlib import resources
from pathlib import Path

from pepper.errors import ConfigError, DatabaseDamagedError, DatabaseReadOnlyError, DiskFullError

_MIGRATION_RE = re.compile(r"^(\d{4})_\w+\.sql$")
#: Prepared statements a connection keeps: every named statement and the task saves narrowed to their columns
#: (``store.saves``) are prepared once, not again each time another pushed them out.
_CACHED = 1024


def migrations() -> list[tuple[int, str, str]]:
    """``(version, file name, sql)`` of every migration, in order."""
    folder = resources.files("pepper.store").joinpath("migrations")
    found = []
    for entry in folder.iterdir():
        match = _MIGRATION_RE.match(entry.name)
        if match:
            found.append((int(match.group(1)), entry.name, entry.read_text()))
    return sorted(found)


def schema_sql() -> str:
    """The complete current schema (``sql/schema.sql``)."""
    return resources.files("pepper.store").joinpath("sql/schema.sql").read_text()


#: SQLite's codes for a file whose pages cannot be read: damaged, or not a database at all.
_DAMAGED = frozenset({"SQLITE_CORRUPT", "SQLITE_NOTADB"})


def damaged(exc: BaseException, path: str) -> DatabaseDamagedError | None:
    """The pepper error for a SQLite error that says the file at ``path`` is damaged, else None."""
    if not isinstance(exc, sqlite3.DatabaseError):
        return None
    name = getattr(exc, "sqlite_errorname", "")
    if name in _DAMAGED or "malformed" in str(exc) or "not a database" in str(exc):
        return DatabaseDamagedError(path, str(exc))
    return None


#: Below this much free space on its device, a database counts as full (a commit needs a few pages at least).
LOW_SPACE = 256 * 1024


def free_space(path: str) -> int | None:
    """Bytes free (for this user) on the device holding database ``path``; None for ``:memory:`` or unknown."""
    if path == ":memory:":
        return None
    try:
        stats = os.statvfs(Path(path).expanduser().parent)
    except (OSError, AttributeError):  # no such folder, or a system without statvfs
        return None
    return stats.f_bavail * stats.f_frsize


def out_of_space(path: str) -> bool:
    """Whether the device holding database ``path`` has (next to) no space left."""
    free = free_space(path)
    return free is not None and free < LOW_SPACE


def read_only_remedy(path: str) -> str:
    """What to do about a SQLite database that cannot be written."""
    if path == ":memory:":
        return "give another --db"
    return (
        f"make {path} and its folder writable by this user (SQLite also writes {path}-wal and {path}-shm "
        "beside it), or give another --db"
    )


def read_only(exc: BaseException) -> bool:
    """Whether SQLite's ``exc`` says the database cannot be written (a read-only file or folder)."""
    name = getattr(exc, "sqlite_errorname", "") or ""
    return name.startswith("SQLITE_READONLY") or "readonly database" in str(exc)


def _cannot_use(exc: sqlite3.Error, path: str, doing: str) -> Exception:
    """The error for a database SQLite could not open or set up: no space left, read-only, else a bad --db."""
    if out_of_space(path):
        return DiskFullError(path, str(exc))
    if read_only(exc):
        return DatabaseReadOnlyError(path, str(exc), read_only_remedy(path))
    return ConfigError(f"cannot {doing} database {path!r}: {exc}", field="db")


def _raise_if_damaged(exc: sqlite3.DatabaseError, path: str) -> None:
    error = damaged(exc, path)
    if error is not None:
        raise error from None


def path_of(conn: sqlite3.Connection) -> str:
    """The file of ``conn``'s main database (``:memory:`` for none); needs no page of the file."""
    try:
        return conn.execute("PRAGMA database_list").fetchone()[2] or ":memory:"
    except sqlite3.Error:
        return "the database"


#: ``None`` for any value: a look-up in an empty dict, called without a Python frame (an empty column binds in
#: 72 ns instead of 87 through a function of its own).
_AS_NULL: Callable[[object], None] = dict[object, None]().get


def bind_quickly() -> None:
    """Have sqlite3 bind ``None`` and ``bool`` parameters through its table of adapters.

    sqlite3 binds an int, a float or a str as it is, but asks any other value (``None``, ``bool``) whether it
    adapts itself, an attribute look-up that fails, several times slower than the binding: pepper's rows hold
    many empty columns. An adapter in the table is found first and gives what SQLite stored anyway (NULL; 0
    or 1). The table is sqlite3's, for the whole process: adapters already there for these types are kept.
    """
    table = getattr(sqlite3, "adapters", None)
    if table is None:
        return
    if (type(None), sqlite3.PrepareProtocol) not in table:
        sqlite3.register_adapter(type(None), _AS_NULL)
    if (bool, sqlite3.PrepareProtocol) not in table:
        sqlite3.register_adapter(bool, int)


def connect(
    path: str, *, busy_timeout: float = 10.0, synchronous: str = "normal", create: bool = True
) -> sqlite3.Connection:
    """A connection in autocommit mode (pepper opens its own transactions), WAL for files.

    With ``create=False`` a missing database file is an error rather than a new database; either way, a
    missing folder is an error (the runtime makes its own home folder, where the default database lives).
    """
    if path != ":memory:" and Path(path).expanduser().is_dir():
        raise ConfigError(f"--db {path!r} is a folder; give a database file, e.g. {path.rstrip('/')}/pepper.db",
                          field="db")  # fmt: skip
    if path != ":memory:" and not create and not Path(path).expanduser().is_file():
        raise ConfigError(
            f"no pepper database at {path!r}: nothing has been stored there yet (check the --db option or $PEPPER_DB)",
            field="db",
        )
    if path != ":memory:":  # a new database, yes; new folders, no: a mistyped path would hide it where no one looks
        folder = Path(path).expanduser().parent
        if not folder.is_dir():
            raise ConfigError(
                f"the folder {str(folder)!r} of database {path!r} does not exist; create it first "
                f"(mkdir -p {shlex.quote(str(folder))}) or give another --db",
                field="db",
            )
    bind_quickly()
    try:
        conn = sqlite3.connect(
            path, isolation_level=None, check_same_thread=False, timeout=busy_timeout, cached_statements=_CACHED
        )
    except sqlite3.Error as exc:
        raise _cannot_use(exc, path, "open") from None
    conn.row_factory = sqlite3.Row
    try:
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    except sqlite3.DatabaseError as exc:
        conn.close()
        if getattr(exc, "sqlite_errorname", "") == "SQLITE_NOTADB":
            raise ConfigError(f"{path!r} is not a pepper database (SQLite says: {exc})", field="db") from None
        raise damaged(exc, path) or _cannot_use(exc, path, "open") from None
    if not tables and not create:  # an empty file (or a database with nothing in it): a read must not make one
        conn.close()
        raise ConfigError(f"no pepper database at {path!r}: the file is empty (check the --db option or $PEPPER_DB)",
                          field="db")  # fmt: skip
    if tables and "schema_version" not in tables:  # someone else's database: pepper writes nothing to it
        conn.close()
        raise ConfigError(f"{path!r} is a SQLite database, but not a pepper one (its tables: "
                          f"{', '.join(sorted(tables)[:5])}); choose another file with --db", field="db")  # fmt: skip
    try:
        if path != ":memory:":
            _use_wal(conn, busy_timeout)
        conn.execute(f"PRAGMA synchronous = {synchronous.upper()}")
        conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
        conn.execute("PRAGMA temp_store = MEMORY")
    except sqlite3.DatabaseError as exc:
        conn.close()
        _raise_if_damaged(exc, path)
        raise _cannot_use(exc, path, "use") from None
    return conn


def _use_wal(conn: sqlite3.Connection, busy_timeout: float) -> None:
    """Switch to WAL unless already there; switching needs a moment without other connections, so a new
    database opened by several processes at once retries within the busy timeout."""
    if conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal":
        return
    deadline = time.monotonic() + busy_timeout
    while True:
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """A write transaction that takes the write lock at once (no upgrade deadlocks)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    else:
        conn.execute("COMMIT")


def schema_version(conn: sqlite3.Connection) -> int:
    """The highest migration applied, 0 for a new database."""
    exists = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'").fetchone()
    if not exists:
        return 0
    return int(conn.execute("SELECT COALESCE(MAX(version), 0) FROM schema_version").fetchone()[0])


def migrate(conn: sqlite3.Connection) -> int:
    """Apply the migrations this database lacks, each in its own transaction; return the version.

    A damaged file raises ``DatabaseDamagedError`` rather than SQLite's own error.
    """
    try:
        return _migrate(conn)
    except sqlite3.DatabaseError as exc:
        _raise_if_damaged(exc, path_of(conn))
        raise


def _migrate(conn: sqlite3.Connection) -> int:
    latest = migrations()[-1][0]
    current = schema_version(conn)
    if current > latest:
        raise ConfigError(
            f"the database was written by a newer pepper (schema {current}, this one knows "
            f"up to {latest}); upgrade pepper to open it"
        )
    for version, _name, sql in migrations():
        if version <= current:
            continue
        with transaction(conn):
            if schema_version(conn) >= version:  # another process got there first
                continue
            for statement in _statements(sql):
                conn.execute(statement)
            conn.execute("INSERT INTO schema_version (version, applied_at) VALUES (?, ?)", (version, time.time()))
    return schema_version(conn)


def _statements(sql: str) -> list[str]:
    """Split a script into statements (sqlite3.complete_statement knows where each ends)."""
    statements, current = [], ""
    for line in sql.splitlines(keepends=True):
        if line.lstrip().startswith("--") and not current.strip():
            continue
        current += line
        if sqlite3.complete_statement(current):
            statements.append(current.strip())
            current = ""
    if current.strip():
        statements.append(current.strip())
    return statements
