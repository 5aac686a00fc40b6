"""Where a pepper database lives: a SQLite file path or a PostgreSQL URL, told apart once, and opened.

``postgresql://`` and ``postgres://`` URLs name a PostgreSQL database; anything else with a ``scheme://``
is refused (never taken for a file name), as is a libpq ``key=value`` connection string (``host=... dbname=...``),
which is named back as the URL to give instead, its password hidden; everything else is a SQLite file path (or
``:memory:``).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

from pepper.errors import ConfigError

if TYPE_CHECKING:
    from pepper.store.sql_store import SqlStore

POSTGRES_SCHEMES = ("postgresql://", "postgres://")
_SCHEME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_URL_PASSWORD_RE = re.compile(r"(://[^/@:?#]*):[^/@?#]*@")
_QUERY_PASSWORD_RE = re.compile(r"(?i)(password=)[^&\s]*")
#: A libpq ``key=value`` connection string starts with one of its keys (the first few libpq knows).
_CONNINFO_RE = re.compile(
    r"^\s*(host|hostaddr|port|dbname|user|password|passfile|service|sslmode|connect_timeout|options)\s*=", re.I
)


def is_postgres_url(db: str) -> bool:
    """True if ``db`` names a PostgreSQL database (a ``postgresql://`` or ``postgres://`` URL)."""
    return db.lower().startswith(POSTGRES_SCHEMES)


def check_location(db: str) -> None:
    """Refuse a URL of a database pepper cannot use (``mysql://...``) and a libpq ``key=value`` connection
    string, rather than take either for a file name."""
    conninfo = _conninfo(db)
    if conninfo is not None:
        raise ConfigError(
            "the database given is a PostgreSQL connection string in libpq's key=value form, which pepper does "
            f"not read; give it as a URL instead: {_as_url(conninfo)} (the password in place of ***)",
            field="db",
        )
    if _SCHEME_RE.match(db) and not is_postgres_url(db):
        scheme = db.split("://", 1)[0]
        raise ConfigError(
            f"pepper cannot use a {scheme!r} database ({redact(db)}); give a SQLite file path "
            "(e.g. .pepper/pepper.db) or a PostgreSQL URL (postgresql://user:password@host:5432/name)",
            field="db",
        )


def _conninfo(db: str) -> dict[str, str] | None:
    """The keys and values of ``db`` if it is a libpq ``key=value`` connection string, else None."""
    if not _CONNINFO_RE.match(db):
        return None
    try:
        from psycopg import ProgrammingError, conninfo
    except ImportError:  # without the driver: the words of the string, as libpq would split unquoted ones
        return dict(part.split("=", 1) for part in re.sub(r"\s*=\s*", "=", db).split() if "=" in part)
    try:
        return {key: str(value) for key, value in conninfo.conninfo_to_dict(db).items()}
    except ProgrammingError:  # not one libpq can read either: still never a file name
        return {}


def _as_url(conninfo: dict[str, str]) -> str:
    """The ``postgresql://`` URL that says what ``conninfo`` says, its password as ``***``."""
    from urllib.parse import quote, urlencode

    rest = {key: value for key, value in conninfo.items() if key == "password" or "password" not in key}
    user = quote(rest.pop("user", ""), safe="")
    password = ":***" if rest.pop("password", None) is not None else ""
    host = rest.pop("host", "")
    if host.startswith("/"):  # a Unix socket's folder goes as a parameter
        rest["host"], host = host, "localhost"
    host = f"[{host}]" if ":" in host else host or "HOST"
    port = rest.pop("port", "")
    name = quote(rest.pop("dbname", ""), safe="")
    who = f"{user or 'USER'}{password}@"
    query = f"?{urlencode(rest)}" if rest else ""
    return f"postgresql://{who}{host}{':' + port if port else ''}/{name or 'NAME'}{query}"


def may_hold_data(db: str) -> bool:
    """False when ``db`` surely holds nothing yet (``:memory:``, a file that does not exist); a server may."""
    if is_postgres_url(db):
        return True
    return db != ":memory:" and Path(db).expanduser().exists()


def redact(db: str) -> str:
    """``db`` with any password replaced by ``***`` (safe to print or log)."""
    return _QUERY_PASSWORD_RE.sub(r"\1***", _URL_PASSWORD_RE.sub(r"\1:***@", db))


def check_database_url(db: str) -> None:
    """Refuse a PostgreSQL URL its driver cannot read (an unclosed ``[``, an unknown parameter), naming it
    without its password, before any connection is tried."""
    if not is_postgres_url(db):
        return
    try:
        from psycopg import ProgrammingError, conninfo
    except ImportError:  # opening the store says the driver is missing
        return
    try:
        conninfo.conninfo_to_dict(db)
    except ProgrammingError as exc:
        detail = redact(str(exc).strip().splitlines()[0].replace(db, redact(db)))
        raise ConfigError(
            f"cannot read the PostgreSQL URL {redact(db)}: {detail}; write it as "
            "postgresql://user:password@host:5432/name (with ?key=value parameters libpq knows)",
            field="db",
        ) from None


def open_store(
    db: str,
    *,
    create: bool = True,
    busy_timeout: float = 10.0,
    synchronous: str = "normal",
    connect_timeout: float = 5.0,
) -> SqlStore:
    """The store at ``db``: PostgreSQL for a URL (psycopg is imported only then), else a SQLite file."""
    check_location(db)
    if is_postgres_url(db):
        try:
            from pepper.store.postgres import PostgresStore
        except ImportError as exc:  # the optional driver is missing
            raise ConfigError(
                f"{redact(db)} is a PostgreSQL database, which needs the PostgreSQL driver: "
                f"pip install 'pepper[postgres]' ({exc})",
                field="db",
            ) from None

        return PostgresStore(db, create=create, connect_timeout=connect_timeout, busy_timeout=busy_timeout)
    from pepper.store.sqlite import SQLiteStore

    return SQLiteStore(db, busy_timeout=busy_timeout, synchronous=synchronous, create=create)
