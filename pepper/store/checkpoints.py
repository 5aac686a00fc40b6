"""Folding SQLite's write-ahead log back into the database file on a thread of its own.

Every commit appends the pages it changed to the write-ahead log. By default the connection whose commit takes
the log past 1,000 pages then copies them into the database file itself, within that commit (a checkpoint):
an engine that commits every loop turn pauses its loop for it every few hundred commits, and spends its own
thread's time copying pages. A ``Checkpointer`` does that copying instead, on a thread with a connection of its
own, every ``interval`` seconds. Its checkpoints are PASSIVE: they copy what no reader still needs, wait for no
lock and hold up no writer; and SQLite copies without holding Python's interpreter lock, so the copying runs
beside the engine on another core. The writing connection keeps SQLite's own checkpoint as a backstop, at a
log of ``BACKSTOP_PAGES``, should this thread fall behind.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from typing import NamedTuple

log = logging.getLogger(__name__)

#: How often the thread checkpoints, in seconds.
INTERVAL = 0.1
#: The log size (in pages) at which a commit of the writing connection checkpoints after all: SQLite's default
#: is 1,000 pages; this is reached only if the thread cannot keep up.
BACKSTOP_PAGES = 10_000


class Pass(NamedTuple):
    """What one checkpoint found: pages in the log, and how many of them are now in the database file."""

    logged: int
    copied: int


class Checkpointer:
    """A thread that checkpoints the SQLite database at ``path`` every ``interval`` seconds until ``stop``."""

    def __init__(self, path: str, interval: float = INTERVAL) -> None:
        if not interval > 0:
            raise ValueError(f"interval must be a number of seconds > 0, got {interval!r}")
        self.path = path
        self.interval = interval
        #: Held for each checkpoint; whoever must not overlap one (a VACUUM, a truncating checkpoint) takes it too.
        self.lock = threading.Lock()
        self.passes = 0
        self.failures = 0
        self._stopping = threading.Event()
        self._conn: sqlite3.Connection | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Open the connection (here, so that a file that cannot be opened says so now) and start the thread."""
        if self._thread is not None:
            return
        self._stopping.clear()
        self._conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=0)
        self._thread = threading.Thread(target=self._run, name="pepper-checkpoints", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread (after the checkpoint it may be running) and close its connection."""
        self._stopping.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join()
        with self.lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    @property
    def running(self) -> bool:
        return self._thread is not None

    def checkpoint(self) -> Pass | None:
        """One PASSIVE checkpoint now; None if it could not run (a failure is logged, and tried again later)."""
        with self.lock:
            conn = self._conn
            if conn is None:
                return None
            try:
                _busy, logged, copied = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
            except sqlite3.Error as exc:
                self.failures += 1
                if self.failures == 1 or self.failures % 100 == 0:  # a lasting failure is not logged ten times a second
                    log.warning("could not checkpoint %s (%d times so far): %s", self.path, self.failures, exc)
                return None
            self.passes += 1
            return Pass(logged, copied)

    def _run(self) -> None:
        while not self._stopping.wait(self.interval):
            self.checkpoint()
