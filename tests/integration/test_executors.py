"""Misbehaving agents: sync functions that ignore their timeout, commands that leave processes behind,
print too much or ignore SIGTERM. Commands are real subprocesses."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

import pepper
from pepper.agents import CommandAgent, FunctionAgent
from pepper.model.task import TaskState
from tests.support import eventually

PY = sys.executable
#: A grandchild that ignores SIGTERM (an ignored signal stays ignored across exec) and writes its pid.
STUBBORN = "(trap '' TERM; exec sleep 1000) & echo $! > {pidfile}"


def alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie waiting for a parent that does not reap it counts as dead)."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


@pytest.fixture
def spawned() -> Iterator[list[int]]:
    """Pids the commands wrote; whatever a failing test leaves alive is killed at its end."""
    pids: list[int] = []
    yield pids
    for pid in pids:
        if alive(pid):
            os.kill(pid, signal.SIGKILL)


def read_pid(pidfile: Path, spawned: list[int]) -> int:
    eventually(lambda: pidfile.exists() and pidfile.read_text().strip(), f"{pidfile} written")
    spawned.append(int(pidfile.read_text()))
    return spawned[-1]


def test_sync_agents_that_ignore_their_timeout_do_not_starve_the_others(runtime, orchestrator):
    release = threading.Event()
    started: list[str] = []

    def stubborn(task):
        started.append(task.task_id)  # counted when it really runs
        release.wait()

    # Each call that outlives its attempt keeps one of its agent's slots: room for all 70 of them.
    runtime.register_agent(FunctionAgent(stubborn, "stubborn", task_types=["hang"], capacity=70))
    runtime.register_agent(FunctionAgent(lambda task: "ok", "quick", task_types=["quick"]))
    try:
        # Given 70 calls (more than the 64 threads of the pool) that outlive their timed-out attempts
        # (a call timed out before its thread picked it up never runs: submit until 70 did run).
        submitted = 0
        end = time.monotonic() + 60
        while len(started) < 70:
            assert time.monotonic() < end, f"only {len(started)} stubborn calls ever ran"
            batch = [f"hang-{submitted + i}" for i in range(70 - len(started))]
            submitted += len(batch)
            for task_id in batch:
                orchestrator.submit_task(task_id, "hang", timeout=0.2, max_retries=0)
            orchestrator.wait(batch, timeout=60)
        assert all(orchestrator.get_task_status(f"hang-{i}").error.kind == "timeout" for i in range(submitted))
        attempts = runtime._service.engine.attempts
        eventually(lambda: attempts.stuck_threads == len(started), "every stubborn call counted as stuck")
        assert sorted(task_id for _, task_id, _, _ in attempts.stuck()) == sorted(started)

        # When a well-behaved sync task comes, then it still gets a thread and completes.
        orchestrator.submit_task("quick", "quick")
        assert orchestrator.get_result("quick", timeout=30) == "ok"
        assert attempts.threads.statistics().threads <= attempts.threads.max_threads
    finally:
        release.set()
    # The abandoned threads end with their functions, and stop being counted.
    eventually(lambda: runtime._service.engine.attempts.stuck_threads == 0, "stuck threads returned")


def test_a_timeout_kills_a_grandchild_that_ignores_sigterm(runtime, orchestrator, tmp_path, spawned):
    pidfile = tmp_path / "pid"
    command = STUBBORN.format(pidfile=pidfile) + "; sleep 1000"
    runtime.register_agent(CommandAgent("cmd", command, task_types=["t"]))
    orchestrator.submit_task("t", "t", timeout=0.5, max_retries=0)
    assert orchestrator.wait("t", timeout=60).error.kind == "timeout"
    grandchild = read_pid(pidfile, spawned)
    eventually(lambda: not alive(grandchild), "the grandchild that ignores SIGTERM is killed")


def test_a_background_child_holding_stdout_does_not_hold_the_task(runtime, orchestrator, tmp_path, spawned):
    pidfile = tmp_path / "pid"
    command = STUBBORN.format(pidfile=pidfile) + "; echo done"
    runtime.register_agent(CommandAgent("cmd", command, task_types=["t"]))
    orchestrator.submit_task("t", "t")  # no timeout: only the shell's exit can end it
    assert orchestrator.get_result("t", timeout=60) == "done"
    background = read_pid(pidfile, spawned)
    eventually(lambda: not alive(background), "what the command left running is stopped")


def test_cancelling_a_command_kills_its_whole_process_group(runtime, orchestrator, tmp_path, spawned):
    pidfile = tmp_path / "pid"
    command = STUBBORN.format(pidfile=pidfile) + "; sleep 1000"
    runtime.register_agent(CommandAgent("cmd", command, task_types=["t"]))
    orchestrator.submit_task("t", "t")
    grandchild = read_pid(pidfile, spawned)
    shell = psutil.Process(grandchild).ppid()
    assert orchestrator.cancel_task("t")
    assert orchestrator.get_task_status("t").state is TaskState.CANCELLED
    eventually(lambda: not alive(grandchild) and not alive(shell), "the command's processes are killed")


def test_a_command_printing_past_the_result_cap_fails_and_is_stopped(runtime, orchestrator):
    rss = psutil.Process().memory_info().rss
    runtime.register_agent(CommandAgent("flood", "yes | head -c 100000000", task_types=["t"]))
    orchestrator.submit_task("t", "t", max_retries=0)
    status = orchestrator.wait("t", timeout=60)
    assert status.state is TaskState.FAILED and status.result is None
    assert status.error.type == "ResultTooLarge"
    assert "10 MB" in status.error.message and "max_result_mb" in status.error.message
    # Output past the cap is never kept (a generous bound: reading all of it would add 100 MB or more).
    assert psutil.Process().memory_info().rss - rss < 60 * 2**20


def test_an_agent_sets_its_own_result_cap(runtime, orchestrator):
    runtime.register_agent(CommandAgent("small", "head -c 2000000 /dev/zero", task_types=["c"], max_result_mb=1))
    big = FunctionAgent(lambda task: "x" * 3_000_000, "big", task_types=["f"], config={"max_result_mb": 2})
    runtime.register_agent(big)
    runtime.register_agent(CommandAgent("roomy", "yes | head -c 12000000", task_types=["r"], max_result_mb=20))
    orchestrator.submit_task("c", "c", max_retries=0)
    orchestrator.submit_task("f", "f", max_retries=0)
    orchestrator.submit_task("r", "r", max_retries=0)
    for task_id, cap in (("c", "1 MB"), ("f", "2 MB")):
        error = orchestrator.wait(task_id, timeout=60).error
        assert (error.type, cap in error.message) == ("ResultTooLarge", True), error.message
    assert len(orchestrator.get_result("r", timeout=60)) == 12_000_000 - 1  # the final newline is dropped


def test_a_bad_result_cap_is_refused():
    with pytest.raises(pepper.errors.AgentDefinitionError, match="max_result_mb"):
        CommandAgent("x", "true", task_types=["t"], max_result_mb=0)
    with pytest.raises(pepper.errors.AgentDefinitionError, match="max_result_mb"):
        FunctionAgent(lambda task: None, "y", task_types=["t"], config={"max_result_mb": "big"})


def test_a_flood_of_stderr_keeps_its_end_for_the_error(runtime, orchestrator):
    code = "import sys; sys.stderr.write('first\\n' + 'x' * 5_000_000 + '\\ndisk full\\n'); sys.exit(3)"
    runtime.register_agent(CommandAgent("noisy", f'{PY} -c "{code}"', task_types=["t"]))
    orchestrator.submit_task("t", "t", max_retries=0)
    error = orchestrator.wait("t", timeout=60).error
    assert error.type == "CommandFailed" and "status 3" in error.message
    assert error.message.rstrip().endswith("disk full") and len(error.message) < 10_000
