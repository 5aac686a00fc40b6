"""An agent's error or progress message whose text no database could hold as it is (NUL characters, as binary output
has) is stored with them shown as U+FFFD, on either store alike: an error's policy applies and its history is kept,
and a task reporting such progress completes, as with any text."""

from __future__ import annotations

import threading

import pytest

import pepper
from pepper.core import ErrorHandler, TaskOrchestrator
from pepper.model.status import TaskError
from pepper.model.task import TaskState

FAST = {"retry_delay": "10ms", "poll_interval": "20ms", "heartbeat_interval": "100ms", "shutdown_timeout": "2s"}


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_an_error_holding_nul_is_retried_as_its_policy_says_and_kept_in_the_history(request, tmp_path, kind):
    db = request.getfixturevalue("postgres_url") if kind == "postgres" else str(tmp_path / "e.db")
    calls: list[str] = []
    lock = threading.Lock()
    with pepper.Runtime(db=db, home=str(tmp_path / "home"), **FAST) as runtime:

        @pepper.agent("binary", task_types=["t"], runtime=runtime)
        def dump(task):
            with lock:
                calls.append(task.task_id)
            raise ValueError("binary junk: \x00\x01 end")

        orchestrator = TaskOrchestrator(runtime)
        orchestrator.submit_task("junk", "t", policy="retry(2, delay=0)")
        status = orchestrator.wait("junk", timeout=60)
        assert (status.state, status.attempts, calls) == (TaskState.FAILED, 3, ["junk"] * 3)
        assert (status.error.type, status.error.message) == ("ValueError", "binary junk: \ufffd\x01 end")
        history = ErrorHandler(runtime).get_error_history("junk")
        assert [(e.attempt, e.error.type, e.action) for e in history] == [
            (1, "ValueError", "retry"), (2, "ValueError", "retry"), (3, "ValueError", "fail")
        ]  # fmt: skip
        assert all(e.error.message == "binary junk: \ufffd\x01 end" for e in history)
        assert "\x00" not in (history[0].error.traceback or "x\x00")


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_a_progress_message_holding_nul_is_shown_and_the_task_completes(request, tmp_path, kind):
    db = request.getfixturevalue("postgres_url") if kind == "postgres" else str(tmp_path / "p.db")
    with pepper.Runtime(db=db, home=str(tmp_path / "home"), **FAST) as runtime:

        @pepper.agent("reader", task_types=["t"], runtime=runtime)
        def read(task):
            task.report_progress(0.5, "read block\x00 7")
            return "done"

        orchestrator = TaskOrchestrator(runtime)
        orchestrator.submit_task("blocks", "t")
        status = orchestrator.wait("blocks", timeout=60)
        assert (status.state, status.result, status.attempts) == (TaskState.COMPLETED, "done", 1)
        assert status.progress_message == "read block\ufffd 7"


def test_an_error_is_made_storable_whoever_builds_it():
    error = TaskError("Bad\x00Name", "a\x00b \udcff", "Traceback\x00 ...")
    assert (error.type, error.message, error.traceback) == ("Bad\ufffdName", "a\ufffdb \\udcff", "Traceback\ufffd ...")
    assert TaskError.from_dict(error.to_dict()) == error
    plain = TaskError("ValueError", "nothing to change")
    assert plain.message == "nothing to change" and plain.traceback is None
