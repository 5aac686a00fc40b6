"""The selector reads the engine's agents in place from other threads, without waiting for the engine's thread:
its answers are the ones the engine's thread gives for the same state, and stay right while agents come and go
and tasks run."""

from __future__ import annotations

import asyncio
import random
import sys
import threading
from collections.abc import Callable, Coroutine
from typing import Any

import pytest

import pepper
from pepper.core import AgentSelector, LoadBalancer, TaskOrchestrator
from pepper.core.agents_view import AgentProfile
from pepper.engine.inspection import MOVED
from pepper.engine.read_share import ReadShare
from pepper.engine.service import EngineService
from pepper.errors import NoEligibleAgentError
from pepper.model.status import TaskStatus
from pepper.model.task import TaskState
from pepper.testing import ManualClock

TYPES = ("build", "test", "docs")
SKILLS = ("py", "go", "rust", "gpu")


async def _run(call: Callable[[], Any]) -> Any:
    return call()


def _outcome(call: Callable[[], Any]) -> Any:
    """What ``call`` returns, or the agents it says are not eligible (and why)."""
    try:
        return call()
    except NoEligibleAgentError as exc:
        return ("no eligible agent", str(exc))


def _requests(rng: random.Random) -> list[tuple[str, dict[str, Any]]]:
    requests: list[tuple[str, dict[str, Any]]] = []
    for task_type in TYPES:
        requests.append((task_type, {}))
        requests.append((task_type, {"skills": list(SKILLS[:3])}))  # agents have two skills: nobody is eligible
        for skill in SKILLS:
            requests.append((task_type, {"skills": [skill]}))
            requests.append((task_type, {"skills": [skill], "availability": True}))
            requests.append((task_type, {"skills": [skill], "performance_score": 0.6}))
        for _ in range(4):
            requests.append((task_type, {"skills": rng.sample(SKILLS, 2)}))
    return requests


