"""Resources end to end: leases, scheduling within them, real measurements, alerts, memory caps."""

from __future__ import annotations

import sys
import threading
import time

import pytest

import pepper
from pepper.core import ResourceAllocator, ResourceManager, ResourceMonitor, TaskOrchestrator
from pepper.errors import (
    AgentDefinitionError,
    AgentNotFoundError,
    AllocationNotFoundError,
    ResourceUnavailableError,
    ValidationError,
)
from pepper.model.task import TaskState
from tests.support import eventually

PY = sys.executable
FAST = {"poll_interval": "20ms", "sample_interval": "100ms", "heartbeat_interval": "100ms", "shutdown_timeout": "2s"}


@pytest.fixture
def pooled(tmp_path):
    runtime = pepper.Runtime(db=str(tmp_path / "p.db"), home=str(tmp_path / "home"),
                             resources={"cpu": 2, "memory": "4Gi", "storage": "10Gi"}, **FAST)  # fmt: skip
    yield runtime
    runtime.close()


def max_overlap(statuses) -> int:
    edges = sorted([(s.started_at, 1) for s in statuses] + [(s.finished_at, -1) for s in statuses])
    running = peak = 0
    for _, change in edges:
        running += change
        peak = max(peak, running)
    return peak


def wait_until(condition, timeout=20.0):
    return eventually(condition, "the condition", timeout)


def test_fifty_one_cpu_tasks_on_a_two_cpu_pool_never_run_more_than_two_at_once(pooled):
    pepper.agent("worker", task_types=["t"], capacity=8, runtime=pooled)(lambda task: time.sleep(0.01))
    orchestrator = TaskOrchestrator(pooled)
    ids = [f"t{i}" for i in range(50)]
    orchestrator.submit_tasks([{"id": i, "type": "t", "requirements": {"resources": {"cpu": 1}}} for i in ids])
    statuses = orchestrator.wait(ids, timeout=60)
    assert all(s.state is TaskState.COMPLETED for s in statuses)
    assert max_overlap(statuses) == 2
    assert ResourceManager(pooled).pool().held == {}  # every task lease was given back


def test_an_agent_budget_bounds_its_tasks_and_is_shown_beside_measured_use(pooled):
    release = threading.Event()
    pepper.agent("budgeted", task_types=["t"], capacity=4, resources={"cpu": 1}, runtime=pooled)(
        lambda task: release.wait(10)
    )
    orchestrator = TaskOrchestrator(pooled)
    orchestrator.submit_tasks([{"id": f"b{i}", "type": "t", "requirements": {"resources": {"cpu": 1}}}
                               for i in range(2)])  # fmt: skip
    wait_until(lambda: orchestrator.get_task_status("b0").state is TaskState.IN_PROGRESS)
    reasons = [str(r) for r in orchestrator.get_task_status("b1").waiting_on]
    assert "cpu short by 1 core in the budget of agent 'budgeted'" in reasons[0]
    usage = ResourceManager(pooled).get_resource_usage("budgeted")
    assert usage.allocated == pepper.model.resources.Resources({"cpu": 1}) and usage.leased_by_tasks == {}
    assert usage.measured.cpu.value is None and "inside the pepper process" in usage.measured.cpu.reason
    release.set()
    orchestrator.wait(["b0", "b1"], timeout=20)


def test_an_agent_whose_budget_is_not_free_waits_for_it(pooled):
    allocator = ResourceAllocator(pooled)
    holding = allocator.allocate("someone-else", {"cpu": 2})
    pepper.agent("patient", task_types=["t"], resources={"cpu": 1}, runtime=pooled)(lambda task: "ran")
    orchestrator = TaskOrchestrator(pooled)
    orchestrator.submit_task("t", "t")
    (reason,) = orchestrator.get_task_status("t").waiting_on
    assert reason.kind == "agent_waiting" and "cpu short by 1 core" in reason.message
    allocator.release(holding)
    assert orchestrator.get_result("t", timeout=20) == "ran"
    with pytest.raises(AgentDefinitionError, match="the whole pool cannot give"):
        pepper.agent("greedy", task_types=["t"], resources={"cpu": 64}, runtime=pooled)(lambda task: None)


