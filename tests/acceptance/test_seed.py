"""The snippets of docs/orchestration.md run unchanged, with the names they leave undefined supplied."""

from __future__ import annotations

import pytest

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


def _runtime_with_pool(tmp_path):
    return pepper.init(db=str(tmp_path / "seed.db"), home=str(tmp_path / "home"),
                       resources={"cpu": 8, "memory": "16Gi", "storage": "10Gi"}, sample_interval="100ms")  # fmt: skip


def test_the_resource_manager_snippet_allocates_a_budget_and_reports_usage(tmp_path):
    _runtime_with_pool(tmp_path)
    pepper.agent("documentation_agent", task_types=["documentation"])(lambda task: "ok")
    namespace: dict = {}
    exec(compile(snippet("Resource Manager"), "docs/orchestration.md", "exec"), namespace)
    allocation, usage = namespace["allocation"], namespace["usage"]
    assert allocation.agent_id == "documentation_agent"
    assert dict(usage.allocated) == {"cpu": 2.0, "memory": 4096.0, "storage": 1024.0}
    assert usage.measured.storage.value == 0.0 and usage.measured.cpu.value is None  # in-process: said plainly
    free = namespace["resource_manager"].pool().free
    assert free["cpu"] == 6.0 and free["memory"] == 16 * 1024 - 4096


def test_the_resource_allocator_snippet_leases_for_an_hour_then_releases(tmp_path):
    runtime = _runtime_with_pool(tmp_path)
    namespace: dict = {}
    exec(compile(snippet("Resource Allocation"), "docs/orchestration.md", "exec"), namespace)
    allocation = namespace["allocation"]
    assert allocation.expires_at - allocation.granted_at == 3600
    assert runtime.store.leases.get(allocation.allocation_id).released_at is not None
    assert namespace["allocator"].allocations() == []


#: A command keeping three processes busy until the file ``stop`` exists (or a minute has passed): two cores'
#: worth of demand, so it shows well over 80% of a core even on a machine that other work keeps busy.
BUSY_UNTIL_STOPPED = """\
import os, pathlib, time
stop, end = pathlib.Path({stop!r}), time.monotonic() + 60
for _ in range(3):
    if os.fork() == 0:
        while not stop.exists() and time.monotonic() < end:
            pass
        os._exit(0)
for _ in range(3):
    os.wait()
"""


def test_the_resource_monitor_snippet_measures_and_alerts_on_a_busy_agent(tmp_path):
    import sys
    import threading

    runtime = _runtime_with_pool(tmp_path)
    spin, stop = tmp_path / "spin.py", tmp_path / "stop"
    spin.write_text(BUSY_UNTIL_STOPPED.format(stop=str(stop)))  # busy until the alert fired, however slow the machine
    runtime.register_agent(pepper.agents.CommandAgent("documentation_agent", f"{sys.executable} {spin}",
                                                      task_types=["documentation"]))  # fmt: skip
    fired = threading.Event()
    alerts = []

    def handle_high_cpu(alert):
        alerts.append(alert)
        stop.touch()
        fired.set()

    namespace: dict = {"handle_high_cpu": handle_high_cpu}
    exec(compile(snippet("Resource Monitoring"), "docs/orchestration.md", "exec"), namespace)
    usage = namespace["usage"]
    assert set(usage.measurements) == {"cpu", "memory", "storage"} and usage.cpu.value == 0.0  # nothing runs yet
    orchestrator = pepper.TaskOrchestrator()
    orchestrator.submit_task("busy", "documentation")
    assert fired.wait(120)  # a safety net only: the alert comes as soon as a sample sees the spinning processes
    assert alerts[0].subject == "documentation_agent" and alerts[0].value > 80
    assert orchestrator.wait("busy", timeout=60).state is TaskState.COMPLETED


