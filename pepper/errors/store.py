"""The database: a refused write, or a database that cannot be used."""

from __future__ import annotations

import shlex

from pepper.errors.base import PepperError


class StoreError(PepperError, RuntimeError):
    """The database refused a write (the rest of its batch was stored), or cannot be used at all."""


class StoreBusyError(StoreError):
    """The database cannot take the write now (busy, locked, full or unreachable); the same write may pass later."""


class DatabaseReadOnlyError(StoreBusyError):
    """The database takes no writes: its file or folder is read-only to this process, or the server refuses
    writes. ``location`` names the database; the write may pass once that is put right."""

    def __init__(self, location: str, detail: str, remedy: str | None = None) -> None:
        super().__init__(
            f"the pepper database {location} cannot be written ({detail}); "
            + (remedy or "make the database writable for this user, or give another --db")
        )
        self.location = location


class DiskFullError(StoreBusyError):
    """No space is left where the database is kept. ``location`` names the database; the write may pass once
    space is freed."""

    def __init__(self, location: str, detail: str) -> None:
        super().__init__(
            f"no space is left on the device of the pepper database {location} ({detail}); free some space "
            "(`pepper prune --older-than 30d` removes old finished work) and try again"
        )
        self.location = location


class WriteRefusedError(StoreError):
    """The database refuses the write itself (a constraint, a value it cannot hold): retrying fails the same way."""


class DatabaseUnreachableError(StoreError):
    """The database server cannot be reached or refuses the connection. ``location`` names the server (never
    the password)."""

    def __init__(self, location: str, detail: str) -> None:
        super().__init__(
            f"cannot connect to the pepper database at {location}: {detail}; check that the server runs and that "
            "the URL's host, port, user, password and database name are right (--db or $PEPPER_DB)"
        )
        self.location = location


class DatabaseDamagedError(StoreError):
    """The database file is damaged (corrupt pages): pepper cannot read it. ``path`` names the file."""

    def __init__(self, path: str, detail: str) -> None:
        super().__init__(
            f"the pepper database {path!r} is damaged and cannot be read (SQLite says: {detail}); restore it "
            f"from a backup, or save what is left with `sqlite3 {shlex.quote(path)} .recover | sqlite3 "
            "recovered.db` and use --db recovered.db"
        )
        self.path = path
