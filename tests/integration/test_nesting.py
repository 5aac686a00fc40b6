"""How deep values nest on a real engine: an agent's result past ``MAX_DEPTH`` fails its attempt as a result that
is not JSON does, while what pepper makes of results at the limit (a fan-out's list of them) is kept."""

from __future__ import annotations

import pytest

import pepper
from pepper.core import TaskOrchestrator, WorkflowController
from pepper.errors import NestingTooDeepError, TaskFailedError
from pepper.model.codec import MAX_DEPTH, depth_of
from pepper.model.task import TaskState
from tests.conftest import FAST
from tests.unit.test_nesting import nested


@pytest.fixture
def runtime(tmp_path):
    rt = pepper.Runtime(db=str(tmp_path / "n.db"), home=str(tmp_path / "home"), **FAST)
    yield rt
    rt.close()


def test_a_result_nested_past_the_limit_fails_the_attempt_and_one_at_the_limit_is_kept(runtime):
    calls: list[int] = []

    @pepper.agent("deep", task_types=["deep"], runtime=runtime)
    def deep(task):
        calls.append(task.inputs["levels"])
        return nested(task.inputs["levels"])

    orchestrator = TaskOrchestrator(runtime)
    orchestrator.submit_task("too-deep", "deep", inputs={"levels": MAX_DEPTH + 1}, max_retries=1)
    orchestrator.submit_task("at-limit", "deep", inputs={"levels": MAX_DEPTH})
    with pytest.raises(TaskFailedError):
        orchestrator.get_result("too-deep", timeout=60)
    status = orchestrator.get_task_status("too-deep")
    assert status.state is TaskState.FAILED and status.attempts == 2 and calls.count(MAX_DEPTH + 1) == 2
    assert status.error.type == "NotSerializableError"
    assert f"the agent's result nests lists and objects more than {MAX_DEPTH} levels deep" in status.error.message
    assert depth_of(orchestrator.get_result("at-limit", timeout=60), 1000) == MAX_DEPTH
    assert orchestrator.list_tasks()  # every stored task can be read back


def test_inputs_past_the_limit_change_nothing_and_a_fan_out_of_results_at_the_limit_completes(runtime):
    @pepper.agent("deep", task_types=["deep"], runtime=runtime)
    def deep(task):
        return nested(MAX_DEPTH)

    orchestrator = TaskOrchestrator(runtime)
    with pytest.raises(NestingTooDeepError, match=r"^inputs nests"):
        orchestrator.submit_task("refused", "deep", inputs={"x": nested(MAX_DEPTH)})
    assert orchestrator.list_tasks() == []

    workflow = WorkflowController("fan", runtime)
    workflow.add_step("each", "deep", for_each="${{ inputs.items }}")
    with pytest.raises(NestingTooDeepError, match=r"^inputs nests"):
        workflow.run(inputs={"items": [1], "x": nested(MAX_DEPTH)}, timeout=60)
    assert orchestrator.list_tasks() == []
    result = workflow.run(inputs={"items": [1, 2]}, timeout=60)
    assert result.status == "completed", result.reason
    assert result["each"].result == [nested(MAX_DEPTH), nested(MAX_DEPTH)]  # 101 levels: made by pepper
