"""SQLite's own files (not part of the store protocol): numbered migrations reproduce the schema file, and a
database written by a newer pepper is refused."""

from __future__ import annotations

import re
import sqlite3

import pytest

from pepper.errors import ConfigError
from pepper.store.connection import migrate, migrations, schema_sql
from pepper.store.params import SAVED_FIELDS
from pepper.store.sqlite import SQLiteStore
from pepper.store.statements import queries


def _normalised_schema(conn: sqlite3.Connection) -> list[tuple[str, str]]:
    rows = conn.execute(
        "SELECT name, sql FROM sqlite_master WHERE sql IS NOT NULL AND name NOT LIKE 'sqlite_%' ORDER BY name"
    ).fetchall()
    # compare structure, not layout: ALTER TABLE rewrites the stored text with its own spacing
    return [(name, re.sub(r"\s*([(),])\s*", r"\1", re.sub(r"\s+", " ", sql)).strip()) for name, sql in rows]


def _database_of_schema(path: str, schema: int) -> sqlite3.Connection:
    """A database at ``path`` as the migrations up to ``schema`` left it (an older pepper's), open."""
    conn = sqlite3.connect(path)
    for version, _name, sql in migrations():
        if version <= schema:
            conn.executescript(sql)
            conn.execute("INSERT INTO schema_version (version, applied_at) VALUES (?, 0)", (version,))
    return conn


def _reference() -> sqlite3.Connection:
    """A database made from the schema file."""
    reference = sqlite3.connect(":memory:")
    reference.executescript(schema_sql())
    return reference


def test_migrations_reproduce_the_schema_file_exactly():
    migrated = sqlite3.connect(":memory:")
    migrate(migrated)
    assert _normalised_schema(migrated) == _normalised_schema(_reference())
    assert migrate(migrated) == migrations()[-1][0]  # running again changes nothing


def test_a_database_from_a_newer_pepper_is_refused(tmp_path):
    path = str(tmp_path / "new.db")
    SQLiteStore(path).close()
    conn = sqlite3.connect(path)
    conn.execute("INSERT INTO schema_version VALUES (999, 0)")
    conn.commit()
    conn.close()
    with pytest.raises(ConfigError, match="newer pepper"):
        SQLiteStore(path)


def test_the_save_statement_sets_the_stored_fields_in_their_declared_order():
    columns = re.findall(r"(\w+) = \?", queries()["save_task"].split("WHERE")[0])
    assert columns == [("result" if name == "result_json" else name) for name in SAVED_FIELDS] + ["writer"]


def test_a_pool_stored_before_pools_were_per_host_becomes_the_first_writers(tmp_path):
    # Given a database of schema 8: one pool, one lease, no hosts
    path = str(tmp_path / "old.db")
    conn = _database_of_schema(path, 8)
    conn.execute("INSERT INTO pool (resource, capacity) VALUES ('cpu', 4), ('gpu', 1)")
    conn.execute("INSERT INTO leases (lease_id, holder, kind, resources, granted_at) "
                 "VALUES ('old', 'agent', 'budget', '{\"cpu\": 3}', 0)")  # fmt: skip
    conn.commit()
    conn.close()
    # When a runtime of host-a opens it to write
    store = SQLiteStore(path)
    store.leases.host = "host-a"
    assert store.leases.ensure_pool({"cpu": 64.0}, replace=False) == {"cpu": 4.0, "gpu": 1.0}
    # Then the stored pool and its lease are host-a's, and another host starts a pool of its own
    assert [lease.lease_id for lease in store.leases.live(1.0)] == ["old"]
    other = SQLiteStore(path)
    other.leases.host = "host-b"
    assert other.leases.ensure_pool({"cpu": 2.0}, replace=False) == {"cpu": 2.0}
    assert other.leases.live(1.0) == []
    store.close()
    other.close()


