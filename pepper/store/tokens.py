"""API tokens of ``pepper serve``: a name, a scope and a hash of the secret (never the secret itself).

The rules (what a scope allows, how a secret is made and hashed) live with the HTTP service; this log only
keeps the rows. A revoked token keeps its row, so ``pepper token list`` still shows it, until its name is reused.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pepper.errors import DuplicateTokenError

if TYPE_CHECKING:
    from pepper.store.sql_store import SqlStore


@dataclass(frozen=True, slots=True)
class TokenRecord:
    """A stored token. ``secret_hash`` is set only on a record read to authenticate (``by_hash``); listings
    leave it out, and ``to_dict`` never has it."""

    name: str
    scope: str
    created_at: float
    revoked_at: float | None = None
    last_used_at: float | None = None
    secret_hash: str | None = field(default=None, repr=False, compare=False)

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None

    @classmethod
    def from_row(cls, row: Any) -> TokenRecord:
        keys = row.keys()
        return cls(
            row["name"],
            row["scope"],
            row["created_at"],
            row["revoked_at"],
            row["last_used_at"],
            row["secret_hash"] if "secret_hash" in keys else None,
        )

    def to_dict(self) -> dict[str, Any]:
        """Name, scope and times, as ``pepper token list --json`` prints them (never the hash)."""
        return {
            "name": self.name,
            "scope": self.scope,
            "created_at": self.created_at,
            "last_used_at": self.last_used_at,
            "revoked_at": self.revoked_at,
            "revoked": self.revoked,
        }


class TokenLog:
    """Reads and writes of the ``tokens`` table."""

    def __init__(self, store: SqlStore) -> None:
        self._store = store

    def add(self, name: str, scope: str, secret_hash: str, now: float) -> TokenRecord:
        """Store a new token (over a revoked one of the same name). Raises ``DuplicateTokenError`` when a live
        token has the name already; nothing is changed then."""
        with self._store.typed_errors():
            added = self._store.execute("add_token", (name, scope, secret_hash, now))
        if added != 1:
            raise DuplicateTokenError(name)
        return TokenRecord(name, scope, now)

    def by_hash(self, secret_hash: str) -> TokenRecord | None:
        """The live (not revoked) token whose secret hashes to ``secret_hash``, read afresh every time."""
        rows = self._store.query("live_token_by_hash", (secret_hash,))
        return TokenRecord.from_row(rows[0]) if rows else None

    def list(self) -> list[TokenRecord]:
        """Every token, revoked ones included, oldest first; without the hashes of their secrets."""
        return [TokenRecord.from_row(row) for row in self._store.query("list_tokens")]

    def revoke(self, name: str, now: float) -> bool:
        """Revoke a live token; False if no live token has this name."""
        with self._store.typed_errors():
            return self._store.execute("revoke_token", (now, name)) == 1

    def touch(self, name: str, now: float) -> None:
        """Record that a live token was used at ``now``."""
        with self._store.typed_errors():
            self._store.execute("touch_token", (now, name))
