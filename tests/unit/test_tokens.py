"""Token rules: scopes, names, secrets stored only as hashes, and checks that read the store every time."""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterator

import pytest

from pepper.errors import DuplicateTokenError, ValidationError
from pepper.http.tokens import (
    TOUCH_EVERY,
    Scope,
    authenticate,
    check_name,
    create_token,
    ensure_first_token,
    has_tokens,
    hash_secret,
)
from pepper.store.location import open_store
from pepper.store.sql_store import SqlStore


@pytest.fixture
def store() -> Iterator[SqlStore]:
    opened = open_store(":memory:")
    yield opened
    opened.close()


# -- scopes ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("held", "needed", "allowed"),
    [
        (Scope.READ, Scope.READ, True),
        (Scope.READ, Scope.WRITE, False),
        (Scope.READ, Scope.ADMIN, False),
        (Scope.WRITE, Scope.READ, True),
        (Scope.WRITE, Scope.WRITE, True),
        (Scope.WRITE, Scope.ADMIN, False),
        (Scope.ADMIN, Scope.READ, True),
        (Scope.ADMIN, Scope.WRITE, True),
        (Scope.ADMIN, Scope.ADMIN, True),
    ],
)
def test_a_scope_allows_what_the_smaller_ones_do(held, needed, allowed):
    assert held.allows(needed) is allowed


def test_an_unknown_scope_names_the_valid_ones():
    with pytest.raises(ValidationError, match=r"read, write, admin.*Did you mean 'write'") as caught:
        Scope.parse("wrte")
    assert caught.value.field == "scope"
    assert Scope.parse("admin") is Scope.ADMIN and Scope.parse(Scope.READ) is Scope.READ


# -- names ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["ci", "a", "build-bot.v2_x", "A" * 64, "release-manager@example.com"])
def test_good_names_pass(name):
    assert check_name(name) == name


@pytest.mark.parametrize("name", ["", "A" * 65, "has space", "slash/y", "ci\n", "é", None, 7])
def test_bad_names_are_refused_and_nothing_is_stored(store, name):
    with pytest.raises(ValidationError, match="1 to 64 letters, digits") as caught:
        create_token(store, name, "read", 1.0)
    assert caught.value.field == "name"
    assert store.tokens.list() == []


def test_a_bad_scope_stores_nothing(store):
    with pytest.raises(ValidationError):
        create_token(store, "ci", "root", 1.0)
    assert store.tokens.list() == []


# -- secrets --------------------------------------------------------------------------


def test_a_secret_is_returned_once_and_only_its_hash_is_stored(store):
    # When a token is made
    secret = create_token(store, "ci", Scope.WRITE, 1.0)
    # Then the secret has pepper's form and the store holds only its SHA-256
    assert re.fullmatch(r"pepper_[A-Za-z0-9_-]{43}", secret)
    rows = [tuple(row) for row in store.fetch("SELECT * FROM tokens")]
    assert secret not in str(rows)
    assert hashlib.sha256(secret.encode()).hexdigest() in str(rows)
    assert hash_secret(secret) == hashlib.sha256(secret.encode()).hexdigest()


def test_two_tokens_never_share_a_secret(store):
    assert create_token(store, "a", "read", 1.0) != create_token(store, "b", "read", 1.0)


def test_a_live_name_cannot_be_made_twice(store):
    create_token(store, "ci", "read", 1.0)
    with pytest.raises(DuplicateTokenError):
        create_token(store, "ci", "admin", 2.0)


def test_the_right_secret_authenticates_and_others_do_not(store):
    secret = create_token(store, "ci", "write", 1.0)
    found = authenticate(store, secret)
    assert found is not None and found.name == "ci" and found.scope == "write"
    assert authenticate(store, secret + "x") is None
    assert authenticate(store, secret[:-1]) is None
    assert authenticate(store, "") is None
    assert authenticate(store, "pepper_\udc80") is None  # text that is not valid Unicode finds nothing


def test_the_stored_hash_is_compared_in_constant_time(store, monkeypatch):
    # Given a token, and hmac.compare_digest watched (and made to answer "different")
    secret = create_token(store, "ci", "write", 1.0)
    compared: list[tuple[bytes, bytes]] = []

    def spy(a: bytes, b: bytes) -> bool:
        compared.append((a, b))
        return False

    monkeypatch.setattr(hmac, "compare_digest", spy)
    # When the right secret is presented
    found = authenticate(store, secret)
    # Then the comparison went through compare_digest, whose answer decided
    assert compared == [(hash_secret(secret).encode(), hash_secret(secret).encode())]
    assert found is None


def test_a_revoked_token_is_refused_at_once(store):
    # Given a token that has just worked
    secret = create_token(store, "ci", "admin", 1.0)
    assert authenticate(store, secret, now=2.0) is not None
    # When it is revoked
    store.tokens.revoke("ci", 3.0)
    # Then the very next check refuses it: nothing was cached
    assert authenticate(store, secret, now=4.0) is None


def test_a_reused_name_does_not_revive_the_old_secret(store):
    old = create_token(store, "ci", "admin", 1.0)
    store.tokens.revoke("ci", 2.0)
    new = create_token(store, "ci", "read", 3.0)
    assert authenticate(store, old) is None
    found = authenticate(store, new)
    assert found is not None and found.scope == "read"


def test_use_is_recorded_at_most_once_a_minute(store):
    # Given a token used at t=100
    secret = create_token(store, "ci", "read", 1.0)
    authenticate(store, secret, now=100.0)
    # When it is used again within the minute, then after it
    authenticate(store, secret, now=100.0 + TOUCH_EVERY / 2)
    assert store.tokens.list()[0].last_used_at == 100.0
    authenticate(store, secret, now=100.0 + TOUCH_EVERY)
    # Then only uses a minute apart are written
    assert store.tokens.list()[0].last_used_at == 100.0 + TOUCH_EVERY
    authenticate(store, secret)  # without a time, nothing is written
    assert store.tokens.list()[0].last_used_at == 100.0 + TOUCH_EVERY


# -- the first token ------------------------------------------------------------------


def test_the_first_start_makes_one_admin_token(store):
    # Given no token
    assert has_tokens(store) is False
    # When the service starts for the first time, then again
    secret = ensure_first_token(store, 1.0)
    again = ensure_first_token(store, 2.0)
    # Then one admin token named admin was made, its secret returned once
    assert secret is not None and again is None
    found = authenticate(store, secret)
    assert found is not None and (found.name, found.scope) == ("admin", "admin")
    assert has_tokens(store) is True


def test_another_live_token_means_no_first_token(store):
    create_token(store, "ci", "read", 1.0)
    assert ensure_first_token(store, 2.0) is None
    assert [t.name for t in store.tokens.list()] == ["ci"]


def test_when_every_token_was_revoked_a_new_admin_token_is_made(store):
    old = ensure_first_token(store, 1.0)
    assert old is not None
    store.tokens.revoke("admin", 2.0)
    assert has_tokens(store) is False
    new = ensure_first_token(store, 3.0)
    assert new is not None and new != old
    assert authenticate(store, old) is None and authenticate(store, new) is not None
