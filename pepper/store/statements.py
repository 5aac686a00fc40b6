"""The named SQL statements of each database: ``sql/queries.sql``, shared, plus each database's own file.

A statement is written once, with ``?`` placeholders (``:name`` for named ones) and the markers
``{tx_seq}`` (this write transaction's change number), ``{ids}`` (a list of ids, expanded when run) and, on
PostgreSQL, ``{sender}`` (the token of the store that notifies, filled in by it).
A database's own file (``sql/sqlite.sql``, ``sql/postgres.sql``) adds statements only it needs and
replaces those it spells differently; for PostgreSQL the placeholders become psycopg's.
"""

from __future__ import annotations

import re
from functools import cache
from importlib import resources

_NAME_RE = re.compile(r"^--\s*name:\s*(\w+)\s*$", re.MULTILINE)
_NAMED_PARAM_RE = re.compile(r"(?<![:\w]):(\w+)")

DIALECTS = ("sqlite", "postgres")

#: How a statement reads the change number its write transaction took (see ``SqlStore.begin_change``).
_TX_SEQ = {"sqlite": "pepper_tx_seq()", "postgres": "current_setting('pepper.tx_seq')::bigint"}


def _parse(file: str) -> dict[str, str]:
    text = resources.files("pepper.store").joinpath(f"sql/{file}").read_text()
    parts = _NAME_RE.split(text)
    named = {}
    for name, body in zip(parts[1::2], parts[2::2], strict=True):
        lines = [ln for ln in body.strip().splitlines() if not ln.lstrip().startswith("--")]
        named[name] = "\n".join(lines).strip().rstrip(";")
    return named


def _psycopg(sql: str) -> str:
    """``?`` and ``:name`` placeholders as psycopg's ``%s`` and ``%(name)s`` (a literal ``%`` doubled)."""
    sql = sql.replace("%", "%%").replace("?", "%s")
    return _NAMED_PARAM_RE.sub(r"%(\1)s", sql)


@cache
def queries(dialect: str = "sqlite") -> dict[str, str]:
    """Every named statement, as ``dialect`` runs it."""
    if dialect not in DIALECTS:
        raise ValueError(f"unknown SQL dialect {dialect!r}; known: {', '.join(DIALECTS)}")
    named = _parse("queries.sql") | _parse(f"{dialect}.sql")
    out = {}
    for name, sql in named.items():
        sql = sql.replace("{tx_seq}", _TX_SEQ[dialect])
        out[name] = _psycopg(sql) if dialect == "postgres" else sql
    return out
