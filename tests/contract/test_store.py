"""The store contract: what every store implementation must do (run against each one)."""

from __future__ import annotations

import pytest

from pepper.errors import CycleError, DuplicateTaskError, ResourceUnavailableError, StoreBusyError, WriteRefusedError
from pepper.model import codec
from pepper.model.agent import AgentSpec
from pepper.model.events import RecordAttempt, RecordError
from pepper.model.lease import Lease, LeaseKind
from pepper.model.record import TaskRecord
from pepper.model.resources import Resources
from pepper.model.status import TaskError
from pepper.model.submission import build_task
from pepper.model.task import TaskState
from pepper.store.protocol import Store, TaskSave, WriteSet
from tests.support import eventually

ME, OTHER = "worker-me", "worker-other"


def save(task_id: str, version: int, state: str = "in_progress", writer: str = ME, result=None) -> TaskSave:
    """A task save for a simple state change, over the stored ``version``."""
    record = TaskRecord(build_task(task_id=task_id, task_type="t"), TaskState(state), attempts=1, agent_id="agent",
                        owner=writer, ready_at=1.0, started_at=2.0, result_json=result)  # fmt: skip
    return TaskSave.of(record, version)


def attempt(task_id: str) -> RecordAttempt:
    return RecordAttempt(task_id, 1, "agent", "t", 1.0, 2.0, "retry", None)


def count(store: Store) -> int:
    return sum(store.count_by_state().values())


def test_submitted_tasks_read_back_identically(store):
    task = build_task(
        task_id="a",
        task_type="docs",
        priority="high",
        dependencies=["z"],
        inputs={"n": [1, 2]},
        requirements={"skills": ["md"], "resources": {"cpu": 1}},
        timeout=5,
        max_retries=2,
        metadata={"owner": "me"},
        now=12.5,
    )
    store.commit(WriteSet(submissions=[[task]]), ME)
    record = store.get_tasks(["a"])["a"]
    assert record.task == task and record.task.created_at == 12.5
    assert record.state is TaskState.BLOCKED and record.version == 1  # it has a dependency


def test_a_submission_group_is_all_or_nothing(store):
    store.commit(WriteSet(submissions=[[build_task(task_id="a", task_type="t")]]), ME)
    clash = [build_task(task_id="b", task_type="t"), build_task(task_id="a", task_type="other")]
    result = store.commit(WriteSet(submissions=[clash]), OTHER)
    assert isinstance(result.rejected[0], DuplicateTaskError)
    assert set(store.get_tasks(["a", "b"])) == {"a"}


def test_resubmitting_the_same_spec_reports_it_as_existing(store):
    original = build_task(task_id="a", task_type="t", now=1.0)
    store.commit(WriteSet(submissions=[[original]]), ME)
    result = store.commit(WriteSet(submissions=[[build_task(task_id="a", task_type="t", now=2.0)]]), OTHER)
    assert result.rejected == {} and result.existing["a"].created_at == 1.0


def test_a_resubmission_with_inputs_equal_in_python_but_of_another_type_is_rejected(store):
    store.commit(WriteSet(submissions=[[build_task(task_id="a", task_type="t", inputs={"dry_run": 1}, now=1.0)]]), ME)
    again = build_task(task_id="a", task_type="t", inputs={"dry_run": True}, now=2.0)
    result = store.commit(WriteSet(submissions=[[again]]), OTHER)
    assert isinstance(result.rejected[0], DuplicateTaskError) and result.rejected[0].differences == ("inputs",)
    assert store.get_tasks(["a"])["a"].task.inputs == {"dry_run": 1}


def test_saves_are_refused_when_someone_else_wrote_first(store):
    store.commit(WriteSet(submissions=[[build_task(task_id="a", task_type="t")]]), ME)
    assert store.commit(WriteSet(saves=[save("a", 1)]), ME).conflicts == set()
    stale = store.commit(WriteSet(saves=[save("a", 1, state="completed")], attempts=[attempt("a")]), OTHER)
    assert stale.conflicts == {"a"}
    record = store.get_tasks(["a"])["a"]
    assert record.state is TaskState.IN_PROGRESS and record.version == 2
    assert store.attempts("a") == []  # history follows only a write that went through


