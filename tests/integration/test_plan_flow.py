"""Planning workflows that shape themselves: a fan-out as its expected items, an approval as an assumed wait of
the people deciding (never an agent's load), a sub-workflow as its child's steps."""

from __future__ import annotations

import pepper
from pepper.core import WorkflowController
from pepper.core.planning import PEOPLE, plan

AGENTS = [{"agent_id": "a", "task_types": ["scan", "doc", "ship"], "capacity": 2}]


def test_fan_out_approval_and_sub_workflow_are_planned_as_what_they_become(tmp_path):
    with pepper.Runtime(db=str(tmp_path / "p.db"), home=str(tmp_path / "home")) as runtime:
        child = WorkflowController("child", runtime)
        child.add_step("write", "doc")
        child.add_step("check", "doc", dependencies=["write"])
        workflow = WorkflowController("release", runtime)
        workflow.add_step("scan", "scan")
        workflow.add_step("docs", "doc", dependencies=["scan"], for_each="${{ steps.scan.result }}", expected_items=4)
        workflow.add_step("pages", "doc", dependencies=["scan"], for_each=["a", "b"])
        workflow.add_step("gate", dependencies=["docs", "pages"],
                          approval={"timeout": "1h", "expected_wait": "10m"})  # fmt: skip
        workflow.add_step("site", dependencies=["gate"], workflow=child)
        workflow.add_step("ship", "ship", dependencies=["site"])

        planned = plan(workflow, agents=AGENTS, durations={"doc": 10, "scan": 1, "ship": 1}, runtime=runtime)

    slots = {s.task_id: s for s in planned.schedule}
    assert {f"docs[{i}]" for i in range(4)} | {"pages[0]", "pages[1]"} <= slots.keys()
    assert "docs" not in slots
    assert slots["gate"].agent_id == PEOPLE and slots["gate"].end - slots["gate"].start == 600
    items = [f"docs[{i}]" for i in range(4)] + ["pages[0]", "pages[1]"]
    assert slots["gate"].start == max(slots[i].end for i in items)
    assert slots["site/write"].start >= slots["gate"].end and slots["site/check"].start >= slots["site/write"].end
    assert slots["ship"].start >= slots["site/check"].end
    assert PEOPLE not in planned.utilisation and planned.bottleneck == "a"
    assert planned.makespan == 1 + 30 + 600 + 20 + 1  # six items of 10s two at a time, the wait, the child, ship
    assert "gate" in planned.critical_path


def _most_at_once(slots: list[tuple[float, float]]) -> int:
    events = sorted([(end, -1) for _, end in slots] + [(start, 1) for start, _ in slots])  # ends first
    most = now = 0
    for _, change in events:
        now += change
        most = max(most, now)
    return most


def test_a_fan_out_is_planned_with_at_most_max_parallel_items_at_once(tmp_path):
    wide = [{"agent_id": "a", "task_types": ["scan", "doc"], "capacity": 8}]
    with pepper.Runtime(db=str(tmp_path / "p.db"), home=str(tmp_path / "home")) as runtime:
        workflow = WorkflowController("limited", runtime)
        workflow.add_step("scan", "scan")
        workflow.add_step("docs", "doc", dependencies=["scan"], for_each="${{ steps.scan.result }}", expected_items=6,
                          max_parallel=2)  # fmt: skip
        workflow.add_step("pages", "doc", dependencies=["scan"], for_each=["a", "b", "c"])  # no limit
        planned = plan(workflow, agents=wide, durations={"doc": 10, "scan": 1}, runtime=runtime)

    slots = {s.task_id: (s.start, s.end) for s in planned.schedule}
    docs = [slots[f"docs[{i}]"] for i in range(6)]
    assert _most_at_once(docs) == 2  # the pool has room for all six: the limit holds them back
    assert _most_at_once([slots[f"pages[{i}]"] for i in range(3)]) == 3
    assert planned.makespan == 1 + 3 * 10  # six items of 10s two at a time
    assert planned.critical_path_length == 1 + 3 * 10