def test_a_budget_the_pool_cannot_give_is_refused_at_registration_before_the_engine_starts(tmp_path):
    db = str(tmp_path / "r.db")
    runtime = pepper.Runtime(db=db, home=str(tmp_path / "home"), resources={"cpu": 2})

    class Greedy(pepper.BaseAgent):
        async def execute(self, task):
            return None

    pepper.agent("fine", task_types=["t"], runtime=runtime)(lambda task: "ok")
    with pytest.raises(AgentDefinitionError, match="the whole pool cannot give: gpu short by 1"):
        runtime.register_agent(Greedy("greedy", task_types=["t"], resources={"gpu": 1}))
    assert [a.spec.agent_id for a in runtime.agents()] == ["fine"] and not runtime.running
    runtime.start()  # with the agent that was registered
    assert [a.spec.agent_id for a in runtime.store.workers.agents()] == ["fine"]
    runtime.close()
    with pepper.Runtime(db=db, home=str(tmp_path / "home")) as onlooker:
        assert onlooker.store.workers.live() == [] and onlooker.store.workers.agents() == []


def test_allocations_can_wait_for_room(pooled):
    manager = ResourceManager(pooled)
    first = manager.allocate_resources("a", {"cpu": 2}, duration="30s")
    with pytest.raises(ResourceUnavailableError) as caught:
        manager.allocate_resources("b", {"cpu": 1})
    assert caught.value.shortfall == {"cpu": 1.0}
    threading.Timer(0.2, lambda: manager.release_resources(first)).start()
    second = manager.allocate_resources("b", {"resources": {"cpu": 1}}, wait=True, timeout=10)
    assert second.holder == "b" and second.expires_at is None
    with pytest.raises(ResourceUnavailableError):
        manager.allocate_resources("c", {"cpu": 2}, wait=True, timeout=0.1)


@pytest.mark.parametrize("timeout", ["1", -1, True, float("inf"), float("nan"), 10**400])
def test_a_wait_for_room_with_a_bad_timeout_is_refused_before_any_wait(pooled, timeout):
    manager = ResourceManager(pooled)
    manager.allocate_resources("a", {"cpu": 2})  # the pool's cpu is all held
    with pytest.raises(ValidationError, match="timeout must be a finite number of seconds >= 0"):
        manager.allocate_resources("b", {"cpu": 1}, wait=True, timeout=timeout)
    assert [lease.holder for lease in manager.pool().leases] == ["a"]


def test_a_wait_that_is_not_true_or_false_is_refused(pooled):
    manager = ResourceManager(pooled)
    with pytest.raises(ValidationError, match="wait must be True or False, got 'no'"):
        manager.allocate_resources("a", {"cpu": 1}, wait="no")
    assert manager.pool().leases == ()


def test_another_process_holding_the_pool_holds_back_this_worker(pooled, tmp_path):
    pepper.agent("w", task_types=["t"], runtime=pooled)(lambda task: "done")
    orchestrator = TaskOrchestrator(pooled)
    pooled.start()
    with pepper.Runtime(db=pooled.settings.db) as other:  # no agents: writes straight to the database
        held = ResourceAllocator(other).allocate("elsewhere", {"cpu": 2}, duration="1h")
        orchestrator.submit_task("t", "t", requirements={"resources": {"cpu": 1}})
        wait_until(lambda: any(r.kind == "resources" for r in orchestrator.get_task_status("t").waiting_on))
        ResourceAllocator(other).release(held)
    assert orchestrator.get_result("t", timeout=20) == "done"


