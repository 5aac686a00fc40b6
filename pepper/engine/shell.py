"""The engine: the imperative shell around ``EngineState``.

It turns what happens (submissions, attempts ending, timers, progress reports, other processes' writes)
into events, hands them to the state machine, and carries out the actions it returns. Writes are gathered
per loop turn and committed together (``flush``, the group commit: ``engine.group_commit``); attempts start
only after the write that claims them is durable (``engine.launch``), and waiters wake only after a task's
final state is. Commits that fail or whose outcome is in doubt are handled in ``engine.failed_commits``;
the agents' budgets in the resource pool in ``engine.budgets``.

All methods run on the engine's own event loop (see ``engine.portal``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pepper.engine.attempts import AgentHandle, Attempts
from pepper.engine.batch import Batch
from pepper.engine.clock import Clock, TimerHandle
from pepper.engine.collector import Collector
from pepper.engine.failed_commits import retry_flush, transient
from pepper.engine.group_commit import after_commit, commit, commit_apart
from pepper.engine.hooks import EngineHook, notify, taken_over, tell_attempt_ended, tell_recovery, tell_settled
from pepper.engine.pruned import forget_pruned, stored_dependencies
from pepper.engine.runs import RunDriver
from pepper.engine.state import EngineState
from pepper.engine.task_logs import LogWriter
from pepper.engine.tracing import trace
from pepper.engine.waiting import Waiters
from pepper.model.agent import AgentSpec
from pepper.model.events import (
    Abort,
    Action,
    AttemptEnded,
    Decided,
    DropLease,
    Event,
    Forget,
    ProgressReported,
    RecordAttempt,
    RecordError,
    Save,
    Settled,
    Start,
    TakeLease,
    TasksLoaded,
    TimerFired,
    Trim,
    WakeAt,
)
from pepper.model.record import TaskRecord
from pepper.model.retry import Backoff
from pepper.model.settings import Settings
from pepper.model.status import storable_text
from pepper.model.task import Task, TaskState
from pepper.model.workflow_run import RunRecord
from pepper.store.protocol import RunEnd, Store

if TYPE_CHECKING:
    from pepper.engine.metrics import MetricsHook

log = logging.getLogger("pepper.engine")

#: Turns a task about to start, and its dependencies' results, into what its agent receives (see ``Engine.preparers``).
Preparer = Callable[[Task, Mapping[str, Any]], tuple[Task, Mapping[str, Any]]]


class Engine:
    """One process's scheduler: state machine + store + executors + timers."""

    def __init__(
        self,
        store: Store,
        settings: Settings,
        *,
        clock: Clock,
        worker_id: str,
        agents_home: Path,
        hooks: Sequence[EngineHook] = (),
    ) -> None:
        self.store = store
        self.settings = settings
        self.clock = clock
        self.worker_id = worker_id
        self.hooks = list(hooks)
        #: This engine's own counters (``engine/metrics.py``), told of the same events as the hooks, directly
        #: (``hooks.tell_started`` and the others).
        self.metrics: MetricsHook | None = None
        #: Reads everything other processes wrote since the last look (set by the upkeep that polls for it).
        self.catch_up: Callable[[], None] | None = None
        #: Called before a commit that claims tasks (set by the upkeep: a worker long silent heartbeats first).
        self.before_claims: Callable[[], None] | None = None
        #: Applied in order to every attempt before it starts; a preparer leaves tasks that are not its own as they are.
        self.preparers: list[Preparer] = []
        self.runs = RunDriver(self)  # the workflow runs this process drives
        self.state = EngineState(
            worker_id,
            ageing=settings.priority_ageing,
            backoff=Backoff(settings.retry_delay, settings.retry_backoff, settings.retry_max_delay),
            recovery=settings.recovery,
            keep_finished=settings.keep_finished,
            score_half_life=settings.score_half_life,
        )
        self.handles: dict[str, AgentHandle] = {}
        self.versions: dict[str, int] = {}
        self.pending: dict[str, Task] = {}  # submitted, not yet committed
        self.loads = 0  # stored records handed to the state machine so far (each ``TasksLoaded``)
        self.waiters = Waiters()
        self.collector = Collector()  # the cycle collector's pace while many tasks are in memory
        # The group commit's own (``group_commit``, ``failed_commits``): what the next commit writes, its
        # scheduled run, the commits failed in a row, and the tasks whose changes the store refused once already.
        self.batch = Batch()
        self.flush_handle: asyncio.Handle | None = None
        self.commit_failures = 0
        self.refused_tasks: set[str] = set()
        self._timers: dict[tuple[str, str], TimerHandle] = {}
        logs = LogWriter(store, clock.now, settings.task_log_limit) if settings.task_log_limit else None
        self.attempts = Attempts(clock, self.dispatch, agents_home, executor=settings.executor,
                                 ray_address=settings.ray_address, logs=logs, worker_id=worker_id)  # fmt: skip
        # The pool as last told to the state machine, and the agents waiting for their budget (``budgets``).
        self.lease_signature: object = None
        self.budget_waiting: dict[str, AgentSpec] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop_pruned = store.on_pruned(self._pruned)  # a prune in this process (the API, the retention)
        self._act: dict[type, Callable[[Any], None]] = {
            Start: self._batch_start,
            Abort: self._on_abort,
            Settled: self._on_settled,
            WakeAt: self._on_wake_at,
            RecordAttempt: self._on_record,
            RecordError: self._on_error,
            Forget: self._on_forget,
            TakeLease: self._on_take_lease,
            DropLease: self._on_drop_lease,
            Decided: self._on_decided,
        }

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
        return self._loop

    # -- the event -> action loop -----------------------------------------------------------

    def dispatch(self, event: Event) -> list[Action]:
        """Feed one event to the state machine and carry out its actions; they are returned to the caller
        (who may have asked for a decision: ``Decided``)."""
        act = self._act
        dirty = self.batch.dirty
        actions = self.state.handle(event)
        if log.isEnabledFor(logging.DEBUG):
            trace(actions, self.state.tasks)
        for action in actions:
            if type(action) is Save:  # the commonest action: written here, not through ``_act``
                dirty[action.task_id] = None
            else:
                act[type(action)](action)
        if dirty and self.flush_handle is None:
            self.flush_handle = self.loop.call_soon(self.flush)
        if (self.metrics is not None or self.hooks) and isinstance(event, AttemptEnded):
            tell_attempt_ended(self, event, bool(actions))
        return actions

    def _batch_start(self, action: Start) -> None:
        self.batch.starts.append(action)
        self.schedule_flush()

    def _on_abort(self, action: Abort) -> None:
        # Only an attempt that runs here can be lost: a claim the store refused (another worker's won) never ran.
        running = self.attempts.running.get(action.task_id)
        ran = running is not None and running.run.attempt == action.attempt
        self.attempts.abort(action.task_id, action.attempt)
        if ran and self.hooks:
            t = self.state.tasks.get(action.task_id)
            record = t.to_record() if t is not None else None
            if record is not None and taken_over(record, action.attempt, self.worker_id):
                notify(self.hooks, "on_attempt_lost", action.task_id, action.attempt, record)

    def _on_settled(self, action: Settled) -> None:
        self.batch.settled.append(action.task_id)
        self.schedule_flush()

    def _on_record(self, action: RecordAttempt) -> None:
        self.batch.attempts.append(action)

    def _on_error(self, action: RecordError) -> None:
        self.batch.errors.append(action)
        tell_recovery(self, action)

    def _on_decided(self, action: Decided) -> None:
        pass  # ``dispatch`` returns it to whoever asked for the decision

    def _on_forget(self, action: Forget) -> None:
        self.versions.pop(action.task_id, None)
        self.batch.dirty.pop(action.task_id, None)
        self.batch.ends.pop(action.task_id, None)

    def _pruned(self, tasks: Sequence[tuple[str, float]]) -> None:
        """Called by the store (on the thread that pruned) with the tasks a prune deleted."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(forget_pruned, self, tuple(tasks))

    def _on_take_lease(self, action: TakeLease) -> None:
        self.batch.lease_takes.append((action.lease, action.attempt))

    def _on_drop_lease(self, action: DropLease) -> None:
        self.batch.lease_drops.append(action.lease_id)
        self.schedule_flush()

    def _on_wake_at(self, action: WakeAt) -> None:
        old = self._timers.pop(action.key, None)
        if old is not None:
            old.cancel()
        key = action.key
        self._timers[key] = self.clock.call_at(action.at, lambda: self._fire(key))

    def _fire(self, key: tuple[str, str]) -> None:
        self._timers.pop(key, None)
        self.dispatch(TimerFired(key, self.clock.now(), f"timer:{key[0]}:{key[1]}"))

    def report_progress(self, task_id: str, attempt: int, fraction: float, message: str | None) -> None:
        """An attempt's progress (reported from any thread) becomes an event on the engine's loop."""
        if message is not None:  # a file name that is not UTF-8 shows escaped, a NUL character as U+FFFD
            message = storable_text(message)
        event = ProgressReported(task_id, attempt, fraction, message, self.clock.now(), f"attempt:{task_id}:{attempt}")
        self.loop.call_soon_threadsafe(self.dispatch, event)

    # -- group commit -----------------------------------------------------------------

    def schedule_flush(self) -> None:
        """Commit what changed at the end of this loop turn (``flush``), unless that is arranged already."""
        if self.flush_handle is None:
            self.flush_handle = self.loop.call_soon(self.flush)

    def submit_group(self, group: list[Task], run: RunRecord | None = None) -> asyncio.Future[Mapping[str, Task]]:
        """Queue new tasks (checked by the caller) for the next commit, with the row of the ``run`` they start;
        the future resolves once they are durable (with those that were already stored, by id)."""
        future: asyncio.Future[Mapping[str, Task]] = self.loop.create_future()
        for task in group:
            self.pending[task.task_id] = task
        self.batch.submissions.append((group, future))
        if run is not None:
            self.batch.runs.append((run, group))
        self.schedule_flush()
        return future

    def store_final(self, records: Sequence[TaskRecord]) -> None:
        """Queue tasks that are final from the start (a skipped workflow step) for the next commit."""
        self.batch.finals += records
        self.schedule_flush()

    def end_run(self, end: RunEnd) -> asyncio.Future[None]:
        """Queue how a workflow run ended for the next commit; the future resolves once it is durable."""
        self.batch.run_ends.append(end)
        return self.committed()

    # A run's driver and a cancel request are written at once, not with the next commit: the caller needs the
    # answer now (whether the run was still running; that no other process adopts it while its steps load),
    # and the store's write set has no record for either.

    def adopt_run(self, run_id: str) -> bool:
        """Make this process the driver of a stored run; False if there is no such run."""
        return self.store.runs.set_driver(run_id, self.worker_id)

    def request_run_cancel(self, run_id: str, reason: str) -> bool:
        """Mark a run cancelled on request (its driver, here or elsewhere, sees it); False if it had ended."""
        return self.store.runs.request_cancel(run_id, reason)

    def committed(self) -> asyncio.Future[None]:
        """A future resolved once everything changed so far is durable."""
        future: asyncio.Future[None] = self.loop.create_future()
        self.batch.committed.append(future)
        self.schedule_flush()
        return future

    def flush(self) -> None:
        """Commit everything changed since the last commit in one transaction and act on the outcome
        (``engine.group_commit``); scheduled once per loop turn that changed something."""
        self.flush_handle = None
        if not self.batch or self.store.closed:
            return
        batch, self.batch = self.batch, Batch()
        if batch.starts and self.before_claims is not None:
            self.before_claims()
        try:
            result = commit(self, batch)
        except Exception as exc:  # noqa: BLE001 - a write the store refuses must never stop the engine
            if transient(exc):
                retry_flush(self, batch, exc)
                return
            commit_apart(self, batch, exc)
        else:
            self.commit_failures = 0
            self.refused_tasks.clear()
            after_commit(self, batch, result)
        state = self.state
        if len(state.finished) > state.keep_finished:  # (``Trim`` changes nothing below the budget)
            for action in state.handle(Trim(self.clock.now())):
                self._act[type(action)](action)
        self.collector.note(len(state.tasks) - len(state.finished))

    def settled(self, task_id: str) -> None:
        """``task_id``'s settled state is durable: count it in the waits for it, tell the metrics and hooks."""
        t = self.state.tasks.get(task_id)
        self.waiters.wake(task_id, t)
        if t is not None and (self.metrics is not None or self.hooks):
            tell_settled(self, task_id, t.state)

    def busy(self) -> bool:
        """True while this engine has work of its own: attempts running or tasks queued for its agents."""
        return bool(self.attempts.running) or self.state.routing.has_queued_work()

    # -- loading from the store -----------------------------------------------------------

    def load(self, task_ids: Iterable[str], cause: str = "store") -> list[TaskRecord]:
        """Read tasks (and the dependencies they need) from the store into the state machine."""
        records = self.store.get_tasks(list(task_ids))
        if records:
            self.ingest(list(records.values()), cause)
        return list(records.values())

    def ingest(self, records: list[TaskRecord], cause: str) -> None:
        """Hand stored records to the state machine, with any dependencies it has not seen."""
        known = self.state.tasks
        released = self.batch.released_on_lost_ends(known, self.versions, records)
        if released:  # read back with the rows that replace the ends they were released on
            records = records + list(self.store.get_tasks(sorted(released)).values())
            self.batch.drop_starts(released)
        wanted = {r.task.task_id for r in records}
        deps = {d for r in records if not r.state.is_final for d in r.task.dependencies}
        deps -= wanted
        # Only a blocked task still counts on its dependencies: one held as final may have been pruned since
        # (a prune keeps every dependency of an unfinished task, so this is only when it went before the
        # dependent was stored). Those of a task past blocked need no look.
        ended = {d for r in records if r.state is TaskState.BLOCKED for d in r.task.dependencies} & deps
        extra = stored_dependencies(self, deps, ended) if deps else []
        dirty, ends = self.batch.dirty, self.batch.ends
        fresh = []
        lost = []
        for record in extra + records:
            task_id = record.task.task_id
            seen = self.versions.get(task_id)
            held = known.get(task_id)
            same = held is None or held.task.created_at == record.task.created_at  # else: a pruned id's new task
            if same and seen is not None and record.version <= seen and task_id in dirty and task_id not in released:
                continue  # our change, not saved yet, is newer than this row
            self.versions[task_id] = record.version
            # The stored row replaces memory: a save queued before it would write that row back under our name.
            dirty.pop(task_id, None)
            fresh.append(record)
            attempt = ends.pop(task_id, None) if ends else None
            if attempt is not None and taken_over(record, attempt, self.worker_id):  # the end it replaces is lost
                lost.append((task_id, attempt, record))
        if fresh:
            self.loads += 1
            self.dispatch(TasksLoaded(tuple(fresh), self.clock.now(), cause, f"load:{cause}"))
        for task_id, attempt, record in lost:
            notify(self.hooks, "on_attempt_lost", task_id, attempt, record)

    # -- shutdown -----------------------------------------------------------------------

    async def drain(self, timeout: float) -> bool:
        """Let running attempts end (up to ``timeout``), interrupt the rest, commit everything.

        True once every outcome is durable; False if the database would not take the last writes even
        after trying for a while (the caller should then not deregister: others find us gone by our
        silence and run those tasks again, as after a crash).
        """
        await self.attempts.drain(timeout)
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        give_up = self.loop.time() + max(5.0, timeout)
        for _ in range(1000):  # a commit can produce follow-up writes; a failed one is tried again
            if not self.batch:
                break
            if self.flush_handle is not None:
                self.flush_handle.cancel()
                self.flush_handle = None
            self.flush()
            if self.batch and self.commit_failures:
                if self.loop.time() >= give_up:
                    break
                await asyncio.sleep(min(0.05 * self.commit_failures, 1.0))
        if self.flush_handle is not None:
            self.flush_handle.cancel()
            self.flush_handle = None
        committed = not self.batch
        if not committed:
            log.error("the database did not take this worker's last writes; their tasks will run again elsewhere")
        self._stop_pruned()
        self.attempts.close()
        return committed
