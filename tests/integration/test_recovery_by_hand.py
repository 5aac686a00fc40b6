"""A policy applied by hand (``ErrorHandler.handle_error``) is counted across calls: each call is one step of
it, so ``retry(3)`` retries three times, then the rest of its chain decides, or the task fails. The progress is
kept on the task's row: it holds across a restart, with an engine in the process and without one, on SQLite
and PostgreSQL. Executions are counted in the agent."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

import pepper
from pepper.core import ErrorHandler, TaskOrchestrator
from pepper.model.task import TaskState
from tests.conftest import FAST


@pytest.fixture(params=["sqlite", "postgres"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return request.getfixturevalue("postgres_url") if request.param == "postgres" else str(tmp_path / "pepper.db")


class Failing:
    """An agent that always raises, counting its calls."""

    def __init__(self, runtime: pepper.Runtime) -> None:
        self.calls = 0
        self._lock = threading.Lock()

        @pepper.agent("w", task_types=["bad"], runtime=runtime)
        def run(task):
            with self._lock:
                self.calls += 1
            raise RuntimeError("always fails")


def test_retry_3_applied_by_hand_retries_three_times_counting_then_the_task_fails(db, tmp_path: Path):
    with pepper.Runtime(db=db, home=str(tmp_path / "home"), **FAST) as runtime:
        agent = Failing(runtime)
        orchestrator, handler = TaskOrchestrator(runtime), ErrorHandler(runtime)
        orchestrator.submit_task("f", "bad", max_retries=0)
        assert orchestrator.wait("f", timeout=30).state is TaskState.FAILED
        assert agent.calls == 1
        for n in (1, 2, 3):
            outcome = handler.handle_error_now("f", None, "retry(3, delay=0)")
            assert (outcome.action, outcome.message) == ("retry", f"retry {n} of 3 in 0.00s")
            status = orchestrator.wait("f", timeout=30)
            assert (status.state, status.attempts, agent.calls) == (TaskState.FAILED, n + 1, n + 1)
        outcome = handler.handle_error_now("f", None, "retry(3, delay=0)")
        assert outcome.action == "fail" and "exhausted" in outcome.message
        assert outcome.state == "failed"
        assert orchestrator.get_task_status("f").attempts == 4 and agent.calls == 4
        history = handler.get_error_history("f")
        assert [e.detail for e in history if e.strategy] == [f"retry {n} of 3 in 0.00s" for n in (1, 2, 3)]
        assert history[-1].action == "fail"


def test_the_chain_goes_on_after_the_retries_and_the_count_holds_across_a_restart(db, tmp_path: Path):
    home = str(tmp_path / "home")
    with pepper.Runtime(db=db, home=home, **FAST) as runtime:
        agent = Failing(runtime)
        orchestrator, handler = TaskOrchestrator(runtime), ErrorHandler(runtime)
        orchestrator.submit_task("f", "bad", max_retries=0)
        orchestrator.wait("f", timeout=30)
        outcome = handler.handle_error_now("f", None, "retry(2, delay=0) -> dead_letter")
        assert outcome.message == "retry 1 of 2 in 0.00s"
        orchestrator.wait("f", timeout=30)
        assert agent.calls == 2
    with pepper.Runtime(db=db, home=home, **FAST) as runtime:  # no agent: the store answers
        handler = ErrorHandler(runtime)
        outcome = handler.handle_error_now("f", None, "retry(2, delay=0) -> dead_letter")
        assert (outcome.action, outcome.message) == ("retry", "retry 2 of 2 in 0.00s")
    with pepper.Runtime(db=db, home=home, **FAST) as runtime:
        agent = Failing(runtime)
        orchestrator, handler = TaskOrchestrator(runtime), ErrorHandler(runtime)
        assert orchestrator.wait("f", timeout=30).state is TaskState.FAILED
        assert agent.calls == 1
        outcome = handler.handle_error_now("f", None, "retry(2, delay=0) -> dead_letter")
        assert (outcome.action, outcome.state, outcome.parked) == ("dead_letter", "parked", True)
        # another policy starts from its beginning
        outcome = handler.handle_error_now("f", None, "retry(1, delay=0)")
        assert outcome.message == "retry 1 of 1 in 0.00s"
        assert orchestrator.wait("f", timeout=30).state is TaskState.FAILED
        assert agent.calls == 2
        assert handler.handle_error_now("f", None, "retry(1, delay=0)").action == "fail"


def test_a_replay_starts_the_count_again(tmp_path: Path):
    with pepper.Runtime(db=str(tmp_path / "p.db"), home=str(tmp_path / "home"), **FAST) as runtime:
        agent = Failing(runtime)
        orchestrator, handler = TaskOrchestrator(runtime), ErrorHandler(runtime)
        orchestrator.submit_task("f", "bad", max_retries=0)
        orchestrator.wait("f", timeout=30)
        assert handler.handle_error_now("f", None, "retry(1, delay=0)").message == "retry 1 of 1 in 0.00s"
        orchestrator.wait("f", timeout=30)
        assert handler.handle_error_now("f", None, "retry(1, delay=0)").action == "fail"
        assert handler.replay("f")
        assert orchestrator.wait("f", timeout=30).state is TaskState.FAILED
        assert agent.calls == 3
        assert handler.handle_error_now("f", None, "retry(1, delay=0)").message == "retry 1 of 1 in 0.00s"
        orchestrator.wait("f", timeout=30)
        assert agent.calls == 4
