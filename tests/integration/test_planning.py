"""A plan made before running, against the run itself: the demo's workflow (as written before fan-out, one step
per task) with agents that take known times.

The agents do not sleep: they wait on a virtual clock the runtime reads too, and the clock moves on to the next
end of an attempt only once the engine has done all it can at the current instant (recorded every finished
attempt, started every step that could start). The timeline is then the engine's decisions alone, however busy
the machine is.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

import pepper
from pepper.core import TaskOrchestrator, WorkflowController
from pepper.model.task import TaskState
from pepper.scheduling.planning import PlanTask, check_schedule
from pepper.testing import ManualClock
from pepper.workflow_file import parse_workflow_file

DEMO = Path(__file__).resolve().parent / "planned_pairs.yaml"
SLEEP = {"housekeeping": 0.05, "documentation": 0.3, "review": 0.15, "deployment": 0.2}
CAPACITY = {"housekeeping": 1, "documentation": 2, "review": 2, "deployment": 1}


class VirtualWork:
    """Agents' work measured on a manual clock, moved on by a driver thread when the engine has settled."""

    def __init__(self, spec, runtime: pepper.Runtime, clock: ManualClock) -> None:
        self.clock, self.orchestrator = clock, TaskOrchestrator(runtime)
        self.steps = {s.step_id: s for s in spec.steps}
        self.lock = threading.Condition()
        self.waiting: dict[str, tuple[str, float]] = {}  # task id -> (step id, virtual end)
        self.returned: dict[str, str] = {}  # task id -> step id, once the agent call returned
        self.recorded: set[str] = set()  # task ids the engine reports completed
        self.changes = 0  # agent calls begun or returned so far: the driver moves on only if none did since it looked
        self.seen = 0  # ``changes`` when the driver last found the engine settled
        self.stop = threading.Event()
        self.driver = threading.Thread(target=self._drive, daemon=True)

    def work(self, task) -> None:
        """The body of every agent: take ``SLEEP[type]`` seconds of virtual time."""
        with self.lock:
            end = self.clock.now() + SLEEP[task.task_type]
            self.waiting[task.task_id] = (task.step_id, end)
            self.changes += 1
            self.lock.wait_for(lambda: self.clock.now() >= end)
            del self.waiting[task.task_id]
            self.returned[task.task_id] = task.step_id
            self.changes += 1

    def __enter__(self) -> VirtualWork:
        self.driver.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.driver.join()

    def _settled(self) -> bool:
        """True when the engine has recorded every returned attempt and started every step it could, as of
        ``seen`` (an agent call that began or returned since may have let the engine start another step)."""
        with self.lock:
            self.seen = self.changes
            unconfirmed = [t for t in self.returned if t not in self.recorded]
            waiting = dict(self.waiting)
            done = set(self.returned.values())
        for task_id in unconfirmed:
            if self.orchestrator.get_task_status(task_id).state is not TaskState.COMPLETED:
                return False
            self.recorded.add(task_id)
        running = {step for step, _ in waiting.values()}
        busy = {t: 0 for t in CAPACITY}
        for step in running:
            busy[self.steps[step].task_type] += 1
        for step_id, step in self.steps.items():
            ready = step_id not in done and step_id not in running and set(step.dependencies) <= done
            if ready and busy[step.task_type] < CAPACITY[step.task_type]:
                return False  # the engine has yet to start it
        return bool(waiting)

    def _drive(self) -> None:
        while not self.stop.is_set():
            if self._settled():
                with self.lock:
                    if self.changes == self.seen:  # else look again: the engine may be starting a step now
                        self.clock.set(min(end for _, end in self.waiting.values()))
                        self.lock.notify_all()
            time.sleep(0.001)

    def reset(self) -> None:
        """Forget the steps of the last run (a new run has new task ids)."""
        with self.lock:
            self.returned.clear()


@pytest.mark.slow
@pytest.mark.parametrize("policy", ["default", "critical_path"])
def test_the_predicted_timeline_of_the_demo_workflow_is_within_10_percent_of_the_real_one(tmp_path, policy):
    spec = parse_workflow_file(DEMO, with_agents=False).spec
    clock = ManualClock(time.time())
    with pepper.Runtime(db=str(tmp_path / "p.db"), home=str(tmp_path / "home"), poll_interval="20ms",
                        clock=clock) as runtime, VirtualWork(spec, runtime, clock) as virtual:  # fmt: skip
        for task_type in SLEEP:
            pepper.agent(f"{task_type}_agent", task_types=[task_type], capacity=CAPACITY[task_type],
                         runtime=runtime)(virtual.work)  # fmt: skip
        predicted = pepper.plan(spec, durations=SLEEP, policy=policy, runtime=runtime)
        workflow = WorkflowController(spec.name, runtime, policy=policy, predict=True)
        workflow.spec = spec
        result = workflow.run(timeout=60)
        learned = pepper.plan(spec, policy=policy, runtime=runtime)  # durations from the run's history now
        virtual.reset()
        again = workflow.run(timeout=60)

    assert result.status == "completed"
    tasks = [PlanTask(s.step_id, s.task_type, SLEEP[s.task_type], s.dependencies) for s in spec.steps]
    assert check_schedule(predicted.schedule, tasks, _agents()) == []
    types = {s.step_id: s.task_type for s in spec.steps}
    assert all(s.finished_at - s.started_at == pytest.approx(SLEEP[types[s.step_id]]) for s in result)
    first = min(s.started_at for s in result)
    actual = max(s.finished_at for s in result) - first
    assert actual == pytest.approx(predicted.makespan, rel=0.10)
    assert predicted.makespan >= predicted.lower_bound
    assert learned.makespan == pytest.approx(predicted.makespan, rel=0.10) and not learned.notes
    # The second run was planned from what the first one taught, and stored its plan to compare with.
    assert again.plan is not None and set(again.plan["steps"]) == {s.step_id for s in spec.steps}
    second = max(s.finished_at for s in again) - min(s.started_at for s in again)
    assert second == pytest.approx(again.plan["makespan"], rel=0.10)


def _agents():
    from pepper.core.plan_inputs import read_agents

    return read_agents([{"agent_id": f"{t}_agent", "task_types": [t], "capacity": CAPACITY[t]} for t in SLEEP], None)
