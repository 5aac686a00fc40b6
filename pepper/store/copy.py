"""Copying pepper's state from one database to another (SQLite to PostgreSQL and back), exactly.

Every data table is copied, by the columns both databases have (read from each, so a column a later
migration adds travels without a change here); the schema version is not copied, each database keeps its
own migrations' record. The source is read inside its write transaction (a consistent picture: its writers
wait meanwhile) and the destination written in one transaction: a copy that fails leaves it as it was.
Rows travel in batches, read page by page along the primary key, so a large database never sits in memory.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from pepper.errors import ConfigError, ConflictError
from pepper.store import catalog
from pepper.store.catalog import quoted
from pepper.store.location import is_postgres_url
from pepper.store.sql_store import Connection, SqlStore

#: Rows per batch read from the source and written to the destination.
BATCH = 5000
#: The order tables are copied and reported in (others follow by name).
TABLE_ORDER = ("tasks", "attempts", "errors", "runs", "feedback", "alerts", "workers", "agents", "pool", "leases",
               "usage_samples", "tokens", "schedules", "approvals", "task_logs", "alert_states",
               "pruned_tasks")  # fmt: skip
#: Tables every runtime that opens a database fills from its settings (the machine's pools): rows there do not
#: mean the destination is in use, and the copy replaces them with the source's.
RECORDED_ON_OPEN = ("pool",)
#: One row of a table, in words (a table not named here: "row of <table>").
_ONE = {"tasks": "task", "attempts": "attempt", "errors": "error", "runs": "run", "feedback": "feedback",
        "alerts": "alert", "workers": "worker", "agents": "agent", "pool": "resource pool",
        "leases": "lease", "usage_samples": "usage sample", "tokens": "token", "schedules": "schedule",
        "approvals": "approval", "task_logs": "task log line", "alert_states": "alert state",
        "pruned_tasks": "pruned task"}  # fmt: skip


@dataclass(frozen=True, slots=True)
class CopyProgress:
    """How far a copy got: ``rows`` of ``total`` overall, ``table_rows`` of ``table_total`` in ``table``."""

    table: str
    table_rows: int
    table_total: int
    rows: int
    total: int


@dataclass(frozen=True, slots=True)
class TableCopy:
    """How one table is copied: the columns both databases have, and the source's primary key."""

    table: str
    columns: tuple[str, ...]
    key: tuple[str, ...]


def same_database(a: str, b: str) -> bool:
    """True when ``a`` and ``b`` name one database (the same file, or the same server, port and database)."""
    if is_postgres_url(a) != is_postgres_url(b):
        return False
    if is_postgres_url(a):
        return _server_and_name(a) == _server_and_name(b)
    if ":memory:" in (a, b):
        return False
    paths = [os.path.realpath(os.path.expanduser(p)) for p in (a, b)]
    if all(os.path.exists(p) for p in paths):
        return os.path.samefile(paths[0], paths[1])
    return paths[0] == paths[1]


def _server_and_name(url: str) -> tuple[str, int, str]:
    parts = urlsplit(url)
    try:
        port = parts.port or 5432
    except ValueError:
        port = 0  # an unreadable port: the server says so when the URL is opened
    return (parts.hostname or "localhost").lower(), port, parts.path.lstrip("/") or (parts.username or "")


def plan_copy(src: SqlStore, dst: SqlStore) -> list[TableCopy]:
    """How each table of ``src`` is copied into ``dst``; ``ConfigError`` when ``dst``'s schema lacks something
    of ``src``'s (its pepper is older), since a copy would lose it."""
    src_version, dst_version = catalog.schema_version(src), catalog.schema_version(dst)
    src_at, dst_at = catalog.location(src), catalog.location(dst)
    older = (
        f"the destination's schema is older than the source's ({dst.kind} schema {dst_version}, source "
        f"{src.kind} schema {src_version}): open {dst_at} with the pepper that wrote {src_at} first "
        "(e.g. `pepper db info --db DST`, which brings its schema up to date), then copy again"
    )
    if src.kind == dst.kind and src_version > dst_version:
        raise ConfigError(older, field="dst")
    dst_tables = set(catalog.tables(dst))
    plans = []
    for table in _ordered(catalog.tables(src)):
        if table not in dst_tables:
            raise ConfigError(f"{dst_at} has no table {table!r}: {older}", field="dst")
        src_columns, dst_columns = catalog.columns(src, table), set(catalog.columns(dst, table))
        missing = [column for column in src_columns if column not in dst_columns]
        if missing:
            names = ", ".join(f"{table}.{column}" for column in missing)
            raise ConfigError(f"{dst_at} has no column {names}: {older}", field="dst")
        key = catalog.primary_key(src, table) or src_columns  # every pepper table has a key; whole rows else
        plans.append(TableCopy(table, tuple(src_columns), tuple(key)))
    return plans


def _ordered(tables: Sequence[str]) -> list[str]:
    known = [table for table in TABLE_ORDER if table in tables]
    return known + sorted(table for table in tables if table not in TABLE_ORDER)


