"""A Ray agent's actor, run in this process as a plain object (no Ray needed): it runs the attempts it is
sent on its own threads and hands back how they ended, in batches, with the latest progress."""

from __future__ import annotations

import pickle
import threading
from pathlib import Path
from typing import Any

from pepper.engine.executors.ray_actor import AgentActor, Ended, Progress
from pepper.model.task import Task

WAIT = 30.0  # a safety net: collect returns as soon as something ended


def double(task: Any) -> dict[str, Any]:
    if task.inputs["n"] < 0:
        raise ValueError(f"n must not be negative, got {task.inputs['n']}")
    return {"n": task.inputs["n"] * 2, "deps": dict(task.dependency_results)}


async def double_async(task: Any) -> dict[str, Any]:
    return double(task)


def attempt(task_id: str, n: int, number: int = 1, deps: dict[str, Any] | None = None) -> tuple[Any, ...]:
    return (Task(task_id, "double", inputs={"n": n}), number, "a1", deps or {})


def collect_all(actor: AgentActor, count: int) -> tuple[dict[tuple[str, int], tuple[bool, Any]], list[Progress]]:
    """Collect until ``count`` attempts ended."""
    ended: dict[tuple[str, int], tuple[bool, Any]] = {}
    progress: list[Progress] = []
    for _ in range(count):
        batch, reports = actor.collect(WAIT)
        ended.update({key: (returned, value) for key, returned, value in batch})
        progress += reports
        if len(ended) >= count:
            break
    assert len(ended) == count, ended
    return ended, progress


def test_attempts_sent_together_each_come_back_with_their_own_result_as_json(tmp_path: Path):
    actor = AgentActor(("function", double), str(tmp_path), capacity=4)
    actor.start([attempt(f"t{n}", n, deps={"up": n}) for n in range(10)])
    ended, _ = collect_all(actor, 10)
    assert ended == {(f"t{n}", 1): (True, f'{{"n":{n * 2},"deps":{{"up":{n}}}}}') for n in range(10)}


def test_an_async_agent_runs_in_the_actor_too(tmp_path: Path):
    actor = AgentActor(("function", double_async), str(tmp_path), capacity=2)
    actor.start([attempt("a", 2), attempt("b", 3)])
    ended, _ = collect_all(actor, 2)
    assert ended == {("a", 1): (True, '{"n":4,"deps":{}}'), ("b", 1): (True, '{"n":6,"deps":{}}')}


def test_a_failure_fails_only_its_own_attempt_and_comes_back_as_what_was_raised(tmp_path: Path):
    actor = AgentActor(("function", double), str(tmp_path), capacity=2)
    actor.start([attempt("good", 1), attempt("bad", -1)])
    ended, _ = collect_all(actor, 2)
    assert ended[("good", 1)] == (True, '{"n":2,"deps":{}}')
    returned, error = ended[("bad", 1)]
    assert not returned and type(error) is ValueError
    assert str(error) == "n must not be negative, got -1"
    assert any("raised in the Ray actor at" in note and "double" in note for note in error.__notes__)
    assert str(pickle.loads(pickle.dumps(error))) == str(error)  # it travels back to the engine


def test_an_exception_that_cannot_travel_comes_back_as_a_runtime_error_that_names_it(tmp_path: Path):
    class LocalError(Exception):  # defined in a function: pickle cannot find its class
        pass

    def fails(task: Any) -> None:
        raise LocalError("the disk is full")

    actor = AgentActor(("function", fails), str(tmp_path), capacity=1)
    actor.start([attempt("job", 1)])
    ended, _ = collect_all(actor, 1)
    returned, error = ended[("job", 1)]
    assert not returned and type(error) is RuntimeError
    assert str(error) == "LocalError: the disk is full"
    pickle.loads(pickle.dumps(error))


def test_a_result_that_is_not_json_fails_its_attempt(tmp_path: Path):
    actor = AgentActor(("function", lambda task: object()), str(tmp_path), capacity=1)
    actor.start([attempt("job", 1)])
    ended, _ = collect_all(actor, 1)
    returned, error = ended[("job", 1)]
    assert not returned and "JSON" in str(error)


def test_collect_hands_back_nothing_when_nothing_ended_within_its_wait(tmp_path: Path):
    actor = AgentActor(("function", double), str(tmp_path), capacity=1)
    assert actor.collect(0.0) == ([], [])


def test_cancel_sets_the_flag_a_running_attempt_sees(tmp_path: Path):
    started = threading.Event()

    def waits(task: Any) -> str:
        started.set()
        while not task.cancelled:
            threading.Event().wait(0.01)
        return "stopped"

    actor = AgentActor(("function", waits), str(tmp_path), capacity=1)
    actor.start([attempt("job", 1)])
    assert started.wait(WAIT)
    assert actor.collect(0.0) == ([], [])  # still running
    actor.cancel("job", 1)
    ended, _ = collect_all(actor, 1)
    assert ended == {("job", 1): (True, '"stopped"')}


def test_progress_comes_back_as_the_latest_report_of_a_running_attempt(tmp_path: Path):
    reported, go = threading.Event(), threading.Event()

    def reports(task: Any) -> str:
        task.report_progress(0.25, "a quarter")
        task.report_progress(0.5, "half way")
        reported.set()
        go.wait(WAIT)
        return "done"

    actor = AgentActor(("function", reports), str(tmp_path), capacity=1)
    actor.start([attempt("job", 1)])
    assert reported.wait(WAIT)
    ended: list[Ended] = []
    progress: list[Progress] = []
    while not progress:
        ended, progress = actor.collect(WAIT)
    assert (ended, progress) == ([], [(("job", 1), (0.5, "half way"))])
    go.set()
    assert actor.collect(WAIT) == ([(("job", 1), True, '"done"')], [])  # handed back once: nothing new since


def test_an_attempt_whose_cancel_came_first_never_starts(tmp_path: Path):
    ran: list[str] = []

    def records(task: Any) -> str:
        ran.append(task.task_id)
        return "ran"

    actor = AgentActor(("function", records), str(tmp_path), capacity=2)
    actor.cancel("first", 1)  # Ray may run a cancel before the start it was sent after
    actor.start([attempt("first", 1), attempt("second", 1)])
    ended, _ = collect_all(actor, 2)
    assert ended[("second", 1)] == (True, '"ran"') and ran == ["second"]
    returned, error = ended[("first", 1)]
    assert not returned and "cancelled before it started" in str(error)


def test_running_says_whether_an_attempt_has_started_and_not_ended(tmp_path: Path):
    started, go = threading.Event(), threading.Event()

    def waits(task: Any) -> str:
        started.set()
        go.wait(WAIT)
        return "done"

    actor = AgentActor(("function", waits), str(tmp_path), capacity=1)
    assert not actor.running("job", 1)  # not started
    actor.start([attempt("job", 1)])
    assert started.wait(WAIT)
    assert actor.running("job", 1) and not actor.running("job", 2)
    actor.cancel("job", 1)  # deaf to it: it still runs
    assert actor.running("job", 1)
    go.set()
    collect_all(actor, 1)
    assert not actor.running("job", 1)  # ended
