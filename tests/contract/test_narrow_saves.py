"""Task saves write only the columns they change: the rows read back as if every column had been written."""

from __future__ import annotations

from dataclasses import replace

import pytest

from pepper.errors import WriteRefusedError
from pepper.model import codec
from pepper.model.record import TaskRecord, stored_values
from pepper.model.recovery import RecoveryState
from pepper.model.status import TaskError
from pepper.model.submission import build_task
from pepper.model.task import TaskState
from pepper.store.protocol import TaskSave, WriteSet

ME, OTHER = "worker-me", "worker-other"


def lifecycle(task_id: str) -> list[TaskRecord]:
    """A task claimed, failed and backing off, claimed again, then completed: columns set, then cleared."""
    task = build_task(task_id=task_id, task_type="t", now=1.0)
    pending = TaskRecord(task, TaskState.PENDING, ready_at=1.0)
    claimed = replace(pending, state=TaskState.IN_PROGRESS, attempts=1, agent_id="agent", owner=ME, started_at=2.0,
                      progress=0.5, progress_message="half")  # fmt: skip
    retrying = replace(claimed, state=TaskState.PENDING, failures=1, owner=None, ready_at=3.0,
                       next_attempt_at=9.0, error=TaskError("Boom", "it broke"),
                       recovery=RecoveryState(failed_agents=("agent",)))  # fmt: skip
    again = replace(retrying, state=TaskState.IN_PROGRESS, attempts=2, owner=ME, started_at=10.0,
                    next_attempt_at=None, progress=None, progress_message=None, placement="agent")  # fmt: skip
    result = codec.encode({"pages": [1, 2]})
    done = replace(again, state=TaskState.COMPLETED, owner=None, finished_at=11.0, result=codec.decode(result),
                   result_json=result, progress=1.0)  # fmt: skip
    return [claimed, retrying, again, done]


#: enough tasks a commit for their saves to go column by column (a commit of a few writes every column)
IDS = [f"t{i:02}" for i in range(20)]


def submit(store, ids=IDS):
    store.commit(WriteSet(submissions=[[build_task(task_id=tid, task_type="t", now=1.0) for tid in ids]]), ME)


def test_each_step_of_a_task_reads_back_exactly_as_saved(store):
    submit(store)
    steps = {tid: lifecycle(tid) for tid in IDS}
    for version in range(1, 5):
        saves = [TaskSave.of(steps[tid][version - 1], version) for tid in IDS]
        assert store.commit(WriteSet(saves=saves), ME).conflicts == set()
        stored = store.get_tasks(IDS)
        for tid in IDS:
            assert stored[tid].version == version + 1
            assert stored_values(stored[tid]) == stored_values(steps[tid][version - 1]), (tid, version)
    # the saves went column by column: statements setting some of the columns were made
    assert any(name.startswith("save_task_") for name in store.statements)


def test_a_save_over_a_row_someone_else_changed_writes_nothing_then_all_of_it(shared_store):
    mine, theirs = shared_store(), shared_store()
    submit(mine)
    steps = {tid: lifecycle(tid) for tid in IDS}
    mine.commit(WriteSet(saves=[TaskSave.of(steps[tid][0], 1) for tid in IDS]), ME)
    # another process cancels one task: version 3, a state this store has not seen
    cancelled = replace(steps["t00"][0], state=TaskState.CANCELLED, owner=None, reason="stop",
                        cancel_requested=True, finished_at=5.0)  # fmt: skip
    assert theirs.commit(WriteSet(saves=[TaskSave.of(cancelled, 2)]), OTHER).conflicts == set()

    result = mine.commit(WriteSet(saves=[TaskSave.of(steps[tid][1], 2) for tid in IDS]), ME)
    assert result.conflicts == {"t00"}
    stored = mine.get_tasks(IDS)
    assert stored_values(stored["t00"]) == stored_values(cancelled)
    assert all(stored_values(stored[tid]) == stored_values(steps[tid][1]) for tid in IDS[1:])

    # over the version it read, every column is written (this store never knew that version's values)
    others = [TaskSave.of(steps[tid][2], 3) for tid in IDS[1:]]
    assert mine.commit(WriteSet(saves=[TaskSave.of(steps["t00"][1], 3), *others]), ME).conflicts == set()
    record = theirs.get_tasks(["t00"])["t00"]
    assert record.version == 4 and stored_values(record) == stored_values(steps["t00"][1])