def test_tasks_stored_before_the_state_checks_were_rebuilt_keep_their_rows_and_order(tmp_path):
    # Given a database of schema 16 holding tasks, one of them pruned away from the middle (a gap in seq)
    path = str(tmp_path / "old.db")
    old = _database_of_schema(path, 16)
    insert = (
        "INSERT INTO tasks (seq, task_id, task_type, priority, dependencies, inputs, requirements, max_retries, "
        "metadata, created_at, state, change_seq, result, outcome) VALUES (?, ?, 'build', 5, '[]', '{}', '{}', 0, "
        "'{}', 1.5, ?, ?, ?, ?)"
    )
    old.executemany(
        insert,
        [
            (1, "a", "completed", 3, '{"ok": 1}', None),
            (3, "c", "parked", 4, None, None),
            (4, "d", "failed", 5, None, "aborted"),
        ],
    )
    old.executemany(
        "INSERT INTO attempts (task_id, attempt, task_type, ended_at, outcome, error) VALUES (?, ?, 'build', ?, ?, ?)",
        [("a", 1, 2.0, "retry", '{"type": "E"}'), ("d", 1, 3.0, "interrupted", None)],
    )
    old.commit()
    before = old.execute("SELECT * FROM tasks ORDER BY seq").fetchall()
    attempts = old.execute("SELECT * FROM attempts ORDER BY task_id").fetchall()
    old.close()
    # When pepper opens it
    SQLiteStore(path).close()
    conn = sqlite3.connect(path)
    # Then every row is as it was, in its place, and the schema is the current one
    assert conn.execute("SELECT * FROM tasks ORDER BY seq").fetchall() == before
    assert conn.execute("SELECT * FROM attempts ORDER BY task_id").fetchall() == attempts
    assert _normalised_schema(conn) == _normalised_schema(_reference())
    # And a state outside the list is still refused, as is an unknown outcome of a task or an attempt
    for bad in (
        "UPDATE tasks SET state = 'running' WHERE seq = 1",
        "UPDATE tasks SET outcome = 'lost' WHERE seq = 1",
        "UPDATE attempts SET outcome = 'lost' WHERE task_id = 'a'",
    ):
        with pytest.raises(sqlite3.IntegrityError, match="CHECK"):
            conn.execute(bad)


def test_a_new_task_never_takes_the_number_of_one_deleted_before(tmp_path):
    # Given three tasks stored, the newest two then deleted (as a prune of the newest finished tasks does)
    conn = sqlite3.connect(str(tmp_path / "p.db"))
    migrate(conn)
    insert = (
        "INSERT INTO tasks (task_id, task_type, priority, dependencies, inputs, requirements, max_retries, metadata, "
        "created_at, state, change_seq) VALUES (?, 'build', 5, '[]', '{}', '{}', 0, '{}', 1.0, 'pending', 1)"
    )
    for task_id in ("a", "b", "c"):
        conn.execute(insert, (task_id,))
    conn.execute("DELETE FROM tasks WHERE task_id IN ('b', 'c')")
    # When another task is stored
    conn.execute(insert, ("d",))
    # Then it comes after every number given before, not in the place of the deleted ones
    assert conn.execute("SELECT task_id, seq FROM tasks ORDER BY seq").fetchall() == [("a", 1), ("d", 4)]


@pytest.mark.parametrize("name", ["insert_task", "save_task", "record_attempt"])
def test_the_writes_of_every_task_build_no_temporary_index(name):
    # SQLite checks an IN list of more than two values (in a CHECK constraint, say) by building a temporary
    # index each time the statement runs: on these, once per task or attempt written
    conn = sqlite3.connect(":memory:")
    migrate(conn)
    conn.create_function("pepper_tx_seq", 0, lambda: 1)
    sql = queries()[name]
    program = [row[1] for row in conn.execute("EXPLAIN " + sql, [None] * sql.count("?"))]
    assert "OpenEphemeral" not in program
