"""The throw-away PostgreSQL server of the tests: it starts, serves fresh databases, checks passwords, and
leaves nothing behind when stopped."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import psutil
import pytest

from tests.postgres_cluster import PostgresCluster, PostgresServer, PostgresUnavailable

psycopg = pytest.importorskip("psycopg")


@pytest.fixture
def two_databases(postgres_cluster: PostgresServer) -> Iterator[tuple[str, str]]:
    names = [f"t_{uuid.uuid4().hex[:16]}" for _ in range(2)]
    for name in names:
        postgres_cluster.create_database(name)
    yield postgres_cluster.url(names[0]), postgres_cluster.url(names[1])
    for name in names:
        postgres_cluster.drop_database(name)


def test_a_fresh_database_accepts_the_test_role_and_its_schema(postgres_url: str) -> None:
    # Given a fresh database, when the test role connects with the URL's password
    with psycopg.connect(postgres_url, connect_timeout=10) as conn:
        # Then it is PostgreSQL 15 or newer, the database is empty, and the role may create its schema there
        assert conn.info.server_version >= 150000
        tables = conn.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").fetchone()
        assert tables == (0,)
        conn.execute("CREATE TABLE probe (id int PRIMARY KEY)")
        conn.execute("INSERT INTO probe VALUES (1)")
        assert conn.execute("SELECT id FROM probe").fetchall() == [(1,)]


def test_two_databases_are_isolated(two_databases: tuple[str, str]) -> None:
    first, second = two_databases
    # Given a table with a row in the first database
    with psycopg.connect(first, connect_timeout=10) as conn:
        conn.execute("CREATE TABLE probe (id int)")
        conn.execute("INSERT INTO probe VALUES (1)")
    # Then the second database has no such table
    with psycopg.connect(second, connect_timeout=10) as conn:
        assert conn.execute("SELECT to_regclass('public.probe')").fetchone() == (None,)


def test_a_wrong_password_is_refused(postgres_cluster: PostgresServer, postgres_url: str) -> None:
    dbname = postgres_url.rsplit("/", 1)[1]
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(postgres_cluster.wrong_password_url(dbname), connect_timeout=10)


def _server_processes(data_dir: str) -> list[psutil.Process]:
    """Live (not zombie) processes whose command line names the cluster's data folder."""
    found = []
    for process in psutil.process_iter(["cmdline", "status"]):
        if process.info["status"] == psutil.STATUS_ZOMBIE:
            continue
        if any(data_dir in part for part in process.info["cmdline"] or []):
            found.append(process)
    return found


def test_stop_leaves_no_server_process_and_no_folder_behind() -> None:
    # Given a cluster of its own (not the session's), running
    cluster = PostgresCluster(startup_timeout=60.0)
    try:
        cluster.start()
    except PostgresUnavailable as exc:
        pytest.skip("PostgreSQL tests skipped: " + exc.reason)
    try:
        assert cluster.root is not None and cluster.postmaster_pid is not None
        root, data_dir, pid = cluster.root, str(cluster.data_dir), cluster.postmaster_pid
        assert [p.pid for p in _server_processes(data_dir)] == [pid]
        workers = psutil.Process(pid).children()  # checkpointer, writers, ...: they must go too
        assert workers
    finally:
        # When it is stopped
        cluster.stop()
    # Then its postmaster is gone (at most a zombie not yet reaped by its parent) and so is its folder
    assert _server_processes(data_dir) == []
    for process in [psutil.Process(pid) if psutil.pid_exists(pid) else None, *workers]:
        try:
            assert process is None or process.status() == psutil.STATUS_ZOMBIE, process
        except psutil.NoSuchProcess:
            pass
    assert not root.exists()
    cluster.stop()  # a second stop is harmless
