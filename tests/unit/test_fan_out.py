"""Fan-out's pure parts: item ids, the list a step fans out over, which items may start, and ``${{ }}`` text
with more than one reference."""

from __future__ import annotations

import pytest

from pepper.errors import ExpressionError, ValidationError, WorkflowDefinitionError
from pepper.model import expressions
from pepper.model.fan_out import FanOut, item_context, item_id, item_task, items_of, parse_item_id
from pepper.model.task import TaskState
from pepper.model.workflow import MAX_EXPECTED_ITEMS, make_step


def test_item_ids_round_trip_and_other_ids_are_not_items():
    assert item_id("run-1", "docs", 12) == "run-1/docs[12]"
    assert parse_item_id("run-1/docs[12]") == ("run-1", "docs", 12)
    assert parse_item_id("run-1/docs") is None and parse_item_id("docs[1]") is None


def test_items_come_from_an_expression_or_a_list_and_anything_else_names_its_type():
    step = make_step("docs", "t", dependencies=["scan"], for_each="${{ steps.scan.result.modules }}")
    context = item_context({}, {"scan": {"modules": ["a", "b"]}}, set())
    assert items_of(step, context) == ["a", "b"]
    assert items_of(make_step("x", "t", for_each=[1, 2]), {}) == [1, 2]
    bad = item_context({}, {"scan": {"modules": {"a": 1}}}, set())
    with pytest.raises(ExpressionError, match=r"must give a list, but .* gave a dict"):
        items_of(step, bad)


def test_a_list_has_at_most_as_many_items_as_expected_items_may_say():
    step = make_step("docs", "t", for_each="${{ inputs.pages }}")
    assert len(items_of(step, item_context({"pages": [0] * MAX_EXPECTED_ITEMS}, {}, set()))) == MAX_EXPECTED_ITEMS
    with pytest.raises(
        ValidationError, match=r"for_each of step 'docs' \(\$\{\{ inputs.pages \}\}\) gave 10,001 items"
    ):
        items_of(step, item_context({"pages": [0] * (MAX_EXPECTED_ITEMS + 1)}, {}, set()))
    with pytest.raises(
        WorkflowDefinitionError, match=r"step .x.: for_each may list at most 10,000 items .*, got 10,001"
    ):
        make_step("x", "t", for_each=[0] * (MAX_EXPECTED_ITEMS + 1))  # a list written out is refused up front


def test_an_item_task_has_its_item_and_index_and_the_steps_references_resolved():
    inputs = {"page": "${{ index }}-${{ item }}.md", "raw": "${{ item }}", "root": "${{ inputs.root }}"}
    step = make_step("docs", "t", dependencies=["scan"], for_each="${{ steps.scan.result }}", inputs=inputs)
    context = item_context({"root": "/site"}, {"scan": ["api"]}, set())
    task = item_task(step, "run-1", 0, {"name": "api"}, context, 5.0)
    assert task.task_id == "run-1/docs[0]" and task.dependencies == ("run-1/scan",)
    assert task.inputs["page"] == '0-{"name": "api"}.md'
    assert task.inputs["raw"] == {"name": "api"} and task.inputs["root"] == "/site"


def test_no_more_than_max_parallel_items_start_and_a_broken_item_stops_the_rest():
    fan = FanOut(make_step("x", "t", for_each=list(range(5)), max_parallel=2), list(range(5)), {}, 0.0)
    assert fan.to_start() == [0, 1]
    fan.started |= {0, 1}
    assert fan.to_start() == []
    fan.settle(1, TaskState.COMPLETED)
    assert fan.to_start() == [2]
    fan.started.add(2)
    fan.settle(0, TaskState.FAILED)
    assert fan.to_start() == [] and fan.broken == 0 and not fan.done
    fan.settle(2, TaskState.COMPLETED)
    assert fan.done and fan.ending() is TaskState.FAILED


def test_a_parked_item_holds_its_place_and_the_step_follows_how_it_ends():
    fan = FanOut(make_step("x", "t", for_each=[0, 1, 2], max_parallel=2), [0, 1, 2], {}, 0.0)
    fan.started |= {0, 1}
    fan.settle(0, TaskState.PARKED)  # waits for a person: neither broken nor done, and still in its slot
    fan.settle(1, TaskState.COMPLETED)
    assert fan.broken is None and fan.running == [0] and fan.to_start() == [2] and not fan.done
    fan.started.add(2)
    fan.settle(2, TaskState.COMPLETED)
    assert fan.to_start() == [] and not fan.done
    fan.settle(0, TaskState.COMPLETED)  # replayed (or skipped) and completed: the step completes
    assert fan.done and fan.ending() is TaskState.COMPLETED
    dropped = FanOut(make_step("x", "t", for_each=[0]), [0], {}, 0.0)
    dropped.started.add(0)
    dropped.settle(0, TaskState.PARKED)
    dropped.settle(0, TaskState.FAILED)  # dropped from the dead-letter queue: the step fails
    assert dropped.done and dropped.broken == 0 and dropped.ending() is TaskState.FAILED


def test_text_with_two_references_keeps_the_text_between_them():
    assert expressions.resolve("${{ inputs.a }}-${{ inputs.b }}", {"inputs": {"a": 1, "b": 2}}) == "1-2"
    assert expressions.resolve("${{ inputs.a }}", {"inputs": {"a": [1]}}) == [1]


def test_a_fan_outs_span_runs_from_its_first_items_start_to_its_last_items_end():
    fan = FanOut(make_step("x", "t", for_each=[0, 1, 2]), [0, 1, 2], {}, 50.0)  # read again at 50 by a new driver
    assert fan.span(60.0) == (50.0, 60.0)  # no item tells: from the reading to now
    fan.timed(30.0, None)  # still running when the run changed hands
    fan.timed(10.0, 20.0)
    fan.timed(None, 55.0)  # cancelled before it started
    fan.timed(52.0, 58.0)
    assert fan.span(70.0) == (10.0, 58.0)
