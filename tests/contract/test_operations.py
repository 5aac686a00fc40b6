"""Every store: task log chunks, the shared state of alert rules, and pruning."""

from __future__ import annotations

import pytest

from pepper.model.submission import build_task
from pepper.model.task_log import render
from pepper.store.protocol import WriteSet
from tests.contract.test_store import ME, save


def test_log_chunks_read_back_in_order_with_cuts_marked_and_nul_characters_replaced(store):
    store.logs.write([("t", 1, 0, 0, 6, 1.0, "head\x00\n", 0), ("t", 1, 1, 6, 12, 2.0, "mid-1\n", 0),
                      ("t", 1, 2, 12, 18, 3.0, "tail!\n", 1), ("t", 2, 0, 0, 3, 4.0, "two", 0)])  # fmt: skip
    store.logs.write([], [("t", 1, 1)])  # the middle is cut
    chunks = store.logs.read("t", 1)
    assert [c.seq for c in chunks] == [0, 2] and chunks[-1].ended
    assert render(chunks) == "head\ufffd\n\n... 6 bytes cut ...\ntail!\n"
    assert [c.seq for c in store.logs.read("t", 1, 2)] == [2]
    before = store.logs.before("t", 1, 2)
    assert before is not None and before.seq == 0
    assert store.logs.attempts("t") == [1, 2]
    assert store.logs.read("other", 1) == []


def test_an_alert_rule_fires_once_per_crossing_whoever_asks(open_store):
    if not open_store.shared:
        pytest.skip("each open of this store is a database of its own")
    first, second = open_store(), open_store()
    assert first.alert_states.fire("errors", 0.9, 10.0) is True
    assert second.alert_states.fire("errors", 0.95, 11.0) is False  # the same crossing
    assert second.alert_states.resolve("errors", 0.1, 12.0) is True
    assert first.alert_states.resolve("errors", 0.1, 12.5) is False
    assert second.alert_states.fire("errors", 0.8, 13.0) is True  # the next crossing
    state = first.alert_states.states()["errors"]
    assert state.firing and state.fired_count == 2 and state.value == 0.8


def test_the_alert_of_a_firing_is_stored_by_the_one_caller_that_fired(open_store):
    if not open_store.shared:
        pytest.skip("each open of this store is a database of its own")
    first, second = open_store(), open_store()

    def row(alert_id: str, value: float, at: float) -> tuple[object, ...]:
        return (alert_id, "errors", "config", None, "error_rate", value, 0.5, 1, at, "error_rate is high")

    assert first.alert_states.fire("errors", 0.9, 10.0, row("a1", 0.9, 10.0)) is True
    assert second.alert_states.fire("errors", 0.95, 11.0, row("a2", 0.95, 11.0)) is False  # the same crossing
    assert [a["alert_id"] for a in second.alerts.recent()] == ["a1"]
    second.alert_states.resolve("errors", 0.1, 12.0)
    assert second.alert_states.fire("errors", 0.8, 13.0, row("a3", 0.8, 13.0)) is True
    assert [(a["alert_id"], a["source"], a["value"]) for a in first.alerts.recent()] == [
        ("a3", "config", 0.8),
        ("a1", "config", 0.9),
    ]


def test_alerts_are_numbered_in_the_order_stored_whatever_their_time_and_no_number_comes_back(open_store):
    first = open_store()
    second = open_store() if open_store.shared else first  # two writers, where the store can be shared

    def row(alert_id: str, at: float) -> tuple[object, ...]:
        return (alert_id, "errors", "config", None, "error_rate", 0.9, 0.5, 1, at, "error_rate is high")

    assert first.alerts.last_seq() == 0 and first.alerts.after(0) == []
    first.alerts.record(row("late-clock", 100.0))
    second.alerts.record(row("early-clock", 99.0))  # stored second, though its writer's clock is behind
    second.alert_states.fire("errors", 0.9, 98.0, row("fired", 98.0))
    stored = first.alerts.after(0)
    assert [a["alert_id"] for a in stored] == ["late-clock", "early-clock", "fired"]
    seqs = [a["seq"] for a in stored]
    assert seqs == sorted(seqs) and len(set(seqs)) == 3 and second.alerts.last_seq() == seqs[-1]
    assert [a["alert_id"] for a in first.alerts.after(seqs[0], limit=1)] == ["early-clock"]
    assert first.alerts.after(seqs[-1]) == []
    second.alert_states.resolve("errors", 0.1, 101.0)  # (a rule still firing keeps its alert)
    first.prune(10**12)  # every alert goes, the last one too
    assert first.alerts.after(0) == []
    second.alerts.record(row("after-prune", 1.0))
    (again,) = first.alerts.after(0)
    assert again["alert_id"] == "after-prune" and again["seq"] > seqs[-1]  # never a number given before


def test_prune_removes_old_finished_work_and_keeps_unfinished_work_and_its_dependencies(store):
    old = [build_task(task_id=f"old-{n}", task_type="t", now=1.0) for n in range(3)]
    needed = build_task(task_id="needed", task_type="t", now=1.0)
    waiting = build_task(task_id="waiting", task_type="t", dependencies=["needed"], now=1.0)
    store.commit(WriteSet(submissions=[[*old, needed, waiting]]), ME)
    store.commit(WriteSet(saves=[save(t.task_id, 1, "completed") for t in [*old, needed]]), ME)
    store.logs.write([("old-0", 1, 0, 0, 2, 1.0, "x\n", 1), ("needed", 1, 0, 0, 2, 1.0, "y\n", 1)])
    store.alerts.record(("a#1", "a", "performance", None, "error_rate", 0.5, 0.1, 1, 1.0, "m"))
    counted = store.prune(10**12, dry_run=True)
    assert counted == {"tasks": 3, "runs": 0, "attempts": 0, "errors": 0, "logs": 1, "approvals": 0, "alerts": 1}
    assert len(store.get_tasks([t.task_id for t in old])) == 3  # a dry run changes nothing
    assert store.prune(10**12) == counted
    assert set(store.get_tasks(["old-0", "old-1", "old-2", "needed", "waiting"])) == {"needed", "waiting"}
    assert store.logs.attempts("needed") == [1] and store.alerts.recent() == []
    assert store.prune(10**12) == dict.fromkeys(counted, 0)
    assert store.prune(0.5) == dict.fromkeys(counted, 0)  # nothing ended that long ago
