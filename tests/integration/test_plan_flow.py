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
