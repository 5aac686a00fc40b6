"""The change feed behind ``/api/v1/events``: one poller per app, fanned out to every subscriber.

The poller learns of changes made by any process from the store: a cheap ``data_version`` check, then
``changes_since`` (so workers on other hosts are seen too). Each changed task becomes a ``task`` event, each run
it belongs to a ``run`` event (its progress), and each new alert an ``alert`` event. It reads through a
connection of its own: SQLite's ``data_version`` only moves for other connections' commits, and this process's
engine (``pepper serve --agents``) writes through the runtime's.

Alerts are followed by the number each takes as it is stored (``seq``), never by the time a worker's clock
gave it: each subscription starts after the last alert stored as it began and gets every later one once, in
the order they were stored.
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
#: Alerts read at a time.
ALERT_PAGE = 1000


@dataclass(frozen=True, slots=True)
class Event:
    """One server-sent event: its kind (``task``, ``run``, ``alert``), its data, the run it concerns."""

    kind: str
    data: dict[str, Any]
    run_id: str | None = None


@dataclass(eq=False)
class Subscription:
    """What one client receives: events of ``run_id`` only, or all of them; the alerts stored after the one
    numbered ``alerts_after`` (the last stored as it began, then the last it was sent)."""

    run_id: str | None
    alerts_after: int = 0
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
        self._alerts_read = 0  # the number of the last alert read
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
        self._alerts_read = self._store.alerts.last_seq()

    async def subscribe_now(self, run_id: str | None = None) -> Subscription:
        """A subscription to the changes from now on: the alerts stored after the last one stored now (if the
        database cannot say for a moment, after the last one the feed has read)."""
        try:
            after: int | None = await asyncio.to_thread(self.runtime.store.alerts.last_seq)
        except PepperError as exc:
            log.warning("the event feed could not read the last alert: %s", exc)
            after = None
        return self.subscribe(run_id, after)

    def subscribe(self, run_id: str | None = None, alerts_after: int | None = None) -> Subscription:
        """A subscription to the changes from the next poll on; to the alerts stored after ``alerts_after``
        (by default those after the last one the feed has read)."""
        after = self._alerts_read if alerts_after is None else alerts_after
        subscription = Subscription(run_id, after)
        if self.closed:
            subscription.queue.put_nowait(None)
        self._subscribers.add(subscription)
        return subscription

    @property
    def listening(self) -> int:
        """How many subscriptions the feed hands its changes to now (one per open stream)."""
        return len(self._subscribers)

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
            # the subscriptions of this poll: its alerts go to them (one that begins meanwhile has them next time)
            listening = list(self._subscribers)
            since = min((s.alerts_after for s in listening), default=None)
            try:
                events, alerts = await asyncio.to_thread(self._poll, bool(listening), since)
            except PepperError as exc:  # the database is busy or away for a moment: try again next time
                log.warning("the event feed could not read the database: %s", exc)
                events, alerts = [], []
            for event in events:
                for subscription in list(self._subscribers):
                    if subscription.wants(event):
                        self._send(subscription, event)
            if alerts:
                self._send_alerts([s for s in listening if s in self._subscribers], alerts)
            await asyncio.sleep(self.interval)

    def _send(self, subscription: Subscription, event: Event) -> None:
        try:
            subscription.queue.put_nowait(event)
        except asyncio.QueueFull:
            log.warning("an event stream fell %d events behind and was closed", BACKLOG)
            self._end(subscription)

    def _send_alerts(self, listening: list[Subscription], alerts: list[dict[str, Any]]) -> None:
        """Each subscription of the poll gets the alerts stored after the last it got, in the order stored; one
        that follows a single run gets none (an alert belongs to no run)."""
        last = alerts[-1]["seq"]
        for subscription in listening:
            for alert in alerts:
                if subscription.run_id is not None:
                    break
                if alert["seq"] > subscription.alerts_after and subscription in self._subscribers:
                    self._send(subscription, Event("alert", {**alert, "above": bool(alert["above"])}))
            subscription.alerts_after = max(subscription.alerts_after, last)

    def _poll(self, wanted: bool, alerts_since: int | None = None) -> tuple[list[Event], list[dict[str, Any]]]:
        """The events since the last poll (none are made while nobody listens; the position still moves), and
        the alerts stored after ``alerts_since`` (None: none are wanted)."""
        store = self._store
        assert store is not None
        if self._own:
            version = store.data_version()
            if version == self._version:  # nothing changed, but a subscription may be behind what was read
                if alerts_since is not None and alerts_since < self._alerts_read:
                    return [], self._alerts(store, alerts_since)
                return [], []
            self._version = version
        if not wanted:
            self._seq = store.current_change_seq()
            self._alerts_read = store.alerts.last_seq()
            return [], []
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
        return events, [] if alerts_since is None else self._alerts(store, alerts_since)

    def _alerts(self, store: SqlStore, since: int) -> list[dict[str, Any]]:
        """Every alert stored after the one numbered ``since``, in the order stored."""
        found: list[dict[str, Any]] = []
        while page := store.alerts.after(since, ALERT_PAGE):
            found += page
            since = page[-1]["seq"]
        self._alerts_read = max(self._alerts_read, since)
        return found
