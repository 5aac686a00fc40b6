"""Of two live workers claiming one task, one claim is stored and the other refused: the refused claim never ran,
so nothing was lost and nothing was taken over; neither the engine's hooks nor ``pepper worker``'s lines say so."""

from __future__ import annotations

import io
import threading
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

import pepper
from pepper.cli.reporter import Reporter
from pepper.core import TaskOrchestrator
from pepper.engine.hooks import EngineHook
from pepper.model.record import TaskRecord
from pepper.model.task import TaskState
from pepper.store.protocol import WriteSet
from pepper.store.sql_store import SqlStore
from tests.support import eventually

WAIT = 60.0  # a safety net against a hang, never a wait for something to happen


class Lost(EngineHook):
    """Records what the engine says of attempts it lost."""

    def __init__(self) -> None:
        self.lost: list[tuple[str, int]] = []

    def on_attempt_lost(self, task_id: str, attempt: int, record: TaskRecord) -> None:
        self.lost.append((task_id, attempt))


@pytest.fixture(params=["sqlite", "postgres"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return request.getfixturevalue("postgres_url") if request.param == "postgres" else str(tmp_path / "shared.db")


def test_a_claim_another_worker_won_is_not_reported_as_taken_over(db, tmp_path, monkeypatch):
    names = ("one", "two")
    settings: dict[str, Any] = {"poll_interval": "20ms", "sample_interval": "1h", "shutdown_timeout": "5s"}
    workers = {name: pepper.Runtime(db=db, home=str(tmp_path / name), host_id=name, **settings) for name in names}
    submitter = pepper.Runtime(db=db, home=str(tmp_path / "submitter"), poll_interval="20ms")
    # Both workers claim T: the first claim is written only once the second worker is about to write its own,
    # which is written only after the first: the store refuses it (a versioned write over a row changed since).
    claims: list[str] = []
    second_claims, first_stored = threading.Event(), threading.Event()
    real_commit = SqlStore.commit

    def commit(self: SqlStore, writes: WriteSet, writer: str, now: float = 0.0) -> Any:
        claim = writer not in claims and any(save.task.task_id == "T" for save in writes.saves)
        if not claim:
            return real_commit(self, writes, writer, now)
        claims.append(writer)
        if len(claims) == 1:
            assert second_claims.wait(WAIT), "the second worker never claimed T"
            try:
                return real_commit(self, writes, writer, now)
            finally:
                first_stored.set()
        second_claims.set()
        assert first_stored.wait(WAIT), "the first claim of T was never written"
        return real_commit(self, writes, writer, now)

    monkeypatch.setattr(SqlStore, "commit", commit)
    outs = {name: io.StringIO() for name in names}
    reporters = {name: Reporter(Console(file=outs[name], width=300, force_terminal=False)) for name in names}
    lost = {name: Lost() for name in names}
    ran: list[str] = []

    def agent(name: str) -> Any:
        def work(task: Any) -> str:
            ran.append(name)
            return name

        return work

    try:
        for name, runtime in workers.items():
            pepper.agent("w", task_types=["work"], runtime=runtime)(agent(name))
            runtime.add_hook(reporters[name])
            runtime.add_hook(lost[name])
            runtime.start()
        ids = {runtime.worker_id: name for name, runtime in workers.items()}
        TaskOrchestrator(submitter).submit_task("T", "work")
        status = TaskOrchestrator(submitter).wait("T", timeout=WAIT)
        first, second = (ids[writer] for writer in claims)
        assert (status.state, status.result, status.attempts) == (TaskState.COMPLETED, first, 1)
        seen = TaskOrchestrator(workers[second])
        eventually(lambda: seen.get_task_status("T").state is TaskState.COMPLETED, "the second worker to read T")
    finally:
        for runtime in (*workers.values(), submitter):
            runtime.close()
    assert ran == [first]  # the refused claim never ran
    assert (lost[first].lost, lost[second].lost) == ([], [])
    printed = outs[second].getvalue()
    assert "⤳" not in printed and "taken over" not in printed, printed
    assert (reporters[second].completed, reporters[second].lost) == (0, 0)
    assert str(reporters[second].summary()) == "worker stopped; tasks run here: 0 completed, 0 failed"
    assert (reporters[first].completed, reporters[first].lost) == (1, 0)
