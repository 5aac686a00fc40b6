"""A PostgreSQL store's pooled connections after the server dropped them (a restart, a failover, an idle timeout,
``pg_terminate_backend``): found on checkout and replaced, without a round trip to the server, and the pool's own
notes of them kept out of the user's terminal.

A connection the server closed has its last words (an error, then the end of the stream) waiting on its socket:
reading what is there without waiting tells a dropped connection from a live one. One whose end comes later (the
server drops it while it is in use, or its end is still on its way as it is taken) fails its statement: the store
sends a transaction again only when it failed at its ``BEGIN``, before anything of it was sent, and a read again,
each on another connection, a bounded number of times (``PostgresStore.transaction``, ``fetch``).
"""

from __future__ import annotations

import logging
import select
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg.pq import ConnStatus
from psycopg_pool import ConnectionPool

log = logging.getLogger("pepper.store")

#: How many pieces of what a server sent a dropped connection are read, at most, to reach its end.
_READS = 4


def dropped(conn: psycopg.Connection[Any]) -> bool:
    """Whether the server has closed this idle connection: what it sent is read without waiting (no round trip,
    one system call for a live connection)."""
    if conn.closed or conn.broken:
        return True
    pgconn = conn.pgconn
    try:
        for _ in range(_READS):
            if not _readable(pgconn.socket):
                break
            pgconn.consume_input()  # a notice, or the server's farewell; raises at the end of the stream
    except (OSError, psycopg.OperationalError):
        return True
    return pgconn.status != ConnStatus.OK


def _readable(fd: int) -> bool:
    """Whether ``fd`` has something to read (or its end), without waiting."""
    if hasattr(select, "poll"):  # any descriptor number (``select`` takes those under 1024 only)
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        return bool(poller.poll(0))
    readable, _, _ = select.select([fd], [], [], 0)
    return bool(readable)


@contextmanager
def checked_connection(pool: ConnectionPool[Any], tries: int) -> Iterator[psycopg.Connection[Any]]:
    """A connection of ``pool`` the server has not dropped, as far as can be told without asking it: a dropped one
    goes back to the pool, which opens another in its place (``tries`` connections looked at, at most)."""
    for _ in range(tries - 1):
        conn = pool.getconn()
        if not dropped(conn):
            break
        conn.close()  # so that the pool replaces it, whatever state it seemed in
        pool.putconn(conn)
    else:
        conn = pool.getconn()
    try:
        with conn:
            yield conn
    finally:
        pool.putconn(conn)


class _PoolNotes(logging.Filter):
    """psycopg's pool's notes below errors (a connection discarded, a reconnection tried) as pepper's debug
    messages: the store replaces dropped connections itself, and says what matters in its own words."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.ERROR:
            return True
        log.debug("psycopg pool: %s", record.getMessage())
        return False


_NOTES = _PoolNotes()


def quiet_pool_notes() -> None:
    """Route the pool's warnings to pepper's logger at debug level (once per process)."""
    pool_log = logging.getLogger("psycopg.pool")
    if _NOTES not in pool_log.filters:
        pool_log.addFilter(_NOTES)
