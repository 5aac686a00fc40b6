"""The faces' questions a server answers, for a runtime connected to one (``pepper.connect``).

Most questions the faces ask their runtime cross HTTP as they are (``Backend``); the ones they ask as a closure
over the engine's view of the agents, or of the database, cannot. A runtime that speaks to a server is a
``Server``: a face asks it the matching route of the server's API instead, with the question's arguments as
JSON, and turns the answer back into the object the local call returns. The server answers each route with the
same face, so both answers come from one rule.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol, cast

from pepper.core.runtime import Runtime


class Server(Protocol):
    """A runtime whose answers come from a pepper server's API."""

    def ask_server(
        self, method: str, path: Sequence[str], body: Any = None, params: Mapping[str, Any] | None = None
    ) -> Any:
        """The server's JSON answer to ``method`` on ``/api/v1/<path segments>`` (each segment escaped whole);
        an error answer raises the same ``PepperError`` the server raised."""
        ...


def server_of(runtime: Runtime) -> Server | None:
    """``runtime`` when its answers come from a server, else None (the face answers here, as always)."""
    return cast(Server, runtime) if hasattr(runtime, "ask_server") else None  # cheaper than a Protocol check