def test_history_is_recorded_with_the_write_that_caused_it(store):
    store.commit(WriteSet(submissions=[[build_task(task_id="a", task_type="t")]]), ME)
    store.commit(WriteSet(saves=[save("a", 1, state="pending")], attempts=[attempt("a")]), ME)
    (row,) = store.attempts("a")
    assert (row["outcome"], row["worker_id"]) == ("retry", ME)


def test_changes_since_returns_only_what_others_wrote(store):
    store.commit(WriteSet(submissions=[[build_task(task_id="mine", task_type="t")]]), ME)
    _, seen = store.changes_since(0, ME)
    store.commit(WriteSet(submissions=[[build_task(task_id="theirs", task_type="t")]]), OTHER)
    store.commit(WriteSet(saves=[save("mine", 1)]), ME)
    changed, now = store.changes_since(seen, ME)
    assert [r.task.task_id for r in changed] == ["theirs"] and now > seen
    assert store.changes_since(now, ME)[0] == []


def test_direct_submission_validates_inside_its_transaction(store):
    store.submit([build_task(task_id="x", task_type="t", dependencies=["y"])], ME)
    before = count(store)
    with pytest.raises(CycleError):
        store.submit([build_task(task_id="y", task_type="t", dependencies=["x"])], ME)
    with pytest.raises(DuplicateTaskError):
        store.submit([build_task(task_id="new", task_type="t"), build_task(task_id="x", task_type="other")], ME)
    assert count(store) == before
    assert store.submit([build_task(task_id="x", task_type="t", dependencies=["y"])], ME).new == ()


def test_results_and_errors_round_trip(store):
    store.commit(WriteSet(submissions=[[build_task(task_id="a", task_type="t")]]), ME)
    store.commit(WriteSet(saves=[save("a", 1, state="completed", result=codec.encode({"pages": [1, 2]}))]), ME)
    record = store.get_tasks(["a"])["a"]
    assert record.result == {"pages": [1, 2]} and record.to_status().result == {"pages": [1, 2]}


def test_listing_counting_and_queue_position(store):
    tasks = [build_task(task_id=f"t{i}", task_type="t", priority="high" if i == 3 else "normal") for i in range(5)]
    store.commit(WriteSet(submissions=[tasks]), ME)
    store.commit(WriteSet(saves=[save("t0", 1)]), ME)
    assert store.count_by_state() == {"pending": 4, "in_progress": 1}
    assert [r.task.task_id for r in store.list_tasks(TaskState.PENDING, limit=2)] == ["t4", "t3"]
    assert [r.task.task_id for r in store.ready_tasks(now=100.0)] == ["t1", "t2", "t3", "t4"]
    assert store.running_by_agent() == {"agent": 1}
    assert store.running_tasks() == [("agent", "t", 2.0)]
    backing_off = TaskRecord(
        build_task(task_id="t1", task_type="t"), TaskState.PENDING, failures=1, next_attempt_at=50.0
    )
    store.commit(WriteSet(saves=[TaskSave.of(backing_off, 1)]), ME)
    assert [r.task.task_id for r in store.ready_tasks(now=10.0)] == ["t2", "t3", "t4"]  # t1 waits out its back-off
    assert [r.task.task_id for r in store.ready_tasks(now=50.0)] == ["t1", "t2", "t3", "t4"]


def test_workers_and_their_agents(store):
    store.workers.register(ME, "host", 123, 10.0)
    spec = AgentSpec.build("docs", task_types=["documentation"], skills=["md"])
    store.workers.register_agent(spec, ME, 10.0)
    (registered,) = store.workers.agents()
    assert registered.spec == spec and registered.pid == 123
    assert store.workers.heartbeat(ME, 11.0)
    assert store.workers.stop(ME, 12.0) is True
    assert store.workers.stop(ME, 12.0) is False  # only one caller stops it
    assert store.workers.agents() == [] and store.workers.live() == []
    assert not store.workers.heartbeat(ME, 13.0)
    store.workers.revive(ME, 14.0)
    assert [w.worker_id for w in store.workers.live()] == [ME]


