"""API tokens: scopes and checks.

STAND-IN: an in-memory version of the token store's interface (tokens live as long as their store object), kept
only until the durable, hashed token store replaces this module; the server and its tests use nothing else.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import weakref
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from pepper.errors import ValidationError

_ORDER = ("read", "write", "admin")


class Scope(StrEnum):
    """What a token may do: ``read`` < ``write`` < ``admin``."""

    READ = "read"
    WRITE = "write"
    ADMIN = "admin"

    def allows(self, needed: Scope) -> bool:
        """True if this scope covers ``needed``."""
        return _ORDER.index(self.value) >= _ORDER.index(Scope(needed).value)


@dataclass(frozen=True, slots=True)
class TokenRecord:
    """A token as stored: its name, scope and when it was made (never its secret)."""

    name: str
    scope: Scope
    created_at: float
    digest: str


_tokens: weakref.WeakKeyDictionary[Any, dict[str, TokenRecord]] = weakref.WeakKeyDictionary()
_lock = threading.Lock()


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


def create_token(store: Any, name: str, scope: Scope | str, now: float) -> str:
    """Make a token named ``name`` with ``scope``; its secret (shown once)."""
    if not isinstance(name, str) or not name.strip():
        raise ValidationError("a token needs a name", field="name")
    try:
        chosen = Scope(scope)
    except ValueError:
        raise ValidationError(f"unknown scope {scope!r}; valid: {', '.join(_ORDER)}", field="scope") from None
    secret = "pep_" + secrets.token_urlsafe(32)
    with _lock:
        held = _tokens.setdefault(store, {})
        if name in held:
            raise ValidationError(
                f"a token named {name!r} exists; revoke it first or choose another name", field="name"
            )
        held[name] = TokenRecord(name, chosen, now, _digest(secret))
    return secret


def authenticate(store: Any, secret: str) -> TokenRecord | None:
    """The token whose secret this is, or None (compared in constant time)."""
    digest = _digest(secret)
    with _lock:
        records = list(_tokens.get(store, {}).values())
    found = None
    for record in records:
        if hmac.compare_digest(record.digest, digest):
            found = record
    return found


def revoke_token(store: Any, name: str) -> bool:
    """Revoke the token ``name``; False if there was none."""
    with _lock:
        return _tokens.get(store, {}).pop(name, None) is not None


def has_tokens(store: Any) -> bool:
    """True once any token exists."""
    with _lock:
        return bool(_tokens.get(store))


def ensure_first_token(store: Any, now: float) -> str | None:
    """With no token yet, make an ``admin`` token and return its secret; else None."""
    if has_tokens(store):
        return None
    return create_token(store, "admin", Scope.ADMIN, now)
