"""Workflows as data: steps, validation, expressions and what a run does next - pure, no engine."""

from __future__ import annotations

import re

import pytest

from pepper.errors import ExpressionError, ValidationError, WorkflowDefinitionError
from pepper.model import expressions
from pepper.model.task import TaskState
from pepper.model.workflow import (
    INPUTS_KEY,
    REFS_KEY,
    RUN_KEY,
    STEP_KEY,
    WorkflowSpec,
    make_step,
    missing_conditions,
    new_run_id,
    start_inputs,
    step_task,
)
from pepper.model.workflow_run import RunState
from pepper.scheduling.progression import advance

C, F, X, P, B = TaskState.COMPLETED, TaskState.FAILED, TaskState.CANCELLED, TaskState.PENDING, TaskState.BLOCKED


def spec_of(*steps, fail_fast=False):
    spec = WorkflowSpec("wf", fail_fast=fail_fast)
    for step in steps:
        spec = spec.with_step(step)
    return spec


def diamond(**conditions):
    return spec_of(
        make_step("a", "t"),
        make_step("b", "t", dependencies=["a"], condition=conditions.get("b")),
        make_step("c", "t", dependencies=["a"], condition=conditions.get("c")),
        make_step("d", "t", dependencies=["b", "c"]),
    )


# -- validation ---------------------------------------------------------------------------------


def test_validation_names_duplicates_unknown_dependencies_and_cycles():
    spec = spec_of(make_step("a", "t"))
    with pytest.raises(WorkflowDefinitionError, match="already has a step 'a'") as dup:
        spec.with_step(make_step("a", "t"))
    assert dup.value.step_id == "a"
    with pytest.raises(
        WorkflowDefinitionError, match=r"depends on 'drafr', which is not a step .*Did you mean 'draft'"
    ) as e:
        spec_of(make_step("draft", "t"), make_step("c", "t", dependencies=["drafr"])).validate()
    assert (e.value.step_id, e.value.field) == ("c", "dependencies")
    looping = spec_of(make_step("a", "t", dependencies=["c"]), make_step("b", "t", dependencies=["a"]),
                      make_step("c", "t", dependencies=["b"]))  # fmt: skip
    with pytest.raises(WorkflowDefinitionError, match=r"cycle: a -> c -> b -> a"):
        looping.validate()
    with pytest.raises(WorkflowDefinitionError, match="has no steps"):
        WorkflowSpec("empty").validate()
    assert diamond().validate() == ["a", "b", "c", "d"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"step_id": "a/b"}, "step id must be"),
        ({"step_id": ""}, "step id must be"),
        ({"task_type": ""}, "task_type must be a non-empty string"),
        ({"timeout": "soon"}, "timeout"),
        ({"priority": "urgent"}, "priority"),
        ({"max_retries": -1}, "max_retries"),
        ({"inputs": [1, 2]}, "inputs must be a mapping"),
        ({"inputs": {"x": object()}}, "JSON-serialisable"),
        ({"dependencies": ["a"], "step_id": "a"}, "depends on itself"),
        ({"condition": "import os"}, "not a valid expression"),
        ({"condition": "steps.other.result"}, "does not depend on 'other'"),
        ({"inputs": {"x": "${{ steps.other.result }}"}}, "does not depend on 'other'"),
    ],
)
def test_a_bad_step_is_refused_with_its_reason(kwargs, message):
    fields = {"step_id": "s", "task_type": "t", **kwargs}
    with pytest.raises(ValidationError, match=message):
        make_step(fields.pop("step_id"), fields.pop("task_type"), **fields)


def test_a_spec_round_trips_through_its_stored_form_and_python_conditions_are_marked_missing():
    spec = spec_of(
        make_step(
            "a",
            "t",
            inputs={"x": 1},
            priority="high",
            timeout="30s",
            max_retries=2,
            requirements={"skills": ["md"]},
            agent="writer",
        ),
        make_step("b", "t", dependencies="a", condition="steps.a.result > 1"),
        make_step("c", "t", dependencies=["a"], condition=lambda ctx: True),
    )
    again = WorkflowSpec.from_dict(spec.to_dict())
    assert [s.step_id for s in again.steps] == ["a", "b", "c"]
    assert again.steps[0].template == spec.steps[0].template and again.steps[1].condition == "steps.a.result > 1"
    assert missing_conditions(again) == ["c"] and missing_conditions(spec) == []


