"""An event stream lasts as long as its token: revoked (by this server or another process), the stream ends."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Callable

import httpx
import pytest

from pepper.http.tokens import create_token
from tests.http.conftest import PATIENCE, Api


class Reader:
    """Reads ``/api/v1/events`` on a thread: its lines, an event per awaited text, and one once it ended."""

    def __init__(self, api: Api, secret: str) -> None:
        self.lines: list[str] = []
        self.ended = threading.Event()
        self.connected = threading.Event()
        self._waits: list[tuple[str, threading.Event]] = []
        self._lock = threading.Lock()
        headers = {"Authorization": f"Bearer {secret}"}
        self._client = httpx.Client(base_url=api.url, headers=headers, timeout=httpx.Timeout(PATIENCE * 4))
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        try:
            with self._client.stream("GET", "/api/v1/events") as response:
                for line in response.iter_lines():
                    with self._lock:
                        self.lines.append(line)
                        for text, seen in self._waits:
                            if text in line:
                                seen.set()
                    if line.startswith(": connected"):
                        self.connected.set()
        finally:
            self.ended.set()

    def seen(self, text: str) -> threading.Event:
        """Set once a line holding ``text`` arrived."""
        event = threading.Event()
        with self._lock:
            self._waits.append((text, event))
            if any(text in line for line in self.lines):
                event.set()
        return event

    def close(self) -> None:
        self._client.close()


def watched(api: Api, name: str, revoke: Callable[[], None]) -> Reader:
    """A stream opened with a new read token ``name``, shown to deliver, then ``revoke``d."""
    reader = Reader(api, create_token(api.runtime.store, name, "read", time.time()))
    assert reader.connected.wait(PATIENCE)
    with api.client("write") as http:
        seen = reader.seen(f"{name}-before")
        assert http.post("/api/v1/tasks", json={"task_id": f"{name}-before", "task_type": "echo"}).status_code == 201
        assert seen.wait(PATIENCE), reader.lines
        assert not reader.ended.is_set()
        revoke()
        assert http.post("/api/v1/tasks", json={"task_id": f"{name}-after", "task_type": "echo"}).status_code == 201
    return reader


def test_a_stream_ends_once_another_process_revokes_its_token(api: Api) -> None:
    db = api.runtime.settings.db

    def revoke() -> None:
        done = subprocess.run([sys.executable, "-m", "pepper", "token", "revoke", "watcher", "--db", db],
                              capture_output=True, text=True, timeout=PATIENCE * 4)  # fmt: skip
        assert done.returncode == 0, done.stderr

    reader = watched(api, "watcher", revoke)
    try:
        assert reader.ended.wait(PATIENCE), "the stream of a revoked token went on"
        assert not any("watcher-after" in line for line in reader.lines)
        assert [line for line in reader.lines if line][-1].startswith(": the token was revoked")
    finally:
        reader.close()


def test_a_stream_ends_once_its_token_is_revoked_over_the_api(api: Api) -> None:
    def revoke() -> None:
        with api.client("admin") as http:
            assert http.delete("/api/v1/tokens/viewer").json()["revoked"] is True

    reader = watched(api, "viewer", revoke)
    try:
        assert reader.ended.wait(PATIENCE), "the stream of a revoked token went on"
        assert not any("viewer-after" in line for line in reader.lines)
    finally:
        reader.close()


def test_a_stream_of_a_live_token_goes_on(api: Api) -> None:
    reader = Reader(api, create_token(api.runtime.store, "steady", "read", time.time()))
    try:
        assert reader.connected.wait(PATIENCE)
        with api.client("write") as http:
            for n in range(3):
                seen = reader.seen(f"steady-{n}")
                http.post("/api/v1/tasks", json={"task_id": f"steady-{n}", "task_type": "echo"})
                assert seen.wait(PATIENCE), reader.lines
        assert not reader.ended.is_set()
    finally:
        with api.client("admin") as http:
            http.delete("/api/v1/tokens/steady")
        assert reader.ended.wait(PATIENCE)
        reader.close()


@pytest.mark.parametrize("secret", ["", "pepper_unknown"])
def test_a_stream_without_a_live_token_is_refused(api: Api, secret: str) -> None:
    with httpx.Client(base_url=api.url, timeout=PATIENCE) as http:
        headers = {"Authorization": f"Bearer {secret}"} if secret else {}
        assert http.get("/api/v1/events", headers=headers).status_code == 401
