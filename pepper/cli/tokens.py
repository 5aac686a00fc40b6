"""``pepper token create | list | revoke``: the API tokens of ``pepper serve``.

A secret is printed once, by ``create``, and never again: only its hash is stored. ``create`` prints the
secret alone on stdout (``export PEPPER_TOKEN=$(pepper token create ...)`` works) and says how to use it
on stderr.
"""

from __future__ import annotations

import time

import click
from rich.table import Table
from rich.text import Text

from pepper.cli.common import db_hint, db_option, json_option, open_runtime
from pepper.cli.render import clock_time, listing_console, make_console, print_json
from pepper.errors import TokenNotFoundError
from pepper.http.tokens import Scope, check_name, create_token
from pepper.store.tokens import TokenRecord

_SCOPES = [scope.value for scope in Scope]


@click.group("token")
@db_option
def token_group(db: str | None) -> None:
    """Make, list and revoke the tokens that let clients use `pepper serve`.

    A token has a scope: read (look), write (also submit, cancel, run) or admin
    (also tokens and settings). Clients send it as `Authorization: Bearer
    <secret>`; pepper commands given --server read it from $PEPPER_TOKEN.

    \b
    Examples:
      pepper token create --scope write --name ci
      pepper token list
      pepper token revoke ci
    """


@token_group.command("create")
@click.option(
    "--name",
    required=True,
    metavar="NAME",
    help="What the token is for: 1-64 of A-Z a-z 0-9 _ . @ - (an e-mail address will do)",
)
@click.option("--scope", required=True, type=click.Choice(_SCOPES), help="read < write < admin.")
@json_option
@db_option
def create(name: str, scope: str, as_json: bool, db: str | None) -> None:
    """Make a token and print its secret, once: only a hash of it is kept."""
    check_name(name)  # before the database is opened (or made): bad input changes nothing
    with open_runtime(db, create=True) as runtime:
        now = time.time()
        secret = create_token(runtime.store, name, scope, now)
    if as_json:
        print_json({"name": name, "scope": scope, "created_at": now, "token": secret})
        return
    notes = make_console(stderr=True)
    notes.print(Text(f"Token {name!r} ({scope}) created. Its secret follows, shown this once only:"))
    click.echo(secret)
    notes.print(
        Text(
            "Send it as the header `Authorization: Bearer <secret>`, or set PEPPER_TOKEN=<secret> for pepper "
            f"commands given --server. `pepper token revoke {name}{db_hint(db)}` ends it.",
            style="dim",
        )
    )


@token_group.command("list")
@json_option
@db_option
def list_tokens(as_json: bool, db: str | None) -> None:
    """List the tokens: names, scopes, when made, last used and revoked (never their secrets)."""
    with open_runtime(db, create=False) as runtime:
        tokens = runtime.store.tokens.list()
    empty = Text(
        "No tokens yet. `pepper token create --scope read --name NAME` makes one; `pepper serve` makes an admin "
        "token on its first start."
    )
    console = listing_console(as_json, tokens, TokenRecord.to_dict, empty)
    if console is None:
        return
    console.print(_tokens_table(tokens))


def _tokens_table(tokens: list[TokenRecord]) -> Table:
    table = Table(box=None, pad_edge=False, padding=(0, 2, 0, 0))
    for column in ("name", "scope", "created", "last used", "revoked"):
        table.add_column(column, no_wrap=True)
    for token in tokens:
        style = "dim" if token.revoked else ""
        table.add_row(
            Text(token.name, style=style),
            Text(token.scope, style=style),
            clock_time(token.created_at),
            clock_time(token.last_used_at),
            Text(clock_time(token.revoked_at), style="red" if token.revoked else ""),
        )
    return table


@token_group.command("revoke")
@click.argument("name")
@db_option
def revoke(name: str, db: str | None) -> None:
    """Revoke the live token NAME: it stops working at once, for every client and server."""
    with open_runtime(db, create=False) as runtime:
        if not runtime.store.tokens.revoke(name, time.time()):
            raise TokenNotFoundError(name)
    make_console().print(Text(f"Token {name!r} revoked."))