def test_a_sub_workflows_default_inputs_are_kept_in_the_stored_form():
    child = WorkflowSpec("child", (make_step("w", "t"),), inputs={"page": "a.md"})
    spec = spec_of(make_step("docs", None, workflow=child))
    again = WorkflowSpec.from_dict(spec.to_dict())
    assert again.steps[0].workflow is not None and again.steps[0].workflow.inputs == {"page": "a.md"}
    assert "inputs" not in WorkflowSpec.from_dict(again.steps[0].workflow.to_dict() | {"inputs": {}}).to_dict()


CHILD = WorkflowSpec("child", (make_step("w", "t"),))
GATE = {"timeout": "1h"}


@pytest.mark.parametrize(
    ("kwargs", "field", "message"),
    [
        (
            {"task_type": "t", "workflow": CHILD},
            "task_type",
            "sub-workflow step (workflow), whose steps run on their own agents: it takes no task type (got 't')",
        ),
        ({"agent": "w", "workflow": CHILD}, "agent", "runs on no agent (got agent 'w')"),
        ({"task_type": "t", "approval": GATE}, "task_type", "approval step (approval), which a person decides"),
        ({"agent": "w", "approval": GATE}, "agent", "runs on no agent"),
        ({"recovery": "dead_letter", "workflow": CHILD}, "policy", "strategy 'dead_letter' (in 'dead_letter')"),
        ({"recovery": "retry(2) -> skip", "approval": GATE}, "policy", "strategy 'retry'"),
        ({"recovery": "reassign -> abort", "workflow": CHILD}, "policy", "strategy 'reassign'"),
        ({"max_retries": 1, "approval": GATE}, "max_retries", "cannot be retried (got retries 1)"),
    ],
)
def test_an_approval_or_a_sub_workflow_step_takes_no_type_agent_or_recovery_that_cannot_apply(kwargs, field, message):
    fields = {"task_type": None, **kwargs}
    with pytest.raises(WorkflowDefinitionError, match=re.escape(message)) as refused:
        make_step("s", fields.pop("task_type"), **fields)
    assert (refused.value.step_id, refused.value.field) == ("s", field)
    if field == "policy":
        assert "only skip or abort apply to it" in str(refused.value)


def test_an_approval_or_a_sub_workflow_step_keeps_its_own_type_and_skip_or_abort():
    assert make_step("g", "approval", approval=GATE, recovery="skip").task_type == "approval"
    assert make_step("c", "workflow", workflow=CHILD, recovery="abort").task_type == "workflow"
    assert make_step("c", None, workflow=CHILD, recovery=["skip"]).template.policy is not None


def test_a_stored_approval_or_sub_workflow_step_loads_with_only_what_applied_to_it():
    child = CHILD.to_dict()
    stored = {"name": "old", "steps": [
        {"id": "gate", "type": "work", "agent": "w", "retries": 2, "approval": {"timeout": 60}},
        {"id": "sub", "type": "work", "workflow": child, "recovery": [{"strategy": "dead_letter"}]},
        {"id": "lenient", "type": "workflow", "workflow": child, "recovery": "retry(1) -> skip"},
        {"id": "strict", "type": "workflow", "workflow": child, "recovery": "dead_letter -> skip"},
    ]}  # fmt: skip
    spec = WorkflowSpec.from_dict(stored)
    gate, sub, lenient, strict = spec.steps
    assert (gate.task_type, gate.agent, gate.template.max_retries, gate.template.policy) == ("approval", None, 0, None)
    assert (sub.task_type, sub.template.policy) == ("workflow", None)
    assert str(lenient.template.policy) == "skip" and strict.template.policy is None


def test_run_ids_are_namespaced_by_workflow_and_unique():
    ids = {new_run_id("docs site!") for _ in range(200)}
    assert len(ids) == 200 and all(i.startswith("docs-site-") and "/" not in i for i in ids)


# -- inputs and references ----------------------------------------------------------------------


