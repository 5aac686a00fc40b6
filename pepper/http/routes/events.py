"""``/api/v1/events``: server-sent events of task state changes, run progress and alerts (``?run=`` filters)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse

from pepper.http.auth import READ
from pepper.http.events import ChangeFeed, Subscription

router = APIRouter(tags=["events"])

#: A comment line this often keeps proxies from closing a quiet stream.
KEEP_ALIVE = 15.0


@router.get(
    "/events",
    dependencies=[READ],
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}, "description": "A stream of server-sent events"}},
)
async def events(request: Request, run: str | None = None) -> StreamingResponse:
    """`event: task` (`task_id`, `state`, `run_id`, `at`), `event: run` (`run_id`, `state`, `done`, `total`,
    `at`) and `event: alert` (the alert), as they happen; only one run's with `run`; `: keep-alive` every 15 s."""
    feed: ChangeFeed = request.app.state.feed
    subscription = feed.subscribe(run)
    return StreamingResponse(
        _stream(feed, subscription),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


async def _stream(feed: ChangeFeed, subscription: Subscription) -> AsyncIterator[str]:
    try:
        yield ": connected\n\n"
        while True:
            try:
                event = await asyncio.wait_for(subscription.queue.get(), KEEP_ALIVE)
            except TimeoutError:
                yield ": keep-alive\n\n"
                continue
            if event is None:
                return
            yield f"event: {event.kind}\ndata: {json.dumps(event.data, default=str)}\n\n"
    finally:
        feed.unsubscribe(subscription)
