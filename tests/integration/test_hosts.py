"""Several hosts on one database: workers are recorded under a host id, machine pools are per host, and a
shared pool is one pool for all of them."""

from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import pepper
from pepper.core import ResourceAllocator, ResourceManager, TaskOrchestrator
from pepper.errors import ConfigError, ResourceUnavailableError, ValidationError
from pepper.model import codec
from pepper.testing import ManualClock
from tests.support import read_rows as read

QUIET = {"poll_interval": "1s", "heartbeat_interval": "1s", "visibility_timeout": "30s", "shutdown_timeout": "2s"}
TOKENS = 3.0
ROUNDS = 25

GHOST = textwrap.dedent("""
    import sys
    import pepper

    db, home, host = sys.argv[1:4]
    runtime = pepper.Runtime(db=db, home=home, host_id=host)
    runtime.start()
    print("started", flush=True)
    sys.stdin.read()  # until killed
""")


def start_and_kill(db: str, home: str, host: str) -> int:
    """Start a worker process recorded under ``host``, then kill it (-9): its row stays, its pid is gone."""
    proc = subprocess.Popen([sys.executable, "-c", GHOST, db, home, host], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert proc.stdout is not None and proc.stdout.readline() == "started\n"
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
    return proc.pid


def live_workers(runtime: pepper.Runtime) -> dict[int, str]:
    return {worker.pid: worker.hostname for worker in runtime.store.workers.live()}


def test_a_dead_pid_means_gone_only_on_its_own_host_elsewhere_the_heartbeat_decides(tmp_path):
    db, home = str(tmp_path / "h.db"), str(tmp_path / "home")
    # Given two workers killed (-9), one recorded under host-a, one under host-b
    same_host, other_host = start_and_kill(db, home, "host-a"), start_and_kill(db, home, "host-b")
    clock = ManualClock(time.time())
    with pepper.Runtime(db=db, home=home, clock=clock, host_id="host-a", **QUIET) as runtime:
        # When an engine on host-a starts (and sweeps for dead workers)
        runtime.start()
        # Then the one on its own host is gone at once, the other's pid means nothing here
        workers = live_workers(runtime)
        assert same_host not in workers and workers[other_host] == "host-b"
        assert workers[os.getpid()] == "host-a"
        clock.advance(20)  # sweeps run, the silence is shorter than the visibility timeout
        assert other_host in live_workers(runtime)
        # And once its heartbeat is older than the visibility timeout, it is gone too
        clock.advance(15)
        assert other_host not in live_workers(runtime)


def held_in_database(db: str) -> float:
    """The checker: api tokens held by every unreleased lease, on any host, read from the database itself."""
    rows = read(db, "SELECT resources FROM leases WHERE released_at IS NULL")
    return sum(codec.decode(resources).get("api_tokens", 0.0) for (resources,) in rows)


def race(db: str, home: str, host: str, barrier: multiprocessing.synchronize.Barrier, results: multiprocessing.Queue):
    """One worker process: each round, take a token, then race the other process for the last one."""
    grants, refusals, most = 0, 0, 0.0
    with pepper.Runtime(db=db, home=home, host_id=host, shared_resources={"api_tokens": TOKENS}) as runtime:
        allocator = ResourceAllocator(runtime)
        barrier.wait()  # both pools are recorded
        for _ in range(ROUNDS):
            held = [allocator.allocate(f"agent-{host}", {"api_tokens": 1})]  # two of three: both get one
            grants += 1
            most = max(most, held_in_database(db))
            barrier.wait()
            try:  # the last token: both ask at once
                held.append(allocator.allocate(f"agent-{host}", {"api_tokens": 1}))
                grants += 1
                most = max(most, held_in_database(db))
            except ResourceUnavailableError:
                refusals += 1
            barrier.wait()
            for lease in held:
                allocator.release(lease)
            barrier.wait()
    results.put((host, grants, refusals, most))


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_two_worker_processes_racing_for_the_last_shared_tokens_never_exceed_the_pool(request, tmp_path, kind):
    db = request.getfixturevalue("postgres_url") if kind == "postgres" else str(tmp_path / "race.db")
    home = str(tmp_path / "home")
    context = multiprocessing.get_context("spawn")
    barrier, results = context.Barrier(2, timeout=120), context.Queue()
    procs = [context.Process(target=race, args=(db, home, host, barrier, results)) for host in ("host-a", "host-b")]
    for proc in procs:
        proc.start()
    outcomes = sorted(results.get(timeout=300) for _ in procs)
    for proc in procs:
        proc.join(timeout=60)
        assert proc.exitcode == 0
    # Then no grant ever found more than the pool held, and each round exactly one process won the last token
    assert max(most for *_, most in outcomes) <= TOKENS
    assert sum(grants for _, grants, _, _ in outcomes) == ROUNDS * 3
    assert sum(refusals for _, _, refusals, _ in outcomes) == ROUNDS
    hosts = {host for (host,) in read(db, "SELECT DISTINCT host FROM leases")}
    shared = read(db, "SELECT capacity FROM pool WHERE host = '*' AND resource = 'api_tokens'")
    assert hosts == {"host-a", "host-b"} and shared == [(TOKENS,)]


def test_shared_pools_are_listed_beside_this_hosts_own(tmp_path):
    db, home = str(tmp_path / "p.db"), str(tmp_path / "home")
    settings = {"db": db, "home": home, "shared_resources": {"api_tokens": 5}, "resources": {"cpu": 2}}
    with pepper.Runtime(host_id="host-a", **settings) as here, pepper.Runtime(host_id="host-b", **settings) as there:
        ResourceAllocator(here).allocate("a", {"cpu": 2, "api_tokens": 2})
        pool = ResourceManager(there).pool()
        assert pool.shared == {"api_tokens"} and pool.host == "host-b"
        assert (pool.free["cpu"], pool.free["api_tokens"]) == (2.0, 3.0)  # host-a's cpus are its own
    env = {**os.environ, "PEPPER_HOST_ID": "host-b"}
    done = subprocess.run([sys.executable, "-m", "pepper", "resources", "--db", db], capture_output=True,
                          text=True, env=env, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    lines = {line.split()[1]: line for line in done.stdout.splitlines() if line.startswith("│ ")}
    assert "shared" in lines["api_tokens"] and "this host" in lines["cpu"] and "host-b" in done.stdout


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"shared_resources": {"api_tokens": -5}}, "cannot be negative"),
        ({"shared_resources": {"api_tokens": "lots"}}, "cannot read 'lots' as a quantity"),
        ({"shared_resources": {"cpu": 4}}, "cpu is a machine resource"),
        ({"shared_resources": {"fpga": 4}, "resources": {"fpga": 1}}, "fpga is a machine resource"),
        ({"host_id": ""}, "printable text of 1 to 255 characters"),
        ({"host_id": "a\nb"}, "printable text"),
        ({"host_id": "x" * 256}, "printable text"),
        ({"host_id": "*"}, "marks the pools every host shares"),
    ],
)
def test_bad_hosts_and_shared_pools_are_refused_before_anything_is_written(tmp_path, settings, message):
    db = tmp_path / "bad.db"
    with pytest.raises(ConfigError, match=message):
        pepper.Runtime(db=str(db), home=str(tmp_path / "home"), **settings).store  # noqa: B018
    assert not db.exists()


