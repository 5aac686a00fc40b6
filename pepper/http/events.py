"""The change feed behind ``/api/v1/events``: one poller per app, fanned out to every subscriber.

The poller learns of changes made by any process from the store: a cheap ``data_version`` check, then
``changes_since`` (so workers on other hosts are seen too). Each changed task becomes a ``task`` event, each run
it belongs to a ``run`` event (its progress), and each new alert an ``alert`` event. It reads through a
connection of its own: SQLite's ``data_version`` only moves for other connections' commits, and this process's
engine (``pepper serve --agents``) writes through the runtime's.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from typing import Any

from pepper.core import WorkflowController
from pepper.core.runtime import Runtime
from pepper.errors import PepperError
from pepper.model.workflow import RUN_KEY
from pepper.store.location import open_store
from pepper.store.sql_store import SqlStore

log = logging.getLogger("pepper.http")

#: How often the store is asked whether anything changed.
POLL_INTERVAL = 0.2
#: Events a slow subscriber may fall behind by before it is disconnected.
BACKLOG = 10_000


@dataclass(frozen=True, slots=True)
class Event:
    """One server-sent event: its kind (``task``, ``run``, ``alert``), its data, the run it concerns."""

    kind: str
    data: dict[str, Any]
    run_id: str | None = None


@dataclass(eq=False)
class Subscription:
    """What one client receives: events of ``run_id`` only, or all of them."""

    run_id: str | None
    queue: asyncio.Queue[Event | None] = field(default_factory=lambda: asyncio.Queue(BACKLOG))

    def wants(self, event: Event) -> bool:
        return self.run_id is None or event.run_id == self.run_id


class ChangeFeed:
    """Polls the store for changes while the app runs and hands each one to the subscribers that want it."""

    def __init__(self, runtime: Runtime, interval: float = POLL_INTERVAL) -> None:
        self.runtime = runtime
        self.interval = interval
        self._subscribers: set[Subscription] = set()
        self._task: asyncio.Task[None] | None = None
        self._store: SqlStore | None = None
        self._own = False
        self._version: int | None = None
        self._seq = 0
        self._alerts_since = 0.0
        self._alerts_seen: set[str] = set()
        self.closed = False

    async def start(self) -> None:
        """Start polling (on the running loop), from the changes made after now."""
        await asyncio.to_thread(self._open)
        self._task = asyncio.get_running_loop().create_task(self._run(), name="pepper-events")

    def _open(self) -> None:
        settings = self.runtime.settings
        if settings.db == ":memory:":  # one connection only: changes are found by their numbers alone
            self._store = self.runtime.store
        else:
            self._store = open_store(settings.db, create=False, busy_timeout=settings.busy_timeout)
            self._own = True
            self._version = self._store.data_version()
        self._seq = self._store.current_change_seq()
        self._alerts_since = self.runtime.clock.now()

    def subscribe(self, run_id: str | None = None) -> Subscription:
        subscription = Subscription(run_id)
        if self.closed:
            subscription.queue.put_nowait(None)
        self._subscribers.add(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        self._subscribers.discard(subscription)

    async def close(self) -> None:
        """Stop polling and end every subscriber's stream."""
        if self.closed:
            return
        self.closed = True
        for subscription in list(self._subscribers):
            self._end(subscription)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._own and self._store is not None:
            await asyncio.to_thread(self._store.close)

    def _end(self, subscription: Subscription) -> None:
        self._subscribers.discard(subscription)
        with contextlib.suppress(asyncio.QueueFull):
            subscription.queue.put_nowait(None)
        if subscription.queue.full():  # make room for the end of the stream
            with contextlib.suppress(asyncio.QueueEmpty):
                subscription.queue.get_nowait()
            subscription.queue.put_nowait(None)

    async def _run(self) -> None:
        while not self.closed:
            try:
                events = await asyncio.to_thread(self._poll, bool(self._subscribers))
            except PepperError as exc:  # the database is busy or away for a moment: try again next time
                log.warning("the event feed could not read the database: %s", exc)
                events = []
            for event in events:
                for subscription in list(self._subscribers):
                    if subscription.wants(event):
                        try:
                            subscription.queue.put_nowait(event)
                        except asyncio.QueueFull:
                            log.warning("an event stream fell %d events behind and was closed", BACKLOG)
                            self._end(subscription)
            await asyncio.sleep(self.interval)

    def _poll(self, wanted: bool) -> list[Event]:
        """The events since the last poll (none are made while nobody listens; the position still moves)."""
        store = self._store
        assert store is not None
        if self._own:
            version = store.data_version()
            if version == self._version:
                return []
            self._version = version
        if not wanted:
            self._seq = store.current_change_seq()
            return []
        records, self._seq = store.changes_since(self._seq, "")
        now = self.runtime.clock.now()
        events: list[Event] = []
        runs: dict[str, None] = {}
        for record in records:
            run_id = record.task.metadata.get(RUN_KEY)
            run_id = run_id if isinstance(run_id, str) else None
            data = {"task_id": record.task.task_id, "state": record.state.value, "run_id": run_id, "at": now}
            events.append(Event("task", data, run_id))
            if run_id is not None:
                runs[run_id] = None
        for run_id in runs:
            result = WorkflowController(runtime=self.runtime).status(run_id)
            data = {"run_id": run_id, "state": result.status.value, "done": result.steps_ended,
                    "total": len(result.steps), "at": now}  # fmt: skip
            events.append(Event("run", data, run_id))
        return events + self._alerts(store)

    def _alerts(self, store: SqlStore) -> list[Event]:
        fresh = [a for a in reversed(store.alerts.recent(100))
                 if a["at"] >= self._alerts_since and a["alert_id"] not in self._alerts_seen]  # fmt: skip
        if fresh:
            self._alerts_since = max(a["at"] for a in fresh)
            self._alerts_seen = {a["alert_id"] for a in fresh if a["at"] == self._alerts_since}
        return [Event("alert", {**a, "above": bool(a["above"])}) for a in fresh]
