"""A read after a commit that fails is logged, and the next poll catches up: a database away for a moment is a
warning of one line, anything else a traceback."""

from __future__ import annotations

import logging

import pytest

from pepper.engine.failed_commits import try_after_commit
from pepper.errors import StoreBusyError


def test_a_database_away_for_a_moment_is_a_warning_without_a_traceback(caplog: pytest.LogCaptureFixture) -> None:
    def poll() -> None:
        raise StoreBusyError("postgresql://pepper:***@db/pepper: terminating connection due to administrator command")

    with caplog.at_level(logging.WARNING, logger="pepper.engine"):
        try_after_commit(poll)
    (record,) = caplog.records
    assert record.levelno == logging.WARNING and record.exc_info is None
    assert record.getMessage() == (
        "poll after a commit failed (postgresql://pepper:***@db/pepper: terminating connection due to administrator "
        "command); the next poll of the database catches up"
    )


def test_any_other_failure_keeps_its_traceback(caplog: pytest.LogCaptureFixture) -> None:
    calls: list[int] = []

    def reread(n: int) -> None:
        calls.append(n)
        raise KeyError(n)

    with caplog.at_level(logging.WARNING, logger="pepper.engine"):
        try_after_commit(reread, 3)
    (record,) = caplog.records
    assert calls == [3] and record.levelno == logging.ERROR and record.exc_info is not None
