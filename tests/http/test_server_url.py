"""A server URL holding a password (``http://user:password@host``) is used as given but never shown: not in the
remote runtime's ``repr`` or ``url``, not in the error of a server that does not answer, not in a refusal."""

from __future__ import annotations

import socket

import pytest

pytest.importorskip("httpx")

import pepper
from pepper.core import TaskOrchestrator
from pepper.errors import ServerUnreachableError, ValidationError
from pepper.http.client import shown_url


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("http://user:S3cret@127.0.0.1:8080/x", "http://user:***@127.0.0.1:8080/x"),
        ("https://user:p@ss:w@rd@example.test", "https://user:***@example.test"),
        ("http://user@127.0.0.1:8080", "http://user@127.0.0.1:8080"),
        ("http://127.0.0.1:8080/a@b", "http://127.0.0.1:8080/a@b"),
    ],
)
def test_a_password_is_shown_as_stars(url: str, shown: str) -> None:
    assert shown_url(url) == shown


def test_the_remote_runtime_never_shows_the_password() -> None:
    runtime = pepper.connect(f"http://user:S3cretPW@127.0.0.1:{_closed_port()}", "pepper_x")
    try:
        assert "S3cretPW" not in repr(runtime) and "S3cretPW" not in runtime.url
        with pytest.raises(ServerUnreachableError) as unreachable:
            TaskOrchestrator(runtime=runtime).get_task_status("t")
        assert "S3cretPW" not in str(unreachable.value) and "user:***@127.0.0.1" in str(unreachable.value)
    finally:
        runtime.close()
    with pytest.raises(ValidationError) as refused:
        pepper.connect("ftp://user:S3cretPW@host", "pepper_x")
    assert "S3cretPW" not in str(refused.value)
