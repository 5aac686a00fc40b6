"""Alerts on ``/api/v1/events``: every alert stored after a subscription began, once, in the order stored
(never by the time its writer's clock gave it); none stored before it."""

from __future__ import annotations

import asyncio
import json
import threading
import uuid
from pathlib import Path
from typing import Any

import pytest

import pepper
from pepper.http.events import ChangeFeed, Subscription
from pepper.monitoring.alerts import Alert
from tests.conftest import FAST
from tests.http.conftest import PATIENCE, Api


def _record(store: Any, message: str, at: float) -> None:
    alert = Alert(uuid.uuid4().hex, f"rule-{message}", "config", "error_rate", 0.9, 0.5, True, at, message=message)
    store.alerts.record(alert.to_row())


async def _alerts(subscription: Subscription, count: int) -> list[str]:
    """The messages of the next ``count`` alerts the subscription receives (other events are passed over)."""
    got: list[str] = []
    while len(got) < count:
        event = await asyncio.wait_for(subscription.queue.get(), PATIENCE)
        assert event is not None
        if event.kind == "alert":
            got.append(event.data["message"])
    return got


@pytest.fixture(params=["sqlite", "postgres"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "postgres":
        return str(request.getfixturevalue("postgres_url"))
    return str(tmp_path / "feed.db")


def test_each_subscription_gets_the_alerts_stored_after_it_began_in_the_order_stored(database, tmp_path):
    with (
        pepper.Runtime(db=database, home=str(tmp_path / "home"), **FAST) as rt,
        pepper.Runtime(db=database, home=str(tmp_path / "home"), **FAST) as other,  # another worker
    ):
        stores, now = (rt.store, other.store), rt.clock.now()  # (the database is made as the first is opened)

        async def scenario() -> None:
            feed = ChangeFeed(rt, interval=0.01)
            await feed.start()
            try:
                _record(stores[0], "before anyone listened", now)
                first = await feed.subscribe_now()
                _record(stores[0], "A", now)
                _record(stores[1], "B", now - 0.5)  # stored after A by a worker whose clock is behind
                assert await _alerts(first, 2) == ["A", "B"]
                second = await feed.subscribe_now()  # begins after A and B
                _record(stores[1], "C", now - 3600)
                _record(stores[0], "D", now)
                assert await _alerts(first, 2) == ["C", "D"]
                assert await _alerts(second, 2) == ["C", "D"]  # neither A nor B is replayed to it
                feed.unsubscribe(first)
                feed.unsubscribe(second)
                _record(stores[1], "while nobody listened", now + 1)
                third = await feed.subscribe_now()
                _record(stores[1], "E", now - 60)
                assert await _alerts(third, 1) == ["E"]
            finally:
                await feed.close()

        asyncio.run(scenario())


def test_a_stream_of_one_run_gets_no_alert_and_the_stream_of_everything_does(tmp_path):
    with pepper.Runtime(db=str(tmp_path / "feed.db"), home=str(tmp_path / "home"), **FAST) as rt:
        store, now = rt.store, rt.clock.now()

        async def scenario() -> None:
            feed = ChangeFeed(rt, interval=0.01)
            await feed.start()
            try:
                of_run = await feed.subscribe_now("run-1")
                of_all = await feed.subscribe_now()
                _record(store, "A", now)
                assert await _alerts(of_all, 1) == ["A"]  # (the same poll served both streams)
                kinds = []
                while not of_run.queue.empty():
                    event = of_run.queue.get_nowait()
                    kinds.append(event.kind if event is not None else None)
                assert "alert" not in kinds
            finally:
                await feed.close()

        asyncio.run(scenario())


def test_the_event_stream_sends_an_alert_stored_after_one_with_a_later_time(api: Api) -> None:
    store, now = api.runtime.store, api.runtime.clock.now()
    _record(store, "stored before the stream began", now + 10)
    received: list[str] = []
    ready = threading.Event()

    def listen() -> None:
        with api.client("read") as client, client.stream("GET", "/api/v1/events") as stream:
            kind = None
            for line in stream.iter_lines():
                if line.startswith(": connected"):
                    ready.set()
                elif line.startswith("event: "):
                    kind = line.removeprefix("event: ")
                elif line.startswith("data: ") and kind == "alert":
                    received.append(json.loads(line.removeprefix("data: "))["message"])
                    if len(received) == 2:
                        return

    reader = threading.Thread(target=listen, daemon=True)
    reader.start()
    assert ready.wait(PATIENCE)
    _record(store, "first, clock ahead", now + 5)
    _record(store, "second, clock behind", now - 5)
    reader.join(PATIENCE)
    assert not reader.is_alive() and received == ["first, clock ahead", "second, clock behind"]
