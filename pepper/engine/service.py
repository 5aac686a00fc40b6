"""The engine's front door: every request a runtime makes, as coroutines on the engine loop.

Over 400 lines, kept whole: it is the one ``Backend`` an engine offers, each method a short hop onto its state.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

from pepper.engine.approvals import record_decision
from pepper.engine.attempts import AgentHandle
from pepper.engine.budgets import budget_lease_id, grant_budget, off_host, reload_leases
from pepper.engine.clock import Clock
from pepper.engine.hooks import EngineHook
from pepper.engine.inspection import (
    MOVED,
    AgentsView,
    EngineCounters,
    EngineFigures,
    engine_figures,
    has_local_work,
    live_agents,
    read_still,
    wait_facts,
)
from pepper.engine.live import LiveTask
from pepper.engine.metrics import LagProbe, MetricsHook
from pepper.engine.read_share import ReadShare
from pepper.engine.retention import Retention
from pepper.engine.sampler import Sampler
from pepper.engine.shell import Engine
from pepper.engine.stored import stored_observations
from pepper.engine.task_logs import read_task_log
from pepper.engine.ticks import Ticks
from pepper.engine.transitions.recovery import check_handleable, decided, outcome_of
from pepper.engine.upkeep import Upkeep
from pepper.engine.waiting import WaitGroup
from pepper.errors import (
    AgentAlreadyRegisteredError,
    AgentDefinitionError,
    AgentNotFoundError,
    AllocationNotFoundError,
    RuntimeClosedError,
    TaskNotFoundError,
    WaitTimeoutError,
)
from pepper.model.agent import AgentSpec
from pepper.model.approval import Approval
from pepper.model.events import (
    AgentAdded,
    AgentRemoved,
    CancelRequested,
    Draining,
    Dropped,
    ErrorHandled,
    HealthChanged,
    PlacementSet,
    Rated,
    Replayed,
)
from pepper.model.feedback import TaskFeedback
from pepper.model.lease import Lease
from pepper.model.recovery import ErrorRecord, Policy, RecoveryOutcome
from pepper.model.resources import describe_shortfall
from pepper.model.settings import Settings
from pepper.model.status import TaskError, TaskStatus
from pepper.model.submission import prepare
from pepper.model.task import Task, TaskState
from pepper.model.task_log import TaskLog
from pepper.model.workflow import WorkflowSpec
from pepper.model.workflow_run import RunRecord, RunState, WorkflowResult
from pepper.monitoring.health import HealthReport
from pepper.monitoring.window import Observation
from pepper.scheduling.explain import explain
from pepper.store.ratings import rate_task
from pepper.store.sql_store import SqlStore

T = TypeVar("T")
#: Tasks a wait reads from the store at a time (their records are dropped once their statuses are made).
_READ_CHUNK = 10_000


class _KnownTasks:
    """``StoredTasks`` for ``prepare``: memory first, then not-yet-committed submissions, then the store."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def existing(self, task_ids: Collection[str]) -> Mapping[str, Task]:
        # Tasks only in the store (finished and trimmed from memory) are not looked up here:
        # the insert itself detects them and compares specs (see Store.commit).
        tasks, pending = self._engine.state.tasks, self._engine.pending
        found: dict[str, Task] = {}
        for tid in task_ids:
            if tid in tasks:
                found[tid] = tasks[tid].task
            elif tid in pending:
                found[tid] = pending[tid]
        return found

    def awaited(self, task_ids: Collection[str]) -> bool:
        # Every unfinished task is in memory, so memory knows who waits for what.
        awaiting = self._engine.state.awaiting
        if any(tid in awaiting for tid in task_ids):
            return True
        wanted = set(task_ids)
        return any(dep in wanted for p in self._engine.pending.values() for dep in p.dependencies)

    def deps_of(self, task_id: str) -> Iterable[str]:
        engine = self._engine
        if task_id in engine.state.tasks:
            return engine.state.tasks[task_id].task.dependencies
        if task_id in engine.pending:
            return engine.pending[task_id].dependencies
        record = engine.store.get_tasks([task_id]).get(task_id)
        return record.task.dependencies if record else ()