def test_a_command_agent_beyond_its_memory_cap_fails_with_the_limit_error(pooled, tmp_path):
    hog = tmp_path / "hog.py"
    hog.write_text("data = b'x' * (400 * 2**20)\nprint(len(data))\n")
    pooled.register_agent(pepper.agents.CommandAgent("hog", f"{PY} {hog}", task_types=["hog"],
                                                     resources={"memory": "150Mi"}))  # fmt: skip
    orchestrator = TaskOrchestrator(pooled)
    orchestrator.submit_task("big", "hog")
    status = orchestrator.wait("big", timeout=30)
    assert status.state is TaskState.FAILED and status.error.type == "MemoryLimitExceeded"
    assert "memory limit exceeded: the task may use 150 MB" in status.error.message


def test_measured_memory_of_a_command_is_within_a_fifth_of_what_it_holds(pooled, tmp_path):
    holder, ready = tmp_path / "hold.py", tmp_path / "ready"
    holder.write_text(f"import pathlib, time\ndata = b'x' * (200 * 2**20)\npathlib.Path({str(ready)!r}).touch()\n"
                      "time.sleep(30)\n")  # fmt: skip
    pooled.register_agent(pepper.agents.CommandAgent("holder", f"{PY} {holder}", task_types=["hold"]))
    orchestrator = TaskOrchestrator(pooled)
    orchestrator.submit_task("h", "hold")
    wait_until(ready.exists)
    memory = ResourceMonitor(pooled).get_usage("holder", ["memory"])["memory"].value
    assert 200 * 0.8 <= memory <= 200 * 1.2
    orchestrator.cancel_task("h")


#: Three processes busy until the file ``calm`` exists, a rest until ``again`` exists, busy again until ``done``:
#: the test moves it from phase to phase, and three processes show well over 50% of a core even on a busy machine.
PHASES = """\
import os, pathlib, time
flags, end = pathlib.Path({flags!r}), time.monotonic() + 300  # a safety net: the test leads the phases
def spin(until):
    for _ in range(3):
        if os.fork() == 0:
            while not (flags / until).exists() and time.monotonic() < end:
                pass
            os._exit(0)
    for _ in range(3):
        os.wait()
spin("calm")
while not (flags / "again").exists() and time.monotonic() < end:
    time.sleep(0.01)
spin("done")
"""


def test_a_cpu_alert_fires_once_per_crossing_of_a_real_busy_loop(pooled, tmp_path):
    script = tmp_path / "spin.py"
    script.write_text(PHASES.format(flags=str(tmp_path)))
    pooled.register_agent(pepper.agents.CommandAgent("spinner", f"{PY} {script}", task_types=["spin"]))
    fired = []

    monitor = ResourceMonitor(pooled)
    # fires above 50%, clears only at 5% or less: a process resting between polls, never one starved of a core
    rule = monitor.set_alert(agent_id="spinner", metric="cpu", threshold=50, hysteresis=45, callback=fired.append)
    orchestrator = TaskOrchestrator(pooled)
    orchestrator.submit_task("spin", "spin")
    wait_until(lambda: len(fired) == 1, timeout=60)
    (tmp_path / "calm").touch()
    lows: set[float] = set()

    def rule_saw_it_calm() -> bool:
        # The sampler stores each tick's figures, then evaluates the rules: two calm ticks stored means the
        # rule has evaluated at least one of them, so it has cleared.
        for _, at, usage in pooled.store.usage.of_agent("spinner"):
            cpu = usage.get("cpu", {}).get("value")
            if cpu is not None and cpu <= 5:
                lows.add(at)
        return len(lows) >= 2

    wait_until(rule_saw_it_calm, timeout=120)
    (tmp_path / "again").touch()
    wait_until(lambda: len(fired) == 2, timeout=60)
    (tmp_path / "done").touch()
    assert orchestrator.wait("spin", timeout=60).state is TaskState.COMPLETED
    assert all(a.subject == "spinner" and a.metric == "cpu" and a.value > 50 for a in fired)
    assert [a["alert_id"] for a in monitor.alerts()] == [f"{rule}#2", f"{rule}#1"]  # none more, while it spun
    monitor.remove_alert(rule)


