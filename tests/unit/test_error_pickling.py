"""Errors sent to another process (a Ray actor, a worker) arrive as they were raised."""

from __future__ import annotations

import pickle

import pytest

from pepper.errors import (
    AgentStartError,
    CycleError,
    NoEligibleAgentError,
    PepperError,
    TaskNotFoundError,
    ValidationError,
    WaitTimeoutError,
)

ERRORS = [
    TaskNotFoundError("t-1"),
    ValidationError("priority must be 1-10, got 11", field="priority"),
    WaitTimeoutError(["a", "b"], 2.0),
    NoEligibleAgentError("docs", {"writer": "busy"}),
    CycleError(["a", "b", "a"]),
    AgentStartError({"flaky": "ConnectionError: model server not up yet"}),
]


@pytest.mark.parametrize("error", ERRORS, ids=lambda e: type(e).__name__)
def test_an_error_unpickled_keeps_its_type_message_and_fields(error: PepperError) -> None:
    again = pickle.loads(pickle.dumps(error))
    assert type(again) is type(error)
    assert str(again) == str(error)  # not worded twice
    assert again.args == error.args
    assert again.__dict__ == error.__dict__
    assert isinstance(again, PepperError)


def test_an_unpickled_timeout_is_still_caught_as_a_timeout() -> None:
    again = pickle.loads(pickle.dumps(WaitTimeoutError(["a"], 1.0)))
    with pytest.raises(TimeoutError, match="timed out after 1s"):
        raise again
