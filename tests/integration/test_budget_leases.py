"""Tasks inside an agent's budget: they hold a lease of it in the store, so the budget is never over-committed by
several worker processes, and what they hold keeps counting against the pool once the budget ends."""

from __future__ import annotations

import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

import pepper
from pepper.core import ResourceAllocator, ResourceManager, TaskOrchestrator
from pepper.model.task import TaskState
from pepper.testing import ManualClock
from tests.conftest import VIRTUAL
from tests.integration.fleet import Fleet

GPU = {"resources": {"gpu": 1}}


class Recorder:
    """Agent bodies that note what runs at once, and hold each task until the test lets it end."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.running: set[str] = set()
        self.peak = 0
        self.order: list[str] = []
        self.started = {name: threading.Event() for name in ("t1", "t2")}
        self.finish = threading.Event()

    def body(self, task: pepper.Task) -> str:
        with self.lock:
            self.running.add(task.task_id)
            self.peak = max(self.peak, len(self.running))
            self.order.append(f"start {task.task_id}")
        self.started[task.task_id].set()
        self.finish.wait(60)
        with self.lock:
            self.running.discard(task.task_id)
            self.order.append(f"end {task.task_id}")
        return task.task_id


@pytest.fixture(params=["sqlite", "postgres"])
def gpu_runtime(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[pepper.Runtime, ManualClock]]:
    db = request.getfixturevalue("postgres_url") if request.param == "postgres" else str(tmp_path / "b.db")
    clock = ManualClock(1_700_000_000.0)
    runtime = pepper.Runtime(db=db, home=str(tmp_path / "home"), clock=clock, resources={"gpu": 1}, **VIRTUAL)
    yield runtime, clock
    runtime.close()


@pytest.mark.parametrize("ends", ["expires", "is released"])
def test_a_task_outlasting_its_budget_holds_the_pool_until_it_ends(gpu_runtime, ends):
    runtime, clock = gpu_runtime
    recorder = Recorder()
    pepper.agent("A", task_types=["gpu"], runtime=runtime)(recorder.body)
    pepper.agent("B", task_types=["gpu2"], runtime=runtime)(recorder.body)
    allocator = ResourceAllocator(runtime)
    budget = allocator.allocate("A", {"gpu": 1}, duration="2s")  # the whole pool, as A's budget
    orchestrator = TaskOrchestrator(runtime)
    # Given t1 running inside A's budget
    orchestrator.submit_task("t1", "gpu", requirements=GPU)
    assert recorder.started["t1"].wait(30)
    # When the budget ends while t1 runs
    if ends == "expires":
        clock.advance(3)
    else:
        assert allocator.release(budget) is True
    assert budget.lease_id not in {lease.lease_id for lease in allocator.allocations()}
    # Then t1 still holds the gpu: a task of another agent needing it waits, and says why
    orchestrator.submit_task("t2", "gpu2", requirements=GPU)
    status = orchestrator.get_task_status("t2")
    assert status.state is TaskState.PENDING, recorder.order
    assert [w.message for w in status.waiting_on] == ["needs more resources than are free: gpu short by 1 in the pool"]
    assert ResourceManager(runtime).pool().free["gpu"] == 0.0
    # and starts once t1 has ended
    recorder.finish.set()
    assert orchestrator.wait("t2", timeout=30).state is TaskState.COMPLETED
    assert recorder.peak == 1 and recorder.order == ["start t1", "end t1", "start t2", "end t2"]
    assert ResourceManager(runtime).pool().held == {}


AGENTS = textwrap.dedent("""
    import os
    import time
    from pathlib import Path

    LOG = os.environ["FLEET_LOG"]

    def hold(task):
        out = os.open(LOG, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
        try:
            os.write(out, f"start {task.task_id} {os.getpid()}\\n".encode())
            while not (Path(LOG).parent / "release").exists():
                time.sleep(0.01)
            os.write(out, f"end {task.task_id} {os.getpid()}\\n".encode())
        finally:
            os.close(out)
        return task.task_id
""")


def in_budget_fleet(folder: Path, db: str) -> Fleet:
    """Workers that each run agent ``A`` (4 slots) on a pool of one gpu, all on this host."""
    fleet = Fleet(folder, db, hosts=False)
    (folder / "fleet_agents.py").write_text(AGENTS)
    agent = "- {agent_id: A, task_types: [gpu], capacity: 4, function: fleet_agents:hold}\n"
    (folder / "agents.yaml").write_text(agent)
    config = (folder / "pepper.toml").read_text()
    (folder / "pepper.toml").write_text(config + "resources = {gpu = 1}\n")
    return fleet


def peak(lines: list[str]) -> int:
    running = most = 0
    for line in lines:
        running += 1 if line.startswith("start") else -1
        most = max(most, running)
    return most


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_worker_processes_sharing_a_budget_never_run_more_than_it_holds(request, tmp_path, kind):
    db = request.getfixturevalue("postgres_url") if kind == "postgres" else str(tmp_path / "shared.db")
    fleet = in_budget_fleet(tmp_path, db)
    try:
        workers = [fleet.start(), fleet.start()]
        fleet.until(lambda: fleet.registered(2), "two workers with agent A")
        with pepper.Runtime(db=db, home=str(tmp_path / "home-client"), resources={"gpu": 1}) as client:
            # Given agent A's budget of one gpu (the whole pool), leased by hand
            ResourceAllocator(client).allocate("A", {"gpu": 1})
            orchestrator = TaskOrchestrator(client)
            # When four tasks needing a gpu each are submitted, both workers may take them
            ids = [f"g{i}" for i in range(4)]
            orchestrator.submit_tasks([{"id": i, "type": "gpu", "requirements": GPU} for i in ids])
            log = tmp_path / "ran.log"
            lines = lambda: log.read_text().splitlines() if log.exists() else []  # noqa: E731
            fleet.until(lambda: lines(), "a task to start")

            # Then one runs, the others wait for room in the budget, as read from this process
            def budget_short() -> bool:
                assert peak(lines()) == 1, lines()  # over-committed
                statuses = [orchestrator.get_task_status(i) for i in ids]
                pending = [s for s in statuses if s.state is TaskState.PENDING]
                return len(pending) == 3 and all(
                    any("gpu short by 1 in the budget of agent 'A'" in str(w) for w in s.waiting_on) for s in pending
                )

            fleet.until(budget_short, "the waiting tasks to say the budget is short")
            beats = {w: hb for w, hb in fleet.rows("SELECT worker_id, heartbeat_at FROM workers")}
            fleet.until(  # every worker went round its loop (and read the store) since
                lambda: all(hb > beats[w] for w, hb in fleet.rows("SELECT worker_id, heartbeat_at FROM workers")),
                "a heartbeat of each worker",
            )
            assert peak(lines()) == 1, lines()
            (tmp_path / "release").touch()
            assert all(s.state is TaskState.COMPLETED for s in orchestrator.wait(ids, timeout=120))
        fleet.stop_all()
        # and never more than one ran at once, each once, with nothing left held
        assert peak(lines()) == 1, lines()
        assert sorted(line.split()[1] for line in lines() if line.startswith("start")) == ids
        assert fleet.rows("SELECT lease_id FROM leases WHERE released_at IS NULL AND kind = 'task'") == []
        assert {pid for line in lines() for pid in [int(line.split()[2])]} <= {w.pid for w in workers}
    finally:
        fleet.close()
