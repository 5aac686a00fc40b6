"""A plan made before running, against the run itself: the demo's workflow with agents that sleep."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

import pepper
from pepper.core import WorkflowController
from pepper.core.workflow_file import parse_workflow_file
from pepper.scheduling.planning import PlanTask, check_schedule

DEMO = Path(__file__).resolve().parents[2] / "examples" / "docsite" / "workflow.yaml"
SLEEP = {"housekeeping": 0.05, "documentation": 0.3, "review": 0.15, "deployment": 0.2}
CAPACITY = {"housekeeping": 1, "documentation": 2, "review": 2, "deployment": 1}


@pytest.mark.slow
@pytest.mark.parametrize("policy", ["default", "critical_path"])
def test_the_predicted_timeline_of_the_demo_workflow_is_within_10_percent_of_the_real_one(tmp_path, policy):
    spec = parse_workflow_file(DEMO).spec
    with pepper.Runtime(db=str(tmp_path / "p.db"), home=str(tmp_path / "home"), poll_interval="20ms") as runtime:
        for task_type, seconds in SLEEP.items():
            pepper.agent(f"{task_type}_agent", task_types=[task_type], capacity=CAPACITY[task_type],
                         runtime=runtime)(lambda task, s=seconds: time.sleep(s))  # fmt: skip
        predicted = pepper.plan(spec, durations=SLEEP, policy=policy, runtime=runtime)
        workflow = WorkflowController(spec.name, runtime, policy=policy, predict=True)
        workflow.spec = spec
        result = workflow.run(timeout=60)
        learned = pepper.plan(spec, policy=policy, runtime=runtime)  # durations from the run's history now
        again = workflow.run(timeout=60)

    assert result.status == "completed"
    tasks = [PlanTask(s.step_id, s.task_type, SLEEP[s.task_type], s.dependencies) for s in spec.steps]
    assert check_schedule(predicted.schedule, tasks, _agents()) == []
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
    from pepper.core.planning import _read_agents

    return _read_agents([{"agent_id": f"{t}_agent", "task_types": [t], "capacity": CAPACITY[t]} for t in SLEEP], None)
