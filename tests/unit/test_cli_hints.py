"""The commands a command suggests: they reach the same place, and never show a secret."""

from __future__ import annotations

import click

from pepper.cli.common import SERVER_GIVEN, db_hint, where_hint


def test_a_suggested_server_is_the_one_typed_without_its_password() -> None:
    with click.Context(click.Command("status")) as ctx:
        ctx.meta[SERVER_GIVEN] = "http://ops:s3cret@127.0.0.1:8080"
        hint = where_hint("ignored.db")
    assert hint == " --server 'http://ops:***@127.0.0.1:8080'"
    assert "s3cret" not in hint


def test_without_a_typed_server_the_database_is_suggested_without_its_password() -> None:
    with click.Context(click.Command("status")):
        assert where_hint("postgresql://ops:s3cret@db/pepper") == " --db 'postgresql://ops:***@db/pepper'"
    assert db_hint(None) == ""