def copy_database(
    src: SqlStore,
    dst: SqlStore,
    *,
    replace: bool = False,
    batch: int = BATCH,
    progress: Callable[[CopyProgress], None] | None = None,
) -> dict[str, int]:
    """Copy every data table of ``src`` into ``dst`` (both open, so both migrated); the rows copied per table.

    ``dst`` must hold nothing the copy would delete (no tasks, runs, tokens, schedules... in any table it
    copies; the resource pools a runtime records on opening aside), unless ``replace``: then its content is
    replaced. Either way the copy
    is one transaction on ``dst``. PostgreSQL's identity columns continue after the largest value copied.
    Raises ``ConfigError`` when both name one database or ``dst``'s schema is older, ``ConflictError`` (naming
    what ``dst`` holds) when it is not empty and ``replace`` is not given.
    """
    if same_database(_target(src), _target(dst)):
        raise ConfigError(f"the source and the destination are one database ({catalog.location(src)}); give another "
                          "destination", field="dst")  # fmt: skip
    plans = plan_copy(src, dst)
    identities = {plan.table: catalog.identity_columns(dst, plan.table) for plan in plans}
    copied: dict[str, int] = {}
    with dst.typed_errors(), src.transaction() as reader, dst.transaction() as writer:
        if not replace:
            _check_empty(writer, dst, [plan.table for plan in plans if plan.table not in RECORDED_ON_OPEN])
        totals = {plan.table: int(reader.execute(f"SELECT COUNT(*) FROM {quoted(plan.table)}").fetchone()[0])
                  for plan in plans}  # fmt: skip
        total, done = sum(totals.values()), 0
        for plan in plans:
            writer.execute(f"DELETE FROM {quoted(plan.table)}")
        for plan in plans:
            copied[plan.table] = 0
            if progress is not None:
                progress(CopyProgress(plan.table, 0, totals[plan.table], done, total))
            for rows in _pages(reader, src, plan, batch):
                writer.executemany(_insert(dst, plan), rows)
                copied[plan.table] += len(rows)
                done += len(rows)
                if progress is not None:
                    progress(CopyProgress(plan.table, copied[plan.table], totals[plan.table], done, total))
        for table, identity in identities.items():
            for column in identity:
                _continue_sequence(writer, table, column)
    return copied


def _target(store: SqlStore) -> str:
    """What names the store's database: its URL or file path (``location`` hides the password, not the name)."""
    return str(getattr(store, "url", None) or getattr(store, "path", None) or catalog.location(store))


def _check_empty(writer: Connection, dst: SqlStore, tables: Sequence[str]) -> None:
    """Refuse a destination holding a row in any of ``tables`` (the copy would delete it), naming what it holds."""
    held = {table: int(writer.execute(f"SELECT COUNT(*) FROM {quoted(table)}").fetchone()[0]) for table in tables}
    what = [_rows(table, n) for table, n in held.items() if n]
    if what:
        listed = what[0] if len(what) == 1 else f"{', '.join(what[:-1])} and {what[-1]}"
        raise ConflictError(
            f"the destination {catalog.location(dst)} already holds {listed}, which the copy would delete; copy "
            "into an empty database, or give --force to replace its content with the source's"
        )


def _rows(table: str, n: int) -> str:
    """``2 tokens``, ``1 schedule``: ``n`` rows of ``table`` in words."""
    one = _ONE.get(table)
    if one is None:
        return f"{n} {'row' if n == 1 else 'rows'} of {table}"
    if n == 1 or one == "feedback":
        return f"{n} {one}"
    return f"{n} {one}s"


def _pages(reader: Connection, src: SqlStore, plan: TableCopy, batch: int) -> Iterator[list[tuple[Any, ...]]]:
    """The rows of a table, ``batch`` at a time, in primary key order (each page starts after the last key)."""
    mark = catalog.placeholder(src)
    names = ", ".join(quoted(column) for column in plan.columns)
    key = ", ".join(quoted(column) for column in plan.key)
    at = [plan.columns.index(column) for column in plan.key]
    after = f"({key}) > ({', '.join([mark] * len(plan.key))})"
    last: list[Any] | None = None
    while True:
        where = f" WHERE {after}" if last is not None else ""
        sql = f"SELECT {names} FROM {quoted(plan.table)}{where} ORDER BY {key} LIMIT {int(batch)}"
        rows = [tuple(row) for row in reader.execute(sql, last or ()).fetchall()]
        if not rows:
            return
        yield rows
        if len(rows) < batch:
            return
        last = [rows[-1][i] for i in at]


def _insert(dst: SqlStore, plan: TableCopy) -> str:
    marks = ", ".join([catalog.placeholder(dst)] * len(plan.columns))
    names = ", ".join(quoted(column) for column in plan.columns)
    return f"INSERT INTO {quoted(plan.table)} ({names}) VALUES ({marks})"


def _continue_sequence(writer: Connection, table: str, column: str) -> None:
    """Set the sequence of a PostgreSQL identity column past the largest value copied, so new rows never
    collide with copied ones."""
    writer.execute(
        f"SELECT setval(pg_get_serial_sequence(%s, %s), COALESCE((SELECT MAX({quoted(column)}) "
        f"FROM {quoted(table)}), 0) + 1, false)",
        (quoted(table), column),
    )
