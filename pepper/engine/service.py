"""The engine's front door: every request a runtime makes, as coroutines on the engine loop.

``EngineService`` is the one ``Backend`` an engine offers. It starts and stops the engine with its companions
(upkeep, sampler, lag probe, schedule ticks, retention) and answers each request with a short hop onto the
engine's state; statuses and waits are made in ``engine.task_statuses``, and agents join and leave through
``engine.agent_registry``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

from pepper.engine.agent_registry import add_agent, check_budget_fits, remove_agent
from pepper.engine.approvals import record_decision
from pepper.engine.attempts import AgentHandle
from pepper.engine.budgets import reload_leases
from pepper.engine.clock import Clock
from pepper.engine.figures import EngineCounters, EngineFigures, engine_figures
from pepper.engine.hooks import EngineHook
from pepper.engine.inspection import (
    MOVED,
    AgentsView,
    has_local_work,
    live_agents,
    read_still,
)
from pepper.engine.known_tasks import KnownTasks
from pepper.engine.metrics import LagProbe, MetricsHook
from pepper.engine.read_share import ReadShare
from pepper.engine.recovered import cancelled_by_failure, refuse_ended_run, refuse_fan_out_step
from pepper.engine.retention import Retention
from pepper.engine.sampler import Sampler
from pepper.engine.shell import Engine
from pepper.engine.stored import stored_observations
from pepper.engine.task_logs import read_task_log
from pepper.engine.task_statuses import settled_statuses, task_status, wait_for_tasks
from pepper.engine.ticks import Ticks
from pepper.engine.transitions.recovery import check_handleable, decided, outcome_of
from pepper.engine.upkeep import Upkeep
from pepper.errors import RuntimeClosedError, TaskNotFoundError
from pepper.model.agent import AgentSpec
from pepper.model.approval import Approval
from pepper.model.events import (
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
from pepper.model.resources import OffHost
from pepper.model.settings import Settings
from pepper.model.status import TaskError, TaskStatus
from pepper.model.submission import prepare
from pepper.model.task import Task, TaskState
from pepper.model.task_log import TaskLog
from pepper.model.workflow import WorkflowSpec
from pepper.model.workflow_run import RunRecord, RunState, WorkflowResult
from pepper.monitoring.health import HealthReport
from pepper.monitoring.window import Observation
from pepper.store.protocol import TaskPlace
from pepper.store.ratings import rate_task
from pepper.store.sql_store import SqlStore

T = TypeVar("T")


def check_budget(store: SqlStore, executor: str | None, spec: AgentSpec) -> None:
    """Refuse (``AgentDefinitionError``) an agent whose budget the pool recorded in ``store`` can never give, as
    an engine would when the agent joins it (``executor``: the runtime's, for an agent that names none; on Ray
    only the shared pools it names are pepper's to give)."""
    budget = spec.resources
    if budget and (spec.executor or executor) == "ray":
        budget = OffHost(budget, store.leases.shared()).pooled
    check_budget_fits(spec.agent_id, budget, store.leases.pool())


class EngineService:
    """Start/stop, submit, status, wait, cancel and agent registration on one engine."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.upkeep = Upkeep(engine)
        engine.catch_up = lambda: self.upkeep.poll(force=True)
        engine.before_claims = self.upkeep.beat_if_silent
        self.sampler = Sampler(engine, engine.attempts.home, engine.settings.sample_interval)
        self._known = KnownTasks(engine)
        self.metrics = MetricsHook(engine) if engine.settings.metrics else None
        engine.metrics = self.metrics
        self.lag = LagProbe()
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
        """Start the engine's companions: checkpoints, upkeep, sampler, lag probe, ticks and retention."""
        self.engine.store.checkpoint_in_background()
        self.upkeep.begin()
        self.sampler.start()
        self.lag.start()
        self.ticks.start()
        if self.retention is not None:
            self.retention.start()

    async def stop(self, timeout: float) -> None:
        """Start no more attempts, let running ones end (up to ``timeout``), commit their outcomes and leave."""
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
        delivering = None if keeper is None else asyncio.ensure_future(keeper.flushed())
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
        existing = await engine.submit_group(list(submission.new))
        return [existing.get(t.task_id, t) for t in submission.tasks]

    async def status(self, task_id: str) -> TaskStatus:
        """The task's current status, with the reasons it waits."""
        return await task_status(self.engine, task_id)

    async def wait(self, task_ids: Sequence[str], timeout: float | None) -> list[TaskStatus]:
        """Wait until every task is final or parked (and durable); their statuses, in order."""
        return await wait_for_tasks(self.engine, task_ids, timeout)

    def statuses(self, task_ids: Sequence[str], known: Mapping[str, TaskStatus] | None = None) -> list[TaskStatus]:
        """Statuses of settled tasks, ``known`` ones as they settled unless they changed since (``wait``)."""
        return settled_statuses(self.engine, task_ids, known)

    async def cancel(self, task_id: str, reason: str) -> bool:
        """Cancel a task and its dependents, or ask the worker running it to stop it (it may still finish the task
        first; then the dependents go on); True once that is stored, False if the task had already finished."""
        engine = self.engine
        if task_id not in engine.state.tasks:
            await task_status(engine, task_id)  # loads it or raises TaskNotFoundError
        t = engine.state.tasks.get(task_id)
        if t is None or t.state.is_final:
            return False
        engine.dispatch(CancelRequested(task_id, engine.clock.now(), reason, f"cancel:{task_id}"))
        await engine.committed()
        while task_id in engine.batch.dirty:  # its row had changed meanwhile: the cancel, decided again, is written
            await engine.committed()
        t = engine.state.tasks.get(task_id)
        if t is not None and t.state is TaskState.CANCELLED and engine.batch.dirty:
            await engine.committed()  # the cancels of its dependents, which follow the stored cancel
        return t is None or t.state is TaskState.CANCELLED or t.cancel_requested

    async def handle_error(self, task_id: str, error: TaskError, policy: Policy) -> RecoveryOutcome:
        """Apply ``policy`` to ``error`` of a task by hand, as the engine does when an attempt fails."""
        engine = self.engine
        refuse_fan_out_step(engine.store, task_id, policy)
        await task_status(engine, task_id)  # loads it or raises TaskNotFoundError
        t = engine.state.tasks[task_id]
        check_handleable(t, engine.worker_id)
        refuse_ended_run(engine.store, t.task)
        if t.state is TaskState.FAILED:
            self._load_cancelled_by(task_id)
        actions = engine.dispatch(ErrorHandled(task_id, error, policy, engine.clock.now(), f"handle:{task_id}"))
        await engine.committed()
        return outcome_of(t, decided(actions))

    async def replay(self, task_id: str, agent_id: str | None) -> bool:
        """Run a parked (or failed) task again; False if it is neither."""
        engine = self.engine
        refuse_fan_out_step(engine.store, task_id)
        await task_status(engine, task_id)
        t = engine.state.tasks[task_id]
        if t.state not in (TaskState.FAILED, TaskState.PARKED):
            return False
        refuse_ended_run(engine.store, t.task)
        if t.state is TaskState.FAILED:
            self._load_cancelled_by(task_id)
        engine.dispatch(Replayed(task_id, agent_id, engine.clock.now(), f"replay:{task_id}"))
        await engine.committed()
        return True

    def _load_cancelled_by(self, task_id: str) -> None:
        """Read into memory the tasks the failure of ``task_id`` cancelled that memory no longer holds (a
        recovery by hand takes them back), with their dependencies."""
        engine = self.engine
        known = engine.state.tasks
        missing = [r for r in cancelled_by_failure(engine.store, task_id) if r.task.task_id not in known]
        if missing:
            engine.ingest(missing, "dependents of a recovered task")

    async def drop(self, task_id: str, reason: str) -> bool:
        """Give up a parked task (it fails); False if it is not parked."""
        engine = self.engine
        await task_status(engine, task_id)
        if engine.state.tasks[task_id].state is not TaskState.PARKED:
            return False
        engine.dispatch(Dropped(task_id, reason, engine.clock.now(), f"drop:{task_id}"))
        await engine.committed()
        return True

    async def list_tasks(
        self, state: TaskState | None, limit: int, *, task_type: str | None = None,
        after: str | TaskPlace | None = None, id_contains: str | None = None,
    ) -> list[TaskStatus]:  # fmt: skip
        await self.engine.committed()
        records = self.engine.store.list_tasks(state, limit, task_type=task_type, after=after, id_contains=id_contains)
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
        """Register an agent (``agent_registry.add_agent``)."""
        await add_agent(self.engine, handle)

    async def remove_agent(self, agent_id: str) -> AgentHandle:
        """Unregister an agent (``agent_registry.remove_agent``); its handle."""
        return await remove_agent(self.engine, agent_id)

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
        loads = tuple((agent_id, agent.busy, state.routing.queued_share(agent), len(agent.held))
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

    def list_runs(
        self, limit: int, state: RunState | None = None, after: str | None = None, workflow: str | None = None
    ) -> list[RunRecord]:
        return self.engine.store.runs.list(state, limit, after=after, workflow=workflow)

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