def test_a_steps_task_is_namespaced_and_gets_the_run_inputs_under_its_own():
    inputs = {"page": "${{ inputs.site }}/index.md", "text": "${{ steps.draft.result.text }}", "n": 2}
    step = make_step("review", "t", dependencies=["draft"], inputs=inputs)
    task = step_task(step, "run-1", {"site": "docs", "n": 1}, now=5.0)
    assert task.task_id == "run-1/review" and task.dependencies == ("run-1/draft",)
    assert task.inputs == {"site": "docs", "n": 2, "page": "docs/index.md", "text": "${{ steps.draft.result.text }}"}
    assert task.metadata[RUN_KEY] == "run-1" and task.metadata[STEP_KEY] == "review"
    assert task.metadata[REFS_KEY] == ["text"] and INPUTS_KEY not in task.metadata
    started = start_inputs(task, {"draft": {"text": "hello"}})
    assert started["text"] == "hello" and started["page"] == "docs/index.md"
    with pytest.raises(ExpressionError, match=r"has no key 'text' \(keys: words\)"):
        start_inputs(task, {"draft": {"words": 3}})


def test_a_reference_to_an_input_the_run_was_not_given_names_the_step():
    step = make_step("publish", "t", inputs={"page": "${{ inputs.site }}/index.md"})
    with pytest.raises(ExpressionError, match=r"^step 'publish': .*site") as caught:
        step_task(step, "run-1", {"n": 1}, now=0.0)
    assert caught.value.expression is not None and "inputs.site" in caught.value.expression


def test_a_reference_to_both_inputs_and_a_result_is_resolved_when_the_step_starts():
    step = make_step("b", "t", dependencies=["a"], inputs={"n": "${{ steps.a.result + inputs.base }}"})
    task = step_task(step, "r", {"base": 10}, now=0.0)
    assert task.metadata[INPUTS_KEY] == {"base": 10}
    assert start_inputs(task, {"a": 5})["n"] == 15


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("steps.a.result.ok and inputs.go", True),
        ("steps.a.result.n >= 3 or false", True),
        ("not steps.a.skipped", True),
        ("'md' in steps.a.result.tags", True),
        ("len(steps.a.result.tags) == 2", True),
        ("steps.a.result.tags[1]", "py"),
        ("${{ inputs.go == true }}", True),
        ("steps.a.result.n * 2 - 1", 5),
        ("null", None),
    ],
)
def test_expressions_read_inputs_and_results(text, value):
    context = {
        "inputs": {"go": True},
        "steps": {"a": {"result": {"ok": 1, "n": 3, "tags": ["md", "py"]}, "skipped": False}},
    }
    assert expressions.parse(text).evaluate(context) == value


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("__import__('os').system('x')", "calls a function"),
        ("inputs.__class__", "starting with '_'"),
        ("open", "reads 'open'"),
        ("[x for x in inputs]", "which expressions do not allow"),
        ("lambda: 1", "which expressions do not allow"),
        ("inputs.x = 1", "not a valid expression"),
        ("", "non-empty string"),
    ],
)
def test_expressions_cannot_run_code(text, message):
    with pytest.raises(ExpressionError, match=message):
        expressions.parse(text)


def test_evaluation_errors_say_what_is_missing():
    with pytest.raises(ExpressionError, match="inputs has no key 'pgae'"):
        expressions.parse("inputs.pgae").evaluate({"inputs": {"page": 1}})
    with pytest.raises(ExpressionError, match="is a number, which has no 'x'"):
        expressions.parse("inputs.page.x").evaluate({"inputs": {"page": 1}})
    with pytest.raises(ExpressionError, match="failed"):
        expressions.parse("inputs.page > 'a'").evaluate({"inputs": {"page": 1}})


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("len(steps.a.result.s * 100000000000) > 1", "repeating a string of 2 characters 100,000,000,000 times"),
        ("len('x' * 400000000) > 1", "would build 400,000,000; an expression builds at most 1,000,000"),
        ("len(600000 * [1, 2]) > 1", "repeating a list of 2 items 600,000 times would build 1,200,000"),
        ("len(steps.a.result.xs * (1000 * 1000)) > 0", "a list of 3 items 1,000,000 times"),
        ("'%999999999d' % 1", "the format '%999999999d' asks for 999,999,999 characters"),
        ("'%.5000000f' % 1", "asks for 5,000,000 characters"),
        ("b'%2000000s' % b'x'", "asks for 2,000,000 characters"),
    ],
)
def test_an_expression_cannot_build_a_huge_value_and_says_why(text, message):
    context = {"steps": {"a": {"result": {"s": "ab", "xs": [1, 2, 3]}}}, "inputs": {}}
    with pytest.raises(ExpressionError, match=re.escape(message)) as refused:
        expressions.parse(text).evaluate(context)
    assert refused.value.expression == text and str(refused.value).startswith(repr(text))


