"""The lease ledger: grants are whole or nothing, expire by themselves, and never exceed the pool."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from pepper.errors import AllocationNotFoundError, ConfigError, LeaseEndedError, ResourceUnavailableError
from pepper.model.lease import Lease, LeaseKind, total_held
from pepper.model.resources import Resources

POOL = {"cpu": 2.0, "memory": 1024.0}


def lease(lease_id, expires_at=None, at=0.0, holder="agent", **resources):
    return Lease(lease_id, holder, LeaseKind.BUDGET, Resources(resources), at, expires_at)


@pytest.fixture
def store(store):
    """The contract's store, with a pool of 2 cpus and 1024 MB."""
    store.leases.ensure_pool(POOL, replace=True)
    return store


def test_a_grant_is_whole_or_nothing(store):
    store.leases.grant(lease("a", cpu=1, memory=512), now=0.0)
    with pytest.raises(ResourceUnavailableError) as caught:
        store.leases.grant(lease("b", cpu=1, memory=600), now=0.0)
    assert caught.value.shortfall == {"memory": 88.0}
    assert "memory short by 88 MB (pool: cpu 2 cores, memory 1024 MB)" in str(caught.value)
    assert [x.lease_id for x in store.leases.live(0.0)] == ["a"]  # the cpu of "b" was not taken either


def test_fractional_cpu_adds_up_exactly(store):
    for i in range(4):
        store.leases.grant(lease(f"q{i}", cpu=0.5), now=0.0)
    with pytest.raises(ResourceUnavailableError):
        store.leases.grant(lease("one-more", cpu=0.5), now=0.0)


def test_expired_leases_stop_counting_without_anyone_releasing_them(store):
    store.leases.grant(lease("short", expires_at=10.0, cpu=2), now=0.0)
    with pytest.raises(ResourceUnavailableError):
        store.leases.grant(lease("early", cpu=1), now=9.9)
    store.leases.grant(lease("later", cpu=2), now=10.0)
    assert [x.lease_id for x in store.leases.live(10.0)] == ["later"]


def test_renewing_extends_a_live_lease_and_refuses_ended_ones(store):
    store.leases.grant(lease("r", expires_at=10.0, cpu=1), now=0.0)
    assert store.leases.renew("r", 30.0, now=5.0).expires_at == 30.0
    with pytest.raises(LeaseEndedError, match="has expired"):
        store.leases.renew("r", 50.0, now=31.0)
    store.leases.grant(lease("gone", cpu=1), now=40.0)
    store.leases.release("gone", now=41.0)
    with pytest.raises(LeaseEndedError, match="was released"):
        store.leases.renew("gone", 99.0, now=42.0)
    with pytest.raises(AllocationNotFoundError):
        store.leases.renew("never", 99.0, now=42.0)


def test_release_is_idempotent_and_unknown_ids_are_an_error(store):
    store.leases.grant(lease("a", cpu=2), now=0.0)
    assert store.leases.release("a", now=1.0) is True
    assert store.leases.release("a", now=2.0) is False
    with pytest.raises(AllocationNotFoundError, match="no allocation with id 'zzz'"):
        store.leases.release("zzz", now=3.0)
    store.leases.grant(lease("b", cpu=2), now=4.0)  # the cpus came back


def test_releasing_an_expired_lease_answers_false_and_records_it_ended_at_its_expiry(store):
    store.leases.grant(lease("short", expires_at=10.0, cpu=2), now=0.0)
    assert store.leases.release("short", now=11.0) is False  # it ended at 10 by itself: this call released nothing
    assert store.leases.get("short").released_at == 10.0
    assert store.leases.release("short", now=12.0) is False
    store.leases.grant(lease("exact", expires_at=20.0, cpu=2), now=12.0)
    assert store.leases.release("exact", now=20.0) is False
    store.leases.grant(lease("live", expires_at=30.0, cpu=2), now=20.0)
    assert store.leases.release("live", now=29.0) is True and store.leases.get("live").released_at == 29.0


def test_live_leases_survive_a_restart_and_expired_ones_are_reclaimed(shared_store):
    first = shared_store()
    first.leases.ensure_pool(POOL, replace=True)
    first.leases.grant(lease("kept", cpu=1), now=0.0)
    first.leases.grant(lease("lapses", expires_at=5.0, cpu=1), now=0.0)
    first.close()
    second = shared_store()
    assert second.leases.ensure_pool({"cpu": 64.0}, replace=False) == POOL  # a stored pool is kept
    assert second.leases.reap_expired(now=6.0) == 1
    assert [x.lease_id for x in second.leases.live(6.0)] == ["kept"]
    assert second.leases.get("lapses").released_at == 5.0


