"""A step of a workflow run that has ended is not recovered by hand: the run would stay recorded as ended while
its dependents ran. ``handle_error`` and ``replay`` refuse it with ``RunEndedError`` pointing at ``pepper rerun``,
which runs the steps again in the same run and drives it to its new end. A failed step of a run still going is
recovered by hand, and the run ends as the recovered step did. On SQLite and PostgreSQL; with an engine in the
process and without one. Executions are counted in the agent."""

from __future__ import annotations

import threading
from collections import Counter
from pathlib import Path

import pytest

import pepper
from pepper.core import ErrorHandler, TaskOrchestrator, WorkflowController
from pepper.errors import ConflictError, RunEndedError
from pepper.model.task import TaskState
from tests.conftest import FAST
from tests.support import eventually


@pytest.fixture(params=["sqlite", "postgres"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return request.getfixturevalue("postgres_url") if request.param == "postgres" else str(tmp_path / "pepper.db")


class Release:
    """fetch -> build -> publish; build fails while ``broken``."""

    def __init__(self, runtime: pepper.Runtime) -> None:
        self.broken = True
        self.runs: Counter[str] = Counter()

        @pepper.agent("worker", task_types=["work"], runtime=runtime)
        def work(task):
            self.runs[task.step_id] += 1
            if task.step_id == "build" and self.broken:
                raise RuntimeError("the compiler is missing")
            return task.step_id

        self.workflow = WorkflowController("release", runtime)
        self.workflow.add_step("fetch", "work")
        self.workflow.add_step("build", "work", dependencies=["fetch"])
        self.workflow.add_step("publish", "work", dependencies=["build"])


def unchanged(runtime: pepper.Runtime, run_id: str) -> None:
    """The run and its steps are as the failure left them."""
    o = TaskOrchestrator(runtime)
    assert o.get_task_status(f"{run_id}/build").state is TaskState.FAILED
    assert o.get_task_status(f"{run_id}/publish").state is TaskState.CANCELLED
    assert runtime.store.runs.get(run_id).state.value == "failed"


@pytest.mark.parametrize("recover", ["skip", "retry", "replay"])
def test_recovering_a_step_of_an_ended_run_by_hand_is_refused_and_a_rerun_runs_it(db, tmp_path: Path, recover):
    with pepper.Runtime(db=db, home=str(tmp_path / "home"), **FAST) as runtime:
        release = Release(runtime)
        first = release.workflow.run(timeout=60)
        assert first.status == "failed" and release.runs == Counter({"fetch": 1, "build": 1})
        build = f"{first.run_id}/build"
        handler = ErrorHandler(runtime)
        with pytest.raises(RunEndedError) as refused:
            if recover == "replay":
                handler.replay(build)
            else:
                handler.handle_error_now(build, "fixed by hand", recovery_strategy=recover)
        assert isinstance(refused.value, ConflictError) and refused.value.run_id == first.run_id
        message = str(refused.value)
        assert f"workflow run {first.run_id!r}, which has ended (failed)" in message
        assert f"`pepper rerun {first.run_id}`" in message and f"`pepper rerun {first.run_id} --from build`" in message
        unchanged(runtime, first.run_id)
        assert release.runs == Counter({"fetch": 1, "build": 1})
        # What the error points to: the run runs its failed steps again, and ends anew.
        release.broken = False
        again = release.workflow.rerun(first.run_id, timeout=60)
        assert (again.run_id, again.status) == (first.run_id, "completed")
        assert release.runs == Counter({"fetch": 1, "build": 2, "publish": 1})


def test_a_process_without_an_engine_refuses_it_too(db, tmp_path: Path):
    home = str(tmp_path / "home")
    with pepper.Runtime(db=db, home=home, **FAST) as runtime:
        first = Release(runtime).workflow.run(timeout=60)
    with pepper.Runtime(db=db, home=home, **FAST) as offline:  # no agents: works on the store directly
        handler = ErrorHandler(offline)
        with pytest.raises(RunEndedError, match="which has ended"):
            handler.handle_error_now(f"{first.run_id}/build", "down", recovery_strategy="skip")
        with pytest.raises(RunEndedError, match="which has ended"):
            handler.replay(f"{first.run_id}/build")
        unchanged(offline, first.run_id)


def test_a_task_of_no_run_is_recovered_by_hand_as_before(tmp_path: Path):
    with pepper.Runtime(db=str(tmp_path / "pepper.db"), home=str(tmp_path / "home"), **FAST) as runtime:
        o = TaskOrchestrator(runtime)
        o.submit_task("plain", "nothing-runs-it")  # a task of no run
        outcome = ErrorHandler(runtime).handle_error_now("plain", "stuck", recovery_strategy="skip")
        assert outcome.action == "skip" and o.get_task_status("plain").state is TaskState.COMPLETED


@pytest.mark.parametrize("recover", ["skip", "retry", "replay"])
def test_a_failed_step_of_a_run_still_going_recovered_by_hand_ends_the_run_as_it_ended(db, tmp_path: Path, recover):
    with pepper.Runtime(db=db, home=str(tmp_path / "home"), **FAST) as runtime:
        release = Release(runtime)
        held = threading.Event()

        @pepper.agent("holder", task_types=["hold"], runtime=runtime)
        def hold_on(task):
            assert held.wait(60), "the test never released the held step"
            return "held"

        release.workflow.add_step("docs", "hold")  # keeps the run going while build is recovered
        run_id = release.workflow.start()
        o = TaskOrchestrator(runtime)
        eventually(lambda: o.get_task_status(f"{run_id}/publish").state is TaskState.CANCELLED, "publish cancelled")
        release.broken = False
        handler = ErrorHandler(runtime)
        if recover == "replay":
            assert handler.replay(f"{run_id}/build") == [f"{run_id}/build"]
        else:
            handler.handle_error_now(f"{run_id}/build", "fixed by hand", recovery_strategy=recover)
        eventually(lambda: o.get_task_status(f"{run_id}/publish").state is TaskState.COMPLETED, "publish ran")
        held.set()
        result = release.workflow.wait(run_id, timeout=60)
        assert result.status == "completed", result.reason
        assert result["build"].status == ("skipped" if recover == "skip" else "completed")
        runs = 1 if recover == "skip" else 2
        assert release.runs == Counter({"fetch": 1, "build": runs, "publish": 1})
