"""The API's routes by topic; each is a thin call into ``pepper.core``'s faces."""

from __future__ import annotations

from fastapi import Request

from pepper.core.runtime import Runtime


def runtime_of(request: Request) -> Runtime:
    """The runtime the app serves."""
    runtime: Runtime = request.app.state.runtime
    return runtime
