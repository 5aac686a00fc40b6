"""A command's pipes and its end, watched from the engine's loop: a task larger than a pipe reaches a command
that reads it and does not hold up one that does not; with or without a pidfd to learn of its end, a command's
result, log and exit status come out the same."""

from __future__ import annotations

import os

import pytest

import pepper
from pepper.core import TaskOrchestrator
from pepper.engine.executors import child
from pepper.model.task import TaskState

BIG = "x" * (1024 * 1024)  # far more than a pipe holds


def test_a_task_larger_than_a_pipe_reaches_the_command_whole(
    runtime: pepper.Runtime, orchestrator: TaskOrchestrator
) -> None:
    runtime.register_agent(pepper.agents.CommandAgent("count", "wc -c", task_types=["t"]))
    orchestrator.submit_task("t", "t", inputs={"text": BIG})
    assert orchestrator.get_result("t", timeout=60) > len(BIG)  # every byte of the JSON document was read


def test_a_command_that_reads_no_stdin_is_not_held_up_by_a_large_task(
    runtime: pepper.Runtime, orchestrator: TaskOrchestrator
) -> None:
    runtime.register_agent(pepper.agents.CommandAgent("quick", "echo done", task_types=["t"]))
    orchestrator.submit_tasks([{"id": f"t{i}", "type": "t", "inputs": {"text": BIG}} for i in range(3)])
    statuses = orchestrator.wait([f"t{i}" for i in range(3)], timeout=60)
    assert [(s.state, s.result) for s in statuses] == [(TaskState.COMPLETED, "done")] * 3


@pytest.mark.parametrize("pidfd", [True, False], ids=["pidfd", "a-thread-waits"])
def test_results_logs_and_exit_statuses_with_or_without_a_pidfd(
    runtime: pepper.Runtime, orchestrator: TaskOrchestrator, monkeypatch: pytest.MonkeyPatch, pidfd: bool
) -> None:
    if pidfd and not child._HAS_PIDFD:
        pytest.skip("this system has no pidfd")
    monkeypatch.setattr(child, "_HAS_PIDFD", pidfd)
    reaped: list[int] = []  # children reaped when their pidfd said they ended
    reap = child.Child._reap

    def counted(self: child.Child) -> None:
        reaped.append(self.pid)
        reap(self)

    monkeypatch.setattr(child.Child, "_reap", counted)
    command = (
        'read doc; echo "noted $PEPPER_TASK_ID" >&2; if [ "$PEPPER_TASK_ID" = bad ]; then exit 3; fi; '
        "echo '{\"ok\": 1}'"
    )
    runtime.register_agent(pepper.agents.CommandAgent("cmd", command, task_types=["t"], capacity=4))
    ids = ["good-1", "good-2", "bad"]
    orchestrator.submit_tasks([{"id": task_id, "type": "t"} for task_id in ids])
    statuses = {s.task_id: s for s in orchestrator.wait(ids, timeout=60)}
    assert statuses["good-1"].result == statuses["good-2"].result == {"ok": 1}
    bad = statuses["bad"]
    assert bad.state is TaskState.FAILED and bad.error.type == "CommandFailed"
    assert "status 3" in bad.error.message and bad.error.message.rstrip().endswith("noted bad")
    logs = runtime.read(lambda backend: backend.task_log("good-1", None, 0))
    assert "noted good-1" in logs.text
    assert bool(reaped) is pidfd  # without a pidfd a thread waited for each child instead
    assert not any(p for p in os.listdir("/proc") if p.isdigit() and _zombie_child(int(p)))


def _zombie_child(pid: int) -> bool:
    """True for a child of this process that ended and was never reaped."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return False
    return fields[0] == "Z" and int(fields[1]) == os.getpid()