def test_a_dead_workers_leases_are_given_back(store):
    worker_lease = Lease("w", "agent", LeaseKind.TASK, Resources({"cpu": 2}), 0.0, worker_id="worker-1")
    store.leases.grant(worker_lease, now=0.0)
    assert store.leases.release_worker("worker-1", now=1.0) == 1
    assert store.leases.live(1.0) == []


def test_threads_allocating_at_once_never_exceed_the_pool(shared_store):
    shared_store().leases.ensure_pool({"cpu": 10.0}, replace=True)
    stores = [shared_store() for _ in range(4)]
    granted, refused = [], []

    def grab(worker: int) -> None:
        for i in range(10):
            try:
                granted.append(stores[worker].leases.grant(lease(f"{worker}-{i}", cpu=1), now=0.0))
            except ResourceUnavailableError:
                refused.append(1)

    threads = [threading.Thread(target=grab, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    check = shared_store()
    assert len(granted) == 10 and len(refused) == 30
    assert total_held(check.leases.live(0.0), 0.0) == {"cpu": 10.0}


def test_processes_allocating_at_once_never_exceed_the_pool(shared_store, tmp_path):
    shared_store().leases.ensure_pool({"cpu": 6.0}, replace=True)
    opening, opened = shared_store.python_source()
    script = tmp_path / "grab.py"
    script.write_text(
        textwrap.dedent(f"""
        import sys
        from pepper.errors import ResourceUnavailableError
        from pepper.model.lease import Lease, LeaseKind
        from pepper.model.resources import Resources
        {opening}
        store = {opened}
        won = 0
        for i in range(8):
            try:
                one = Lease(f"{{sys.argv[1]}}-{{i}}", "a", LeaseKind.BUDGET, Resources({{"cpu": 1}}), 0.0)
                store.leases.grant(one, 0.0)
                won += 1
            except ResourceUnavailableError:
                pass
        print(won)
    """)
    )
    env_path = str(Path(__file__).resolve().parents[2])
    procs = [
        subprocess.Popen([sys.executable, str(script), str(n)], stdout=subprocess.PIPE, text=True,
                         env={"PYTHONPATH": env_path, "PATH": "/usr/bin:/bin"})
        for n in range(3)
    ]  # fmt: skip
    wins = [int(p.communicate(timeout=60)[0]) for p in procs]
    assert sum(wins) == 6
    assert total_held(shared_store().leases.live(0.0), 0.0) == {"cpu": 6.0}


def test_hosts_share_the_shared_pools_but_not_their_machine_pools(shared_store):
    # Given two hosts with two cpus each, and a pool of three api tokens that every host shares
    here, there = shared_store(), shared_store()
    here.leases.host, there.leases.host = "host-a", "host-b"
    here.leases.ensure_pool({"cpu": 2.0}, replace=True)
    there.leases.ensure_pool({"cpu": 2.0}, replace=True)
    assert here.leases.ensure_shared({"api_tokens": 3.0}) == {"api_tokens": 3.0}
    # When one host takes all its cpus and two tokens
    here.leases.grant(lease("a", cpu=2, api_tokens=2), now=0.0)
    # Then the other host still has its own cpus, but only the last token
    there.leases.grant(lease("b", cpu=2), now=0.0)
    with pytest.raises(ResourceUnavailableError) as caught:
        there.leases.grant(lease("b-tokens", api_tokens=2), now=0.0)
    assert caught.value.shortfall == {"api_tokens": 1.0}
    there.leases.grant(lease("b-token", api_tokens=1), now=0.0)
    assert there.leases.pool() == {"cpu": 2.0, "api_tokens": 3.0} and there.leases.shared() == {"api_tokens": 3.0}
    assert total_held(there.leases.live(0.0), 0.0) == {"cpu": 2.0, "api_tokens": 3.0}  # host-a's cpus not counted
    assert total_held(here.leases.live(0.0), 0.0) == {"cpu": 2.0, "api_tokens": 3.0}
    # And a token given back on one host is free for the other
    here.leases.release("a", now=1.0)
    there.leases.grant(lease("b-more", api_tokens=2), now=1.0)


def test_a_resource_is_either_a_machine_pool_or_a_shared_one(store):
    store.leases.host = "host-a"
    store.leases.ensure_pool({"cpu": 2.0, "gpu": 1.0}, replace=True)
    with pytest.raises(ConfigError, match="gpu cannot be both a machine resource and a shared pool"):
        store.leases.ensure_shared({"gpu": 4.0, "api_tokens": 3.0})
    assert store.leases.shared() == {}  # nothing of the refused call was stored
    store.leases.ensure_shared({"api_tokens": 3.0})
    with pytest.raises(ConfigError, match="api_tokens cannot be both"):
        store.leases.ensure_pool({"cpu": 2.0, "api_tokens": 1.0}, replace=True)
    assert store.leases.pool() == {"cpu": 2.0, "gpu": 1.0, "api_tokens": 3.0}
