"""SQLite's exceptions as pepper's, naming the database and what to do: locked, read-only, full, damaged."""

from __future__ import annotations

import sqlite3

from pepper.errors import DatabaseReadOnlyError, DiskFullError, StoreBusyError, StoreError
from pepper.store.connection import damaged, out_of_space, read_only, read_only_remedy
from pepper.store.params import typed_error


def store_error(exc: sqlite3.Error | OverflowError, path: str, busy_timeout: float) -> StoreError:
    """pepper's error for one of SQLite's met on database ``path``: damaged, read-only, full, locked past
    ``busy_timeout`` seconds, else as ``typed_error`` types it."""
    found = damaged(exc, path)
    if found is not None:
        return found
    name = getattr(exc, "sqlite_errorname", "") or ""
    text = str(exc)
    if read_only(exc):
        return DatabaseReadOnlyError(path, text, read_only_remedy(path))
    if name == "SQLITE_FULL" or "disk is full" in text:
        return DiskFullError(path, text)
    if (name.startswith("SQLITE_IOERR") or "disk I/O error" in text) and out_of_space(path):
        return DiskFullError(path, text)
    if name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")) or "database is locked" in text:
        return StoreBusyError(
            f"the pepper database {path} is locked by another process, still after waiting {busy_timeout:g} s "
            f"(busy_timeout) for it ({text}); try again, or give a longer busy_timeout in pepper.toml"
        )
    return typed_error(exc)
