"""Free text a caller gives holding a lone surrogate ("\\ud800": valid JSON, not storable UTF-8): a cancel's reason
or a feedback comment is refused with ``InvalidTextError`` and changes nothing, in Python and over HTTP (before, a
cancel with such a reason failed the task instead); an error handled by hand is kept with the surrogate escaped, as
an agent's own error is."""

from __future__ import annotations

import httpx
import pytest

from pepper.core import ErrorHandler, TaskOrchestrator
from pepper.errors import InvalidTextError
from pepper.model.status import TaskError
from pepper.model.task import TaskState
from tests.integration.served import PATIENCE, Served, served  # noqa: F401

BAD = "\ud800"


def test_a_cancel_reason_that_cannot_be_stored_is_refused(served: Served) -> None:  # noqa: F811
    orchestrator = TaskOrchestrator(runtime=served.local)
    orchestrator.submit_task("text/parent", "documentation", dependencies=["text/never"])
    orchestrator.submit_task("text/child", "documentation", dependencies=["text/parent"])
    with pytest.raises(InvalidTextError, match="reason"):
        orchestrator.cancel_task("text/parent", f"because {BAD}")
    answer = httpx.post(
        f"{served.url}/api/v1/tasks/text%2Fparent/cancel",
        content='{"reason": "\\ud800"}',
        headers={"Authorization": f"Bearer {served.tokens['write']}", "Content-Type": "application/json"},
    )
    assert answer.status_code == 400 and answer.json()["error"]["type"] == "InvalidTextError"
    for task_id in ("text/parent", "text/child"):
        assert orchestrator.get_task_status(task_id).state is TaskState.BLOCKED
    assert orchestrator.cancel_task("text/parent", "a reason that can be stored")


def test_a_comment_or_error_that_cannot_be_stored_is_refused(served: Served) -> None:  # noqa: F811
    orchestrator = TaskOrchestrator(runtime=served.remote)
    orchestrator.submit_task("text/rated", "review")
    orchestrator.wait("text/rated", timeout=PATIENCE)
    with pytest.raises(InvalidTextError, match="comment"):
        orchestrator.add_feedback("text/rated", 4, comment=BAD)
    assert TaskOrchestrator(runtime=served.local).get_feedback("text/rated") == []
    orchestrator.submit_task("text/broken", "break", max_retries=0)
    orchestrator.wait("text/broken", timeout=PATIENCE)
    for runtime in (served.remote, served.local):
        handled = TaskError("OSError", f"disk {BAD}")
        ErrorHandler(runtime=runtime).handle_error_now("text/broken", handled, "dead_letter")
        history = ErrorHandler(runtime=served.local).get_error_history("text/broken")
        assert history[-1].error.message == "disk \\ud800" and history[-1].action == "dead_letter"
        assert orchestrator.get_task_status("text/broken").state is TaskState.PARKED
