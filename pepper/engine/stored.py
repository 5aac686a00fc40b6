"""The store-only ``Backend``: working on tasks straight through the store, when no engine runs here.

A CLI command (``pepper submit``, ``pepper status``, ``pepper cancel``) or a
script with no agents of its own does not need an engine: tasks are stored,
read and cancelled directly, and the workers that do have agents pick the
changes up. Cancelling runs the same state machine the engine uses, so the
rules (dependents are cancelled too; a running task is asked to stop) are
the same; it reads only the rows a question needs (the task, the blocked tasks
waiting on it, their dependencies, counts ahead of it), never the whole backlog.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from pepper.engine.approvals import record_decision
from pepper.engine.batch import Batch
from pepper.engine.clock import Clock
from pepper.engine.figures import EngineCounters, EngineFigures
from pepper.engine.inspection import AgentsView, facts_of, stored_shortfall
from pepper.engine.recovered import cancelled_by_failure, refuse_ended_run, refuse_fan_out_step
from pepper.engine.state import EngineState
from pepper.engine.task_logs import read_task_log
from pepper.engine.transitions.recovery import check_handleable, decided, outcome_of
from pepper.errors import ConflictError, RuntimeClosedError, TaskNotFoundError, WaitTimeoutError
from pepper.model.agent import AgentSpec
from pepper.model.approval import Approval
from pepper.model.events import (
    Action,
    CancelRequested,
    Dropped,
    EndsStored,
    ErrorHandled,
    Event,
    RecordAttempt,
    RecordError,
    Replayed,
    Save,
    TasksLoaded,
)
from pepper.model.feedback import TaskFeedback
from pepper.model.lease import Lease, Tally
from pepper.model.record import TaskRecord
from pepper.model.recovery import ErrorRecord, Policy, RecoveryOutcome
from pepper.model.status import TaskError, TaskStatus
from pepper.model.task import Task, TaskState
from pepper.model.task_log import TaskLog
from pepper.model.workflow import WorkflowSpec, task_id_of
from pepper.model.workflow_run import RunRecord, RunState, StepResult, WorkflowResult
from pepper.monitoring.health import HealthReport
from pepper.monitoring.window import Observation
from pepper.scheduling.backlog import ahead_in_routes, shares, waiting_from
from pepper.scheduling.choice import Chooser
from pepper.scheduling.directory import AgentDirectory
from pepper.scheduling.eligibility import Route
from pepper.scheduling.explain import WaitFacts, explain
from pepper.scheduling.load import AgentLoad
from pepper.scheduling.performance import Performance
from pepper.scheduling.queue import ageing_key
from pepper.store.protocol import Store, TaskPlace
from pepper.store.ratings import rate_task

_POLL = (0.02, 0.05, 0.1, 0.2, 0.5)
_AGENTS_TTL = 2.0  # seconds the stored agents view is reused
T = TypeVar("T")


class StoreBackend:
    """Submit, inspect, wait for and cancel tasks with the store alone."""

    def __init__(
        self, store: Store, clock: Clock, writer: str, ageing: float = 10.0, half_life: float = 3600.0
    ) -> None:
        self.store = store
        self.clock = clock
        self.writer = writer
        self.ageing = ageing  # priority points a waiting task gains per minute
        self.half_life = half_life  # seconds after which an outcome counts half in an agent's score
        self._agents: tuple[float, AgentsView] | None = None

    async def submit(self, tasks: Sequence[Task]) -> list[Task]:
        return list(self.store.submit(tasks, self.writer).tasks)

    def _record(self, task_id: str) -> TaskRecord:
        record = self.store.get_tasks([task_id]).get(task_id)
        if record is None:
            raise TaskNotFoundError(task_id)
        return record

    async def status(self, task_id: str) -> TaskStatus:
        record = self._record(task_id)
        return record.to_status(explain(self.facts(record)))

    def facts(self, record: TaskRecord) -> WaitFacts:
        """Why-waiting facts as the database knows them (agents of live workers)."""
        deps = self.store.get_tasks(record.task.dependencies)
        running = self.store.running_by_agent()
        registered = self.store.workers.agents()
        specs = [a.spec for a in registered]
        agents = [(spec, running.get(spec.agent_id, 0)) for spec in specs]
        now = self.clock.now()
        states = {d: (deps[d].state if d in deps else None) for d in record.task.dependencies}
        hosts: dict[str, tuple[dict[str, float], Tally]] = {}

        def seen_from(host: str) -> tuple[dict[str, float], Tally]:
            if host not in hosts:
                hosts[host] = self.store.leases.seen_from(host, now)
            return hosts[host]

        short, where = stored_shortfall(record, [(a.spec, a.hostname) for a in registered], seen_from)
        return facts_of(record, now, states, agents, self._ahead(record, specs, now), resources_short=short,
                        resources_where=where)  # fmt: skip

    def _ahead(self, record: TaskRecord, specs: Sequence[AgentSpec], now: float) -> int:
        """Ready tasks the agents able to run ``record`` serve first: counted by the store, one row per route."""
        if record.state is not TaskState.PENDING or (record.next_attempt_at or 0.0) > now:
            return 0
        task = record.task
        rate = self.ageing / 60.0
        key = ageing_key(task.priority, record.ready_at if record.ready_at is not None else task.created_at, rate)
        counts = [(Route(t, a, s), n) for t, a, s, n in self.store.ready_ahead(task.task_id, key, rate, now)]
        return ahead_in_routes(Route(task.task_type, record.placement or task.agent, task.requirements.skills),
                               counts, specs)  # fmt: skip

    async def wait(self, task_ids: Sequence[str], timeout: float | None) -> list[TaskStatus]:
        """Polls the store, each time reading only the tasks not final yet (a final row no longer changes)."""
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        records = self.store.get_tasks(task_ids)
        for task_id in task_ids:
            if task_id not in records:
                raise TaskNotFoundError(task_id)
        step = 0
        while True:
            open_ids = [tid for tid in task_ids if not records[tid].state.is_settled]
            if not open_ids:
                return [records[tid].to_status() for tid in task_ids]
            if deadline is not None and loop.time() >= deadline:
                raise WaitTimeoutError(open_ids, timeout or 0.0)
            delay = _POLL[min(step, len(_POLL) - 1)]
            if deadline is not None:
                delay = max(0.0, min(delay, deadline - loop.time()))
            await asyncio.sleep(delay)
            step += 1
            unfinished = {tid for tid in task_ids if not records[tid].state.is_final}  # parked ones may move on
            records.update(self.store.get_tasks(unfinished))

    async def cancel(self, task_id: str, reason: str) -> bool:
        if self._record(task_id).state.is_final:
            return False
        state, _ = self._apply(task_id, lambda now: CancelRequested(task_id, now, reason, f"cancel:{task_id}"))
        t = state.tasks[task_id]
        return t.state is TaskState.CANCELLED or t.cancel_requested  # (else it finished meanwhile)

    async def handle_error(self, task_id: str, error: TaskError, policy: Policy) -> RecoveryOutcome:
        refuse_fan_out_step(self.store, task_id, policy)
        record = self._record(task_id)
        check_handleable(record, self.writer)
        refuse_ended_run(self.store, record.task)
        state, actions = self._apply(
            task_id, lambda now: ErrorHandled(task_id, error, policy, now, f"handle:{task_id}")
        )
        return outcome_of(state.tasks[task_id], decided(actions))

    async def replay(self, task_id: str, agent_id: str | None) -> bool:
        refuse_fan_out_step(self.store, task_id)
        record = self._record(task_id)
        if record.state not in (TaskState.FAILED, TaskState.PARKED):
            return False
        refuse_ended_run(self.store, record.task)
        self._apply(task_id, lambda now: Replayed(task_id, agent_id, now, f"replay:{task_id}"))
        return True

    async def drop(self, task_id: str, reason: str) -> bool:
        if self._record(task_id).state is not TaskState.PARKED:
            return False
        self._apply(task_id, lambda now: Dropped(task_id, reason, now, f"drop:{task_id}"))
        return True

    def _apply(self, task_id: str, event: Callable[[float], Event]) -> tuple[EngineState, list[Action]]:
        """Run ``event(now)`` through the state machine over what it can touch, and store what changed; retried
        when another process wrote the same tasks meanwhile.

        What it can touch is ``task_id``, the blocked tasks waiting on it (transitively: a cancel or a failure
        cascades to them) and the dependencies of those, read by id: never the whole backlog. The dependents of
        a cancel are written in a commit after the cancel's own (never with it: its write may lose).
        """
        for _ in range(5):
            records = self._neighbourhood(self._record(task_id))
            state = EngineState(self.writer)
            versions = {r.task.task_id: r.version for r in records}
            now = self.clock.now()
            # (what the rows read call for themselves is written too: a dependent left blocked behind a cancel
            # stored without it, when the process that cancelled stopped in between)
            loaded = state.handle(TasksLoaded(tuple(records), now, "offline", "load:offline"))
            actions = state.handle(event(now))
            stored = self._store(state, versions, loaded + actions)
            while stored and state.cascades_unstored:
                followed = state.handle(EndsStored(tuple(state.cascades_unstored), now, f"stored:cancel:{task_id}"))
                stored = self._store(state, versions, followed)
                actions += followed
            if stored:
                return state, actions
        raise ConflictError(f"could not change {task_id!r}: it kept changing while we tried; try again")

    def _store(self, state: EngineState, versions: dict[str, int], actions: list[Action]) -> bool:
        """Write what ``actions`` changed over ``versions`` (counted up for the rows written); False when another
        process wrote one of those rows meanwhile."""
        batch = Batch()
        for action in actions:
            if isinstance(action, Save):
                batch.dirty[action.task_id] = None
            elif isinstance(action, RecordAttempt):
                batch.attempts.append(action)
            elif isinstance(action, RecordError):
                batch.errors.append(action)
        if not batch:
            return True
        result = self.store.commit(batch.writes(state.tasks, versions, self.writer), self.writer)
        for written in batch.dirty.keys() - result.conflicts:
            versions[written] += 1
        return not result.conflicts

    def _neighbourhood(self, target: TaskRecord) -> list[TaskRecord]:
        """``target``, its blocked dependents (transitively) and their open tasks' dependencies, dependencies
        first (as the engine takes them in); of a failed ``target``, also the tasks its failure cancelled."""
        found = {target.task.task_id: target}
        frontier = [target.task.task_id]
        while frontier:
            fresh = [r for r in self.store.blocked_dependents(frontier) if r.task.task_id not in found]
            found.update((r.task.task_id, r) for r in fresh)
            frontier = [r.task.task_id for r in fresh]
        needed = {d for r in found.values() if not r.state.is_final for d in r.task.dependencies} - found.keys()
        records = [*self.store.get_tasks(needed).values(), *found.values()]
        if target.state is TaskState.FAILED:  # a recovery by hand takes back what its failure cancelled
            taken = {r.task.task_id for r in records}
            records += [r for r in cancelled_by_failure(self.store, target.task.task_id) if r.task.task_id not in taken]
        return records

    async def add_feedback(self, feedback: TaskFeedback) -> TaskFeedback:
        return rate_task(self.store, feedback, self.clock.now())

    async def list_tasks(
        self, state: TaskState | None, limit: int, *, task_type: str | None = None,
        after: str | TaskPlace | None = None, id_contains: str | None = None,
    ) -> list[TaskStatus]:  # fmt: skip
        found = self.store.list_tasks(state, limit, task_type=task_type, after=after, id_contains=id_contains)
        return [r.to_status() for r in found]

    async def place(self, placements: Mapping[str, str | None]) -> None:
        self.store.set_placements(placements, self.writer)

    def observations(self, since: float) -> tuple[list[Observation], str]:
        return stored_observations(self.store, since), "database"

    def pool(self) -> dict[str, float]:
        return self.store.leases.pool()

    def leases(self, now: float) -> list[Lease]:
        return self.store.leases.live(now)

    def lease(self, lease_id: str) -> Lease:
        return self.store.leases.get(lease_id)

    def figures(self) -> EngineFigures | None:
        return None  # no engine here

    def counters(self) -> EngineCounters | None:
        return None

    async def report_health(self, agent_id: str, healthy: bool, at: float) -> None:
        """Nothing to do: no agent runs here, and other workers' agents are judged by their heartbeats."""

    def read_agents(self, question: Callable[[AgentsView], T]) -> T:
        """``question`` over the agents of the running workers, as the database records them (the view is
        read again every few seconds)."""
        cached = self._agents
        if cached is None or time.monotonic() - cached[0] >= _AGENTS_TTL:
            cached = self._agents = (time.monotonic(), stored_agents(self.store, self.clock.now(), self.half_life))
        return question(cached[1])

    # -- workflow runs: driven by an engine; the store alone reads them ---------------------

    def _no_engine(self) -> RuntimeClosedError:
        return RuntimeClosedError("no engine runs in this process, and a workflow run needs one to drive it; "
                                  "start the runtime (or register an agent) first")  # fmt: skip

    async def start_run(self, spec: WorkflowSpec, inputs: Mapping[str, Any], plan: Mapping[str, Any] | None) -> str:
        raise self._no_engine()

    async def wait_run(self, run_id: str, timeout: float | None, *, cancel_at_timeout: bool = False) -> WorkflowResult:
        raise self._no_engine()

    async def cancel_run(self, run_id: str, reason: str) -> bool:
        raise self._no_engine()

    async def resume_run(self, run_id: str, spec: WorkflowSpec | None) -> None:
        raise self._no_engine()

    async def rerun_run(self, run_id: str, from_step: str | None) -> list[str]:
        raise self._no_engine()

    async def approve_step(
        self, run_id: str, step_id: str, approve: bool, reason: str | None, by: str | None
    ) -> Approval:
        """Recorded in the store; the run's driver, wherever it is, reads it."""
        return record_decision(self.store, run_id, step_id, approve, reason, by, self.clock.now())

    def run_approvals(self, run_id: str) -> list[Approval]:
        return self.store.approvals.of_run(run_id)

    def run_result(self, run_id: str) -> WorkflowResult:
        """A run's result read from the store alone."""
        record = self.store.runs.get(run_id)
        tasks = self.store.runs.tasks(run_id)
        steps = {}
        for step in record.spec.steps:
            tid = task_id_of(run_id, step.step_id)
            stored = tasks.get(tid)
            steps[step.step_id] = StepResult.of(step.step_id, tid, stored.to_status() if stored else None,
                                                step.dependencies)  # fmt: skip
        return WorkflowResult(run_id, record.workflow, record.state, steps, record.inputs, record.created_at,
                              record.finished_at, record.reason, record.plan)  # fmt: skip

    def list_runs(
        self, limit: int, state: RunState | None = None, after: str | None = None, workflow: str | None = None
    ) -> list[RunRecord]:
        return self.store.runs.list(state, limit, after=after, workflow=workflow)

    def run_record(self, run_id: str) -> RunRecord:
        return self.store.runs.get(run_id)

    async def health(self, components: Sequence[str], timeout: float) -> HealthReport | None:
        return None  # made by the health monitor of this process

    def online_agents(self) -> list[AgentSpec]:
        return [a.spec for a in self.store.workers.agents()]

    def task_log(self, task_id: str, attempt: int | None, from_seq: int) -> TaskLog:
        return read_task_log(self.store, task_id, attempt, from_seq)

    def error_history(self, task_id: str) -> list[ErrorRecord]:
        if not self.store.get_tasks([task_id]):
            raise TaskNotFoundError(task_id)
        return self.store.errors.of_task(task_id)

    def dead_letters(self) -> list[TaskStatus]:
        return [r.to_status() for r in self.store.errors.parked()]