def test_a_claim_whose_lease_the_pool_refuses_is_not_written(store):
    # Given a pool of 2 cpus and two pending tasks
    store.leases.ensure_pool({"cpu": 2.0}, replace=True)
    store.commit(WriteSet(submissions=[[build_task(task_id=tid, task_type="t") for tid in "ab"]]), ME)
    take = [Lease(f"lease-{tid}", "agent", LeaseKind.TASK, Resources({"cpu": 1.5}), 0.0, task_id=tid) for tid in "ab"]
    # When both are claimed in one commit, each needing 1.5 cpus
    result = store.commit(WriteSet(saves=[save("a", 1), save("b", 1)], lease_takes=take), ME, now=1.0)
    # Then the first claim and its lease are stored, the second is refused with what was short and left pending
    assert result.refused == {"b": {"cpu": 1.0}} and result.conflicts == set()
    assert [lease.task_id for lease in store.leases.live(1.0)] == ["a"]
    states = {tid: r.state for tid, r in store.get_tasks(["a", "b"]).items()}
    assert states == {"a": TaskState.IN_PROGRESS, "b": TaskState.PENDING}


def test_claims_inside_a_budget_take_its_room_and_never_more(store):
    # Given a pool of 4 cpus, 2 of them leased to agent "a" as its budget, and three pending tasks
    store.leases.ensure_pool({"cpu": 4.0}, replace=True)
    store.leases.grant(Lease("budget-a", "a", LeaseKind.BUDGET, Resources({"cpu": 2.0}), 0.0), 0.0)
    store.commit(WriteSet(submissions=[[build_task(task_id=tid, task_type="t") for tid in "xyz"]]), ME)
    inside = {tid: Lease(f"lease-{tid}", "a", LeaseKind.TASK, Resources({"cpu": 1.0}), 0.0, worker_id=ME,
                         task_id=tid, in_budget=True) for tid in "xyz"}  # fmt: skip
    # When two claims (of one process) fill the budget, and another process claims a third inside it
    first = store.commit(WriteSet(saves=[save("x", 1), save("y", 1)], lease_takes=[inside["x"], inside["y"]]), ME)
    late = store.commit(WriteSet(saves=[save("z", 1, writer=OTHER)], lease_takes=[inside["z"]]), OTHER, now=1.0)
    # Then the third is refused for want of the budget's room, though the pool has 2 cpus free
    assert first.refused == {} and late.refused == {"z": {"cpu": 1.0}}
    assert store.get_tasks(["z"])["z"].state is TaskState.PENDING
    live = {lease.lease_id: lease for lease in store.leases.live(1.0)}
    assert set(live) == {"budget-a", "lease-x", "lease-y"} and live["lease-x"].in_budget
    # and the pool counts the budget once: 2 cpus are still free for a task outside it
    outside = Lease("lease-z", "b", LeaseKind.TASK, Resources({"cpu": 2.0}), 1.0, task_id="z")
    assert store.commit(WriteSet(saves=[save("z", 1)], lease_takes=[outside]), ME, now=1.0).refused == {}


def test_tasks_inside_a_budget_that_ended_hold_the_pool_until_they_end(store):
    # Given a pool of 2 cpus, all of it agent "a"'s budget until t=5, and a task running inside it
    store.leases.ensure_pool({"cpu": 2.0}, replace=True)
    store.leases.grant(Lease("budget-a", "a", LeaseKind.BUDGET, Resources({"cpu": 2.0}), 0.0, 5.0), 0.0)
    store.commit(WriteSet(submissions=[[build_task(task_id=tid, task_type="t") for tid in "xy"]]), ME)
    inside = Lease("lease-x", "a", LeaseKind.TASK, Resources({"cpu": 2.0}), 0.0, task_id="x", in_budget=True)
    assert store.commit(WriteSet(saves=[save("x", 1)], lease_takes=[inside]), ME, now=1.0).refused == {}
    # When the budget has expired (or is released) while the task runs
    outside = Lease("lease-y", "b", LeaseKind.TASK, Resources({"cpu": 1.0}), 6.0, task_id="y")
    refused = store.commit(WriteSet(saves=[save("y", 1, writer=OTHER)], lease_takes=[outside]), OTHER, now=6.0)
    # Then what the task holds still counts: another agent's task is refused, and so is a budget of the pool
    assert refused.refused == {"y": {"cpu": 1.0}}
    with pytest.raises(ResourceUnavailableError, match="cpu short by 1"):
        store.leases.grant(Lease("budget-b", "b", LeaseKind.BUDGET, Resources({"cpu": 1.0}), 6.0), 6.0)
    # but a budget given back to "a" is held by its running task already: it takes no more of the pool
    store.leases.grant(Lease("budget-a2", "a", LeaseKind.BUDGET, Resources({"cpu": 2.0}), 6.0), 6.0)
    store.leases.release("budget-a2", 7.0)
    # and once the task ended, the pool is free again
    store.commit(WriteSet(lease_drops=["lease-x"]), ME, now=8.0)
    again = store.commit(WriteSet(saves=[save("y", 1, writer=OTHER)], lease_takes=[outside]), OTHER, now=8.0)
    assert again.refused == {}


