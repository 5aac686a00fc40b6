"""``/api/v1/events``: server-sent events of task state changes, run progress and alerts (``?run=`` filters).

A stream lasts as long as its token: it is read again before each batch of events is sent, and every second
while there is nothing to send; once the token is revoked the stream ends.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse

from pepper.http.auth import READ, TokenWatch
from pepper.http.events import ChangeFeed, Event, Subscription
from pepper.http.tokens import TokenRecord

router = APIRouter(tags=["events"])

#: A comment line this often keeps proxies from closing a quiet stream.
KEEP_ALIVE = 15.0


@router.get(
    "/events",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}, "description": "A stream of server-sent events"}},
)
async def events(request: Request, token: Annotated[TokenRecord, READ], run: str | None = None) -> StreamingResponse:
    """`event: task` (`task_id`, `state`, `run_id`, `at`), `event: run` (`run_id`, `state`, `done`, `total`,
    `at`) and `event: alert` (the alert), as they happen; only one run's with `run`; `: keep-alive` every 15 s.
    The stream ends once its token is revoked; a `run` that does not exist is 404."""
    feed: ChangeFeed = request.app.state.feed
    if run is not None:  # a run that is not there would never send anything: 404 at once
        await asyncio.to_thread(request.app.state.runtime.store.runs.get, run)
    subscription = await feed.subscribe_now(run)
    watch = TokenWatch(request.app.state.runtime.store, token)
    return StreamingResponse(
        _stream(feed, subscription, watch),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


async def _stream(feed: ChangeFeed, subscription: Subscription, watch: TokenWatch) -> AsyncIterator[str]:
    loop = asyncio.get_running_loop()
    try:
        yield ": connected\n\n"
        written = loop.time()
        while True:
            try:
                first = await asyncio.wait_for(subscription.queue.get(), watch.every)
            except TimeoutError:
                if not await watch.live():
                    yield _REVOKED
                    return
                if loop.time() - written >= KEEP_ALIVE:
                    written = loop.time()
                    yield ": keep-alive\n\n"
                continue
            batch = _drain(subscription, first)
            if not await watch.live(now=True):  # nothing reaches a token revoked before it was sent
                yield _REVOKED
                return
            chunk, ended = _written(batch)
            if chunk:
                yield chunk
            if ended:
                return
            written = loop.time()
    finally:
        feed.unsubscribe(subscription)


#: The last line of a stream whose token was revoked (a comment: clients skip it, people reading it see why).
_REVOKED = ": the token was revoked; the stream ends\n\n"


def _written(batch: list[Event | None]) -> tuple[str, bool]:
    """The events of ``batch`` as one piece of the stream, and whether the stream ends after them (a ``None``).

    One piece, not one per event: a batch can hold thousands (a big run ending), and each piece is a write to
    the socket. Written one by one, none of them waits, so a client gone meanwhile is noticed only after the
    whole batch, every write to its closed socket logged as a failure."""
    lines: list[str] = []
    for event in batch:
        if event is None:
            return "".join(lines), True
        lines.append(f"event: {event.kind}\ndata: {json.dumps(event.data, default=str)}\n\n")
    return "".join(lines), False


def _drain(subscription: Subscription, first: Event | None) -> list[Event | None]:
    """``first`` and every event already waiting after it."""
    batch = [first]
    while first is not None and not subscription.queue.empty():
        first = subscription.queue.get_nowait()
        batch.append(first)
    return batch
