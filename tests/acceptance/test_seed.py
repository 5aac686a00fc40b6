"""The snippets of docs/orchestration.md run unchanged, with the names they leave undefined supplied."""

from __future__ import annotations

import pepper
from pepper.model.task import TaskState

from .seed import snippet


def test_the_task_orchestrator_snippet_runs_unchanged_and_does_real_work(tmp_path):
    # Given a default runtime with a documentation agent
    pepper.init(db=str(tmp_path / "seed.db"), home=str(tmp_path / "home"))

    @pepper.agent("documentation_agent", task_types=["documentation"], skills=["markdown", "api_docs"])
    def document(task):
        return {"page": f"{task.task_id}.md", "after": sorted(task.dependency_results)}

    # When the snippet runs exactly as written
    namespace: dict = {}
    exec(compile(snippet("Task Orchestrator"), "docs/orchestration.md", "exec"), namespace)

    # Then task_123 is stored, blocked on task_122, which nobody submitted yet
    task, status = namespace["task"], namespace["status"]
    assert task.task_id == "task_123" and task.priority == pepper.Priority.HIGH
    assert status.state is TaskState.BLOCKED
    assert [str(w) for w in status.waiting_on] == ["dependency 'task_122' has not been submitted yet"]

    # and once task_122 arrives, both run for real on the agent
    orchestrator = namespace["orchestrator"]
    orchestrator.submit_task(task_id="task_122", task_type="documentation")
    assert orchestrator.get_result("task_123", timeout=10) == {"page": "task_123.md", "after": ["task_122"]}
    assert orchestrator.get_task_status("task_122").agent_id == "documentation_agent"
