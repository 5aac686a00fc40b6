"""Access: the caller may not do this (a server's tokens, scopes and approvers)."""

from __future__ import annotations

from collections.abc import Sequence

from pepper.errors.base import PepperError


class AccessDeniedError(PepperError, PermissionError):
    """The caller may not do this (a server's tokens and rules)."""


class AuthenticationError(AccessDeniedError):
    """No token was given, or it is unknown or revoked."""


class NotApproverError(AccessDeniedError):
    """The approval names its approvers, and the one deciding is not among them."""

    def __init__(self, task_id: str, who: str | None, approvers: Sequence[str]) -> None:
        name = repr(who) if who else "someone who did not say who they are (give --by, or the 'by' field)"
        super().__init__(f"step {task_id!r} waits for {' or '.join(approvers)}; {name} is not among them")
        self.task_id = task_id


class ImpersonationError(AccessDeniedError):
    """Over HTTP the one deciding is the token's name; a request naming someone else (``by``) is refused."""

    def __init__(self, token_name: str, by: str) -> None:
        super().__init__(
            f"over HTTP the one who decides is the token's name {token_name!r}; 'by' names {by!r}, someone else. "
            f"Leave 'by' out (or give {token_name!r}), or decide with a token named {by!r} "
            f"(`pepper token create --scope write --name {by}`)"
        )
        self.token_name = token_name
        self.by = by


class ScopeError(AccessDeniedError):
    """The token is valid but its scope is too small for the call; ``needed`` and ``scope`` name both."""

    def __init__(self, needed: str, scope: str) -> None:
        super().__init__(
            f"this needs a token with scope {needed!r} (or above); the token given has scope {scope!r}. Create one "
            f"with `pepper token create --scope {needed} --name NAME`"
        )
        self.needed = needed
        self.scope = scope


class ForbiddenWorkflowError(AccessDeniedError):
    """A workflow sent to a server that defines agents (code the server would run); only agents already
    registered by workers may be named."""
