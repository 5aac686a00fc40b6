"""The store-only backend answers the faces' new questions (runs, agents, figures) as the engine would, or
says clearly what needs an engine."""

from __future__ import annotations

import asyncio

import pytest

import pepper
from pepper.core import ResourceAllocator, WorkflowController
from pepper.engine.stored import StoreBackend
from pepper.errors import RuntimeClosedError
from pepper.model.workflow import WorkflowSpec


def test_a_finished_run_reads_the_same_from_the_engine_and_from_the_store(tmp_path):
    # Given a workflow run driven to its end by an engine
    db = str(tmp_path / "runs.db")
    with pepper.Runtime(db=db) as runtime:

        @pepper.agent("worker", task_types=["work"], runtime=runtime)
        def work(task):  # type: ignore[no-untyped-def]
            return {"ok": True}

        flow = WorkflowController("flow", runtime)
        flow.add_step("a", "work")
        flow.add_step("b", "work", dependencies=["a"])
        live = flow.run(timeout=30)
        run_id = flow.run_id
        assert run_id is not None
    # When another process, with no engine, reads it through the store-only backend
    with pepper.Runtime(db=db) as offline:
        backend = offline.read(lambda b: b)
        assert isinstance(backend, StoreBackend)
        stored = backend.run_result(run_id)
        runs = backend.list_runs(10)
        # Then it finds the same outcome, step by step, and the run among the latest
        assert stored.status is live.status and stored.succeeded
        assert {k: s.state for k, s in stored.steps.items()} == {k: s.state for k, s in live.steps.items()}
        assert [r.run_id for r in runs] == [run_id]
        # And it has no engine figures or counters to give
        assert backend.figures() is None and backend.counters() is None
        # And no agent is listed: the worker that ran them has stopped
        assert backend.read_agents(lambda view: sorted(view.directory().agents)) == []


def test_driving_a_run_without_an_engine_is_refused_by_name(tmp_path):
    # Given a store-only backend
    with pepper.Runtime(db=str(tmp_path / "none.db")) as runtime:
        backend = runtime.read(lambda b: b)
        spec = WorkflowSpec("flow", ())
        # When it is asked to start, wait for, cancel or resume a run
        for call in (
            backend.start_run(spec, {}, None),
            backend.wait_run("r", None),
            backend.cancel_run("r", "no"),
            backend.resume_run("r", None),
        ):
            # Then it says a run needs an engine
            with pytest.raises(RuntimeClosedError, match="needs one to drive it"):
                asyncio.run(call)


def test_the_pool_and_its_leases_read_the_same_from_the_engine_and_from_the_store(tmp_path):
    # Given a pool with one budget lease, granted while an engine runs
    db = str(tmp_path / "pool.db")
    with pepper.Runtime(db=db, resources={"cpu": 4, "gpu": 1}) as runtime:
        pepper.agent("worker", task_types=["work"], runtime=runtime)(lambda task: None)
        runtime.start()
        granted = ResourceAllocator(runtime).allocate("worker", {"cpu": 2})
        live = runtime.read(lambda b: (b.pool(), b.leases(runtime.clock.now()), b.lease(granted.lease_id)))
        assert not isinstance(runtime.read(lambda b: b), StoreBackend)
    # When a process with no engine reads them through the store-only backend
    with pepper.Runtime(db=db) as offline:
        stored = offline.read(lambda b: (b.pool(), b.leases(offline.clock.now()), b.lease(granted.lease_id)))
        assert isinstance(offline.read(lambda b: b), StoreBackend)
    # Then both see the same capacity, the same live lease and the same lease by its id
    assert stored == live
    assert live[0]["gpu"] == 1 and [lease.lease_id for lease in live[1]] == [granted.lease_id]