def test_a_lost_claim_takes_no_lease_and_its_history_is_dropped(store):
    # Given a task another process has already claimed
    store.leases.ensure_pool({"cpu": 2.0}, replace=True)
    store.commit(WriteSet(submissions=[[build_task(task_id="a", task_type="t")]]), ME)
    store.commit(WriteSet(saves=[save("a", 1, writer=OTHER)]), OTHER)
    # When this process's claim over the old version commits, with its lease, attempt and error
    error = RecordError("a", 1, "agent", "t", 2.0, TaskError("Boom", "no"), "retry", "retry", "")
    take = Lease("lease-a", "agent", LeaseKind.TASK, Resources({"cpu": 1.0}), 0.0, task_id="a")
    result = store.commit(WriteSet(saves=[save("a", 1)], lease_takes=[take], attempts=[attempt("a")],
                                   errors=[error]), ME, now=1.0)  # fmt: skip
    # Then it is a conflict: nothing of it is stored
    assert result.conflicts == {"a"} and result.refused == {}
    assert store.leases.live(1.0) == [] and store.attempts("a") == [] and store.errors.of_task("a") == []
    assert store.get_tasks(["a"])["a"].owner == OTHER


def test_a_claim_that_needs_an_end_which_lost_is_not_written_either(store):
    # Given a dependency "a" another process wrote meanwhile, its dependent "b", and an independent "c"
    store.leases.ensure_pool({"cpu": 2.0}, replace=True)
    tasks = [build_task(task_id="a", task_type="t"), build_task(task_id="b", task_type="t", dependencies=["a"]),
             build_task(task_id="c", task_type="t")]  # fmt: skip
    store.commit(WriteSet(submissions=[tasks]), ME)
    store.commit(WriteSet(saves=[save("a", 1, state="pending", writer=OTHER)]), OTHER)
    # When this process commits the end of "a" over the old version, with the claim of "b" it released (and its
    # lease), the claim of "c" and a new task
    take = Lease("lease-b", "agent", LeaseKind.TASK, Resources({"cpu": 1.0}), 0.0, task_id="b")
    writes = WriteSet(
        submissions=[[build_task(task_id="n", task_type="t")]],
        lease_takes=[take],
        saves=[save("a", 1, state="completed"), save("b", 1), save("c", 1)],
        needs={"b": ("a",)},
    )
    result = store.commit(writes, ME, now=1.0)
    # Then the end lost, and so did the claim that stood on it: neither is written, nor the lease
    assert result.conflicts == {"a", "b"} and result.rejected == {} and result.existing == {}
    stored = store.get_tasks(["a", "b", "c", "n"])
    assert (stored["a"].state, stored["a"].owner) == (TaskState.PENDING, OTHER)
    assert (stored["b"].state, stored["b"].version) == (TaskState.BLOCKED, 1)
    assert store.leases.live(1.0) == []
    # while the rest of the commit is stored, once
    assert (stored["c"].state, stored["c"].owner, stored["c"].version) == (TaskState.IN_PROGRESS, ME, 2)
    assert stored["n"].version == 1 and count(store) == 4
    # and a claim whose end went through is written with it
    again = WriteSet(saves=[save("a", 2, state="completed"), save("b", 1)], needs={"b": ("a",)}, lease_takes=[take])
    assert store.commit(again, ME, now=2.0).conflicts == set()
    assert store.get_tasks(["b"])["b"].state is TaskState.IN_PROGRESS
    assert [lease.lease_id for lease in store.leases.live(2.0)] == ["lease-b"]


