"""Routes whose identifiers may hold ``/``: an escaped slash (``%2F``) stays part of the identifier.

A task id may contain ``/`` (a run's steps are ``<run id>/<step id>``, and a step may be named ``result``), so
``/tasks/<id>/result`` alone cannot tell the task ``flow-1/result`` from the result of ``flow-1``. Routes made
with ``IdRoute`` match the path as it was sent: a ``/`` written as ``%2F`` belongs to the identifier, a bare
``/`` separates segments. A client that escapes every ``/`` of an id (as ``pepper.http.client`` does) is never
ambiguous; an unescaped id with slashes still works wherever no segment after it names a sub-resource.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import unquote

from fastapi.routing import APIRoute
from starlette.routing import Match
from starlette.types import Scope

#: Stands for an escaped ``/`` while a route is matched; never in a valid id (ids are printable).
_SLASH = "\x00"
_ESCAPED_SLASH = re.compile(rb"%2f", re.IGNORECASE)


def _kept_slashes(scope: Scope) -> Scope | None:
    """``scope`` with its path decoded from the raw path, escaped slashes as ``_SLASH``; None if it has none."""
    raw = scope.get("raw_path")
    if scope.get("type") != "http" or not isinstance(raw, bytes) or not _ESCAPED_SLASH.search(raw):
        return None
    parts = [unquote(p.decode("latin-1"), encoding="utf-8", errors="replace") for p in _ESCAPED_SLASH.split(raw)]
    if any(_SLASH in p for p in parts):
        return None
    path = _SLASH.join(parts)
    if path.replace(_SLASH, "/") != scope.get("path"):
        return None  # the path was rewritten on its way here: route it as it is
    return {**scope, "path": path}


class IdRoute(APIRoute):
    """An ``APIRoute`` matched against the path as sent: ``%2F`` is part of an identifier, never a separator."""

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        kept = _kept_slashes(scope)
        if kept is None:
            return super().matches(scope)
        match, child = super().matches(kept)
        params: dict[str, Any] | None = child.get("path_params")
        if params:
            child["path_params"] = {k: v.replace(_SLASH, "/") if isinstance(v, str) else v for k, v in params.items()}
        return match, child
