"""The store's list of tasks: newest first, searched by id, and paged by a cursor that outlives its task."""

from __future__ import annotations

from pepper.model.record import TaskRecord
from pepper.model.submission import build_task
from pepper.model.task import TaskState
from pepper.store.protocol import Store, TaskPlace, TaskSave, WriteSet

ME = "worker-me"


def submit(store: Store, *ids: str, at: float = 0.0) -> None:
    """One task per id, in that order, the n-th submitted at ``at + n``."""
    tasks = [build_task(task_id=task_id, task_type="t", now=at + n) for n, task_id in enumerate(ids)]
    store.commit(WriteSet(submissions=[tasks]), ME)


def finish(store: Store, *ids: str) -> None:
    """Complete the tasks at time 10 (each over its first stored version)."""
    records = store.get_tasks(ids)
    ended = [
        TaskSave.of(TaskRecord(records[i].task, TaskState.COMPLETED, attempts=1, started_at=9.0, finished_at=10.0), 1)
        for i in ids
    ]
    store.commit(WriteSet(saves=ended), ME)


def ids(records: list[TaskRecord]) -> list[str]:
    return [r.task.task_id for r in records]


def test_the_id_search_holds_its_text_in_either_case_and_takes_wildcards_as_themselves(store):
    submit(store, "Alpha-1", "alpha_2", "beta%3", "gamma\\4", "xALPHAy", "alphax2", "Été-5", "été-6")
    assert ids(store.list_tasks(id_contains="alpha")) == ["alphax2", "xALPHAy", "alpha_2", "Alpha-1"]
    assert ids(store.list_tasks(id_contains="A_2")) == ["alpha_2"]  # not alphax2: "_" is itself
    assert ids(store.list_tasks(id_contains="%")) == ["beta%3"]
    assert ids(store.list_tasks(id_contains="\\")) == ["gamma\\4"]
    assert ids(store.list_tasks(id_contains="été")) == ["été-6"]  # ASCII letters only are folded
    assert ids(store.list_tasks(id_contains="nothing")) == []
    first = store.list_tasks(limit=2, id_contains="ALPHA")
    rest = store.list_tasks(limit=10, id_contains="ALPHA", after=first[-1].task.task_id)
    assert ids(first) + ids(rest) == ["alphax2", "xALPHAy", "alpha_2", "Alpha-1"]
    assert ids(store.list_tasks(TaskState.COMPLETED, id_contains="alpha")) == []


def test_a_cursor_naming_a_pruned_task_goes_on_from_where_it_was(store):
    """Known by its time alone (a status), a pruned task's place is before the oldest task submitted later."""
    submit(store, "t0", "t1", "t2", "t3", "t4", "t5")
    place = {r.task.task_id: TaskPlace(r.task.task_id, r.task.created_at) for r in store.list_tasks()}
    finish(store, "t2", "t3")
    assert store.prune(horizon=11.0)["tasks"] == 2
    assert ids(store.list_tasks(after=place["t3"])) == ["t1", "t0"]
    assert ids(store.list_tasks(limit=1, after=place["t3"], id_contains="t")) == ["t1"]
    assert ids(store.list_tasks(after=place["t4"])) == ["t1", "t0"]  # a stored one: exactly after it
    assert ids(store.list_tasks(after="t3")) == []  # an id alone cannot say where it was
    submit(store, "t3", at=20.0)  # the id again, a new task: the old place still holds
    assert ids(store.list_tasks(after=place["t3"])) == ["t1", "t0"]
    assert ids(store.list_tasks(after="t3")) == ["t5", "t4", "t1", "t0"]
    finish(store, "t5")
    store.prune(horizon=11.0)
    assert ids(store.list_tasks(after=place["t5"])) == ["t4", "t1", "t0"]  # before the oldest one submitted later


def test_a_cursor_past_the_newest_stored_task_lists_every_one(store):
    submit(store, "a", "b")
    place = TaskPlace("b", store.get_tasks(["b"])["b"].task.created_at)
    finish(store, "b")
    store.prune(horizon=11.0)
    assert ids(store.list_tasks(after=place)) == ["a"]


def test_the_place_of_a_task_in_a_batch_holds_its_order_after_it_was_pruned(store):
    batch = [build_task(task_id=f"b{n}", task_type="t", now=1.0) for n in range(5)]  # all submitted at once
    store.commit(WriteSet(submissions=[batch]), ME)
    at = store.get_tasks(["b2"])["b2"].task.created_at
    place = store.task_place("b2", at)
    assert place is not None and place.task_id == "b2" and place.created_at == at and place.seq is not None
    assert store.task_place("b2", at + 1) is None  # another task of that id, or none
    assert ids(store.list_tasks(after=place)) == ["b1", "b0"]
    finish(store, "b2")
    store.prune(horizon=11.0)
    assert store.task_place("b2", at) is None
    assert ids(store.list_tasks(after=place)) == ["b1", "b0"]
    assert ids(store.list_tasks(after=place, id_contains="0")) == ["b0"]
    assert ids(store.list_tasks(after=TaskPlace("b2", at))) == ["b4", "b3", "b1", "b0"]  # its time alone: all again
