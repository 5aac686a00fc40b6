"""An id or name given by mistake may be megabytes long: every error message shows only its start and length."""

from __future__ import annotations

import pickle

import pytest

from pepper.core import AgentSelector, ResourceAllocator, TaskOrchestrator, WorkflowController
from pepper.errors import PepperError, TaskNotFoundError, ValidationError
from pepper.errors.base import shortened

LONG = "a" * 100_000


def test_a_long_quoted_text_is_cut_to_its_start_and_its_length():
    message = f"no task with id {LONG!r}; `pepper tasks` lists the known tasks"
    start = "a" * 100
    assert (
        shortened(message) == f"no task with id '{start}…' (100,000 characters); `pepper tasks` lists the known tasks"
    )
    with_quote = "x" * 300 + "'s"  # its repr is in double quotes
    assert shortened(f"type {with_quote!r} is unknown") == f'type "{"x" * 100}…" (302 characters) is unknown'


def test_what_an_id_may_be_and_prose_are_left_whole():
    longest_id = "i" * 200
    assert shortened(f"task {longest_id!r} failed") == f"task {longest_id!r} failed"
    prose = "the agent's budget is spent; " * 20 + "it can't take 'x'"
    assert shortened(prose) == prose


def test_the_error_keeps_the_whole_value_and_travels_unchanged():
    error = TaskNotFoundError(LONG)
    assert len(str(error)) < 200 and error.task_id == LONG
    assert str(pickle.loads(pickle.dumps(error))) == str(error)


def test_every_call_given_a_huge_id_answers_a_short_message(runtime):
    orchestrator = TaskOrchestrator(runtime)
    calls = [
        lambda: orchestrator.submit_task(LONG, "x"),
        lambda: orchestrator.submit_task("t", LONG),
        lambda: orchestrator.get_task_status(LONG),
        lambda: WorkflowController("w", runtime=runtime).add_step(LONG, "x"),
        lambda: AgentSelector(runtime).select_agent(LONG),
        lambda: ResourceAllocator(runtime).allocate(LONG, {"cpu": 1}),
        lambda: ResourceAllocator(runtime).release(LONG),
    ]
    for call in calls:
        with pytest.raises(PepperError) as caught:
            call()
        assert len(str(caught.value)) < 400 and "(100,000 characters)" in str(caught.value), str(caught.value)[:300]
    with pytest.raises(ValidationError):
        orchestrator.submit_task(LONG, "x")
    assert orchestrator.list_tasks() == []