def test_answers_read_in_place_are_those_of_the_engine_thread(
    virtual: pepper.Runtime, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = random.Random(11)
    executions: dict[str, int] = {}

    def work(name: str) -> Callable[[Any], str]:
        def run(task: Any) -> str:
            executions[name] = executions.get(name, 0) + 1
            if task.task_id.endswith("-bad"):
                raise RuntimeError("this one fails")
            return name

        return run

    names = [f"agent-{i:02d}" for i in range(30)]
    for name in names:
        pepper.agent(name, task_types=rng.sample(TYPES, rng.randint(1, 2)), skills=rng.sample(SKILLS, 2),
                     capacity=rng.randint(1, 3), runtime=virtual)(work(name))  # fmt: skip
    orchestrator = TaskOrchestrator(virtual)
    selector, balancer = AgentSelector(virtual), LoadBalancer(virtual)
    # A record for a third of the agents: results (some failed) and ratings, so scores differ.
    tasks = []
    for name in names[:10]:
        spec = virtual.get_agent(name).spec
        for j in range(3):
            suffix = "-bad" if j == 0 and rng.random() < 0.5 else ""
            tasks.append({"id": f"{name}-{j}{suffix}", "type": sorted(spec.task_types)[0], "agent": name,
                          "max_retries": 0})  # fmt: skip
    ids = [t["id"] for t in tasks]
    orchestrator.submit_tasks(tasks)
    statuses = orchestrator.wait(ids, timeout=60)
    assert all(s.state in (TaskState.COMPLETED, TaskState.FAILED) for s in statuses)
    assert sum(executions.values()) == len(tasks)
    for status in statuses:
        if status.state is TaskState.COMPLETED:
            orchestrator.add_feedback(status.task_id, rating=rng.randint(1, 5))

    portal = virtual.portal()
    hops = [0]
    call = portal.call

    def counted(coro: Coroutine[Any, Any, Any], timeout: float | None = None) -> Any:
        hops[0] += 1
        return call(coro, timeout)

    requests = _requests(rng)
    selector.select_agent("build")  # the engine's thread indexes the agents once
    service = virtual._service
    assert service is not None  # readers here call in a loop: a budget they cannot spend keeps them in place
    monkeypatch.setattr(service, "_read_share", ReadShare(share=1.0, burst=3600.0))
    monkeypatch.setattr(portal, "call", counted)
    in_place = [_outcome(lambda t=t, r=r: selector.select_agent(t, r)) for t, r in requests]  # type: ignore[misc]
    ranked = [_outcome(lambda t=t, r=r: selector.rank_agents(t, r)) for t, r in requests]  # type: ignore[misc]
    loads = [balancer.get_agent_load(name) for name in names]
    assert hops[0] == 0  # every answer above was read in place
    monkeypatch.setattr(portal, "call", call)

    def on_engine(ask: Callable[[], Any]) -> Any:
        return portal.call(_run(lambda: _outcome(ask)))

    on_loop = [on_engine(lambda t=t, r=r: selector.select_agent(t, r)) for t, r in requests]  # type: ignore[misc]
    assert in_place == on_loop
    assert ranked == [on_engine(lambda t=t, r=r: selector.rank_agents(t, r)) for t, r in requests]  # type: ignore[misc]
    assert loads == [on_engine(lambda n=n: balancer.get_agent_load(n)) for n in names]  # type: ignore[misc]
    assert any(isinstance(answer, AgentProfile) for answer in in_place)
    assert any(isinstance(answer, tuple) for answer in in_place)  # the reasons are the same too
    assert any(isinstance(a, AgentProfile) and a.score_details and a.score_details.evidence for a in in_place)


def test_selector_threads_while_agents_come_and_go_and_tasks_run(
    runtime: pepper.Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    total = 3000
    executions: dict[str, int] = {}
    lock = threading.Lock()

    def noop(name: str) -> Callable[[Any], Coroutine[Any, Any, int]]:
        async def run(task: Any) -> int:
            with lock:
                executions[name] = executions.get(name, 0) + 1
            await asyncio.sleep(0)
            return 1

        return run

    stable = {"steady-py": ["py"], "steady-gpu": ["py", "gpu"], "steady-go": ["go"]}
    for name, skills in stable.items():
        pepper.agent(name, task_types=["work"], skills=skills, capacity=4, runtime=runtime)(noop(name))
    specs = {name: (frozenset({"work"}), frozenset(skills)) for name, skills in stable.items()}
    removed: set[str] = set()  # unregistered for good: no answer asked after that may name them
    in_place = [0]
    read_still = EngineService.read_agents_still

    def counting(self: EngineService, question: Callable[[Any], Any]) -> Any:
        answer = read_still(self, question)
        if answer is not MOVED:
            with lock:
                in_place[0] += 1
        return answer

    monkeypatch.setattr(EngineService, "read_agents_still", counting)
    selector = AgentSelector(runtime)
    runtime.start()
    stop = threading.Event()
    errors: list[BaseException] = []
    answers = [0, 0]  # agents chosen, no agent eligible

    def select(seed: int) -> None:
        rng = random.Random(seed)
        requests = [("work", {"skills": ["py"]}), ("work", {"skills": ["rust"]}),
                    ("work", {"skills": ["py", "gpu"]}), ("work", {"skills": ["go"], "availability": True}),
                    ("work", {"skills": ["rust"], "performance_score": 0.5})]  # fmt: skip
        try:
            while not stop.is_set():
                task_type, req = rng.choice(requests)
                with lock:
                    gone = set(removed)
                try:
                    profile = selector.select_agent(task_type, req)
                except NoEligibleAgentError:
                    answers[1] += 1
                    continue
                answers[0] += 1
                types, skills = specs[profile.agent_id]  # one that was registered
                assert profile.agent_id not in gone, f"{profile.agent_id} was unregistered before the call"
                assert task_type in types and set(req["skills"]) <= skills and profile.skills == skills
                if req.get("availability"):
                    assert profile.running < profile.capacity
        except BaseException as exc:
            errors.append(exc)

    def churn() -> None:
        try:
            for i in range(40):
                if stop.is_set():
                    return
                name = f"temp-{i}"
                skills = ["py", "rust"] if i % 2 else ["rust", "gpu"]
                with lock:
                    specs[name] = (frozenset({"work"}), frozenset(skills))
                pepper.agent(name, task_types=["work"], skills=skills, capacity=2, runtime=runtime)(noop(name))
                if i % 3:  # most leave again; the others stay to the end
                    runtime.unregister_agent(name)
                    with lock:
                        removed.add(name)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=select, args=(seed,), daemon=True) for seed in range(3)]
    switching = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)  # threads take turns far more often: reads overlap the engine's changes more
    try:
        statuses = _run_all(runtime, threads, churn, stop, total)
    finally:
        sys.setswitchinterval(switching)
    assert errors == []
    assert [(s.task_id, s.state, s.error) for s in statuses if s.state is not TaskState.COMPLETED] == []
    assert sum(executions.values()) == total  # each task ran exactly once
    assert answers[0] > 0 and in_place[0] > 0


def _run_all(
    runtime: pepper.Runtime, threads: list[threading.Thread], churn: Callable[[], None], stop: threading.Event,
    total: int,
) -> list[TaskStatus]:  # fmt: skip
    """Starts the selector threads, runs ``total`` tasks while ``churn`` registers and unregisters agents,
    then stops the selectors; none may hang."""
    for thread in threads:
        thread.start()
    orchestrator = TaskOrchestrator(runtime)
    ids = [f"work-{i}" for i in range(total)]
    # A task claimed by an agent that is unregistered before the task starts is tried again.
    orchestrator.submit_tasks([{"id": task_id, "type": "work", "max_retries": 5} for task_id in ids])
    churner = threading.Thread(target=churn, daemon=True)
    churner.start()
    churner.join(120)
    assert not churner.is_alive(), "registering and unregistering agents hung"
    statuses = orchestrator.wait(ids, timeout=300)
    stop.set()
    for thread in threads:
        thread.join(120)
    assert [t for t in threads if t.is_alive()] == [], "a selector thread hung"
    return statuses