def test_the_agent_selector_snippet_picks_an_agent_that_earned_its_score(tmp_path):
    pepper.init(db=str(tmp_path / "seed.db"), home=str(tmp_path / "home"))
    pepper.agent("documentation_agent", task_types=["documentation"], skills=["markdown", "api_docs"])(
        lambda task: {"page": f"{task.task_id}.md"}
    )
    pepper.agent("draft_agent", task_types=["documentation"], skills=["markdown"])(lambda task: "draft")
    orchestrator = pepper.TaskOrchestrator()
    done = [orchestrator.submit_task(task_type="documentation", requirements={"skills": ["api_docs"]}).task_id
            for _ in range(10)]  # fmt: skip
    orchestrator.wait(done, timeout=20)
    orchestrator.add_feedback(done[0], rating=5, comment="clear and complete")
    namespace: dict = {}
    exec(compile(snippet("Agent Selection"), "docs/orchestration.md", "exec"), namespace)
    agent, capabilities = namespace["agent"], namespace["capabilities"]
    assert agent.agent_id == "documentation_agent" and agent.performance_score >= 0.8
    assert capabilities.skills == {"markdown", "api_docs"} and capabilities.task_types == {"documentation"}


def test_the_load_balancer_snippet_plans_a_workload_across_the_agents(tmp_path):
    pepper.init(db=str(tmp_path / "seed.db"), home=str(tmp_path / "home"))
    for name in ("documentation", "review", "deployment"):
        pepper.agent(f"{name}_agent", task_types=[name], capacity=2 if name == "documentation" else 1)(str)
    current_tasks = [{"id": f"doc-{i}", "type": "documentation"} for i in range(4)]
    current_tasks += [{"id": "review-1", "type": "review"}, {"id": "deploy-1", "type": "deployment"}]
    available_agents = ["documentation_agent", "review_agent", "deployment_agent"]
    namespace: dict = {"current_tasks": current_tasks, "available_agents": available_agents}
    exec(compile(snippet("Load Balancing"), "docs/orchestration.md", "exec"), namespace)
    distribution, load = namespace["distribution"], namespace["load"]
    assert distribution.assignments["review-1"] == "review_agent"
    assert distribution.by_agent()["documentation_agent"] == [f"doc-{i}" for i in range(4)]
    doc_starts = sorted(p.start for p in distribution.placements if p.agent_id == "documentation_agent")
    assert doc_starts[:2] == [0.0, 0.0] and doc_starts[2] == doc_starts[3] > 0  # two slots, two rounds
    assert distribution.makespan == max(p.end for p in distribution.placements)
    assert (load.agent_id, load.capacity, load.running) == ("documentation_agent", 2, 0)


def _run_awaiting(code: str, namespace: dict) -> None:
    """Run a snippet that uses top-level ``await``, wrapped in an async function as the seed intends."""
    import asyncio
    import textwrap

    body = textwrap.indent(code, "    ")
    exec(compile(f"async def __snippet():\n{body}\n    return locals()\n", "docs/orchestration.md", "exec"), namespace)
    namespace.update(asyncio.run(namespace["__snippet"]()))


def _documentation_review_and_deployment_agents(tmp_path):
    pepper.init(db=str(tmp_path / "seed.db"), home=str(tmp_path / "home"))

    @pepper.agent("documentation_agent", task_types=["documentation"])
    def document(task):
        return {"page": f"{task.step_id}.md"}

    @pepper.agent("review_agent", task_types=["review"])
    def review(task):
        (page,) = [r["page"] for r in task.dependency_results.values()]
        return {"approved": page.endswith(".md"), "page": page}

    @pepper.agent("deployment_agent", task_types=["deployment"])
    def deploy(task):
        return {"deployed": [r["page"] for r in task.dependency_results.values()]}


