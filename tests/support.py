"""Helpers shared by the test tiers."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")


def eventually(condition: Callable[[], T], what: str = "the condition", timeout: float = 30.0) -> T:
    """Poll ``condition`` until it gives a true value, and return that value.

    ``timeout`` is a safety net against a test hanging, never a wait for something to happen: a test
    says what it waits for, so a slow machine only makes it slower.
    """
    end = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        assert time.monotonic() < end, f"still not true after {timeout:g}s: {what}"
        time.sleep(0.01)


def damage_tasks_table(db: Path) -> None:
    """Write garbage over the first page of the ``tasks`` table (wherever the migrations put it)."""
    conn = sqlite3.connect(db)
    root = conn.execute("SELECT rootpage FROM sqlite_master WHERE name = 'tasks'").fetchone()[0]
    page = conn.execute("PRAGMA page_size").fetchone()[0]
    conn.close()
    with db.open("r+b") as file:
        file.seek((root - 1) * page)
        file.write(b"\xde\xad\xbe\xef" * (page // 4))


def read_rows(db: str, sql: str) -> list[tuple]:
    """Rows of ``sql`` read from the database at ``db`` itself (a SQLite file or a PostgreSQL URL), through a
    store of its own."""
    from pepper.store.location import open_store

    store = open_store(db, create=False)
    try:
        return [tuple(row) for row in store.fetch(sql)]
    finally:
        store.close()


class WebhookReceiver:
    """A webhook on 127.0.0.1 that keeps every POST it accepts (body and headers): it answers 503 to the first
    ``refuse`` POSTs, and 204 to the others."""

    def __init__(self, refuse: int = 0) -> None:
        self.posts: list[tuple[bytes, dict[str, str]]] = []
        self.refused = 0
        lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with lock:
                    turn_down = outer.refused < refuse
                    if turn_down:
                        outer.refused += 1
                    else:
                        outer.posts.append((body, dict(self.headers.items())))
                self.send_response(503 if turn_down else 204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
