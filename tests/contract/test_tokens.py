"""The store contract for API tokens: a name, a scope and a hash of the secret; revoked tokens find nothing."""

from __future__ import annotations

import pytest

from pepper.errors import DuplicateTokenError
from pepper.store.tokens import TokenRecord

HASH_A = "a" * 64
HASH_B = "b" * 64


def test_a_token_is_found_by_the_hash_of_its_secret(store):
    # Given a token
    store.tokens.add("ci", "write", HASH_A, 10.0)
    # When it is looked up by its hash
    found = store.tokens.by_hash(HASH_A)
    # Then its record comes back, and an unknown hash finds nothing
    assert found == TokenRecord("ci", "write", 10.0)
    assert found is not None and found.secret_hash == HASH_A
    assert store.tokens.by_hash(HASH_B) is None


def test_a_live_name_cannot_be_taken_twice_and_nothing_changes(store):
    # Given a live token named ci
    store.tokens.add("ci", "read", HASH_A, 10.0)
    # When another token is added under the same name
    with pytest.raises(DuplicateTokenError) as caught:
        store.tokens.add("ci", "admin", HASH_B, 20.0)
    # Then it is refused with the name, and the first token is as it was
    assert caught.value.name == "ci" and caught.value.field == "name"
    assert store.tokens.by_hash(HASH_B) is None
    assert store.tokens.list() == [TokenRecord("ci", "read", 10.0)]


def test_a_revoked_token_is_not_found_at_once_and_stays_listed(store):
    # Given a token
    store.tokens.add("ci", "write", HASH_A, 10.0)
    # When it is revoked
    assert store.tokens.revoke("ci", 30.0) is True
    # Then its hash finds nothing, it is listed as revoked, and revoking again changes nothing
    assert store.tokens.by_hash(HASH_A) is None
    assert store.tokens.list() == [TokenRecord("ci", "write", 10.0, revoked_at=30.0)]
    assert store.tokens.revoke("ci", 40.0) is False
    assert store.tokens.revoke("nobody", 40.0) is False


def test_a_revoked_name_may_be_reused_and_its_old_secret_stays_dead(store):
    # Given a revoked token
    store.tokens.add("ci", "write", HASH_A, 10.0)
    store.tokens.touch("ci", 15.0)
    store.tokens.revoke("ci", 20.0)
    # When a new token takes its name
    store.tokens.add("ci", "read", HASH_B, 30.0)
    # Then the new one replaces it, and the old secret finds nothing
    assert store.tokens.list() == [TokenRecord("ci", "read", 30.0)]
    assert store.tokens.by_hash(HASH_B) == TokenRecord("ci", "read", 30.0)
    assert store.tokens.by_hash(HASH_A) is None


def test_a_listing_never_carries_the_hashes(store):
    # Given two tokens
    store.tokens.add("b-token", "admin", HASH_B, 20.0)
    store.tokens.add("a-token", "read", HASH_A, 10.0)
    # When they are listed
    listed = store.tokens.list()
    # Then they come oldest first, without hashes, in their dict form too
    assert [t.name for t in listed] == ["a-token", "b-token"]
    assert all(t.secret_hash is None for t in listed)
    assert all(HASH_A not in str(t.to_dict()) and "hash" not in str(t.to_dict()) for t in listed)


def test_touch_records_the_last_use_of_live_tokens_only(store):
    # Given a live token and a revoked one
    store.tokens.add("live", "read", HASH_A, 10.0)
    store.tokens.add("gone", "read", HASH_B, 10.0)
    store.tokens.revoke("gone", 11.0)
    # When both are touched
    store.tokens.touch("live", 12.5)
    store.tokens.touch("gone", 12.5)
    store.tokens.touch("nobody", 12.5)
    # Then only the live one records it
    by_name = {t.name: t for t in store.tokens.list()}
    assert by_name["live"].last_used_at == 12.5
    assert by_name["gone"].last_used_at is None


def test_tokens_are_shared_by_every_store_on_the_database(shared_store):
    # Given a token added through one store
    first, second = shared_store(), shared_store()
    first.tokens.add("ci", "write", HASH_A, 10.0)
    assert second.tokens.by_hash(HASH_A) is not None
    # When another store revokes it
    second.tokens.revoke("ci", 20.0)
    # Then the first no longer finds it
    assert first.tokens.by_hash(HASH_A) is None


def test_a_watched_token_stays_live_until_another_store_revokes_it(shared_store):
    from pepper.http.tokens import create_token, hash_secret, still_live

    # Given a token read by one store, as a stream opened with it keeps it
    first, second = shared_store(), shared_store()
    secret = create_token(first, "watcher", "read", 10.0)
    record = first.tokens.by_hash(hash_secret(secret))
    assert record is not None and still_live(first, record)
    # When another store revokes it, and its name is given to a new secret
    second.tokens.revoke("watcher", 20.0)
    create_token(second, "watcher", "read", 30.0)
    # Then the record read before is dead for good; a record never read to authenticate never was live
    assert not still_live(first, record)
    assert not still_live(first, TokenRecord("watcher", "read", 30.0))
