"""What a pepper database holds, read from the database itself: its tables, their columns and primary keys,
its identity columns and its schema version, on SQLite and on PostgreSQL alike.

Copying between databases reads the columns from both sides rather than from a list written here, so that
a column added by a later migration is copied without a change to this module.
"""

from __future__ import annotations

from pepper.store.sql_store import SqlStore

#: Tables that are not data: the schema version is each database's own (written by its migrations).
NOT_DATA = frozenset({"schema_version"})

_PG_TABLES = """
SELECT table_name FROM information_schema.tables
WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' ORDER BY table_name"""

_PG_COLUMNS = """
SELECT column_name FROM information_schema.columns
WHERE table_schema = current_schema() AND table_name = %s ORDER BY ordinal_position"""

_PG_PRIMARY_KEY = """
SELECT k.column_name FROM information_schema.table_constraints AS c
JOIN information_schema.key_column_usage AS k
  ON k.constraint_name = c.constraint_name AND k.table_schema = c.table_schema AND k.table_name = c.table_name
WHERE c.table_schema = current_schema() AND c.table_name = %s AND c.constraint_type = 'PRIMARY KEY'
ORDER BY k.ordinal_position"""

_PG_IDENTITY = """
SELECT column_name FROM information_schema.columns
WHERE table_schema = current_schema() AND table_name = %s
  AND (is_identity = 'YES' OR column_default LIKE 'nextval(%%')"""


def is_postgres(store: SqlStore) -> bool:
    """True for a PostgreSQL store (its SQL takes ``%s`` placeholders), False for SQLite (``?``)."""
    return store.kind == "PostgreSQL"


def placeholder(store: SqlStore) -> str:
    """The parameter marker of ``store``'s SQL."""
    return "%s" if is_postgres(store) else "?"


def quoted(name: str) -> str:
    """An identifier quoted for SQL (both databases quote with double quotes)."""
    return '"' + name.replace('"', '""') + '"'


def location(store: SqlStore) -> str:
    """Where the store's data lives, for people (a PostgreSQL URL without its password)."""
    return str(getattr(store, "location", store.kind))


def tables(store: SqlStore) -> list[str]:
    """The data tables of the database, by name (the schema version left out)."""
    if is_postgres(store):
        rows = store.fetch(_PG_TABLES)
    else:
        rows = store.fetch("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' "
                           "ORDER BY name")  # fmt: skip
    return [row[0] for row in rows if row[0] not in NOT_DATA]


def columns(store: SqlStore, table: str) -> list[str]:
    """The columns of ``table``, in the table's order."""
    if is_postgres(store):
        return [row[0] for row in store.fetch(_PG_COLUMNS, (table,))]
    return [row["name"] for row in store.fetch("SELECT * FROM pragma_table_info(?) ORDER BY cid", (table,))]


def primary_key(store: SqlStore, table: str) -> list[str]:
    """The columns of ``table``'s primary key, in the key's order."""
    if is_postgres(store):
        return [row[0] for row in store.fetch(_PG_PRIMARY_KEY, (table,))]
    rows = store.fetch("SELECT name, pk FROM pragma_table_info(?) WHERE pk > 0 ORDER BY pk", (table,))
    return [row["name"] for row in rows]


def identity_columns(store: SqlStore, table: str) -> list[str]:
    """Columns numbered by a sequence of the database (PostgreSQL's identity columns; none on SQLite, where
    a new ``INTEGER PRIMARY KEY`` continues from the largest one stored)."""
    if not is_postgres(store):
        return []
    return [row[0] for row in store.fetch(_PG_IDENTITY, (table,))]


def schema_version(store: SqlStore) -> int:
    """The highest migration applied to the database."""
    return int(store.fetch("SELECT COALESCE(MAX(version), 0) FROM schema_version")[0][0])


def latest_schema(store: SqlStore) -> int:
    """The newest schema version this pepper knows for ``store``'s kind of database."""
    if is_postgres(store):
        from pepper.store.postgres import migrations as postgres_migrations

        return postgres_migrations()[-1][0]
    from pepper.store.connection import migrations

    return migrations()[-1][0]


def count(store: SqlStore, table: str) -> int:
    """The rows of ``table``."""
    return int(store.fetch(f"SELECT COUNT(*) FROM {quoted(table)}")[0][0])
