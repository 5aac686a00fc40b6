"""A worker whose own heartbeat is overdue (its process was paused, say) writes it before it claims tasks: if
another worker presumed it dead meanwhile, it is revived first, so what it claims now is not taken over and run a
second time elsewhere."""

from __future__ import annotations

import pepper
from pepper.core import TaskOrchestrator
from pepper.model.task import TaskState


def test_a_worker_paused_past_its_heartbeat_revives_before_it_claims(virtual: pepper.Runtime) -> None:
    ran: list[str] = []
    pepper.agent("a", task_types=["t"], runtime=virtual)(lambda task: ran.append(task.task_id) or "done")
    virtual.start()
    service = virtual._running_service()
    worker_id = service.engine.worker_id
    now = virtual.clock.now()

    def paused() -> None:  # as after a SIGSTOP: the last heartbeat went through long ago
        beats = service.upkeep.own_beats
        beats._last = now - 10 * beats.interval

    virtual._on_engine(paused)
    virtual.store.workers.stop(worker_id, now)  # another worker presumed it dead meanwhile
    assert worker_id not in {w.worker_id for w in virtual.store.workers.live()}

    orchestrator = TaskOrchestrator(virtual)
    orchestrator.submit_task("claimed-after-pause", "t")
    assert orchestrator.wait("claimed-after-pause", timeout=30).state is TaskState.COMPLETED
    assert worker_id in {w.worker_id for w in virtual.store.workers.live()}  # revived before it claimed
    assert ran == ["claimed-after-pause"]
