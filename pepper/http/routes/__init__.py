"""The API's routes by topic; each is a thin call into ``pepper.core``'s faces."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

from fastapi import Request

from pepper.core.runtime import Runtime

T = TypeVar("T")


def runtime_of(request: Request) -> Runtime:
    """The runtime the app serves."""
    runtime: Runtime = request.app.state.runtime
    return runtime


async def unless_stopping(request: Request, waiting: Coroutine[Any, Any, T]) -> tuple[bool, T | None]:
    """``(True, answer)`` of ``waiting`` (a long wait: ``?wait=``), or ``(False, None)`` once the server begins
    to stop: the wait is called off then, and the route answers what stands, as at the wait's deadline (a
    graceful stop does not keep such a request open until it is cut)."""
    stopping: asyncio.Event = request.app.state.stopping
    if stopping.is_set():
        waiting.close()
        return False, None
    wait, stop = asyncio.ensure_future(waiting), asyncio.ensure_future(stopping.wait())
    try:
        await asyncio.wait({wait, stop}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stop.cancel()
        if not wait.done():
            wait.cancel()
            await asyncio.gather(wait, return_exceptions=True)
    if wait.cancelled():
        return False, None
    return True, wait.result()
