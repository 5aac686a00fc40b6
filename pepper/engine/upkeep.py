"""Upkeep: noticing other processes' writes, proving we are alive, and spotting dead workers.

Several processes may share one database (``pepper worker`` on the same file,
a CLI submitting tasks). Each engine polls for rows written by the others, and
re-queues the running tasks of workers that died: at once when the dead
process was on this host (same host id, its pid is gone; what its commands left running is stopped first,
``orphans``), after
``visibility_timeout`` of silence otherwise. Silence is counted only over the time this worker's own
heartbeats went through (``liveness``): a lock that held up every writer silences no one.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable
from typing import TYPE_CHECKING

import psutil

from pepper.engine.budgets import reload_leases
from pepper.engine.liveness import OwnBeats
from pepper.engine.orphans import stop_commands_of
from pepper.engine.pruned import forget_missed_prunes, forget_pruned
from pepper.engine.usage import host_of
from pepper.errors import StoreError
from pepper.model.events import HistoryLoaded, PeersChanged, Rated, WorkersLost
from pepper.model.task import Task, TaskState

if TYPE_CHECKING:
    from pepper.engine.shell import Engine

log = logging.getLogger("pepper.engine")
#: After the database says another process wrote, how long a quiet spell ends the gathering of further writes
#: before reading them (one read for a burst of commits, not one each)...
WAKE_GATHER = 0.005
#: ... and how long the gathering lasts at most, while writes keep coming or this engine has work of its own
#: (attempts running, tasks queued): others' news is not urgent then, and a longer gather reads a task that
#: another worker claimed and finished meanwhile once, not twice.
MAX_GATHER = 0.05


def process_alive(pid: int, started_at: float) -> bool:
    """True if ``pid`` is a running process that started before ``started_at`` (not a reused pid)."""
    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return False
        return proc.create_time() <= started_at + 2.0
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return False


class Upkeep:
    """Periodic chores of one engine (runs as a task on the engine loop)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.change_seq = 0
        self._data_version: int | None = None
        self._next_beat = 0.0
        self._next_look = 0.0  # when ``poll`` reads the change count, even if the store told of no change
        self.feedback_seen = 0
        self.own_feedback: set[int] = set()  # ratings given through this engine (already learned)
        self._task: asyncio.Task[None] | None = None
        self._wake: asyncio.Event | None = None
        self._unsubscribe: Callable[[], None] | None = None
        self._agents_seen: tuple[int, float | None] | None = None  # live agents' signature at the last look
        #: The live workers and the engine's count of loads when a walk of the tasks in memory last found no
        #: orphan: only a load brings in a task another worker runs, so until either changes there is none.
        self._walked: tuple[frozenset[str], int] | None = None
        self.own_beats = OwnBeats(0.0, 0.0)  # this worker's own heartbeats, once ``begin`` knows their pace

    def begin(self) -> None:
        """Register this worker and load every unfinished task."""
        engine, store = self.engine, self.engine.store
        now, settings = engine.clock.now(), engine.settings
        self.own_beats = OwnBeats(settings.heartbeat_interval + settings.poll_interval, 4 * settings.visibility_timeout)
        store.workers.register(engine.worker_id, host_of(engine.settings), os.getpid(), now)
        self.own_beats.wrote(now, engine.clock.now())
        self.change_seq = store.current_change_seq()
        self._data_version = store.data_version()
        store.leases.reap_expired(now)
        reload_leases(engine)
        self.feedback_seen = store.feedback.last_id()
        since = now - 10 * engine.settings.score_half_life
        outcomes, ratings = store.history.outcomes(since), store.feedback.ratings(since)
        engine.dispatch(HistoryLoaded(tuple(outcomes), tuple(ratings), now, "load:history"))
        engine.ingest(store.unfinished(), cause="start-up")
        self.peers()
        self.sweep()
        self._next_beat = self._next_look = now + engine.settings.heartbeat_interval
        loop = asyncio.get_running_loop()
        wake = self._wake = asyncio.Event()

        # a database that tells of others' commits (PostgreSQL) wakes the poll at once, instead of at its next tick
        def wake_up() -> None:
            loop.call_soon_threadsafe(wake.set)

        self._unsubscribe = store.subscribe(wake_up)
        self._task = loop.create_task(self._run())

    async def end(self, deregister: bool = True) -> None:
        """Stop the chores, then deregister: mark this worker stopped and release its leases.

        Called once the engine has drained: from then on the others take any task still recorded as
        running here as lost. Without ``deregister`` (the last writes never reached the database) the
        others find this worker gone by its silence instead."""
        if self._unsubscribe is not None:
            self._unsubscribe()
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if not deregister:
            return
        engine = self.engine
        now = engine.clock.now()
        try:
            engine.store.workers.stop(engine.worker_id, now)
            engine.store.leases.release_worker(engine.worker_id, now)
        except StoreError as exc:  # the stop goes on: the others find this worker gone by its silence
            log.warning("could not record that worker %s stopped (%s)", engine.worker_id, exc)

    async def _run(self) -> None:
        settings = self.engine.settings
        while True:
            await self._pause(settings.poll_interval)
            try:
                self.poll()
                now = self.engine.clock.now()
                if now >= self._next_beat:
                    self._next_beat = now + settings.heartbeat_interval
                    self.heartbeat()
                    self.sweep()
            except StoreError as exc:  # the database is away for a moment (or refuses): no traceback for that
                log.warning("engine upkeep could not reach the database (%s); will try again", exc)
            except Exception:
                log.exception("engine upkeep failed; will try again")

    async def _pause(self, seconds: float) -> None:
        """Sleep ``seconds`` on the engine's clock, or less if the database says another process wrote."""
        wake = self._wake
        if wake is None or self._unsubscribe is None:
            await self.engine.clock.sleep(seconds)
            return
        sleeper = asyncio.ensure_future(self.engine.clock.sleep(seconds))
        waker = asyncio.ensure_future(wake.wait())
        try:
            await asyncio.wait((sleeper, waker), return_when=asyncio.FIRST_COMPLETED)
        finally:
            sleeper.cancel()
            waker.cancel()
        gathered, most = 0.0, min(seconds, MAX_GATHER)
        while wake.is_set() and gathered < most:
            wake.clear()
            step = min(WAKE_GATHER, most - gathered)
            await self.engine.clock.sleep(step)
            gathered += step
            if self.engine.busy():
                wake.set()  # not urgent: gather on
        wake.clear()

    def poll(self, force: bool = False) -> None:
        """Load tasks other processes wrote since we last looked (``force``: even if the database has not
        said that anything changed: a lost claim proves it did)."""
        store = self.engine.store
        version = store.data_version()
        if version == self._data_version and not force and not self._moved_untold():
            return
        self._data_version = version
        self._next_look = self.engine.clock.now() + self.engine.settings.heartbeat_interval
        tasks = self.engine.state.tasks

        def known(task_id: str) -> Task | None:
            live = tasks.get(task_id)
            return None if live is None else live.task

        if store.workers.signature() != self._agents_seen:  # a worker came or went: who else takes our tasks?
            self.peers()
        pruned = store.pruned_since(self.change_seq)
        if pruned:  # deleted by a prune elsewhere: their ids are free again (read first: a new row may reuse one)
            if any(task_id == "" and seen > self.change_seq for task_id, seen in pruned):
                forget_missed_prunes(self.engine)  # some records went before this process read them
            forget_pruned(self.engine, pruned)
        records, self.change_seq = store.changes_since(self.change_seq, self.engine.worker_id, known)
        if records:
            self.engine.ingest(records, cause="changed by another process")
        reload_leases(self.engine)  # someone may have allocated or released resources
        for feedback in store.feedback.after(self.feedback_seen):  # ratings given elsewhere
            self.feedback_seen = max(self.feedback_seen, feedback.feedback_id or 0)
            if feedback.agent_id is not None and feedback.feedback_id not in self.own_feedback:
                self.engine.dispatch(
                    Rated(feedback.agent_id, feedback.rating, feedback.created_at, f"rate:{feedback.task_id}")
                )

    def _moved_untold(self) -> bool:
        """Whether tasks changed though the store did not say so. A store that tells of others' commits
        (PostgreSQL's notifications) could fail to tell one, and an idle worker would then never look: at the
        heartbeat's pace, when nothing else made it read, it reads the change count (one small query)."""
        now = self.engine.clock.now()
        if self._unsubscribe is None or now < self._next_look:
            return False
        self._next_look = now + self.engine.settings.heartbeat_interval
        return self.engine.store.current_change_seq() != self.change_seq

    def peers(self) -> None:
        """Tell the engine which agents the other live workers run (at start, then at each sweep)."""
        engine = self.engine
        self._agents_seen = engine.store.workers.signature()
        others = engine.store.workers.agents(besides=engine.worker_id)
        takers = tuple(sorted({(kind, a.worker_id) for a in others for kind in a.spec.task_types}))
        engine.dispatch(PeersChanged(tuple(a.spec for a in others), engine.clock.now(), "load:peers", takers))

    def beat_if_silent(self) -> None:
        """Before this worker claims tasks: if its own heartbeat is overdue (the process was paused, say), write it
        first. Another worker may have presumed it dead meanwhile and takes over whatever a dead worker holds; the
        heartbeat revives it before it claims, so what it claims now is left to it."""
        last = self.own_beats.last
        if last is None or self.engine.clock.now() - last <= self.own_beats.interval:
            return
        try:
            self.heartbeat()
        except StoreError as exc:  # the claim's own commit meets the same database: it says what went wrong
            log.warning("could not write this worker's heartbeat before claiming tasks (%s)", exc)
        except Exception:  # never in the way of the commit that follows
            log.exception("could not write this worker's heartbeat before claiming tasks")

    def heartbeat(self) -> None:
        """Prove this worker alive, and note when the write went through (``sweep`` judges others by it)."""
        engine = self.engine
        asked = engine.clock.now()
        if not engine.store.workers.heartbeat(engine.worker_id, asked):
            log.warning("worker %s was presumed dead by another process; re-registering", engine.worker_id)
            engine.store.workers.revive(engine.worker_id, engine.clock.now())
        self.own_beats.wrote(asked, engine.clock.now())

    def sweep(self) -> None:
        """Re-queue the running tasks of workers that stopped without saying so. A worker's silence counts only
        over the time this worker's own heartbeats went through: a lock another process held on the database
        silenced every worker alike, and the others are given the full visibility timeout once it is gone."""
        engine = self.engine
        now = engine.clock.now()
        timeout = engine.settings.visibility_timeout
        live, host = set(), host_of(engine.settings)
        for worker in engine.store.workers.live():
            if worker.worker_id == engine.worker_id:
                live.add(worker.worker_id)
                continue
            silent = self.own_beats.silence(worker.heartbeat_at, now) > timeout
            # a pid means something only on its own host; elsewhere the heartbeat's silence tells
            gone = worker.hostname == host and not process_alive(worker.pid, worker.started_at)
            if silent or gone:
                if gone:  # what its commands left running here holds its leases: stopped before they are given back
                    self._stop_commands_of(worker.worker_id)
                engine.store.workers.stop(worker.worker_id, now)
                engine.store.leases.release_worker(worker.worker_id, now)
                if gone:
                    log.warning("worker %s (pid %s) has exited; its running tasks will run again",
                                worker.worker_id, worker.pid)  # fmt: skip
                else:  # it may be alive yet, only paused or cut off: what it finishes now is not kept
                    log.warning("worker %s (pid %s on %s) has not been heard from for %.0fs; its running tasks are "
                                "taken over and will run again", worker.worker_id, worker.pid, worker.hostname,
                                now - worker.heartbeat_at)  # fmt: skip
            else:
                live.add(worker.worker_id)
        orphaned = self._orphaned(live)
        engine.store.leases.reap_expired(now)
        reload_leases(engine)  # before re-queueing, so the dead workers' leases are free again
        if orphaned:
            engine.dispatch(WorkersLost(frozenset(orphaned), now, "lost:" + ",".join(sorted(orphaned))))
        self.peers()  # workers come and go with their agents
        if engine.state.accepting:  # a draining worker is about to leave: it takes on no one's runs
            engine.runs.adopt_orphans(live)

    @staticmethod
    def _stop_commands_of(worker_id: str) -> None:
        """Stop what a dead worker's commands left running here; a failure to look is logged, never in the way
        of the take-over (the tasks run again all the same, as on another host)."""
        try:
            stop_commands_of(worker_id)
        except Exception:
            log.exception("could not look for the commands worker %s left running", worker_id)

    def _orphaned(self, live: set[str]) -> set[str]:
        """The workers not in ``live`` that run tasks in memory. The tasks are walked only when the live workers
        or the tasks loaded changed since a walk that found none (a backlog is not walked at every sweep)."""
        engine = self.engine
        seen = (frozenset(live), engine.loads)
        if seen == self._walked:
            return set()
        orphaned = {
            t.owner
            for t in engine.state.tasks.values()
            if t.state is TaskState.IN_PROGRESS and t.owner is not None and t.owner not in live
        }
        self._walked = None if orphaned else seen
        return orphaned
