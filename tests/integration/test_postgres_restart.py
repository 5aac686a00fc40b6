"""A long-lived process on PostgreSQL after the server dropped its connections (a restart, a failover, an
administrator's ``pg_terminate_backend``): its next calls work. A dropped connection is replaced as it is taken
from the pool; one found dropped only by its statement is taken again for a read, or for a write that failed at
its ``BEGIN`` (nothing of it was sent); and the pool's own notes of it stay out of the user's terminal."""

from __future__ import annotations

import logging
import os
import resource

import psycopg
import pytest

import pepper
from pepper.core import TaskOrchestrator
from pepper.store import pg_pool
from tests.postgres_cluster import PostgresCluster
from tests.support import eventually


def fill_the_pool(store) -> set[int]:
    """Have the pool open every connection it may hold; their backend pids."""
    pool = store.pool
    conns = [pool.getconn() for _ in range(pool.max_size)]
    pids = {conn.info.backend_pid for conn in conns}
    for conn in conns:
        pool.putconn(conn)
    return pids


def drop_every_connection(url: str, pids: set[int]) -> None:
    """What ``pg_terminate_backend`` does to pepper's connections, waiting until their backends are gone."""
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )

        def gone() -> bool:
            rows = admin.execute("SELECT pid FROM pg_stat_activity WHERE pid = ANY(%s)", (list(pids),)).fetchall()
            return not rows

        eventually(gone, "the backends gone")


def psycopg_notes(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name.startswith("psycopg") and r.levelno >= logging.WARNING]


def test_after_a_server_restart_the_next_calls_work(postgres_cluster, postgres_url, tmp_path, caplog):
    if not isinstance(postgres_cluster, PostgresCluster):
        pytest.skip("the server is someone else's: it is not restarted")
    caplog.set_level(logging.DEBUG, logger="pepper.store")
    with pepper.Runtime(db=postgres_url, home=str(tmp_path / "home")) as runtime:
        orchestrator = TaskOrchestrator(runtime)
        orchestrator.submit_task("r0", "work")
        assert len(fill_the_pool(runtime.store)) == runtime.store.pool.max_size
        postgres_cluster.restart()
        for n in range(1, 7):  # each on its first try, though every pooled connection was dropped
            orchestrator.submit_task(f"r{n}", "work")
            assert orchestrator.get_task_status("r0").state.value == "pending"
        assert sorted(s.task_id for s in orchestrator.list_tasks()) == [f"r{n}" for n in range(7)]
    assert psycopg_notes(caplog) == []  # the pool discarded the dropped connections: pepper's debug, if anything


def test_reads_and_writes_go_on_past_every_dropped_connection_found_only_by_its_statement(
    postgres_url, tmp_path, monkeypatch, caplog
):
    monkeypatch.setattr(pg_pool, "dropped", lambda conn: conn.closed)  # nothing found as the connection is taken
    with pepper.Runtime(db=postgres_url, home=str(tmp_path / "home")) as runtime:
        orchestrator = TaskOrchestrator(runtime)
        orchestrator.submit_task("before", "work")
        drop_every_connection(postgres_url, fill_the_pool(runtime.store))
        assert orchestrator.get_task_status("before").state.value == "pending"  # past every dropped one
        drop_every_connection(postgres_url, fill_the_pool(runtime.store))
        orchestrator.submit_task("after", "work")  # failed at BEGIN on each dropped one: begun again
        assert [s.task_id for s in orchestrator.list_tasks()] == ["after", "before"]
    assert psycopg_notes(caplog) == []


def test_a_connection_is_found_dropped_once_the_server_closed_it_whatever_its_descriptor(postgres_url):
    if resource.getrlimit(resource.RLIMIT_NOFILE)[0] < 1200:
        pytest.skip("this process may not open 1,200 files")
    filler = [os.open(os.devnull, os.O_RDONLY) for _ in range(1100)]  # the socket's number comes past 1024
    try:
        conn = psycopg.connect(postgres_url, autocommit=True)
    finally:
        for fd in filler:
            os.close(fd)
    with conn:
        assert conn.pgconn.socket > 1024
        assert not pg_pool.dropped(conn)
        assert conn.execute("SELECT 1").fetchone() == (1,)  # the look read nothing it needed
        drop_every_connection(postgres_url, {conn.info.backend_pid})
        eventually(lambda: pg_pool.dropped(conn), "the end of the stream read")  # the backend exits: it comes