def test_history_and_errors_are_stored_with_a_save_that_went_through(store):
    store.commit(WriteSet(submissions=[[build_task(task_id="a", task_type="t")]]), ME)
    error = RecordError("a", 1, "agent", "t", 2.0, TaskError("Boom", "no"), "retry", "retry", "again in 1s")
    store.commit(WriteSet(saves=[save("a", 1, state="pending")], errors=[error]), ME)
    (stored,) = store.errors.of_task("a")
    assert (stored.error.type, stored.action, stored.detail, stored.worker_id) == ("Boom", "retry", "again in 1s", ME)


def test_change_polling_sees_each_write_of_others_once(store):
    # Given a reader that has seen everything so far
    store.commit(WriteSet(submissions=[[build_task(task_id="a", task_type="t")]]), OTHER)
    seen = store.current_change_seq()
    assert store.changes_since(seen, ME) == ([], seen)
    # When another process saves the task twice
    store.commit(WriteSet(saves=[save("a", 1, writer=OTHER)]), OTHER)
    store.commit(WriteSet(saves=[save("a", 2, state="completed", writer=OTHER)]), OTHER)
    # Then one poll returns its latest state, and the next poll nothing
    changed, now = store.changes_since(seen, ME)
    assert [(r.task.task_id, r.state, r.version) for r in changed] == [("a", TaskState.COMPLETED, 3)]
    assert now == store.current_change_seq() > seen
    assert store.changes_since(now, ME) == ([], now)


def test_another_connections_commit_changes_the_data_version(shared_store):
    reader, writer = shared_store(), shared_store()
    before = reader.data_version()
    writer.commit(WriteSet(submissions=[[build_task(task_id="a", task_type="t")]]), OTHER)
    # a server's word of another process's commit may take a moment to arrive: it must arrive
    eventually(lambda: reader.data_version() != before, "the reader sees that the data changed")
    assert [r.task.task_id for r in reader.changes_since(0, ME)[0]] == ["a"]


def test_a_write_the_store_cannot_hold_is_refused_and_leaves_nothing(store):
    store.commit(WriteSet(submissions=[[build_task(task_id="a", task_type="t")]]), ME)
    huge = TaskSave.of(TaskRecord(build_task(task_id="a", task_type="t"), TaskState.PENDING, attempts=2**70), 1)
    with pytest.raises(WriteRefusedError):
        store.commit(WriteSet(submissions=[[build_task(task_id="b", task_type="t")]], saves=[huge]), ME)
    assert set(store.get_tasks(["a", "b"])) == {"a"} and store.get_tasks(["a"])["a"].version == 1


def test_a_duplicate_lease_is_refused_as_a_write_that_always_fails(store):
    store.leases.ensure_pool({"cpu": 2.0}, replace=True)
    store.commit(WriteSet(submissions=[[build_task(task_id="a", task_type="t")]]), ME)
    lease = Lease("same", "agent", LeaseKind.BUDGET, Resources({"cpu": 1.0}), 0.0)
    store.leases.grant(lease, 0.0)
    take = Lease("same", "agent", LeaseKind.TASK, Resources({"cpu": 0.5}), 0.0, task_id="a")
    with pytest.raises(WriteRefusedError):
        store.commit(WriteSet(saves=[save("a", 1)], lease_takes=[take]), ME)
    assert store.get_tasks(["a"])["a"].version == 1


def test_grant_once_says_a_lease_was_granted_before(store):
    store.leases.ensure_pool({"cpu": 2.0}, replace=True)
    budget = Lease("budget:a@w", "a", LeaseKind.BUDGET, Resources({"cpu": 2.0}), 0.0)
    assert store.leases.grant_once(budget, 0.0) is True
    assert store.leases.grant_once(budget, 1.0) is False  # registered again: still granted, nothing added
    with pytest.raises(ResourceUnavailableError):
        store.leases.grant_once(Lease("other", "b", LeaseKind.BUDGET, Resources({"cpu": 1.0}), 0.0), 1.0)
    assert [lease.lease_id for lease in store.leases.live(1.0)] == ["budget:a@w"]


