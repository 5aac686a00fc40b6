"""How a PostgreSQL store hears of other processes' commits: each commit's notification names the store that sent
it, so a backend pid the server's OS gives again (to another process's connection) never hides a commit; and an
idle worker reads the change count at its heartbeat's pace, so a notification it missed delays work, never
strands it."""

from __future__ import annotations

import psycopg

import pepper
from pepper.core import TaskOrchestrator
from pepper.engine.upkeep import MAX_GATHER
from pepper.model.task import TaskState
from pepper.store.postgres import PostgresStore
from pepper.testing import ManualClock
from tests.conftest import VIRTUAL
from tests.support import eventually


def test_a_commit_through_a_backend_pid_this_store_once_had_is_news_to_it(postgres_url, monkeypatch):
    other = PostgresStore(postgres_url, pool_size=1)  # another process: its one connection writes
    with other.pool.connection() as conn:
        reused = conn.info.backend_pid
    # Given a store whose connection had that backend pid (it closed since, and the OS gave the pid again)
    real = psycopg.ConnectionInfo.backend_pid
    monkeypatch.setattr(psycopg.ConnectionInfo, "backend_pid", property(lambda info: reused))
    store = PostgresStore(postgres_url)
    monkeypatch.setattr(psycopg.ConnectionInfo, "backend_pid", real)
    try:
        eventually(lambda: store._listener._connected, "the store listening")
        before = store.data_version()
        # When the other process commits through the connection of that pid
        other.workers.register("w-other", "elsewhere", 1, 0.0)
        # Then the store counts it: its readers look
        eventually(lambda: store.data_version() > before, "the other process's commit heard")
    finally:
        store.close()
        other.close()


def test_a_store_tells_its_own_notifications_from_others_by_their_sender(postgres_url):
    store, other = PostgresStore(postgres_url), PostgresStore(postgres_url)
    try:
        listener, pid = store._listener, 4242
        assert store.sender != other.sender
        assert not listener._news(psycopg.Notify("pepper_changes", store.sender, pid))
        assert listener._news(psycopg.Notify("pepper_changes", other.sender, pid))
        assert listener._news(psycopg.Notify("pepper_changes", "", pid))  # a sender that names none is another
        assert not listener._news(psycopg.Notify(listener.wake_channel, "", pid))
    finally:
        store.close()
        other.close()


def test_an_idle_worker_that_missed_a_notification_finds_the_task_at_its_next_heartbeat(postgres_url, tmp_path):
    clock = ManualClock(1_700_000_000.0)
    ran: list[str] = []
    with pepper.Runtime(db=postgres_url, home=str(tmp_path / "worker"), clock=clock, **VIRTUAL) as worker:
        pepper.agent("echo", task_types=["echo"], runtime=worker)(lambda task: ran.append(task.task_id) or "done")
        worker.start()
        listener = worker.store._listener
        listener._news = lambda note: False  # every notification lost on its way
        upkeep = worker._running_service().upkeep
        eventually(lambda: listener._connected, "the worker listening")
        worker._on_engine(upkeep.poll)  # it has read what its listener counted: from now on it waits to be told
        with pepper.Runtime(db=postgres_url, home=str(tmp_path / "submitter")) as submitter:
            orchestrator = TaskOrchestrator(submitter)
            orchestrator.submit_task("missed", "echo")
            assert ran == [] and orchestrator.get_task_status("missed").state is TaskState.PENDING
            clock.advance(3600 + MAX_GATHER)  # its heartbeat (after a wake's gathering, if one was on): it looks
            assert orchestrator.wait("missed", timeout=60).state is TaskState.COMPLETED
    assert ran == ["missed"]


def test_a_worker_told_of_nothing_reads_the_change_count_once_per_heartbeat(postgres_url, tmp_path):
    start = 1_700_000_000.0
    clock = ManualClock(start)
    with pepper.Runtime(db=postgres_url, home=str(tmp_path / "worker"), clock=clock, **VIRTUAL) as worker:
        pepper.agent("echo", task_types=["echo"], runtime=worker)(lambda task: "done")
        worker.start()
        store, upkeep = worker.store, worker._running_service().upkeep
        looks: list[float] = []
        counted = store.current_change_seq

        def count() -> int:
            looks.append(clock.now())
            return counted()

        store.current_change_seq = count  # type: ignore[method-assign]
        eventually(lambda: store._listener._connected, "the worker listening")
        worker._on_engine(upkeep.poll)  # it has read what its listener counted: from now on it waits to be told
        for _ in range(3):
            worker._on_engine(upkeep.poll)  # polls between heartbeats read nothing
        assert looks == []
        for beat in (1, 2):
            clock.advance(3600 + MAX_GATHER)  # the heartbeat interval (and a wake's gathering, if one was on)
            eventually(lambda: len(looks) >= beat, "the look at the heartbeat")  # noqa: B023
            worker._on_engine(upkeep.poll)
            assert len(looks) == beat and looks[-1] >= start + 3600 * beat
