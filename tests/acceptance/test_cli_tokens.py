"""``pepper token create | list | revoke``, run as a user would, on a SQLite file and a PostgreSQL server."""

from __future__ import annotations

import json
import re
from pathlib import Path

from pepper.http.tokens import authenticate
from pepper.store.location import open_store
from tests.acceptance.test_cli_db import ok, pepper_cli

SECRET_RE = re.compile(r"pepper_[A-Za-z0-9_-]{43}")


def create(folder: Path, db: str, name: str, scope: str) -> str:
    """The secret ``pepper token create`` printed (alone on stdout)."""
    secret = ok(folder, "token", "create", "--scope", scope, "--name", name, "--db", db).strip()
    assert SECRET_RE.fullmatch(secret), secret
    return secret


def works(db: str, secret: str) -> bool:
    store = open_store(db, create=False)
    try:
        return authenticate(store, secret) is not None
    finally:
        store.close()


def test_a_token_is_printed_once_with_how_to_use_it_and_listed_without_it(tmp_path: Path):
    db = str(tmp_path / "pepper.db")
    # When a token is created
    done = pepper_cli(tmp_path, "token", "create", "--scope", "write", "--name", "ci", "--db", db)
    # Then stdout holds the secret alone, and stderr says how to send it
    assert done.returncode == 0, done.stderr
    secret = done.stdout.strip()
    assert SECRET_RE.fullmatch(secret)
    assert "Authorization: Bearer" in done.stderr and "PEPPER_TOKEN" in done.stderr
    assert works(db, secret)
    # And neither the listing nor the database file shows it again
    listing = ok(tmp_path, "token", "list", "--db", db)
    assert "ci" in listing and "write" in listing and "pepper_" not in listing
    rows = json.loads(ok(tmp_path, "token", "list", "--json", "--db", db))
    assert [(row["name"], row["scope"], row["revoked"]) for row in rows] == [("ci", "write", False)]
    assert "pepper_" not in json.dumps(rows)
    assert not any(secret.encode() in path.read_bytes() for path in tmp_path.glob("pepper.db*"))


def test_a_live_name_cannot_be_taken_again(tmp_path: Path):
    db = str(tmp_path / "pepper.db")
    first = create(tmp_path, db, "ci", "read")
    done = pepper_cli(tmp_path, "token", "create", "--scope", "admin", "--name", "ci", "--db", db)
    assert done.returncode == 2 and "a token named 'ci' already exists" in done.stderr
    assert done.stdout == ""
    rows = json.loads(ok(tmp_path, "token", "list", "--json", "--db", db))
    assert [(row["name"], row["scope"]) for row in rows] == [("ci", "read")]
    assert works(db, first)


def test_bad_input_is_refused_before_a_database_is_made(tmp_path: Path):
    db = tmp_path / "pepper.db"
    bad_name = pepper_cli(tmp_path, "token", "create", "--scope", "read", "--name", "has space", "--db", str(db))
    assert bad_name.returncode == 2 and "bad token name 'has space'" in bad_name.stderr
    bad_scope = pepper_cli(tmp_path, "token", "create", "--scope", "root", "--name", "ci", "--db", str(db))
    assert bad_scope.returncode == 2 and "'read', 'write', 'admin'" in bad_scope.stderr
    assert not db.exists()


def test_a_revoked_token_stops_working_and_its_name_can_be_reused(tmp_path: Path):
    db = str(tmp_path / "pepper.db")
    old = create(tmp_path, db, "ci", "write")
    # When it is revoked
    assert "revoked" in ok(tmp_path, "token", "revoke", "ci", "--db", db)
    # Then it no longer works, and is listed as revoked
    assert not works(db, old)
    rows = json.loads(ok(tmp_path, "token", "list", "--json", "--db", db))
    assert rows[0]["name"] == "ci" and rows[0]["revoked"] is True and rows[0]["revoked_at"] is not None
    # And revoking it again, or a name never made, is a clear error
    for name in ("ci", "nobody"):
        done = pepper_cli(tmp_path, "token", "revoke", name, "--db", db)
        assert done.returncode == 2 and f"no live token named {name!r}" in done.stderr
    # And the name may be taken again, by a new secret
    new = create(tmp_path, db, "ci", "read")
    assert works(db, new) and not works(db, old)


def test_listing_an_empty_database_says_how_to_make_a_token(tmp_path: Path):
    db = str(tmp_path / "pepper.db")
    open_store(db).close()
    assert "No tokens yet" in ok(tmp_path, "token", "list", "--db", db)
    assert json.loads(ok(tmp_path, "token", "list", "--json", "--db", db)) == []


def test_tokens_on_postgresql(tmp_path: Path, postgres_url: str):
    secret = create(tmp_path, postgres_url, "ci", "admin")
    assert works(postgres_url, secret)
    rows = json.loads(ok(tmp_path, "token", "list", "--json", "--db", postgres_url))
    assert [(row["name"], row["scope"]) for row in rows] == [("ci", "admin")]
    ok(tmp_path, "token", "revoke", "ci", "--db", postgres_url)
    assert not works(postgres_url, secret)