def test_a_failing_alert_callback_is_logged_and_sampling_goes_on(pooled, caplog):
    pepper.agent("quiet", task_types=["t"], runtime=pooled)(lambda task: None)
    monitor = ResourceMonitor(pooled)

    def broken(alert):
        raise RuntimeError("the pager is down")

    monitor.set_alert("quiet", "storage", threshold=1, above=False, callback=broken)  # fires at the first sample
    wait_until(lambda: "the callback of alert" in caplog.text)
    wait_until(lambda: monitor.get_usage("quiet")["storage"].value == 0.0)


def test_bad_resource_input_is_refused_and_changes_nothing(pooled):
    pepper.agent("known", task_types=["t"], runtime=pooled)(lambda task: None)
    allocator, monitor = ResourceAllocator(pooled), ResourceMonitor(pooled)
    bad = [
        (ValidationError, lambda: allocator.allocate("a", {"cpu": -1})),
        (ValidationError, lambda: allocator.allocate("a", {"cpu": "2 cores"})),
        (ValidationError, lambda: allocator.allocate("a", {"memory": "4Gx"})),
        (ValidationError, lambda: allocator.allocate("a", {"cpu": 1}, duration="forever")),
        (ValidationError, lambda: allocator.allocate("a", {"cpu": 1}, duration=1e300)),
        (ValidationError, lambda: allocator.allocate("a", {"cpu": 1}, duration="367d")),
        (ValidationError, lambda: allocator.allocate("a", {"cpu": 99})),
        (ValidationError, lambda: allocator.allocate("a", {})),
        (AllocationNotFoundError, lambda: allocator.release("alloc-not-mine")),
        (ValidationError, lambda: monitor.set_alert("known", "gpu_temperature", 80, print)),
        (ValidationError, lambda: monitor.set_alert("known", "cpu", 80, "not callable")),
        (AgentNotFoundError, lambda: monitor.get_usage("nobody")),
        (ValidationError, lambda: monitor.get_usage("known", ["cpu", "disk"])),
    ]
    for error, call in bad:
        with pytest.raises(error):
            call()
    assert ResourceManager(pooled).pool().leases == ()
    held = allocator.allocate("a", {"cpu": 1}, duration="1h")
    for duration in (1e300, "367d", 0):
        with pytest.raises(ValidationError, match="duration must be positive and at most 366 days"):
            allocator.renew(held, duration)
    assert allocator.get(held.lease_id) == held  # its expiry is as it was


def test_resources_in_pepper_toml_go_over_the_machines_each_named_one_replacing_only_itself(tmp_path, monkeypatch):
    import psutil

    monkeypatch.chdir(tmp_path)
    (tmp_path / "pepper.toml").write_text("[pepper]\nresources = {gpu = 1, cpu = 3}\n")
    with pepper.Runtime(db=str(tmp_path / "t.db"), home=str(tmp_path / "home")) as runtime:
        pool = runtime.pool()
    assert pool["gpu"] == 1 and pool["cpu"] == 3  # added, and replaced
    assert pool["memory"] == round(psutil.virtual_memory().total / 2**20, 1)  # the machine's, kept
    assert pool["storage"] > 0 and set(pool) == {"cpu", "memory", "storage", "gpu"}


