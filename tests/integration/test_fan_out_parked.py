"""A fan-out step whose recovery parks an item: the item is what a person deals with (replay, skip, drop), and
the step follows it - it waits while the item is parked, then settles as its items do, and the run goes on to
its dependent and its end. The step's own task is never run by an agent: replaying it, or recovering it by hand
with anything but skip or abort, is refused (``FanOutStepError``) and changes nothing; so is recovering an item
that failed (its step failed with it). On SQLite and PostgreSQL; from the process that drives the run and from
one with no engine. Executions are counted in the agent."""

from __future__ import annotations

import threading
from collections import Counter
from pathlib import Path

import pytest

import pepper
from pepper.core import ErrorHandler, TaskOrchestrator, WorkflowController
from pepper.errors import ConflictError, FanOutStepError
from pepper.model.task import TaskState
from tests.conftest import FAST
from tests.support import eventually


@pytest.fixture(params=["sqlite", "postgres"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return request.getfixturevalue("postgres_url") if request.param == "postgres" else str(tmp_path / "pepper.db")


class Fan:
    """``f`` fans out over [1, 2, 3] (``recovery`` on its items), ``g`` depends on it; an item whose value is
    in ``broken`` raises. With ``hold``, an independent step ``h`` keeps the run going until ``released``."""

    def __init__(self, runtime: pepper.Runtime, recovery: str | None = "dead_letter", hold: bool = False) -> None:
        self.broken = {2}
        self.runs: Counter[str] = Counter()
        self.released = threading.Event()

        @pepper.agent("worker", task_types=["work"], capacity=4, runtime=runtime)
        def work(task):
            self.runs[task.task_id.rpartition("/")[2]] += 1
            if task.inputs["v"] in self.broken:
                raise RuntimeError(f"item {task.inputs['v']} is broken")
            return task.inputs["v"]

        @pepper.agent("holder", task_types=["hold"], runtime=runtime)
        def hold_on(task):
            assert self.released.wait(60), "the test never released the held step"
            return "held"

        self.workflow = WorkflowController("fan", runtime)
        self.workflow.add_step("f", "work", for_each=[1, 2, 3], inputs={"v": "${{ item }}"}, recovery=recovery)
        self.workflow.add_step("g", "work", dependencies=["f"], inputs={"v": 9})
        if hold:
            self.workflow.add_step("h", "hold")

    def start_until_parked(self, runtime: pepper.Runtime) -> str:
        """Start a run and return its id once item 1 is parked and items 0 and 2 completed."""
        run_id = self.workflow.start()
        o = TaskOrchestrator(runtime)
        eventually(lambda: self.runs["f[0]"] == self.runs["f[2]"] == 1, "items 0 and 2 ran")
        eventually(lambda: o.get_task_status(f"{run_id}/f[1]").state is TaskState.PARKED, "item 1 parked")
        o.wait([f"{run_id}/f[0]", f"{run_id}/f[2]"], timeout=60)
        return run_id


def waiting(runtime: pepper.Runtime, fan: Fan, run_id: str) -> None:
    """Item 1 is the one parked task; the step waits for it (it has no task yet), and so do ``g`` and the run."""
    assert [d.task_id for d in ErrorHandler(runtime).dead_letters()] == [f"{run_id}/f[1]"]
    status = fan.workflow.status(run_id)
    assert status.status == "running" and status["f"].state is None
    assert TaskOrchestrator(runtime).get_task_status(f"{run_id}/g").state is TaskState.BLOCKED
    assert fan.runs == Counter({"f[0]": 1, "f[1]": 1, "f[2]": 1})


@pytest.mark.parametrize("where", ["driver", "no-engine"])
@pytest.mark.parametrize("how", ["replay", "skip", "drop"])
def test_a_parked_item_settles_its_step_as_a_person_settles_it_and_the_run_ends(db, tmp_path, how, where):
    home = str(tmp_path / "home")
    with pepper.Runtime(db=db, home=home, **FAST) as runtime:
        fan = Fan(runtime)
        run_id = fan.start_until_parked(runtime)
        waiting(runtime, fan, run_id)
        fan.broken.clear()
        item = f"{run_id}/f[1]"
        with pepper.Runtime(db=db, home=home, **FAST) as other:  # no agents: a CLI's process, on the store
            handler = ErrorHandler(runtime if where == "driver" else other)
            if how == "replay":
                assert handler.replay(item) == [item]
            elif how == "skip":
                assert handler.handle_error_now(item, "not needed", recovery_strategy="skip").action == "skip"
            else:
                assert handler.drop(item) is True
        result = fan.workflow.wait(run_id, timeout=60)
        assert ErrorHandler(runtime).dead_letters() == []
        if how == "drop":
            assert result.status == "failed"
            assert result["f"].status == "failed" and "item 1 of 3 failed" in result["f"].error.message
            assert result["g"].status == "cancelled"
            assert fan.runs == Counter({"f[0]": 1, "f[1]": 1, "f[2]": 1})
        else:
            assert result.status == "completed", result.reason
            assert result["f"].result == ([1, 2, 3] if how == "replay" else [1, None, 3])
            assert result["g"].result == 9
            replayed = 2 if how == "replay" else 1
            assert fan.runs == Counter({"f[0]": 1, "f[1]": replayed, "f[2]": 1, "g": 1})
        assert "f" not in fan.runs  # the step's own task never ran on an agent


@pytest.mark.parametrize("where", ["driver", "no-engine"])
def test_recovering_the_step_of_a_parked_item_by_hand_is_refused_and_points_at_the_item(db, tmp_path, where):
    home = str(tmp_path / "home")
    with pepper.Runtime(db=db, home=home, **FAST) as runtime:
        fan = Fan(runtime)
        run_id = fan.start_until_parked(runtime)
        step, item = f"{run_id}/f", f"{run_id}/f[1]"
        with pepper.Runtime(db=db, home=home, **FAST) as other:
            handler = ErrorHandler(runtime if where == "driver" else other)
            for attempt in ("replay", "retry", "skip", "dead_letter"):
                with pytest.raises(FanOutStepError) as refused:
                    if attempt == "replay":
                        handler.replay(step)
                    else:
                        handler.handle_error_now(step, "by hand", recovery_strategy=attempt)
                error = refused.value
                assert isinstance(error, ConflictError)
                assert (error.task_id, error.run_id, error.step_id, error.parked) == (step, run_id, "f", (item,))
                assert "no agent runs the step's own task" in str(error)
                assert f"`pepper dlq replay {item}`" in str(error) and "Nothing was changed" in str(error)
            waiting(runtime, fan, run_id)  # nothing changed
        fan.broken.clear()
        assert ErrorHandler(runtime).replay(all=True) == [item]  # what the dead-letter queue holds is the item
        result = fan.workflow.wait(run_id, timeout=60)
        assert result.status == "completed" and result["f"].result == [1, 2, 3]
        assert fan.runs == Counter({"f[0]": 1, "f[1]": 2, "f[2]": 1, "g": 1})


def test_a_failed_fan_out_step_takes_skip_by_hand_but_is_never_run_again_nor_takes_back_its_item(db, tmp_path):
    with pepper.Runtime(db=db, home=str(tmp_path / "home"), **FAST) as runtime:
        fan = Fan(runtime, recovery=None, hold=True)
        run_id = fan.workflow.start()
        o = TaskOrchestrator(runtime)
        step = f"{run_id}/f"
        eventually(lambda: o.get_task_status(f"{run_id}/g").state is TaskState.CANCELLED, "g cancelled")
        assert o.get_task_status(step).state is TaskState.FAILED
        handler = ErrorHandler(runtime)
        for attempt in ("replay", "retry", "retry -> skip"):
            with pytest.raises(FanOutStepError, match="Skip or abort apply to the step itself") as refused:
                if attempt == "replay":
                    handler.replay(step)
                else:
                    handler.handle_error_now(step, "by hand", recovery_strategy=attempt)
            assert refused.value.parked == ()
        item = f"{run_id}/f[1]"
        for attempt in ("replay", "retry", "skip"):  # the step failed with its item: it does not take it back
            with pytest.raises(FanOutStepError, match="a step does not take back an item that failed"):
                if attempt == "replay":
                    handler.replay(item)
                else:
                    handler.handle_error_now(item, "by hand", recovery_strategy=attempt)
        assert o.get_task_status(step).state is o.get_task_status(item).state is TaskState.FAILED  # nothing changed
        fan.broken.clear()
        assert handler.handle_error_now(step, "not needed", recovery_strategy="skip").action == "skip"
        fan.released.set()
        result = fan.workflow.wait(run_id, timeout=60)
        assert result.status == "completed", result.reason
        assert result["f"].skipped and result["g"].result == 9 and result["h"].result == "held"
        assert fan.runs["g"] == 1 and "f" not in fan.runs
