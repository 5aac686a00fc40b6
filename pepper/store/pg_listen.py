"""How a PostgreSQL store learns of other processes' commits: ``LISTEN pepper_changes`` on a connection of its
own, in a thread, and how that thread is woken when the store closes."""

from __future__ import annotations

import itertools
import logging
import threading
import uuid
from collections.abc import Callable

import psycopg
from psycopg_pool import ConnectionPool

from pepper.store.statements import queries

log = logging.getLogger("pepper.store")


#: How long the change listener waits for a notification before it looks whether it should stop (``stop``
#: wakes it sooner).
NOTIFY_WAIT = 0.5


class ChangeListener:
    """Counts other processes' commits, as ``NOTIFY pepper_changes`` tells them (a thread on its own connection).

    Each store's commits carry its ``sender`` token as their payload: those are its own, not news. (A backend pid
    would not do: the server's OS gives a pid again once its connection is gone, to another process's connection.)
    While it is not connected, ``version`` changes on every read, so that callers fall back to polling."""

    def __init__(self, url: str, sender: str, connect_timeout: float) -> None:
        self._url, self._sender, self._timeout = url, sender, connect_timeout
        self._count = 0
        self._connected = False
        self.callbacks: list[Callable[[], None]] = []
        self._fallback = itertools.count(1)
        self._stop = threading.Event()
        #: Where ``stop`` wakes the thread from its wait for notifications (this listener's alone: no other
        #: process hears it).
        self.wake_channel = f"pepper_wake_{uuid.uuid4().hex[:16]}"
        self._thread = threading.Thread(target=self._run, name="pepper-pg-listen", daemon=True)
        self._thread.start()

    @property
    def version(self) -> int:
        if not self._connected:
            return -next(self._fallback)
        return self._count

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                with psycopg.connect(self._url, autocommit=True, connect_timeout=max(1, int(self._timeout))) as conn:
                    conn.execute(queries("postgres")["listen_changes"])
                    conn.execute(f"LISTEN {self.wake_channel}")
                    self._count += 1  # whatever happened while not listening has to be read
                    self._connected = True
                    self._tell()
                    while not self._stop.is_set():
                        for note in conn.notifies(timeout=NOTIFY_WAIT):
                            if self._stop.is_set():
                                break
                            if self._news(note):
                                self._count += 1
                                self._tell()
            except psycopg.Error:
                pass
            self._connected = False
            self._stop.wait(1.0)

    def _news(self, note: psycopg.Notify) -> bool:
        """Whether ``note`` tells of another store's commit (not this store's own, nor its wake)."""
        return note.channel != self.wake_channel and note.payload != self._sender

    def _tell(self) -> None:
        for callback in list(self.callbacks):
            try:
                callback()
            except Exception:
                log.exception("a subscriber to database changes failed")

    def stop(self, wake: Callable[[str], None] | None = None) -> None:
        """Stop listening; ``wake(channel)`` notifies the channel the thread also listens on, so that it ends
        at once rather than at the end of its wait."""
        self._stop.set()
        if wake is not None and self._connected:
            try:
                wake(self.wake_channel)
            except Exception:  # it ends at the end of its wait instead
                log.debug("could not wake the change listener", exc_info=True)
        self._thread.join(timeout=5.0)


def notify(pool: ConnectionPool, channel: str) -> None:
    """Send a notification on ``channel`` through a connection of ``pool``, waiting a second at most for one."""
    with pool.connection(timeout=1.0) as conn:
        conn.execute(f"NOTIFY {channel}")