def test_an_agent_on_ray_takes_from_peppers_pool_only_the_shared_pools_it_names(tmp_path):
    # cpu, gpu and memory are Ray's to place with the agent's actor: far beyond this host's pool, yet it registers
    runtime = pepper.Runtime(db=str(tmp_path / "r.db"), home=str(tmp_path / "home"), resources={"cpu": 2},
                             shared_resources={"licences": 2}, **FAST)  # fmt: skip
    runtime.start()
    budget = {"cpu": 16, "gpu": 2, "memory": "64Gi", "licences": 2}
    pepper.agent("remote", task_types=["t"], executor="ray", resources=budget, runtime=runtime)(lambda task: None)

    manager = ResourceManager(runtime)
    assert manager.get_resource_usage("remote").allocated == pepper.model.resources.Resources({"licences": 2})
    assert manager.pool().held == {"licences": 2.0}
    with pytest.raises(ResourceUnavailableError):  # the shared pool is still pepper's to share out
        ResourceAllocator(runtime).allocate("someone-else", {"licences": 1})
    # a task may need more than this host's pool when the Ray budget holds it (delayed: it is not run here)
    orchestrator = TaskOrchestrator(runtime)
    orchestrator.submit_task("big", "t", requirements={"resources": {"cpu": 16}}, delay="1h")
    with pytest.raises(ValidationError, match="cpu 17 cores but the whole pool, or the largest Ray budget, has cpu 16"):
        orchestrator.submit_task("huge", "t", requirements={"resources": {"cpu": 17}})
    # an agent run here still takes its whole budget from this host's pool
    with pytest.raises(AgentDefinitionError, match="the whole pool cannot give"):
        pepper.agent("local", task_types=["t"], resources={"cpu": 16}, runtime=runtime)(lambda task: None)
    runtime.close()


def test_a_runtime_that_sends_every_agent_to_ray_leases_none_of_their_machine_resources(tmp_path):
    runtime = pepper.Runtime(db=str(tmp_path / "r.db"), home=str(tmp_path / "home"), resources={"cpu": 2},
                             executor="ray", **FAST)  # fmt: skip
    runtime.start()
    pepper.agent("big", task_types=["t"], resources={"cpu": 8, "gpu": 1}, runtime=runtime)(lambda task: None)
    assert ResourceManager(runtime).get_resource_usage("big").allocated == {}
    assert ResourceManager(runtime).pool().held == {}
    runtime.close()


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_usage_of_an_unknown_agent_is_refused_and_of_an_idle_one_is_empty(request, tmp_path, kind):
    db = request.getfixturevalue("postgres_url") if kind == "postgres" else str(tmp_path / "u.db")
    with pepper.Runtime(db=db, home=str(tmp_path / "a"), **FAST) as worker, \
            pepper.Runtime(db=db, home=str(tmp_path / "b"), **FAST) as asker:  # fmt: skip
        pepper.agent("elsewhere", task_types=["t"], runtime=worker)(lambda task: None)
        worker.start()  # another worker sharing the store: its agents are known here
        pepper.agent("idle", task_types=["t"], runtime=asker)(lambda task: None)
        manager, monitor = ResourceManager(asker), ResourceMonitor(asker)
        # An id that is no agent: both calls refuse it alike, naming the agents there are
        for call in (manager.get_resource_usage, monitor.get_usage):
            with pytest.raises(AgentNotFoundError, match=r"no agent with id 'ghost' \(registered: elsewhere, idle\)"):
                call("ghost")
        # A registered agent holding nothing: empty usage, here or on the other worker
        for agent_id in ("idle", "elsewhere"):
            usage = manager.get_resource_usage(agent_id)
            assert (usage.allocated, usage.leased_by_tasks, usage.allocations) == ({}, {}, ())
        # A holder of an allocation that is no agent is known by what it holds
        allocation = ResourceAllocator(asker).allocate("nightly-batch", {"cpu": 1})
        held = manager.get_resource_usage("nightly-batch")
        assert held.allocated == {"cpu": 1.0} and held.measured["cpu"].value is None
        ResourceAllocator(asker).release(allocation)
        with pytest.raises(AgentNotFoundError, match="`pepper leases` lists who holds resources"):
            manager.get_resource_usage("nightly-batch")