def _keep_settled(
    task_ids: Sequence[str], tasks: Mapping[str, LiveTask], known: dict[str, TaskStatus], unsaved: Collection[str] = ()
) -> None:
    """Add to ``known`` the statuses of the tasks of ``task_ids`` settled in memory, but for ``unsaved`` ones."""
    for tid in task_ids:
        t = tasks.get(tid)
        if t is not None and t.state.is_settled and tid not in known and tid not in unsaved:
            known[tid] = t.to_status()


class EngineService:
    """Start/stop, submit, status, wait, cancel and agent registration on one engine."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.upkeep = Upkeep(engine)
        engine.catch_up = lambda: self.upkeep.poll(force=True)
        self.sampler = Sampler(engine, engine.attempts.home, engine.settings.sample_interval)
        self._known = _KnownTasks(engine)
        self.metrics = MetricsHook(engine) if engine.settings.metrics else None
        if self.metrics is not None:
            engine.hooks.append(self.metrics)
        self.lag = LagProbe(engine.clock)
        self.ticks = Ticks(engine)
        retention = engine.settings.retention
        self.retention = Retention(engine, retention) if retention is not None else None
        self._read_share = ReadShare()  # reads in place from other threads, all together
        self.closed = False

    @classmethod
    def build(
        cls, store: SqlStore, settings: Settings, *, clock: Clock, worker_id: str, agents_home: Path,
        hooks: Sequence[EngineHook],
    ) -> EngineService:  # fmt: skip
        """An engine over ``store`` (not started yet) and its front door."""
        return cls(Engine(store, settings, clock=clock, worker_id=worker_id, agents_home=agents_home, hooks=hooks))

    async def start(self) -> None:
        self.engine.store.checkpoint_in_background()
        self.upkeep.begin()
        self.sampler.start()
        self.lag.start()
        self.ticks.start()
        if self.retention is not None:
            self.retention.start()

    async def stop(self, timeout: float) -> None:
        engine = self.engine
        if self.closed:
            return
        self.closed = True
        engine.dispatch(Draining(engine.clock.now(), "drain"))  # no new attempts start from here on
        await self.ticks.stop()
        await self.sampler.stop()
        await self.lag.stop()
        if self.retention is not None:
            await self.retention.stop()
        # The worker stays registered, and keeps heart-beating, until every attempt has ended and its outcome
        # (interrupted ones requeued by us) is committed: other workers take the running tasks of a stopped
        # worker as lost and would run them again, throwing away what finishes here.
        keeper = self.sampler.keeper  # alerts it fired are delivered meanwhile
        delivering = None if keeper is None else asyncio.get_running_loop().run_in_executor(None, keeper.flush)
        committed = await engine.drain(timeout)
        if delivering is not None:
            await delivering
        await self.upkeep.end(deregister=committed)
        engine.waiters.fail_all(RuntimeClosedError("the runtime closed while waiting"))
        engine.collector.release()

    # -- tasks --------------------------------------------------------------------------

    async def submit(self, tasks: Sequence[Task]) -> list[Task]:
        """Validate and store ``tasks``; returns once they are committed."""
        engine = self.engine
        if self.closed:
            raise RuntimeClosedError("the runtime is closed; no new tasks are accepted")
        self.upkeep.poll()
        resources = engine.state.resources
        most = resources.most_given()  # beyond the pool when an agent on Ray declares more
        holder = "the whole pool" if most == resources.capacity else "the whole pool, or the largest Ray budget,"
        submission = prepare(tasks, self._known, most, holder)
        if not submission.new:
            return list(submission.tasks)
        new_ids = {t.task_id for t in submission.new}
        needed = {d for t in submission.new for d in t.dependencies} - new_ids
        needed = {d for d in needed if d not in engine.state.tasks and d not in engine.pending}
        if needed:
            engine.load(needed, cause="dependency of a new task")
        future: asyncio.Future[Mapping[str, Task]] = engine.loop.create_future()
        group = list(submission.new)
        for task in group:
            engine.pending[task.task_id] = task
        engine.batch.submissions.append((group, future))
        engine.schedule_flush()
        existing = await future
        return [existing.get(t.task_id, t) for t in submission.tasks]

    async def status(self, task_id: str) -> TaskStatus:
        """The task's current status, with the reasons it waits."""
        engine = self.engine
        t = engine.state.tasks.get(task_id)
        if t is None:
            if task_id in engine.pending:
                await engine.committed()
                return await self.status(task_id)
            records = engine.load([task_id], cause="status request")
            if not records:
                raise TaskNotFoundError(task_id)
            t = engine.state.tasks.get(task_id)
            if t is None:
                return records[0].to_status()
        facts = wait_facts(engine.state, task_id, engine.clock.now())
        waiting = explain(facts) if facts is not None else ()
        return t.to_status(waiting)

    async def wait(self, task_ids: Sequence[str], timeout: float | None) -> list[TaskStatus]:
        """Wait until every task is final or parked (and durable); their statuses, in order.

        One group waits for all the open tasks and keeps the status of each as it settles, so a task the
        engine forgets meanwhile is not read back; only tasks not in memory when the wait begins are read, in
        bulk, and only their statuses are kept."""
        engine = self.engine
        tasks = engine.state.tasks
        if any(tid in engine.pending for tid in task_ids):
            await engine.committed()
        unknown = list(dict.fromkeys(tid for tid in task_ids if tid not in tasks))
        known: dict[str, TaskStatus] = {}
        if unknown:  # read in bulk; only those still to wait for are loaded into memory
            unsettled = []
            for first in range(0, len(unknown), _READ_CHUNK):  # a chunk's records at a time: only statuses are kept
                chunk = unknown[first : first + _READ_CHUNK]
                stored = engine.store.get_tasks(chunk)
                if len(stored) < len(chunk):
                    raise TaskNotFoundError(next(tid for tid in chunk if tid not in stored))
                for tid, record in stored.items():
                    if record.state.is_settled:
                        known[tid] = record.to_status()
                    else:
                        unsettled.append(record)
            if unsettled:
                engine.ingest(unsettled, cause="wait")
        dirty = engine.batch.dirty
        if any(tid in dirty for tid in task_ids):
            _keep_settled(task_ids, tasks, known, dirty)  # the engine may forget them during the await
            await engine.committed()
        # Decided after that await: a task settling meanwhile must not be waited for (nobody would wake us).
        open_ids = [tid for tid in task_ids if tid in tasks and not tasks[tid].state.is_settled]
        if open_ids:
            _keep_settled(task_ids, tasks, known)  # the engine may forget them while we wait
            group = WaitGroup(len(open_ids), engine.loop.create_future())
            group.ended = known
            engine.waiters.add(group, open_ids)
            try:
                await asyncio.wait_for(asyncio.shield(group.future), timeout)
            except TimeoutError:
                engine.waiters.remove(group, open_ids)
                still = [tid for tid in open_ids if tid in tasks and not tasks[tid].state.is_settled]
                raise WaitTimeoutError(still, timeout or 0.0) from None
        return self.statuses(task_ids, known)

    def statuses(self, task_ids: Sequence[str], known: Mapping[str, TaskStatus] | None = None) -> list[TaskStatus]:
        """Statuses of settled tasks: ``known`` (statuses kept as they settled) unless the task changed in memory
        since, else from memory, else (trimmed from memory before anyone asked) the store; no waiting reasons."""
        engine = self.engine
        tasks = engine.state.tasks
        known = known or {}
        missing = [tid for tid in task_ids if tid not in tasks and tid not in known]
        stored = engine.store.get_tasks(missing) if missing else {}
        out = []
        for tid in task_ids:
            t = tasks.get(tid)
            status = known.get(tid)
            if t is not None and (status is None or status.state is not t.state or status.attempts != t.attempts):
                status = t.to_status()  # changed since it settled (a replay, a re-run): as it is now
            out.append(status if status is not None else stored[tid].to_status())
        return out

    async def cancel(self, task_id: str, reason: str) -> bool:
        """Cancel a task (and its dependents); False if it had already finished."""
        engine = self.engine
        if task_id not in engine.state.tasks:
            await self.status(task_id)  # loads it or raises TaskNotFoundError
        t = engine.state.tasks.get(task_id)
        if t is None or t.state.is_final:
            return False
        engine.dispatch(CancelRequested(task_id, engine.clock.now(), reason, f"cancel:{task_id}"))
        await engine.committed()
        t = engine.state.tasks.get(task_id)
        return t is None or t.state is TaskState.CANCELLED or t.cancel_requested

    async def handle_error(self, task_id: str, error: TaskError, policy: Policy) -> RecoveryOutcome:
        """Apply ``policy`` to ``error`` of a task by hand, as the engine does when an attempt fails."""
        engine = self.engine
        await self.status(task_id)  # loads it or raises TaskNotFoundError
        t = engine.state.tasks[task_id]
        check_handleable(t, engine.worker_id)
        actions = engine.dispatch(ErrorHandled(task_id, error, policy, engine.clock.now(), f"handle:{task_id}"))
        await engine.committed()
        return outcome_of(t, decided(actions))

    async def replay(self, task_id: str, agent_id: str | None) -> bool:
        """Run a parked (or failed) task again; False if it is neither."""
        engine = self.engine
        await self.status(task_id)
        t = engine.state.tasks[task_id]
        if t.state not in (TaskState.FAILED, TaskState.PARKED):
            return False
        engine.dispatch(Replayed(task_id, agent_id, engine.clock.now(), f"replay:{task_id}"))
        await engine.committed()
        return True

    async def drop(self, task_id: str, reason: str) -> bool:
        """Give up a parked task (it fails); False if it is not parked."""
        engine = self.engine
        await self.status(task_id)
        if engine.state.tasks[task_id].state is not TaskState.PARKED:
            return False
        engine.dispatch(Dropped(task_id, reason, engine.clock.now(), f"drop:{task_id}"))
        await engine.committed()
        return True

    async def list_tasks(
        self, state: TaskState | None, limit: int, *, task_type: str | None = None, after: str | None = None
    ) -> list[TaskStatus]:
        await self.engine.committed()
        records = self.engine.store.list_tasks(state, limit, task_type=task_type, after=after)
        return [r.to_status() for r in records]

    async def add_feedback(self, feedback: TaskFeedback) -> TaskFeedback:
        """Store a rating of a finished task and learn from it at once."""
        engine = self.engine
        stored = rate_task(engine.store, feedback, engine.clock.now())
        if stored.feedback_id is not None:
            self.upkeep.own_feedback.add(stored.feedback_id)
        if stored.agent_id is not None:
            engine.dispatch(Rated(stored.agent_id, stored.rating, stored.created_at, f"rate:{stored.task_id}"))
        return stored

    # -- agents -------------------------------------------------------------------------

    async def add_agent(self, handle: AgentHandle) -> None:
        engine = self.engine
        spec = handle.spec
        if spec.agent_id in engine.handles:
            raise AgentAlreadyRegisteredError(spec.agent_id)
        initialize = getattr(handle, "initialize", None)
        if initialize is not None:
            outcome = initialize()
            if inspect.isawaitable(outcome):
                await outcome
        waiting = None
        on_ray = off_host(engine, spec)
        budget = spec.resources if on_ray is None else on_ray.pooled  # on Ray: only the shared pools it names
        if budget:
            beyond = budget.shortfall(engine.state.resources.capacity)
            if beyond:
                raise AgentDefinitionError(
                    f"agent {spec.agent_id!r} asks for a budget the whole pool cannot give: "
                    f"{describe_shortfall(beyond)}"
                )
            waiting = grant_budget(engine, spec)
            if waiting is not None:
                engine.budget_waiting[spec.agent_id] = spec
            reload_leases(engine)
        engine.handles[spec.agent_id] = handle
        now = engine.clock.now()
        engine.store.workers.register_agent(spec, engine.worker_id, now)
        engine.dispatch(AgentAdded(spec, now, waiting, f"agent:{spec.agent_id}", on_ray))

    async def remove_agent(self, agent_id: str) -> AgentHandle:
        engine = self.engine
        handle = engine.handles.pop(agent_id, None)
        if handle is None:
            raise AgentNotFoundError(agent_id, engine.handles)
        engine.dispatch(AgentRemoved(agent_id, engine.clock.now(), f"agent:{agent_id}"))
        engine.store.workers.unregister_agent(agent_id, engine.worker_id)
        engine.budget_waiting.pop(agent_id, None)
        engine.attempts.forget(handle)
        if handle.spec.resources:
            lease_id = budget_lease_id(agent_id, engine.worker_id)
            try:
                engine.store.leases.release(lease_id, engine.clock.now())
            except AllocationNotFoundError:
                pass  # it was still waiting for its budget
            reload_leases(engine)
        cleanup = getattr(handle, "cleanup", None)
        if cleanup is not None:
            outcome = cleanup()
            if inspect.isawaitable(outcome):
                await outcome
        return handle

    def has_local_work(self) -> bool:
        return bool(self.engine.pending) or has_local_work(self.engine.state)

    # -- questions and requests from the faces (on the engine's thread) --------------------

    async def place(self, placements: Mapping[str, str | None]) -> None:
        """Pin waiting tasks to agents (a workload plan's assignments); ``None`` lifts a placement."""
        self.place_now(placements)

    def place_now(self, placements: Mapping[str, str | None]) -> None:
        """``place``, on the engine's thread."""
        engine = self.engine
        now = engine.clock.now()
        for task_id, agent_id in placements.items():
            if task_id not in engine.state.tasks:
                engine.load([task_id], cause="placement")
            engine.dispatch(PlacementSet(task_id, agent_id, now))

    def observations(self, since: float) -> tuple[list[Observation], str]:
        """Attempts that ended after ``since``: this engine's (in memory), else the database's."""
        if self.metrics is not None:
            return self.metrics.window.since(since), "this process"
        return stored_observations(self.engine.store, since), "database"

    def pool(self) -> dict[str, float]:
        """The pool as stored: the store, not this engine's view, is what every process shares."""
        return self.engine.store.leases.pool()

    def leases(self, now: float) -> list[Lease]:
        return self.engine.store.leases.live(now)

    def lease(self, lease_id: str) -> Lease:
        return self.engine.store.leases.get(lease_id)

    def leases_changed(self) -> None:
        """The pool's leases changed (another component granted or released one): read them again."""
        reload_leases(self.engine)

    def add_hook(self, hook: EngineHook) -> None:
        self.engine.hooks.append(hook)

    async def report_health(self, agent_id: str, healthy: bool, at: float) -> None:
        """An agent's health check passed or failed."""
        self.engine.dispatch(HealthChanged(agent_id, healthy, at))

    async def health(self, components: Sequence[str], timeout: float) -> HealthReport | None:
        return None  # made by the health monitor of this process

    def online_agents(self) -> list[AgentSpec]:
        return [a.spec for a in self.engine.store.workers.agents()]

    def task_log(self, task_id: str, attempt: int | None, from_seq: int) -> TaskLog:
        return read_task_log(self.engine.store, task_id, attempt, from_seq)

    def error_history(self, task_id: str) -> list[ErrorRecord]:
        if not self.engine.store.get_tasks([task_id]):
            raise TaskNotFoundError(task_id)
        return self.engine.store.errors.of_task(task_id)

    def dead_letters(self) -> list[TaskStatus]:
        return [r.to_status() for r in self.engine.store.errors.parked()]

    def figures(self) -> EngineFigures:
        """A copy of what the health monitor reads of this engine."""
        engine = self.engine
        attempts = engine.attempts
        return engine_figures(engine.state, engine.worker_id, self.lag.worst, attempts.stuck_threads, attempts.health())

    def counters(self) -> EngineCounters | None:
        """A copy of this engine's counters, histograms and agent loads (None when it keeps no metrics)."""
        hook = self.metrics
        if hook is None:
            return None
        state = self.engine.state
        loads = tuple((agent_id, len(agent.running), state.routing.queued_share(agent))
                      for agent_id, agent in sorted(state.agents.items()))  # fmt: skip
        return EngineCounters(
            dict(hook.counters),
            {key: (h.cumulative(), h.sum) for key, h in hook.waits.items()},
            {key: (h.cumulative(), h.sum) for key, h in hook.runs.items()},
            loads,
            self.lag.worst,
        )

    def read_agents(self, question: Callable[[AgentsView], T]) -> T:
        """``question`` over the live agents; call on the engine's thread only (the runtime hops there)."""
        return question(live_agents(self.engine.state, self.engine.clock.now()))

    def read_agents_still(self, question: Callable[[AgentsView], T]) -> T | object:
        """``question`` over the live agents from another thread, without the hop to the engine's: its answer,
        or ``inspection.MOVED`` when the state changed while it read (ask ``read_agents`` on the engine's
        thread then), also when readers in place took their share of the interpreter (``read_share``)."""
        began = self._read_share.begin()
        if began is None:
            return MOVED
        try:
            return read_still(self.engine.state, self.engine.clock.now(), question)
        finally:
            self._read_share.spent(began)

    # -- workflow runs driven by this process -----------------------------------------------

    async def start_run(self, spec: WorkflowSpec, inputs: Mapping[str, Any], plan: Mapping[str, Any] | None) -> str:
        return await self.engine.runs.start(spec, inputs, plan)

    async def wait_run(self, run_id: str, timeout: float | None, *, cancel_at_timeout: bool = False) -> WorkflowResult:
        return await self.engine.runs.wait(run_id, timeout, cancel_at_timeout=cancel_at_timeout)

    def run_result(self, run_id: str) -> WorkflowResult:
        return self.engine.runs.result(run_id)

    def list_runs(self, limit: int, state: RunState | None = None, after: str | None = None) -> list[RunRecord]:
        return self.engine.store.runs.list(state, limit, after=after)

    def run_record(self, run_id: str) -> RunRecord:
        return self.engine.store.runs.get(run_id)

    async def cancel_run(self, run_id: str, reason: str) -> bool:
        return self.engine.runs.cancel(run_id, reason)

    async def rerun_run(self, run_id: str, from_step: str | None) -> list[str]:
        return self.engine.runs.rerun(run_id, from_step)

    async def resume_run(self, run_id: str, spec: WorkflowSpec | None) -> None:
        self.engine.runs.resume(run_id, spec)

    async def approve_step(
        self, run_id: str, step_id: str, approve: bool, reason: str | None, by: str | None
    ) -> Approval:
        engine = self.engine
        decided = record_decision(engine.store, run_id, step_id, approve, reason, by, engine.clock.now())
        engine.runs.poke(run_id)  # driven here: on at once; elsewhere, its driver reads the decision
        return decided

    def run_approvals(self, run_id: str) -> list[Approval]:
        return self.engine.store.approvals.of_run(run_id)