def test_bad_settings_in_pepper_toml_and_the_environment_are_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("pepper.toml").write_text("[pepper]\nshared_resources = {api_tokens = -1}\n")
    with pytest.raises(ConfigError, match=r"pepper\.toml: setting 'shared_resources'.*negative"):
        pepper.Runtime(db=str(tmp_path / "x.db"))
    Path("pepper.toml").write_text("[pepper]\nshared_resources = {api_tokens = 2}\n")
    monkeypatch.setenv("PEPPER_HOST_ID", "\t")
    with pytest.raises(ConfigError, match="host_id"):
        pepper.Runtime(db=str(tmp_path / "x.db"))
    monkeypatch.setenv("PEPPER_HOST_ID", "rack-7")
    runtime = pepper.Runtime(db=str(tmp_path / "x.db"))
    assert runtime.settings.host_id == "rack-7" and runtime.settings.shared_resources == {"api_tokens": 2.0}
    runtime.close()


def test_a_shared_name_another_host_pools_per_machine_is_refused_and_changes_nothing(tmp_path):
    db, home = str(tmp_path / "c.db"), str(tmp_path / "home")
    with pepper.Runtime(db=db, home=home, host_id="host-a", shared_resources={"api_tokens": 5}) as first:
        before = first.pool()
    with pytest.raises(ConfigError, match="api_tokens cannot be both a machine resource and a shared pool"):
        pepper.Runtime(db=db, home=home, host_id="host-a", resources={"api_tokens": 2}).store  # noqa: B018
    with pepper.Runtime(db=db, home=home, host_id="host-a", create=False) as again:
        assert again.pool() == before


def test_a_submitter_checks_tasks_against_the_largest_pool_of_any_host(tmp_path):
    db, home = str(tmp_path / "s.db"), str(tmp_path / "home")
    with pepper.Runtime(db=db, home=home, host_id="gpu-box", resources={"gpu": 1}) as gpu_box:
        gpu_box.pool()  # records the pool of the host with the GPU
    with pepper.Runtime(db=db, home=home, host_id="laptop") as laptop:
        orchestrator = TaskOrchestrator(laptop)
        orchestrator.submit_task("train", "t", requirements={"resources": {"gpu": 1}})  # the gpu box can run it
        with pytest.raises(ValidationError, match="whole pool"):
            orchestrator.submit_task("huge", "t", requirements={"resources": {"gpu": 2}})
        assert [task.task_id for task in orchestrator.list_tasks()] == ["train"]