def stored_observations(store: Store, since: float) -> list[Observation]:
    """Attempts that ended after ``since``, as the database recorded them."""
    found = []
    for task_type, agent_id, ok, ready_at, started_at, at in store.history.ended(since):
        wait = started_at - ready_at if ready_at is not None and started_at is not None else None
        run = at - started_at if started_at is not None else None
        found.append(Observation(at, task_type, agent_id, ok, wait if wait is None or wait >= 0 else None, run))
    return found


def stored_agents(store: Store, now: float, half_life: float) -> AgentsView:
    """The agents of the running workers as the database records them, with a performance model learned from
    the stored history."""
    performance = Performance(half_life)
    since = now - 10 * half_life
    for agent_id, task_type, ok, duration, at in store.history.outcomes(since):
        performance.record(agent_id, task_type, ok, duration, at)
    for agent_id, rating, at in store.feedback.ratings(since):
        performance.rate(agent_id, rating, at)
    running: dict[str, list[tuple[float, str]]] = {}
    for agent_id, task_type, started_at in store.running_tasks():
        running.setdefault(agent_id, []).append((started_at or now, task_type))
    chooser = Chooser(performance, lambda agent: agent.starts)
    loads = []
    for order, registered in enumerate(store.workers.agents()):
        load = AgentLoad(registered.spec, order)
        for i, (started_at, task_type) in enumerate(running.get(registered.spec.agent_id, ())):
            load.take(f"running-{i}", task_type, started_at)
        loads.append(load)
    queued = shares(waiting_from(store.ready_tasks(now)), [load.spec for load in loads])
    return AgentsView(
        AgentDirectory(loads), performance, chooser, now, lambda agent: queued.get(agent.spec.agent_id, 0.0)
    )
