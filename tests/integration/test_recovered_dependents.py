"""A failed task recovered by hand (skip, retry, replay) takes back the dependents its failure cancelled.

Only the tasks cancelled because of a failure (directly, or through a task cancelled for it) come back,
once none of their dependencies is failed or cancelled any more, whichever order the failed ones are
recovered in; one cancelled on request, or with another dependency still failed, stays cancelled. On SQLite
and PostgreSQL; with the dependents in this engine's memory, only in the store, or held by another
worker sharing the store; and stored with the decision (nothing is lost if the process stops then).
Executions are counted in the agents.
"""

from __future__ import annotations

import threading
from collections import Counter
from pathlib import Path

import pytest

import pepper
from pepper.core import ErrorHandler, TaskOrchestrator
from pepper.model.task import TaskState
from tests.conftest import FAST
from tests.support import eventually

DONE, CANCELLED = TaskState.COMPLETED, TaskState.CANCELLED


@pytest.fixture(params=["sqlite", "postgres"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return request.getfixturevalue("postgres_url") if request.param == "postgres" else str(tmp_path / "pepper.db")


class Agents:
    """A build agent that fails while ``failing`` is set, and a deploy agent; executions counted per task."""

    def __init__(self) -> None:
        self.runs: Counter[str] = Counter()
        self.failing = True
        self.lock = threading.Lock()

    def register(self, runtime: pepper.Runtime, *, build: bool = True, deploy: bool = True) -> None:
        def build_fn(task):
            self.count(task.task_id)
            if self.failing or task.task_id.startswith("bad"):
                raise ConnectionError("registry down")
            return "built"

        def deploy_fn(task):
            self.count(task.task_id)
            return "deployed"

        if build:
            pepper.agent("builder", task_types=["build"], runtime=runtime)(build_fn)
        if deploy:
            pepper.agent("deployer", task_types=["deploy"], runtime=runtime)(deploy_fn)

    def count(self, task_id: str) -> None:
        with self.lock:
            self.runs[task_id] += 1


def submit_graph(o: TaskOrchestrator) -> None:
    """a -> b -> c; u (on a) cancelled on request, and v after it; x on a and on bad, which fails too."""
    o.submit_task("u", "deploy", dependencies=["a-gate"])  # blocked until cancelled
    o.cancel_task("u", reason="not wanted")
    o.submit_task("bad", "build", max_retries=0)
    assert o.wait("bad", timeout=30).state is TaskState.FAILED
    o.submit_task("a", "build", max_retries=0)
    o.submit_task("b", "deploy", dependencies=["a"])
    o.submit_task("c", "deploy", dependencies=["b"])
    o.submit_task("v", "deploy", dependencies=["a", "u"])
    o.submit_task("x", "deploy", dependencies=["a", "bad"])
    o.wait(["a", "b", "c", "u", "v", "x"], timeout=30)
    assert o.get_task_status("a").state is TaskState.FAILED
    assert o.get_task_status("b").reason == "dependency 'a' failed"
    assert o.get_task_status("c").reason == "dependency 'b' cancelled"


def check_after(o: TaskOrchestrator, agents: Agents, build_runs: int) -> None:
    assert [s.state for s in o.wait(["a", "b", "c"], timeout=30)] == [DONE, DONE, DONE]
    # v and x were cancelled as they came in, for whichever of their dependencies they looked at first
    stays = {"u": {"not wanted"}, "v": {"dependency 'a' failed", "dependency 'u' cancelled"},
             "x": {"dependency 'a' failed", "dependency 'bad' failed"}}  # fmt: skip
    for task_id, reasons in stays.items():
        status = o.get_task_status(task_id)
        assert status.state is CANCELLED and status.reason in reasons, (task_id, status.reason)
    assert o.get_task_status("b").reason is None
    assert agents.runs == Counter({"a": build_runs, "bad": 1, "b": 1, "c": 1})


@pytest.mark.parametrize("strategy", ["skip", "retry"])
def test_recovering_a_failed_task_by_hand_runs_what_its_failure_alone_cancelled(db, tmp_path, strategy):
    agents = Agents()
    with pepper.Runtime(db=db, home=str(tmp_path / "home"), **FAST) as runtime:
        agents.register(runtime)
        o = TaskOrchestrator(runtime)
        submit_graph(o)
        agents.failing = False
        outcome = ErrorHandler(runtime).handle_error_now("a", "registry down", recovery_strategy=strategy)
        assert outcome.action == strategy
        check_after(o, agents, build_runs=1 if strategy == "skip" else 2)
        assert o.get_result("a") == (None if strategy == "skip" else "built")


def test_a_replayed_failed_task_takes_back_its_dependents_too(runtime, orchestrator):
    agents = Agents()
    agents.register(runtime)
    submit_graph(orchestrator)
    agents.failing = False
    assert ErrorHandler(runtime).replay("a") == ["a"]
    check_after(orchestrator, agents, build_runs=2)


def test_the_dependents_come_back_when_only_the_store_holds_them_and_the_change_is_stored_with_the_call(db, tmp_path):
    agents = Agents()
    home = str(tmp_path / "home")
    with pepper.Runtime(db=db, home=home, **FAST) as runtime:
        agents.register(runtime)
        submit_graph(TaskOrchestrator(runtime))
    agents.failing = False
    # A fresh engine knows only the unfinished tasks; it has no agent for b and c, and stops right after.
    with pepper.Runtime(db=db, home=home, **FAST) as runtime:
        agents.register(runtime, deploy=False)
        runtime.start()
        assert ErrorHandler(runtime).handle_error_now("a", "registry down", recovery_strategy="skip").action == "skip"
    with pepper.Runtime(db=db, home=home, **FAST) as runtime:  # what was stored: b waits for an agent, c for b
        o = TaskOrchestrator(runtime)
        assert (o.get_task_status("b").state, o.get_task_status("c").state) == (TaskState.PENDING, TaskState.BLOCKED)
        agents.register(runtime, build=False)
        check_after(o, agents, build_runs=1)


def test_a_process_without_an_engine_takes_them_back_through_the_store(db, tmp_path):
    agents = Agents()
    home = str(tmp_path / "home")
    with pepper.Runtime(db=db, home=home, **FAST) as runtime:
        agents.register(runtime)
        o = TaskOrchestrator(runtime)
        submit_graph(o)
        agents.failing = False
        with pepper.Runtime(db=db, home=home, **FAST) as offline:  # no agents: works on the store directly
            assert ErrorHandler(offline).handle_error_now("a", "down", recovery_strategy="skip").action == "skip"
            assert TaskOrchestrator(offline).get_task_status("b").state is not CANCELLED
        eventually(lambda: o.get_task_status("c").state is DONE, "c to run on the worker", timeout=60)
        check_after(o, agents, build_runs=1)


def test_another_worker_holding_the_dependents_runs_them(db, tmp_path):
    agents = Agents()
    home = str(tmp_path / "home")
    with (
        pepper.Runtime(db=db, home=home, **FAST) as builder,
        pepper.Runtime(db=db, home=str(tmp_path / "home2"), **FAST) as deployer,
    ):
        agents.register(builder, deploy=False)
        agents.register(deployer, build=False)
        deployer.start()
        o = TaskOrchestrator(builder)
        submit_graph(o)
        seen = TaskOrchestrator(deployer)
        eventually(lambda: seen.get_task_status("c").state is CANCELLED, "the other worker to see c cancelled")
        agents.failing = False
        assert ErrorHandler(builder).handle_error_now("a", "down", recovery_strategy="skip").action == "skip"
        check_after(o, agents, build_runs=1)
        assert [s.state for s in seen.wait(["b", "c"], timeout=30)] == [DONE, DONE]


def test_a_dependent_whose_other_dependency_fails_later_stays_cancelled(runtime, orchestrator):
    agents = Agents()
    agents.register(runtime)
    release = threading.Event()

    @pepper.agent("slow", task_types=["slow"], runtime=runtime)
    def slow(task):
        agents.count(task.task_id)
        assert release.wait(30)
        raise ValueError("slow failed too")

    orchestrator.submit_task("late", "slow", max_retries=0)
    orchestrator.submit_task("a", "build", max_retries=0)
    orchestrator.submit_task("y", "deploy", dependencies=["a", "late"])
    assert orchestrator.wait("y", timeout=30).reason == "dependency 'a' failed"  # a failed first
    release.set()
    assert orchestrator.wait("late", timeout=30).state is TaskState.FAILED
    agents.failing = False
    ErrorHandler(runtime).handle_error_now("a", "down", recovery_strategy="skip")
    status = orchestrator.get_task_status("y")
    assert (status.state, status.reason) == (CANCELLED, "dependency 'a' failed")
    assert agents.runs == Counter({"a": 1, "late": 1})


def fail_both(o: TaskOrchestrator) -> None:
    """r1 and r2 fail; x, on both, is cancelled naming r1 (the first it looked at); y waits on x."""
    for name in ("r1", "r2"):
        o.submit_task(name, "build", max_retries=0)
    assert [s.state for s in o.wait(["r1", "r2"], timeout=30)] == [TaskState.FAILED] * 2
    o.submit_task("x", "deploy", dependencies=["r1", "r2"])
    o.submit_task("y", "deploy", dependencies=["x"])
    assert o.wait("x", timeout=30).reason == "dependency 'r1' failed"
    assert o.wait("y", timeout=30).reason == "dependency 'x' cancelled"


@pytest.mark.parametrize("order", [("r1", "r2"), ("r2", "r1")])
def test_a_dependent_of_two_failed_tasks_comes_back_whichever_is_recovered_first(db, tmp_path, order):
    agents = Agents()
    with pepper.Runtime(db=db, home=str(tmp_path / "home"), **FAST) as runtime:
        agents.register(runtime)
        o = TaskOrchestrator(runtime)
        fail_both(o)
        agents.failing = False
        handler = ErrorHandler(runtime)
        assert handler.handle_error_now(order[0], "registry down", recovery_strategy="skip").action == "skip"
        assert [o.get_task_status(t).state for t in "xy"] == [CANCELLED, CANCELLED]  # the other is still failed
        assert handler.handle_error_now(order[1], "registry down", recovery_strategy="skip").action == "skip"
        assert [s.state for s in o.wait(["x", "y"], timeout=30)] == [DONE, DONE]
    assert agents.runs == Counter({"r1": 1, "r2": 1, "x": 1, "y": 1})


def test_a_process_without_an_engine_takes_back_a_dependent_whose_reason_names_the_other_task(db, tmp_path):
    agents = Agents()
    home = str(tmp_path / "home")
    with pepper.Runtime(db=db, home=home, **FAST) as runtime:
        agents.register(runtime)
        o = TaskOrchestrator(runtime)
        fail_both(o)
        agents.failing = False
        with pepper.Runtime(db=db, home=home, **FAST) as offline:  # no agents: works on the store directly
            handler = ErrorHandler(offline)
            assert handler.handle_error_now("r1", "down", recovery_strategy="skip").action == "skip"
            assert TaskOrchestrator(offline).get_task_status("x").state is CANCELLED
            assert handler.handle_error_now("r2", "down", recovery_strategy="skip").action == "skip"
            assert TaskOrchestrator(offline).get_task_status("x").state is not CANCELLED
        eventually(lambda: o.get_task_status("y").state is DONE, "y to run on the worker", timeout=60)
    assert agents.runs == Counter({"r1": 1, "r2": 1, "x": 1, "y": 1})
