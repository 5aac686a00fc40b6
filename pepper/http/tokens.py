"""API tokens: scopes, making a token, and checking the secret a client presents.

A token is a name, a scope and a secret ``pepper_<43 characters>``. Only the secret's SHA-256 is stored:
the secret is shown once, when made. Every check reads the store afresh (nothing is cached), so a token
revoked by any process stops working at the next request.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from enum import StrEnum

from pepper.errors import DuplicateTokenError, StoreBusyError, ValidationError, shown, suggest
from pepper.store.protocol import Store
from pepper.store.tokens import TokenRecord

#: What every secret starts with: a token found in a log or a repository is recognisable as pepper's.
PREFIX = "pepper_"
#: The name of the token ``pepper serve`` makes on first start, when no live token exists.
FIRST_TOKEN = "admin"
#: A token's last use is written at most this often (seconds), so that reads do not all become writes.
TOUCH_EVERY = 60.0

_NAME_RE = re.compile(r"[A-Za-z0-9_.@-]{1,64}")


class Scope(StrEnum):
    """What a token may do: ``read`` < ``write`` (change state) < ``admin`` (tokens and settings)."""

    READ = "read"
    WRITE = "write"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        return _RANKS[self]

    def allows(self, needed: Scope) -> bool:
        """True when a token of this scope may do what needs ``needed``."""
        return self.rank >= needed.rank

    @classmethod
    def parse(cls, value: Scope | str) -> Scope:
        """``value`` as a scope; ``ValidationError`` naming the valid ones otherwise."""
        if isinstance(value, Scope):
            return value
        try:
            return cls(value)
        except ValueError:
            names = [scope.value for scope in cls]
            hint = suggest(value, names) if isinstance(value, str) else ""
            raise ValidationError(
                f"unknown token scope {shown(value)}; use one of {', '.join(names)} "
                f"(each allows what the ones before it do).{hint}",
                field="scope",
            ) from None


_RANKS = {Scope.READ: 0, Scope.WRITE: 1, Scope.ADMIN: 2}


def check_name(name: object) -> str:
    """``name`` if it is a valid token name (1-64 of ``A-Z a-z 0-9 _ . @ -``, so an approver's e-mail address
    fits); ``ValidationError`` otherwise."""
    if not isinstance(name, str) or _NAME_RE.fullmatch(name) is None:
        raise ValidationError(
            f"bad token name {shown(name)}: use 1 to 64 letters, digits, '_', '.', '@' or '-' (e.g. 'ci', "
            "'build-bot' or 'lead@example.com')",
            field="name",
        )
    return name


def hash_secret(secret: str) -> str:
    """The SHA-256 (hex) of a secret, as stored.

    A fast hash is the right one here: unlike a password, a secret is 256 random bits, so there is nothing
    to guess and a slow hash (bcrypt, scrypt) would only slow every request down.
    """
    return hashlib.sha256(secret.encode("utf-8", "replace")).hexdigest()


def create_token(store: Store, name: str, scope: Scope | str, now: float) -> str:
    """Make a token and return its secret (shown once: only its hash is stored).

    Raises ``ValidationError`` for a bad name or scope and ``DuplicateTokenError`` for a name a live token
    has; nothing is stored then. A revoked token's name may be reused.
    """
    check_name(name)
    level = Scope.parse(scope)
    secret = PREFIX + secrets.token_urlsafe(32)
    store.tokens.add(name, level.value, hash_secret(secret), now)
    return secret


def authenticate(store: Store, secret: str, *, now: float | None = None) -> TokenRecord | None:
    """The live token whose secret is ``secret``; None for an unknown or revoked one.

    The stored hash is read afresh on every call and compared in constant time. With ``now``, the token's
    last use is recorded (at most every ``TOUCH_EVERY`` seconds).
    """
    if not isinstance(secret, str) or not secret:
        return None
    presented = hash_secret(secret)
    record = store.tokens.by_hash(presented)
    if record is None or record.secret_hash is None:
        return None
    # the lookup matched already; comparing again in constant time keeps the check itself free of
    # timing differences whatever the database does in its index search
    if not hmac.compare_digest(record.secret_hash.encode(), presented.encode()):
        return None
    if now is not None and (record.last_used_at is None or now - record.last_used_at >= TOUCH_EVERY):
        try:
            store.tokens.touch(record.name, now)
        except StoreBusyError:  # bookkeeping only: a busy database must not refuse the request itself
            pass
    return record


def still_live(store: Store, record: TokenRecord) -> bool:
    """True while the token ``record`` was read from (by ``authenticate``) is live, read afresh: False once
    it is revoked (by any process sharing the store) or its name was given to another secret."""
    if record.secret_hash is None:
        return False
    current = store.tokens.by_hash(record.secret_hash)
    return current is not None and current.name == record.name and current.created_at == record.created_at


def revoke_token(store: Store, name: str, now: float | None = None) -> bool:
    """Revoke the live token ``name`` (it stops working at the next request); False if there was none."""
    return store.tokens.revoke(name, time.time() if now is None else now)


def has_tokens(store: Store) -> bool:
    """True when at least one live (not revoked) token exists."""
    return any(not token.revoked for token in store.tokens.list())


def ensure_first_token(store: Store, now: float) -> str | None:
    """When no live token exists, make an ``admin`` token named ``admin`` and return its secret (to print
    once); None when a live token exists already."""
    if has_tokens(store):
        return None
    try:
        return create_token(store, FIRST_TOKEN, Scope.ADMIN, now)
    except DuplicateTokenError:  # another process made it meanwhile: its secret is that process's to show
        return None
