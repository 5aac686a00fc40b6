"""The engine: the imperative shell around ``EngineState``.

It turns what happens (submissions, attempts ending, timers, other processes'
writes) into events, hands them to the state machine, and carries out the
actions it returns. Writes are gathered per loop turn and committed together
(group commit); attempts start only after the write that claims them is
durable, and waiters wake only after a task's final state is.

All methods run on the engine's own event loop (see ``engine.portal``).

Over 400 lines, kept whole: each action kind is carried out here beside the commit whose outcome it waits on.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from types import MappingProxyType
from typing import Any

from pepper.engine.attempts import AgentHandle, Attempts
from pepper.engine.batch import Batch
from pepper.engine.clock import Clock, TimerHandle
from pepper.engine.collector import Collector
from pepper.engine.hooks import EngineHook
from pepper.engine.runs import RunDriver
from pepper.engine.state import EngineState
from pepper.engine.task_logs import LogWriter
from pepper.engine.tracing import trace
from pepper.engine.waiting import Waiters
from pepper.errors import ExpressionError, ResourceUnavailableError, StoreBusyError, StoreError
from pepper.model.agent import AgentSpec
from pepper.model.events import (
    Abort,
    Action,
    AgentReady,
    AttemptEnded,
    ClaimRefused,
    Decided,
    DropLease,
    Event,
    Forget,
    LeasesLoaded,
    ProgressReported,
    RecordAttempt,
    RecordError,
    Save,
    Settled,
    Start,
    TakeLease,
    TasksAdded,
    TasksLoaded,
    TimerFired,
    Trim,
    WakeAt,
    WriteRefused,
)
from pepper.model.lease import Lease, LeaseKind
from pepper.model.record import TaskRecord
from pepper.model.resources import OffHost, Resources, describe_shortfall
from pepper.model.retry import Backoff
from pepper.model.run import TaskRun
from pepper.model.settings import Settings
from pepper.model.slots import quick_init
from pepper.model.status import TaskError
from pepper.model.task import Task, TaskState
from pepper.model.workflow_run import RunRecord
from pepper.store.protocol import CommitResult, RunEnd, Store

log = logging.getLogger("pepper.engine")
_RETRY_COMMIT = (0.05, 0.2, 1.0, 5.0)
_NO_RESULTS: Mapping[str, Any] = MappingProxyType({})
_new_run = quick_init(TaskRun)  # one per attempt: built without the frozen dataclass's detour

#: Turns a task about to start, and its dependencies' results, into what its agent receives (see ``Engine.preparers``).
Preparer = Callable[[Task, Mapping[str, Any]], tuple[Task, Mapping[str, Any]]]


def _transient(exc: BaseException) -> bool:
    """A failure that may pass (the database is busy, locked, full or unreachable): retry the whole batch.

    Anything else (``WriteRefusedError``: a constraint, a value the database cannot hold) fails the same way
    every time.
    """
    return isinstance(exc, StoreBusyError)


def budget_lease_id(agent_id: str, worker_id: str) -> str:
    """The id of the budget lease an agent takes when it registers in a worker."""
    return f"budget:{agent_id}@{worker_id}"


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
        #: Reads everything other processes wrote since the last look (set by the upkeep that polls for it).
        self.catch_up: Callable[[], None] | None = None
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
        self._batch = Batch()
        self.collector = Collector()  # the cycle collector's pace while many tasks are in memory
        self._flush_handle: asyncio.Handle | None = None
        self._commit_failures = 0
        self._refused: set[str] = set()  # tasks whose changes the store refused (failed once already)
        self._timers: dict[tuple[str, str], TimerHandle] = {}
        logs = LogWriter(store, clock.now, settings.task_log_limit) if settings.task_log_limit else None
        self.attempts = Attempts(
            clock, self.dispatch, agents_home, executor=settings.executor, ray_address=settings.ray_address, logs=logs
        )
        self.budget_waiting: dict[str, AgentSpec] = {}
        self._lease_signature: object = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._act: dict[type, Callable[[Any], None]] = {
            Save: self._on_save,
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
        dirty = self._batch.dirty
        actions = self.state.handle(event)
        if log.isEnabledFor(logging.DEBUG):
            trace(actions, self.state.tasks)
        for action in actions:
            if type(action) is Save:  # the commonest action, kept off the method-call path
                dirty[action.task_id] = None
            else:
                act[type(action)](action)
        if dirty and self._flush_handle is None:
            self._flush_handle = self.loop.call_soon(self._flush)
        if self.hooks and isinstance(event, AttemptEnded):
            task = self.state.tasks.get(event.task_id)
            self.notify("on_attempt_ended", event, task.task if task else None)
        return actions

    def _on_save(self, action: Save) -> None:
        self._batch.dirty[action.task_id] = None
        self.schedule_flush()

    def _batch_start(self, action: Start) -> None:
        self._batch.starts.append(action)
        self.schedule_flush()

    def _on_abort(self, action: Abort) -> None:
        self.attempts.abort(action.task_id, action.attempt)

    def _on_settled(self, action: Settled) -> None:
        self._batch.settled.append(action.task_id)
        self.schedule_flush()

    def _on_record(self, action: RecordAttempt) -> None:
        self._batch.attempts.append(action)

    def _on_error(self, action: RecordError) -> None:
        self._batch.errors.append(action)
        if self.hooks:
            self.notify("on_recovery", action)

    def _on_decided(self, action: Decided) -> None:
        pass  # ``dispatch`` returns it to whoever asked for the decision

    def _on_forget(self, action: Forget) -> None:
        self.versions.pop(action.task_id, None)

    def _on_take_lease(self, action: TakeLease) -> None:
        self._batch.lease_takes.append((action.lease, action.attempt))

    def _on_drop_lease(self, action: DropLease) -> None:
        self._batch.lease_drops.append(action.lease_id)
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

    # -- group commit -----------------------------------------------------------------

    def schedule_flush(self) -> None:
        if self._flush_handle is None:
            self._flush_handle = self.loop.call_soon(self._flush)

    def submit_group(self, group: list[Task], run: RunRecord | None = None) -> asyncio.Future[Mapping[str, Task]]:
        """Queue new tasks (checked by the caller) for the next commit, with the row of the ``run`` they start;
        the future resolves once they are durable (with those that were already stored, by id)."""
        future: asyncio.Future[Mapping[str, Task]] = self.loop.create_future()
        for task in group:
            self.pending[task.task_id] = task
        self._batch.submissions.append((group, future))
        if run is not None:
            self._batch.runs.append((run, group))
        self.schedule_flush()
        return future

    def store_final(self, records: Sequence[TaskRecord]) -> None:
        """Queue tasks that are final from the start (a skipped workflow step) for the next commit."""
        self._batch.finals += records
        self.schedule_flush()

    def end_run(self, end: RunEnd) -> asyncio.Future[None]:
        """Queue how a workflow run ended for the next commit; the future resolves once it is durable."""
        self._batch.run_ends.append(end)
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
        self._batch.committed.append(future)
        self.schedule_flush()
        return future

    def _flush(self) -> None:
        self._flush_handle = None
        if not self._batch or self.store.closed:
            return
        batch, self._batch = self._batch, Batch()
        try:
            result = self._commit(batch)
        except Exception as exc:  # noqa: BLE001 - a write the store refuses must never stop the engine
            if _transient(exc):
                self._retry_flush(batch, exc)
                return
            self._commit_apart(batch, exc)
        else:
            self._commit_failures = 0
            self._refused.clear()
            self._after_commit(batch, result)
        state = self.state
        if len(state.finished) > state.keep_finished:  # (``Trim`` changes nothing below the budget)
            for action in state.handle(Trim(self.clock.now())):
                self._act[type(action)](action)
        self.collector.note(len(state.tasks) - len(state.finished))

    def _commit(self, batch: Batch) -> CommitResult:
        writes = batch.writes(self.state.tasks, self.versions, self.worker_id)
        return self.store.commit(writes, self.worker_id, self.clock.now())

    def _after_commit(self, batch: Batch, result: CommitResult) -> None:
        """Act on a durable batch: count versions, acknowledge submitters, start claimed attempts, wake waiters."""
        unwritten = result.conflicts | result.refused.keys() if result.refused else result.conflicts
        for tid in batch.dirty:
            if tid not in unwritten and tid in self.versions:
                self.versions[tid] += 1
        if batch.finals:
            finals = [replace(r, version=2) for r in batch.finals if r.task.task_id not in result.present]
            if finals:
                self.ingest(finals, "task stored final")
        for index, (group, future) in enumerate(batch.submissions):
            for task in group:
                self.pending.pop(task.task_id, None)
            rejected = result.rejected.get(index)
            if rejected is not None:
                if not future.done():
                    future.set_exception(rejected)
                continue
            fresh = tuple(t for t in group if t.task_id not in result.existing)
            for task in fresh:
                self.versions[task.task_id] = 1
            if fresh:
                self.dispatch(TasksAdded(fresh, self.clock.now(), f"submit:{fresh[0].task_id}"))
                if self.hooks:
                    self.notify("on_submitted", fresh)
            if not future.done():
                future.set_result(result.existing)
        if result.existing:
            # Stored already, yet unknown here: another process's (the same spec), or this one's own from a
            # commit reported failed that went through; whichever, read them in.
            known = self.state.tasks
            unknown = {task_id for task_id in result.existing if task_id not in known}
            if unknown:
                self._reread(unknown, [], [])
        for start in batch.starts:
            if start.task_id not in unwritten:
                self._launch(start)
        if result.refused:
            now = self.clock.now()
            for start in batch.starts:
                if start.task_id in result.refused:
                    self.dispatch(ClaimRefused(start.task_id, start.attempt, now, f"refused:{start.task_id}"))
            self._try(self.reload_leases)
        for task_id in batch.settled:
            if task_id not in result.conflicts:
                self._wake(task_id)
                if self.hooks:
                    t = self.state.tasks.get(task_id)
                    if t is not None:
                        self.notify("on_settled", task_id, t.state)
        for future in batch.committed:
            if not future.done():
                future.set_result(None)
        if result.conflicts:
            # Someone else wrote these rows: read all they wrote, together, before acting on any of it. Reading
            # only the lost rows would show a dependency completed without the claim of its dependent that
            # came with it, and this engine would claim that dependent too, and lose again, hop after hop.
            if self.catch_up is not None:
                self._try(self.catch_up)
            conflicts = result.conflicts
            starts = [start for start in batch.starts if start.task_id in conflicts]
            self._reread(conflicts, starts, [task_id for task_id in batch.settled if task_id in conflicts])

    def _reread(self, conflicts: set[str], starts: list[Start], settled: list[str], tries: int = 0) -> None:
        """Read back the rows of ``conflicts`` (again later, until the database answers), and act on those
        that show this worker's own write: a commit reported failed may have gone through all the same (the
        connection broke as it committed), so its retry lost to itself.

        A claim the row shows as ours, at this attempt, is ours: its attempt starts. An end the row shows
        settled wakes its waiters, as its own commit would have. A task with a change of its own waiting for
        the next commit is left to that commit."""
        try:
            records = self.load(conflicts, "conflict")
        except Exception as exc:  # noqa: BLE001 - the database is away: nothing is acted on before it answers
            if self.store.closed:
                return
            delay = _RETRY_COMMIT[min(tries, len(_RETRY_COMMIT) - 1)]
            log.warning("could not read back tasks changed meanwhile (%s); trying again in %.2fs", exc, delay)
            self.loop.call_later(delay, self._reread, conflicts, starts, settled, tries + 1)
            return
        rows = {record.task.task_id: record for record in records}
        waiting = self._batch.dirty
        for start in starts:
            row = rows.get(start.task_id)
            if row is None or start.task_id in waiting:
                continue
            if row.state is TaskState.IN_PROGRESS and row.owner == self.worker_id and row.attempts == start.attempt:
                running = self.attempts.running.get(start.task_id)
                if running is None or running.run.attempt != start.attempt:
                    self._launch(start)
        for task_id in settled:
            row, t = rows.get(task_id), self.state.tasks.get(task_id)
            if row is None or t is None or task_id in waiting or not row.state.is_settled or t.state is not row.state:
                continue
            self._wake(task_id)
            if self.hooks:
                self.notify("on_settled", task_id, t.state)

    def _try(self, chore: Callable[..., Any], *args: Any) -> None:
        """A read after a commit that may fail (the database is busy): logged; the next poll catches up."""
        try:
            chore(*args)
        except Exception:
            log.exception("%s after a commit failed; the next poll of the database catches up", chore.__name__)

    def _commit_apart(self, batch: Batch, exc: Exception) -> None:
        """The store refused the batch: store its items one by one, and fail only the ones it refuses."""
        log.error("commit refused (%s: %s); storing the batch item by item to set the faulty ones apart",
                  type(exc).__name__, exc)  # fmt: skip
        parts = batch.split()
        for index, (task_id, part) in enumerate(parts):
            try:
                result = self._commit(part)
            except Exception as item_exc:  # noqa: BLE001
                if _transient(item_exc):  # the database went away meanwhile: keep what is left for later
                    rest = Batch()
                    for _, later in parts[index:]:
                        rest.absorb(later)
                    rest.committed += batch.committed
                    self._retry_flush(rest, item_exc)
                    return
                self._refuse(task_id, part, item_exc)
            else:
                self._after_commit(part, result)
        self._commit_failures = 0
        for future in batch.committed:
            if not future.done():
                future.set_result(None)

    def _refuse(self, task_id: str | None, part: Batch, exc: Exception) -> None:
        """One item the store will not take: its submitters get the error, its task ends failed."""
        why = f"{type(exc).__name__}: {exc}"
        for group, future in part.submissions:
            for task in group:
                self.pending.pop(task.task_id, None)
            if not future.done():
                future.set_exception(StoreError(f"the database refused to store these tasks ({why})"))
        if part.lease_drops:  # a lease not released stays counted until it expires by itself
            log.error("could not release leases %s (%s); they expire on their own", part.lease_drops, why)
        if task_id is None:
            return
        if task_id in self._refused:
            log.critical("the database refused task %s even as a failure (%s); it is left as last stored",
                         task_id, why)  # fmt: skip
            return
        self._refused.add(task_id)
        log.error("the database refused the changes of task %s (%s); the task fails", task_id, why)
        message = f"the database refused to store this task's changes ({why})"
        error = TaskError("StoreError", message, kind="error")
        self.dispatch(WriteRefused(task_id, error, self.clock.now(), f"refused:{task_id}"))

    def _retry_flush(self, batch: Batch, exc: BaseException) -> None:
        """Keep the batch and try again later; nothing acknowledged is lost meanwhile."""
        delay = _RETRY_COMMIT[min(self._commit_failures, len(_RETRY_COMMIT) - 1)]
        self._commit_failures += 1
        log.error("commit failed (%s); retrying in %.2fs", exc, delay)
        batch.absorb(self._batch)
        self._batch = batch
        self._flush_handle = self.loop.call_later(delay, self._flush)

    def _wake(self, task_id: str) -> None:
        self.waiters.wake(task_id, self.state.tasks.get(task_id))

    # -- attempts ---------------------------------------------------------------------

    def _launch(self, start: Start) -> None:
        t = self.state.tasks.get(start.task_id)
        if (
            t is None
            or t.state is not TaskState.IN_PROGRESS
            or t.owner != self.worker_id
            or t.attempts != start.attempt
        ):
            return  # cancelled or taken over before its claim was committed
        if not self.state.accepting:  # claimed before the stop began, committed after the drain: run it later
            error = TaskError("Interrupted", "the worker shut down before the attempt started", kind="interrupted")
            ended = AttemptEnded(start.task_id, start.attempt, self.clock.now(), False, error=error, requeue=True,
                                 cause=f"attempt:{start.task_id}:{start.attempt}")  # fmt: skip
            self.dispatch(ended)
            return
        earlier = self.attempts.running.get(start.task_id)
        if earlier is not None:  # never two attempts of one task here: the state machine holds the newer one
            log.error("task %s was still running here (attempt %d) when attempt %d started; the earlier one stops",
                      start.task_id, earlier.run.attempt, start.attempt)  # fmt: skip
            self.attempts.abort(start.task_id, earlier.run.attempt)
        handle = self.handles.get(start.agent_id)
        if handle is None:
            self.dispatch(self._refused_start(start, "the agent was unregistered before the attempt started"))
            return
        task = t.task
        try:
            results = self.dependency_results(task.dependencies) if task.dependencies else _NO_RESULTS
            if t.recovery.run_as is not None:  # a recovery fell back to another task type
                task = replace(task, task_type=t.recovery.run_as)
            for prepare in self.preparers:
                task, results = prepare(task, results)
        except ExpressionError as exc:
            self.dispatch(self._refused_start(start, str(exc), "ExpressionError"))
            return
        except Exception as exc:  # the store could not be read: the attempt fails, its recovery decides
            log.exception("could not prepare attempt %d of task %s", start.attempt, start.task_id)
            self.dispatch(self._refused_start(start, f"could not read its inputs: {exc}", "StartFailed"))
            return
        run = _new_run(task, start.attempt, start.agent_id, results, self._report_progress, _log=self.attempts.log_line)
        self.attempts.start(handle, run)
        if self.hooks:
            self.notify("on_started", t.task, start.attempt, start.agent_id, self.clock.now())

    def notify(self, method: str, *args: Any) -> None:
        """Call ``method`` on every hook; a hook that raises is logged, never fatal."""
        for hook in self.hooks:
            try:
                getattr(hook, method)(*args)
            except Exception:
                log.exception("engine hook %s.%s failed", type(hook).__name__, method)

    def _refused_start(self, start: Start, why: str, kind: str = "AgentUnavailable") -> AttemptEnded:
        return AttemptEnded(start.task_id, start.attempt, self.clock.now(), False, error=TaskError(kind, why),
                            cause=f"attempt:{start.task_id}:{start.attempt}")  # fmt: skip

    def dependency_results(self, dependencies: Iterable[str]) -> dict[str, Any]:
        """Results of completed dependencies, from memory or (if trimmed) the store."""
        results: dict[str, Any] = {}
        missing = []
        for dep in dependencies:
            d = self.state.tasks.get(dep)
            if d is not None and d.state is TaskState.COMPLETED:
                results[dep] = d.result
            else:
                missing.append(dep)
        if missing:
            for dep, record in self.store.get_tasks(missing).items():
                results[dep] = record.result
        return results

    def _report_progress(self, task_id: str, attempt: int, fraction: float, message: str | None) -> None:
        if message is not None and not message.isascii():  # a file name that is not UTF-8 shows escaped
            message = message.encode("utf-8", "backslashreplace").decode("utf-8")
        event = ProgressReported(task_id, attempt, fraction, message, self.clock.now(), f"attempt:{task_id}:{attempt}")
        self.loop.call_soon_threadsafe(self.dispatch, event)

    def busy(self) -> bool:
        """True while this engine has work of its own: attempts running or tasks queued for its agents."""
        return bool(self.attempts.running) or self.state.routing.has_queued_work()

    # -- the resource pool ---------------------------------------------------------------

    def reload_leases(self) -> None:
        """Read the pool and its live leases, tell the state machine, and retry waiting budgets."""
        now = self.clock.now()
        pool, live = self.store.leases.pool_and_live(now)
        leases = tuple(live)
        signature = (tuple(sorted(pool.items())), tuple(sorted((lease.lease_id, lease.expires_at) for lease in leases)))
        if signature != self._lease_signature:
            self._lease_signature = signature
            self.dispatch(LeasesLoaded(pool, leases, now, "load:leases"))
        for agent_id in list(self.budget_waiting):
            spec = self.budget_waiting[agent_id]
            if self.grant_budget(spec) is None:
                del self.budget_waiting[agent_id]
                self.reload_leases()
                self.dispatch(AgentReady(agent_id, self.clock.now(), f"budget:{agent_id}"))
                return

    def off_host(self, spec: AgentSpec) -> OffHost | None:
        """For an agent on Ray, how it finds resources: Ray places its machine resources (with its actor), within
        the budget it declares; only the shared pools are pepper's to grant. None for an agent run here."""
        if not self.attempts.on_ray(spec):
            return None
        return OffHost(spec.resources, self.store.leases.shared())

    def pooled_budget(self, spec: AgentSpec) -> Resources:
        """The part of an agent's budget pepper's pool grants: all of it, except for an agent on Ray (``off_host``),
        of which only the shared pools it names are pepper's to grant."""
        if not spec.resources:
            return spec.resources
        off_host = self.off_host(spec)
        return spec.resources if off_host is None else off_host.pooled

    def grant_budget(self, spec: AgentSpec) -> str | None:
        """Lease an agent's budget (``pooled_budget``) from the pool; why it must wait, or None if granted."""
        budget = self.pooled_budget(spec)
        if not budget:
            return None
        lease = Lease(budget_lease_id(spec.agent_id, self.worker_id), spec.agent_id, LeaseKind.BUDGET,
                      budget, self.clock.now(), worker_id=self.worker_id)  # fmt: skip
        try:
            self.store.leases.grant_once(lease, self.clock.now())  # False: granted before (registered again)
        except ResourceUnavailableError as exc:
            return f"is waiting for its budget: {describe_shortfall(exc.shortfall)} in the pool"
        return None

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
        wanted = {r.task.task_id for r in records}
        deps = {d for r in records if not r.state.is_final for d in r.task.dependencies}
        deps -= wanted
        deps = {d for d in deps if d not in known}
        extra = list(self.store.get_tasks(deps).values()) if deps else []
        dirty = self._batch.dirty
        fresh = []
        for record in extra + records:
            task_id = record.task.task_id
            seen = self.versions.get(task_id)
            if seen is not None and record.version <= seen and task_id in dirty:
                continue  # our change, not saved yet, is newer than this row
            self.versions[task_id] = record.version
            # The stored row replaces memory: a save queued before it would write that row back under our name.
            dirty.pop(task_id, None)
            fresh.append(record)
        if fresh:
            self.loads += 1
            self.dispatch(TasksLoaded(tuple(fresh), self.clock.now(), cause, f"load:{cause}"))

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
            if not self._batch:
                break
            if self._flush_handle is not None:
                self._flush_handle.cancel()
                self._flush_handle = None
            self._flush()
            if self._batch and self._commit_failures:
                if self.loop.time() >= give_up:
                    break
                await asyncio.sleep(min(0.05 * self._commit_failures, 1.0))
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None
        committed = not self._batch
        if not committed:
            log.error("the database did not take this worker's last writes; their tasks will run again elsewhere")
        self.attempts.close()
        return committed