def test_a_busy_database_is_reported_as_busy(shared_store):
    holder, writer = shared_store(), shared_store(busy_timeout=0.05)
    with holder.transaction(), pytest.raises(StoreBusyError) as busy:  # the holder keeps the write lock
        writer.commit(WriteSet(submissions=[[build_task(task_id="a", task_type="t")]]), ME)
    assert "locked by another process" in str(busy.value) and "busy_timeout" in str(busy.value)
    writer.commit(WriteSet(submissions=[[build_task(task_id="a", task_type="t")]]), ME)  # free again: it passes
    assert set(writer.get_tasks(["a"])) == {"a"}


AWKWARD = ['say "hi"', "back\\slash", "{braces},commas", "NULL", "", "line\nbreak\ttab", "ünïcödé ✓", "'quote'"]


def test_awkward_text_survives_saves_of_many_tasks_at_once(store):
    """Stores may write many rows in one statement: every value must come back exactly as it went in."""
    ids = [f"t{i}" for i in range(len(AWKWARD))]
    tasks = [
        build_task(task_id=tid, task_type="t", inputs={"text": text}) for tid, text in zip(ids, AWKWARD, strict=True)
    ]
    store.commit(WriteSet(submissions=[tasks]), ME)
    records = [
        TaskRecord(task, TaskState.FAILED, attempts=2, failures=2, agent_id=text or None, owner=ME, ready_at=1.25,
                   started_at=2, finished_at=3.5, error=TaskError("ValueError", text, f"trace {text}"),
                   reason=text, progress=0.5, progress_message=text, placement=text or None)
        for task, text in zip(tasks, AWKWARD, strict=True)
    ]  # fmt: skip
    result = store.commit(WriteSet(saves=[TaskSave.of(r, 1) for r in records]), ME)
    assert not result.conflicts
    stored = store.get_tasks(ids)
    for record, text in zip(records, AWKWARD, strict=True):
        got = stored[record.task.task_id]
        assert got.task.inputs == {"text": text}
        assert (got.agent_id, got.reason, got.progress_message, got.placement) == (
            text or None,
            text,
            text,
            text or None,
        )
        assert got.error == record.error and got.state is TaskState.FAILED and got.version == 2
        assert (got.ready_at, got.started_at, got.finished_at, got.progress) == (1.25, 2.0, 3.5, 0.5)


def test_change_polling_reuses_the_specs_the_caller_knows(store):
    task = build_task(task_id="a", task_type="t", inputs={"n": [1, 2]}, metadata={"who": "me"})
    store.commit(WriteSet(submissions=[[task]]), OTHER)
    store.commit(WriteSet(saves=[save("a", 1, writer=OTHER)]), OTHER)
    fresh, _ = store.changes_since(0, ME)
    reused, _ = store.changes_since(0, ME, known={"a": task}.get)
    # the same record either way; with the spec known, it is that very object (not decoded again)
    assert reused == fresh and reused[0].task is task and fresh[0].task is not task
    assert store.changes_since(0, ME, known=lambda task_id: None) == (fresh, store.current_change_seq())


def test_the_dead_letter_queue_is_read_a_page_at_a_time_oldest_first(store):
    parked_at = {"e": 5.0, "a": 7.0, "d": 5.0, "b": 6.0, "c": 5.0}  # three parked at the same time
    tasks = [build_task(task_id=task_id, task_type="t") for task_id in parked_at]
    store.commit(WriteSet(submissions=[[*tasks, build_task(task_id="waiting", task_type="t")]]), ME)
    parked = [TaskRecord(task, TaskState.PARKED, attempts=1, failures=1, parked_at=parked_at[task.task_id],
                         reason="parked for a person") for task in tasks]  # fmt: skip
    assert not store.commit(WriteSet(saves=[TaskSave.of(record, 1) for record in parked]), ME).conflicts
    pages, after = [], None
    while page := store.errors.parked_page(after, 2):
        pages.append([record.task.task_id for record in page])
        after = (page[-1].parked_at, page[-1].task.task_id)
    assert pages == [["c", "d"], ["e", "b"], ["a"]]  # when parked, then id: each once, whatever the page size
    assert [r.task.task_id for r in store.errors.parked_page(None, 10)] == ["c", "d", "e", "b", "a"]
    assert sorted(store.errors.parked_ids()) == sorted(parked_at)
