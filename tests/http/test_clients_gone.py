"""Clients that leave mid-request or mid-stream cost the server no flood of log lines.

An event stream writes each batch of events in one piece: a client gone while a big batch is sent is noticed at
once, and the server does not write to its closed socket once per event (asyncio logs every such write past the
fifth as a failure). A request whose body never arrives in full is no error of the server's."""

from __future__ import annotations

import logging
import socket
import struct
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

import pepper
from pepper.core import TaskOrchestrator
from pepper.http.app import create_app
from pepper.http.events import ChangeFeed
from pepper.http.server import ThreadedServer
from pepper.http.tokens import create_token
from tests.conftest import FAST
from tests.http.conftest import PATIENCE
from tests.support import eventually

#: Tasks a submission makes: one event each, sent to every stream in a few batches.
BATCH = 2000
#: Clients that stop reading mid-batch, then leave.
STALLED = 8
#: Times the clients come and go (when each write to a closed socket is logged depends on timing).
ROUNDS = 3


@dataclass
class Served:
    runtime: pepper.Runtime
    url: str
    secret: str
    feed: ChangeFeed


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    """A server over a runtime with no agents (submitted tasks wait, each a change the feed reports)."""
    runtime = pepper.Runtime(db=str(tmp_path / "pepper.db"), home=str(tmp_path / "home"), **FAST)
    secret = create_token(runtime.store, "reader", "read", time.time())
    app = create_app(runtime)
    server = ThreadedServer(app)
    url = server.start()
    try:
        yield Served(runtime, url, secret, app.state.feed)
    finally:
        server.stop()
        runtime.close()


def _open_stream(served: Served, window: int | None = None) -> socket.socket:
    """A client of ``/api/v1/events`` that has read the start of the stream; ``window``: the bytes it takes
    before it reads (small: the server's writes soon wait for it)."""
    host, port = served.url.removeprefix("http://").split(":")
    client = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if window is not None:
        client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, window)
    client.settimeout(PATIENCE)
    client.connect((host, int(port)))
    request = f"GET /api/v1/events HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {served.secret}\r\n\r\n"
    client.sendall(request.encode())
    head = _read_until(client, ": connected")
    assert head.startswith(b"HTTP/1.1 200"), head
    return client


def _read_until(client: socket.socket, text: str) -> bytes:
    """What ``client`` read of its stream up to and including ``text``."""
    received = b""
    while text.encode() not in received:
        data = client.recv(65536)
        assert data, f"the stream ended before {text!r}: {received[-200:]!r}"
        received += data
    return received


def _reset(client: socket.socket) -> None:
    """Close abruptly (a reset, as a browser leaving the page may): the server's next write to it fails."""
    client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    client.close()


def test_clients_gone_while_big_batches_are_sent_cost_no_write_per_event(
    served: Served, caplog: pytest.LogCaptureFixture
) -> None:
    orchestrator = TaskOrchestrator(served.runtime)
    reader = _open_stream(served)
    with caplog.at_level(logging.WARNING, logger="asyncio"):
        for round_ in range(ROUNDS):
            stalled = [_open_stream(served, window=4096) for _ in range(STALLED)]  # they read no more
            eventually(lambda: served.feed.listening == STALLED + 1, "the streams to subscribe")
            orchestrator.submit_tasks([{"id": f"r{round_}-{i}", "type": "nobody"} for i in range(BATCH)])
            _read_until(reader, f'"task_id": "r{round_}-{BATCH - 1}"')  # out: the stalled streams wait mid-way
            for client in stalled:
                _reset(client)
            eventually(lambda: served.feed.listening == 1, "the streams of the clients gone to end")
    reader.close()
    failed_writes = [r for r in caplog.records if "socket.send() raised exception" in r.getMessage()]
    assert failed_writes == []


def test_a_batch_of_events_arrives_whole_and_in_order(served: Served) -> None:
    client = _open_stream(served)
    TaskOrchestrator(served.runtime).submit_tasks([{"id": f"t-{i}", "type": "nobody"} for i in range(BATCH)])
    received = _read_until(client, f'"task_id": "t-{BATCH - 1}"')
    client.close()
    order = [int(line.split(b'"t-')[1].split(b'"')[0]) for line in received.split(b"\n") if b'"task_id": "t-' in line]
    assert order == list(range(BATCH))


@pytest.mark.parametrize("path", ["/session", "/api/v1/runs", "/api/v1/plan"])
def test_a_request_cut_short_in_its_body_is_logged_as_nothing(
    served: Served, caplog: pytest.LogCaptureFixture, path: str
) -> None:
    host, port = served.url.removeprefix("http://").split(":")
    with caplog.at_level(logging.WARNING):
        for _ in range(3):
            client = socket.create_connection((host, int(port)), timeout=PATIENCE)
            head = (f"POST {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {served.secret}\r\n"
                    "Content-Type: application/json\r\nContent-Length: 100\r\n\r\n")  # fmt: skip
            client.sendall(head.encode() + b'{"workflo')  # 10 of the 100 bytes, then gone
            _reset(client)
        for _ in range(2):  # later requests on the same loop: the ones cut short were handled before them
            check = socket.create_connection((host, int(port)), timeout=PATIENCE)
            check.sendall(f"GET /api/v1/health HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
            assert _read_until(check, "HTTP/1.1").startswith(b"HTTP/1.1")
            check.close()
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []
