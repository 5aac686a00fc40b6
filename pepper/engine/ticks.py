"""``Ticks``: the engine's loop that starts the runs of schedules whose tick has come.

It sleeps (on the engine's clock) until the earliest tick of the stored schedules, or ``RECHECK`` seconds (or
the engine's ``poll_interval`` if longer) to see schedules other processes added, whichever is sooner; a
schedule changed in this process wakes it at once.
Each due tick is claimed in the store (``ScheduleLog.claim``, one conditional UPDATE) before its run starts,
so with several workers on one database each tick starts exactly one run. A process that dies between the
claim and the run's commit loses that tick's run (at most once, never twice).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from dataclasses import replace
from typing import TYPE_CHECKING

from pepper.engine.periodic import Periodic
from pepper.errors import PepperError, ScheduleNotFoundError
from pepper.model.schedule import ScheduleRecord, due, local_time
from pepper.model.workflow import WorkflowSpec

if TYPE_CHECKING:
    from pepper.engine.clock import Clock
    from pepper.engine.shell import Engine

log = logging.getLogger("pepper.engine.ticks")

#: Seconds between two looks at the schedules when no tick is due sooner (schedules added elsewhere), at least;
#: a longer ``poll_interval`` (how often the engine reads what other processes wrote) is used instead.
RECHECK = 30.0
#: Real seconds between two cheap checks of whether another process wrote to the database (then the schedules
#: are read again at once, whatever the engine's clock says).
WATCH = 1.0


class Ticks(Periodic):
    """Fires the due ticks of every stored schedule, from this engine."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._wake: asyncio.Future[None] | None = None
        #: The latest runs started here: (schedule, tick, run id).
        self.started: deque[tuple[str, float, str]] = deque(maxlen=1000)

    def poke(self) -> None:
        """Look at the schedules again now (one was added, changed or resumed)."""
        if self._wake is not None and not self._wake.done():
            self._wake.set_result(None)

    async def _watch(self, seen: int) -> None:
        """Poke when another process wrote to the database after ``seen`` (its data version): it may have added
        or changed a schedule."""
        store = self.engine.store
        while True:
            await asyncio.sleep(WATCH)
            try:
                version = store.data_version()
            except PepperError:
                continue
            if version != seen:
                seen = version
                self.poke()

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        clock = self.engine.clock
        recheck = max(RECHECK, self.engine.settings.poll_interval)
        # the version is read before the first look at the schedules: whatever is written after it is noticed
        try:
            seen = self.engine.store.data_version()
        except PepperError:
            seen = -1  # unknown: the watcher's first look pokes
        watcher = loop.create_task(self._watch(seen))
        try:
            await self._loop(loop, clock, recheck)
        finally:
            watcher.cancel()

    async def _loop(self, loop: asyncio.AbstractEventLoop, clock: Clock, recheck: float) -> None:
        while True:
            try:
                earliest = await self.fire_due()
            except PepperError as exc:  # the database is busy or gone for a moment: look again later
                log.warning("could not read the schedules: %s", exc)
                earliest = None
            except Exception:
                log.exception("could not start the due runs of the schedules")
                earliest = None
            now = clock.now()
            at = now + recheck if earliest is None else min(earliest, now + recheck)
            wake = self._wake = loop.create_future()
            timer = clock.call_at(at, self.poke)
            try:
                await wake
            finally:
                timer.cancel()

    async def fire_due(self) -> float | None:
        """Start the runs of every tick due now; the time of the earliest tick still to come (None: none)."""
        store = self.engine.store
        earliest: float | None = None
        for record in store.schedules.list():
            if record.paused:
                continue
            following = await self._fire(record)
            if following is not None and (earliest is None or following < earliest):
                earliest = following
        return earliest

    async def _fire(self, record: ScheduleRecord) -> float | None:
        """Claim and run the due ticks of one schedule; its next tick afterwards (None: it is gone or paused)."""
        schedules = self.engine.store.schedules
        while True:
            now = self.engine.clock.now()
            decision = due(record, now)
            if decision is None:
                return record.next_fire_at
            fired = decision.run[-1] if decision.run else None
            if schedules.claim(record.name, record.next_fire_at, decision.next_fire_at, fired):
                if decision.missed:
                    first, last = (local_time(t, record.spec.timezone) for t in decision.missed)
                    log.info("schedule %r skipped the ticks it missed, %s to %s (catch_up is off)", record.name,
                             first, last)  # fmt: skip
                for tick in decision.run:
                    await self._start(record, tick)
                record = replace(record, next_fire_at=decision.next_fire_at)
                continue
            try:  # another worker took this tick: read where the schedule stands now
                record = schedules.get(record.name)
            except ScheduleNotFoundError:
                return None
            if record.paused:
                return None

    async def _start(self, record: ScheduleRecord, tick: float) -> None:
        spec = record.spec
        try:
            workflow = WorkflowSpec.from_dict(spec.spec)
            run_id = await self.engine.runs.start(workflow, dict(spec.inputs), schedule=spec.name)
        except (PepperError, KeyError, TypeError) as exc:  # a workflow that can no longer start: told, not fatal
            log.error("schedule %r could not start a run of %r: %s", spec.name, spec.workflow, exc)
            return
        self.engine.store.schedules.note_run(spec.name, run_id)
        self.started.append((spec.name, tick, run_id))
        log.info("schedule %r started run %s (tick %s)", spec.name, run_id, tick)
