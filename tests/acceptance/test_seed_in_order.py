"""Every snippet of docs/orchestration.md, in the order the document shows them, unchanged, in one process."""

from __future__ import annotations

import asyncio
import textwrap

import pepper
from pepper.model.task import TaskState

from .seed import snippets


def _run(heading: str, code: str, namespace: dict) -> None:
    """Run one snippet in the shared namespace; one with top-level ``await`` runs in an async function, as the
    document intends (what it defines joins the namespace)."""
    source = f"docs/orchestration.md ({heading})"
    if "await " not in code:
        exec(compile(code, source, "exec"), namespace)
        return
    body = textwrap.indent(code, "    ")
    exec(compile(f"async def __snippet():\n{body}\n    return locals()\n", source, "exec"), namespace)
    namespace.update(asyncio.run(namespace["__snippet"]()))


def test_every_snippet_runs_in_order_unchanged_in_one_process(tmp_path):
    # Given one runtime with the agents the document names, and the values it leaves to the reader
    pepper.init(db=str(tmp_path / "seed.db"), home=str(tmp_path / "home"), retry_delay="10ms",
                resources={"cpu": 8, "memory": "16Gi", "storage": "10Gi"}, sample_interval="100ms")  # fmt: skip
    runs: list[str] = []

    @pepper.agent("documentation_agent", task_types=["documentation"], skills=["markdown", "api_docs"])
    def document(task):
        runs.append(task.task_id)
        return {"page": f"{task.task_id}.md"}

    @pepper.agent("review_agent", task_types=["review"])
    def review(task):
        runs.append(task.task_id)
        return {"approved": True}

    @pepper.agent("deployment_agent", task_types=["deployment"])
    def deploy(task):
        runs.append(task.task_id)
        return {"deployed": True}

    namespace: dict = {
        "current_tasks": [{"id": "doc-1", "type": "documentation"}, {"id": "review-1", "type": "review"}],
        "available_agents": ["documentation_agent", "review_agent", "deployment_agent"],
        "handle_high_cpu": lambda alert: None,
        "handle_high_error_rate": lambda alert: None,
        "task_error": TimeoutError("the docs service did not answer"),
    }

    # When every snippet runs, in the document's order
    ran = []
    for heading, code in snippets():
        _run(heading, code, namespace)
        ran.append(heading)

    # Then none was skipped, and each did what it says
    assert ran == ["Task Orchestrator", "Resource Manager", "Workflow Controller", "Agent Selection",
                   "Load Balancing", "Resource Allocation", "Resource Monitoring", "Task Sequencing",
                   "Error Handling", "Health Checks", "Performance Monitoring"]  # fmt: skip
    assert namespace["status"].state is TaskState.BLOCKED  # task_123 waits for task_122, never submitted
    assert namespace["result"].status == "completed"  # the sequence ran
    agent = namespace["agent"]  # chosen after the workflow: one task done, on time, never rated
    assert agent.agent_id == "documentation_agent" and agent.performance_score >= 0.9
    (error,) = namespace["history"]  # the error reported on task_123, which has not run yet
    assert (error.error.type, error.strategy, error.action) == ("TimeoutError", "retry", "retry")
    assert namespace["health"].status == "healthy"

    # and task_123 still runs, once, when its dependency arrives
    orchestrator = namespace["orchestrator"]
    orchestrator.submit_task(task_id="task_122", task_type="documentation")
    assert orchestrator.get_result("task_123", timeout=20) == {"page": "task_123.md"}
    assert runs.count("task_123") == 1