def test_a_refused_commit_leaves_the_known_rows_as_they_were(store):
    submit(store, [*IDS, "huge"])
    steps = {tid: lifecycle(tid) for tid in IDS}
    store.commit(WriteSet(saves=[TaskSave.of(steps[tid][0], 1) for tid in IDS]), ME)
    huge = TaskSave.of(TaskRecord(build_task(task_id="huge", task_type="t", now=1.0), TaskState.PENDING,
                                  attempts=2**70), 1)  # fmt: skip
    retrying = [TaskSave.of(steps[tid][1], 2) for tid in IDS]
    with pytest.raises(WriteRefusedError):
        store.commit(WriteSet(saves=[*retrying, huge]), ME)
    assert all(stored_values(r) == stored_values(steps[r.task.task_id][0]) for r in store.get_tasks(IDS).values())
    assert store.commit(WriteSet(saves=retrying), ME).conflicts == set()
    assert all(stored_values(r) == stored_values(steps[r.task.task_id][1]) for r in store.get_tasks(IDS).values())


def test_the_rows_known_are_bounded_and_a_row_let_go_is_written_whole(store):
    submit(store)
    store.narrow.limit = 8
    steps = {tid: lifecycle(tid) for tid in IDS}
    for version in range(1, 5):  # the claims of the first twelve are let go; their later saves write every column
        assert store.commit(WriteSet(saves=[TaskSave.of(steps[tid][version - 1], version) for tid in IDS]),
                            ME).conflicts == set()  # fmt: skip
        stored = store.get_tasks(IDS)
        assert all(stored_values(stored[tid]) == stored_values(steps[tid][version - 1]) for tid in IDS)
        assert len(store.narrow) == (8 if version < 4 else 0)  # ended tasks are not kept


def test_saves_of_different_columns_in_one_commit_all_read_back(store):
    ids = [f"t{i}" for i in range(40)]  # few rows go as one statement; many, one statement per set of columns
    store.commit(WriteSet(submissions=[[build_task(task_id=tid, task_type="t", now=1.0) for tid in ids]]), ME)
    steps = {tid: lifecycle(tid) for tid in ids}
    done = dict.fromkeys(ids, -1)  # the last step saved
    for size in (2, 3, 20, 40):  # tasks one or two steps on: their saves change different columns
        saves = []
        for i, tid in enumerate(ids[:size]):
            step = min(done[tid] + 1 + i % 2, len(steps[tid]) - 1)
            if step > done[tid]:
                done[tid] = step
                saves.append(TaskSave.of(steps[tid][step], store.get_tasks([tid])[tid].version))
        assert store.commit(WriteSet(saves=saves), ME).conflicts == set()
        stored = store.get_tasks(ids)
        for save in saves:
            assert stored_values(stored[save.task.task_id]) == save.values, save.task.task_id


def test_the_values_of_a_pruned_row_are_never_used_for_a_new_row_of_its_id(shared_store):
    mine, theirs = shared_store(), shared_store()
    submit(mine)
    steps = {tid: lifecycle(tid) for tid in IDS}
    # this store claimed them and saw them fail: it knows their rows at version 3
    mine.commit(WriteSet(saves=[TaskSave.of(steps[tid][0], 1) for tid in IDS]), ME)
    mine.commit(WriteSet(saves=[TaskSave.of(steps[tid][1], 2) for tid in IDS]), ME)
    assert len(mine.narrow) == len(IDS)
    # another process cancels and prunes them, then stores new tasks under those ids and places them twice:
    # the new rows are at version 3 too, holding other values
    cancelled = [TaskSave.of(replace(steps[tid][1], state=TaskState.CANCELLED, finished_at=5.0), 3) for tid in IDS]
    assert theirs.commit(WriteSet(saves=cancelled), OTHER).conflicts == set()
    assert theirs.prune(10.0)["tasks"] == len(IDS)
    new = {tid: build_task(task_id=tid, task_type="t", now=20.0) for tid in IDS}
    theirs.commit(WriteSet(submissions=[list(new.values())]), OTHER)
    for _ in range(2):
        theirs.set_placements(dict.fromkeys(IDS, "agent"), OTHER)
    assert {r.version for r in mine.get_tasks(IDS).values()} == {3}
    # When this store claims the new rows over version 3, many in one commit
    claims = [TaskSave.of(TaskRecord(new[tid], TaskState.IN_PROGRESS, attempts=1, agent_id="agent", owner=ME,
                                     ready_at=20.0, started_at=21.0, placement="agent"), 3) for tid in IDS]  # fmt: skip
    assert mine.commit(WriteSet(saves=claims), ME).conflicts == set()
    # Then every row holds every value of its claim (none was left out as "unchanged" from the pruned row)
    stored = theirs.get_tasks(IDS)
    assert all(stored_values(stored[save.task.task_id]) == save.values for save in claims)
