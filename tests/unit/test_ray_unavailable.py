"""What can be told of an agent on Ray before Ray runs it (no Ray needed): its executor cannot be made here, a
``ray://`` address without the client package, a payload Ray cannot serialise, a budget no node has."""

from __future__ import annotations

import asyncio
import pickle
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from pepper.agents import BaseAgent, FunctionAgent
from pepper.engine.attempts import Attempts
from pepper.engine.clock import SystemClock
from pepper.engine.executors.ray_options import (
    actor_payload,
    check_ray_installed,
    client_missing,
    not_serialisable,
    placement_problem,
)
from pepper.errors import ExecutorUnavailableError
from pepper.model.events import AttemptEnded, Event
from pepper.model.run import TaskRun
from pepper.model.task import Task


def answer(task: Any) -> str:
    return f"{task.task_id} here"


def test_an_attempt_whose_executor_cannot_be_made_fails_and_the_others_of_its_turn_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setitem(sys.modules, "pepper.engine.executors.ray", None)  # as if Ray could not be imported
    ended: dict[str, AttemptEnded] = {}
    all_ended = asyncio.Event()

    def report(event: Event) -> None:
        if isinstance(event, AttemptEnded):
            ended[event.task_id] = event
            if len(ended) == 4:
                all_ended.set()

    attempts = Attempts(SystemClock(), report, tmp_path)
    on_ray = FunctionAgent(answer, "onray", task_types=["r"], executor="ray")
    here = FunctionAgent(answer, "here", task_types=["l"])

    async def one_turn() -> None:
        attempts.start(here, TaskRun(Task("l1", "l"), 1, "here"))
        attempts.start(on_ray, TaskRun(Task("r1", "r"), 1, "onray"))  # in the middle of the turn
        attempts.start(here, TaskRun(Task("l2", "l"), 1, "here"))
        attempts.start(on_ray, TaskRun(Task("r2", "r"), 1, "onray"))  # tried again: fails again, alone
        await asyncio.wait_for(all_ended.wait(), 30)

    try:
        asyncio.run(one_turn())
    finally:
        attempts.close()

    assert {task_id: (e.ok, e.result) for task_id, e in ended.items() if task_id.startswith("l")} == {
        "l1": (True, "l1 here"),
        "l2": (True, "l2 here"),
    }
    for task_id in ("r1", "r2"):
        error = ended[task_id].error
        assert not ended[task_id].ok and error is not None
        assert error.type == "ExecutorUnavailableError" and error.kind == "error"
        assert "agent 'onray' runs on Ray (executor='ray'), but Ray cannot be imported here" in error.message
    assert attempts.running == {}  # nothing left behind as running


def test_registering_an_agent_on_ray_is_refused_when_ray_is_not_installed(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setitem(sys.modules, "ray", None)
    spec = FunctionAgent(answer, "onray", task_types=["r"], executor="ray").spec
    with pytest.raises(ExecutorUnavailableError, match=r"agent 'onray' runs on Ray .*pip install \"pepper\[ray\]\""):
        check_ray_installed(spec, "local")
    everyone_on_ray = FunctionAgent(answer, "any", task_types=["r"]).spec
    with pytest.raises(ExecutorUnavailableError):
        check_ray_installed(everyone_on_ray, "ray")  # the runtime sends agents that name no executor there
    check_ray_installed(everyone_on_ray, "local")  # an agent run here needs no Ray
    check_ray_installed(FunctionAgent(answer, "mine", task_types=["r"], executor="local").spec, "ray")


def test_a_ray_client_address_needs_the_client_package(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setitem(sys.modules, "grpc", None)  # as if ray[client] were not installed
    why = client_missing("ray://head:10001")
    assert why is not None and 'pip install "pepper[ray-client]"' in why and "ray://head:10001" in why
    assert client_missing("auto") is None and client_missing("10.0.0.1:6379") is None and client_missing(None) is None


class Holder(BaseAgent):
    def __init__(self, agent_id: str, **options: Any) -> None:
        super().__init__(agent_id, **options)
        self.client = threading.RLock()  # e.g. a connection made as the agent is built

    async def execute(self, task: TaskRun) -> str:
        return "held"


def test_a_payload_that_cannot_be_serialised_is_named_shortly():
    payload = actor_payload(Holder("holder", task_types=["h"], executor="ray"))
    why = not_serialisable(payload, pickle.dumps)
    assert why is not None and why.startswith("its attribute 'client' (RLock) cannot be serialised")
    assert "make such objects in initialize(), which runs in the actor" in why and len(why) < 300
    fine = actor_payload(FunctionAgent(answer, "fine", task_types=["r"], executor="ray"))
    assert not_serialisable(fine, pickle.dumps) is None
    local = actor_payload(FunctionAgent(lambda task: 1, "lam", task_types=["r"], executor="ray"))
    assert (not_serialisable(local, pickle.dumps) or "").startswith("its function cannot be serialised")


def test_a_budget_no_node_has_is_named_with_the_most_one_node_has():
    nodes = [{"CPU": 2.0, "memory": 4 * 2**30}, {"CPU": 8.0, "memory": 2**30, "licences": 1.0}]
    assert placement_problem({"num_cpus": 2.0, "memory": 2**30}, nodes) is None
    assert placement_problem({"num_cpus": 0.0}, []) is None  # asks for nothing: any node will do
    why = placement_problem({"num_cpus": 1.0, "num_gpus": 1.0}, nodes)
    assert why == "CPU 1, GPU 1, which no node of the Ray cluster has (the most one node has: CPU 8, GPU 0)"
    why = placement_problem({"num_cpus": 8.0, "memory": 2 * 2**30}, nodes)  # each fits a node, not both one
    assert why is not None and why.startswith("CPU 8, memory 2048 MB, which no node")
