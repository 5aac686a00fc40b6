"""A process without an engine answers about one task from that task's rows, not from the whole backlog."""

from __future__ import annotations

import pytest

import pepper
from pepper.core import TaskOrchestrator
from pepper.engine.stored import StoreBackend
from pepper.model.agent import AgentSpec
from pepper.model.record import TaskRecord
from pepper.scheduling.backlog import ahead_of, waiting_from


@pytest.fixture
def rows_read(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every task row turned into a record, by id."""
    read: list[str] = []
    original = TaskRecord.from_row.__func__  # type: ignore[attr-defined]

    def counted(cls, row):  # type: ignore[no-untyped-def]
        read.append(row["task_id"])
        return original(cls, row)

    monkeypatch.setattr(TaskRecord, "from_row", classmethod(counted))
    return read


def _backlog(tmp_path, name: str, size: int) -> pepper.Runtime:
    runtime = pepper.Runtime(db=str(tmp_path / f"{name}.db"))
    orchestrator = TaskOrchestrator(runtime=runtime)
    orchestrator.submit_tasks([{"task_id": f"t{i}", "task_type": "work"} for i in range(size)])
    orchestrator.submit_tasks(
        [{"task_id": "root", "task_type": "work"},
         {"task_id": "child", "task_type": "work", "dependencies": ["root"]},
         {"task_id": "grandchild", "task_type": "work", "dependencies": ["child", "t0"]}]
    )  # fmt: skip
    return runtime


def _reads(runtime: pepper.Runtime, rows_read: list[str], call) -> list[str]:  # type: ignore[no-untyped-def]
    rows_read.clear()
    call(TaskOrchestrator(runtime=runtime))
    return list(rows_read)


def test_status_and_cancel_read_the_same_rows_whatever_the_backlog(tmp_path, rows_read):
    # Given two stores, one with 200 pending tasks and one with 20,000, and no engine in this process
    small, large = _backlog(tmp_path, "small", 200), _backlog(tmp_path, "large", 20_000)
    try:
        for runtime in (small, large):
            assert not runtime.running
        # When the status of one task in the middle of the backlog is asked of each
        status_small = _reads(small, rows_read, lambda o: o.get_task_status("t100"))
        status_large = _reads(large, rows_read, lambda o: o.get_task_status("t100"))
        # Then both read that task's row only
        assert status_small == status_large == ["t100"]
        # When a task with dependents is cancelled in each
        cancel_small = _reads(small, rows_read, lambda o: o.cancel_task("root"))
        cancel_large = _reads(large, rows_read, lambda o: o.cancel_task("root"))
        # Then both read the task, the blocked tasks waiting on it and their dependencies: the same rows
        assert sorted(cancel_small) == sorted(cancel_large)
        assert set(cancel_large) == {"root", "child", "grandchild", "t0"}
        # And the dependents were cancelled with it; the other dependency was left alone
        orchestrator = TaskOrchestrator(runtime=large)
        assert [orchestrator.get_task_status(t).state.value for t in ("root", "child", "grandchild", "t0")] == [
            "cancelled", "cancelled", "cancelled", "pending"]  # fmt: skip
    finally:
        small.close()
        large.close()


def test_tasks_ahead_counted_by_the_store_match_the_rule_over_every_ready_task(tmp_path):
    # Given tasks of mixed priorities and types, some pinned, and the agents of a worker elsewhere
    with pepper.Runtime(db=str(tmp_path / "p.db")) as runtime:
        specs = []
        for i in range(60):
            spec = {
                "task_id": f"t{i}",
                "task_type": "a" if i % 3 else "b",
                "priority": ("low", "normal", "high")[i % 3],
            }
            if i % 7 == 0:
                spec["agent"] = "one"
            specs.append(spec)
        TaskOrchestrator(runtime=runtime).submit_tasks(specs)
        agents = [AgentSpec("one", frozenset({"a"})), AgentSpec("two", frozenset({"a", "b"}))]
        runtime.store.workers.register("elsewhere", "host", 1, runtime.clock.now())
        for spec in agents:
            runtime.store.workers.register_agent(spec, "elsewhere", runtime.clock.now())
        backend = StoreBackend(runtime.store, runtime.clock, runtime.worker_id, ageing=10.0)
        # When each ready task's facts say how many come before it
        waiting = waiting_from(runtime.store.ready_tasks(runtime.clock.now()))
        records = runtime.store.get_tasks([w.task_id for w in waiting])
        counted = {w.task_id: backend.facts(records[w.task_id]).ahead for w in waiting}
        # Then each count is the one the rule gives over every ready task
        assert counted == {me.task_id: ahead_of(me, waiting, agents, 10.0) for me in waiting}
        assert len(set(counted.values())) > 10