def test_the_workflow_controller_snippet_runs_both_steps_in_order_on_their_agents(tmp_path):
    _documentation_review_and_deployment_agents(tmp_path)
    namespace: dict = {}
    _run_awaiting(snippet("Workflow Controller"), namespace)
    result = namespace["result"]
    assert result.status == "completed"
    assert [(s.step_id, s.agent_id) for s in result] == [("step_1", "documentation_agent"), ("step_2", "review_agent")]
    assert result["step_2"].result == {"approved": True, "page": "step_1.md"}
    assert result["step_2"].started_at >= result["step_1"].finished_at


def test_the_task_sequencer_snippet_runs_the_chain(tmp_path):
    _documentation_review_and_deployment_agents(tmp_path)
    namespace: dict = {}
    _run_awaiting(snippet("Task Sequencing"), namespace)
    sequence, result = namespace["sequence"], namespace["result"]
    assert sequence.order == ("task_1", "task_2", "task_3")
    assert result.status == "completed"
    assert result.results["task_3"] == {"deployed": ["task_1.md"]}


def test_the_error_handler_snippet_retries_a_failed_task_until_it_completes(tmp_path):
    pepper.init(db=str(tmp_path / "seed.db"), home=str(tmp_path / "home"), retry_delay="10ms")
    calls = []

    @pepper.agent("documentation_agent", task_types=["documentation"])
    def document(task):
        calls.append(task.attempt)
        if len(calls) == 1:
            raise TimeoutError("the docs service did not answer")
        return {"page": "task_123.md"}

    orchestrator = pepper.TaskOrchestrator()
    orchestrator.submit_task(task_id="task_123", task_type="documentation")
    failed = orchestrator.wait("task_123", timeout=10)
    assert failed.state is TaskState.FAILED
    task_error = TimeoutError("the docs service did not answer")

    namespace: dict = {"task_error": task_error}
    _run_awaiting(snippet("Error Handling"), namespace)

    assert orchestrator.get_result("task_123", timeout=10) == {"page": "task_123.md"}
    assert calls == [1, 2]
    history = namespace["handler"].get_error_history("task_123")
    assert [(e.action, e.error.type) for e in history] == [("fail", "TimeoutError"), ("retry", "TimeoutError")]


def test_the_health_checks_snippet_reports_each_component(tmp_path):
    _documentation_review_and_deployment_agents(tmp_path)
    namespace: dict = {}
    exec(compile(snippet("Health Checks"), "docs/orchestration.md", "exec"), namespace)
    health, metrics = namespace["health"], namespace["metrics"]
    assert health.status == "healthy" and set(health.components) == {"agents", "resources", "workflows"}
    assert health["agents"].metrics["agents"] == 3
    assert set(metrics) == {"agents", "resources", "workflows", "store", "engine"}
    assert metrics["store"]["writable"] is True


def test_the_performance_monitoring_snippet_measures_and_alerts(tmp_path):
    import threading

    pepper.init(db=str(tmp_path / "seed.db"), home=str(tmp_path / "home"), sample_interval="50ms")
    calls = []

    @pepper.agent("documentation_agent", task_types=["documentation"], capacity=4)
    def document(task):
        calls.append(task.task_id)
        if len(calls) % 4 == 0:
            raise RuntimeError("the docs service failed")
        return "ok"

    orchestrator = pepper.TaskOrchestrator()
    ids = [f"doc-{i}" for i in range(40)]
    orchestrator.submit_tasks([{"id": i, "type": "documentation"} for i in ids])
    orchestrator.wait(ids, timeout=20)
    alerted = threading.Event()
    namespace: dict = {"handle_high_error_rate": lambda alert: alerted.set()}
    exec(compile(snippet("Performance Monitoring"), "docs/orchestration.md", "exec"), namespace)

    performance = namespace["performance"]
    assert performance.overall.completed + performance.overall.failed == 40
    assert performance.error_rate == pytest.approx(0.25)
    assert performance.throughput > 0 and performance.latency["run_time"].p95 is not None
    assert alerted.wait(5)