def test_an_expression_builds_what_is_within_bounds():
    context = {"inputs": {"s": "ab", "n": 3}}
    assert expressions.parse("inputs.s * inputs.n").evaluate(context) == "ababab"
    assert expressions.parse("len([0] * 1000000)").evaluate(context) == 1_000_000
    assert expressions.parse("'%05d|%%' % 42").evaluate(context) == "00042|%"
    assert expressions.parse("'n=%05d' % inputs.n").evaluate(context) == "n=00003"
    assert expressions.parse("inputs.s * -1 + inputs.s * 0").evaluate(context) == ""


class _Exhausting(dict):
    def __contains__(self, key):
        raise MemoryError


def test_an_expression_that_runs_out_of_memory_or_fails_without_a_message_says_what_happened():
    with pytest.raises(ExpressionError, match=r"'inputs.x' ran out of memory: it builds a value too large"):
        expressions.parse("inputs.x").evaluate({"inputs": _Exhausting()})
    with pytest.raises(ExpressionError, match=r"'inputs.x > 1' failed: KeyError$"):
        expressions.parse("inputs.x > 1").evaluate({"inputs": {"x": _Unordered()}})


class _Unordered:
    def __gt__(self, other):
        raise KeyError


def test_templates_replace_whole_values_and_interpolate_text():
    value = {"a": "${{ inputs.xs }}", "b": ["n=${{ inputs.n }}", "${{ inputs.xs }} ok"], "c": 3}
    assert expressions.resolve(value, {"inputs": {"xs": [1, 2], "n": 4}}) == {
        "a": [1, 2],
        "b": ["n=4", "[1, 2] ok"],
        "c": 3,
    }


# -- what a run does next -----------------------------------------------------------------------


def test_a_run_ends_completed_once_every_step_is_done():
    spec = diamond()
    assert advance(spec, {"a": C, "b": P, "c": B, "d": B}) == advance(spec, {"a": P, "b": B, "c": B, "d": B})
    assert not advance(spec, {"a": C, "b": P, "c": B, "d": B})
    done = advance(spec, {"a": C, "b": C, "c": C, "d": C})
    assert done.finished is RunState.COMPLETED


def test_a_conditional_step_is_released_once_its_dependencies_completed_and_doomed_if_one_failed():
    spec = diamond(b="steps.a.result")
    assert not advance(spec, {"a": P, "b": None, "c": B, "d": B})
    assert advance(spec, {"a": C, "b": None, "c": P, "d": B}).release == ("b",)
    doomed = advance(spec, {"a": F, "b": None, "c": X, "d": X})
    assert doomed.doom == {"b": "dependency 'a' failed"} and not doomed.release
    assert advance(spec, {"a": F, "b": X, "c": X, "d": X}).finished is RunState.FAILED


def test_by_default_a_failure_leaves_independent_branches_running_and_fail_fast_cancels_everything():
    spec = spec_of(make_step("a", "t"), make_step("b", "t"), make_step("c", "t", dependencies=["a"], condition="true"))
    assert not advance(spec, {"a": F, "b": TaskState.IN_PROGRESS, "c": None}).cancel  # b runs on...
    assert advance(spec, {"a": F, "b": TaskState.IN_PROGRESS, "c": None}).doom == {"c": "dependency 'a' failed"}
    fast = spec_of(*spec.steps, fail_fast=True)
    stop = advance(fast, {"a": F, "b": TaskState.IN_PROGRESS, "c": None})
    assert set(stop.cancel) == {"b"} and set(stop.doom) == {"c"} and "fail_fast" in stop.cancel["b"]
    ended = advance(fast, {"a": F, "b": X, "c": X})
    assert (ended.finished, ended.reason) == (RunState.FAILED, "step 'a' failed")


def test_a_cancelled_run_cancels_what_is_left_and_ends_cancelled():
    spec = diamond(c="true")
    move = advance(spec, {"a": C, "b": TaskState.IN_PROGRESS, "c": None, "d": B}, cancelled="stop")
    assert move.cancel == {"b": "stop", "d": "stop"} and move.doom == {"c": "stop"}
    ended = advance(spec, {"a": C, "b": X, "c": X, "d": X}, cancelled="stop")
    assert (ended.finished, ended.reason) == (RunState.CANCELLED, "stop")
    outside = advance(spec, {"a": C, "b": X, "c": C, "d": X})
    assert outside.finished is RunState.CANCELLED and "'b'" in outside.reason
