"""``EngineState``: the one owner of scheduling state. Events in, actions out.

Pure: no I/O, no clock (every event carries its time), no threads. The async
shell (``engine.loop``) feeds it events and carries out the actions; a test or
a simulation can do the same with a manual clock.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

from pepper.engine.live import LiveTask
from pepper.model import events as ev
from pepper.model.record import TaskRecord, initial_state
from pepper.model.retry import Backoff
from pepper.model.status import TaskError
from pepper.model.task import TaskState, check_transition
from pepper.resources.view import ResourceView
from pepper.scheduling.load import AgentLoad
from pepper.scheduling.routing import Routing

BLOCKED, PENDING, IN_PROGRESS = TaskState.BLOCKED, TaskState.PENDING, TaskState.IN_PROGRESS
COMPLETED, FAILED, CANCELLED = TaskState.COMPLETED, TaskState.FAILED, TaskState.CANCELLED
#: The timer that wakes the scheduler when a lease expires.
POOL_EXPIRY = ("pool", "expiry")


class EngineState:
    """Tasks, agents and ready queues of one engine; changed only by ``handle``.

    ``worker_id`` identifies this engine's process: tasks it runs are stored
    with that owner. ``ageing`` is priority points gained per minute of waiting.
    """

    def __init__(
        self, worker_id: str, *, ageing: float = 10.0, backoff: Backoff | None = None, keep_finished: int = 10_000
    ) -> None:
        self.worker_id = worker_id
        self.tasks: dict[str, LiveTask] = {}
        self.awaiting: dict[str, list[str]] = {}  # id not seen yet -> tasks depending on it
        self.routing = Routing(self._is_queued, ageing)
        self.agents = self.routing.agents
        self.resources = ResourceView(worker_id)
        self._resourceful = False  # has any task asked for resources? (keeps the common path lean)
        self.accepting = True
        self._backoff = backoff or Backoff()
        self._keep = keep_finished
        self._finished: deque[str] = deque()
        self._handlers: dict[type, Callable[..., list[ev.Action]]] = {
            ev.TasksAdded: self._on_added,
            ev.TasksLoaded: self._on_loaded,
            ev.AttemptEnded: self._on_attempt_ended,
            ev.CancelRequested: self._on_cancel,
            ev.AgentAdded: self._on_agent_added,
            ev.AgentReady: self._on_agent_ready,
            ev.AgentRemoved: self._on_agent_removed,
            ev.LeasesLoaded: self._on_leases,
            ev.ClaimRefused: self._on_claim_refused,
            ev.WorkersLost: self._on_workers_lost,
            ev.TimerFired: self._on_timer,
            ev.ProgressReported: self._on_progress,
            ev.Draining: self._on_draining,
            ev.Trim: self._on_trim,
        }

    def handle(self, event: object) -> list[ev.Action]:
        """Apply one event; return what the shell must do, in order."""
        return self._handlers[type(event)](event)

    # -- events ---------------------------------------------------------------------

    def _on_added(self, e: ev.TasksAdded) -> list[ev.Action]:
        actions: list[ev.Action] = []
        freed: list[AgentLoad] = []
        for task in e.tasks:
            self._admit(LiveTask(task, initial_state(task)), actions, e.at, freed)
        self._refill(freed, actions, e.at)
        return actions

    def _on_loaded(self, e: ev.TasksLoaded) -> list[ev.Action]:
        actions: list[ev.Action] = []
        freed: list[AgentLoad] = []
        for record in e.records:
            live = self.tasks.get(record.task.task_id)
            if live is None:
                self._admit(LiveTask.from_record(record), actions, e.at, freed)
            else:
                self._adopt(live, record, actions, e.at, freed)
        self._refill(freed, actions, e.at)
        return actions

    def _on_attempt_ended(self, e: ev.AttemptEnded) -> list[ev.Action]:
        t = self.tasks.get(e.task_id)
        if t is None or t.state is not IN_PROGRESS or t.owner != self.worker_id or t.attempts != e.attempt:
            return []  # a late report of an attempt that was cancelled or taken over
        actions: list[ev.Action] = []
        freed: list[AgentLoad] = []
        self._free_slot(t, freed, actions)
        if e.started_at is not None:
            t.started_at = e.started_at
        if e.ok:
            self._move(t, COMPLETED)
            t.result, t.result_json, t.error, t.finished_at, t.owner = e.result, e.result_json, None, e.at, None
            actions += (ev.Save(e.task_id), ev.Settled(e.task_id))
            self._finished.append(e.task_id)
            self._refill(freed, actions, e.at)  # tasks already waiting go before newly ready ones
            self._release(t, actions, e.at)
        elif e.requeue:
            self._move(t, PENDING)
            t.owner, t.ready_at, t.error = None, e.at, e.error
            actions += (ev.Save(e.task_id), self._attempt(t, e.at, "interrupted", e.error))
            self._offer(t, actions, e.at)
        else:
            self._refill(freed, actions, e.at)
            self._fail_attempt(t, e.error, actions, e.at, freed)
        self._refill(freed, actions, e.at)
        return actions

    def _on_cancel(self, e: ev.CancelRequested) -> list[ev.Action]:
        t = self.tasks.get(e.task_id)
        if t is None or t.state.is_final:
            return []
        actions: list[ev.Action] = []
        freed: list[AgentLoad] = []
        if self._cancel_one(t, e.reason, actions, e.at, freed):
            self._cascade(t, actions, e.at, freed)
        self._refill(freed, actions, e.at)
        return actions

    def _on_agent_added(self, e: ev.AgentAdded) -> list[ev.Action]:
        actions: list[ev.Action] = []
        agent = self.routing.add_agent(e.spec)
        if e.waiting_for is not None:
            agent.accepting, agent.note = False, e.waiting_for
        self._fill(agent, actions, e.at)
        return actions

    def _on_agent_ready(self, e: ev.AgentReady) -> list[ev.Action]:
        actions: list[ev.Action] = []
        agent = self.agents.get(e.agent_id)
        if agent is not None:
            agent.accepting, agent.note = True, None
            self._fill(agent, actions, e.at)
        return actions

    def _on_leases(self, e: ev.LeasesLoaded) -> list[ev.Action]:
        return self._pool_changed(self.resources.load(e.capacity, e.leases, e.at), e.at)

    def _pool_changed(self, next_expiry: float | None, at: float) -> list[ev.Action]:
        actions: list[ev.Action] = [ev.WakeAt(POOL_EXPIRY, next_expiry)] if next_expiry is not None else []
        self._refill([a for a in self.agents.values() if a.free > 0], actions, at)
        return actions

    def _on_claim_refused(self, e: ev.ClaimRefused) -> list[ev.Action]:
        t = self.tasks.get(e.task_id)
        if t is None or t.state is not IN_PROGRESS or t.owner != self.worker_id or t.attempts != e.attempt:
            return []
        actions: list[ev.Action] = []
        self._free_slot(t, [], actions, granted=False)  # the shell reloads the leases next, then refills
        self._move(t, PENDING)
        t.attempts -= 1
        t.owner = t.started_at = None
        self._enqueue(t, e.at)
        return actions

    def _on_agent_removed(self, e: ev.AgentRemoved) -> list[ev.Action]:
        self.routing.remove_agent(e.agent_id)
        return []

    def _on_workers_lost(self, e: ev.WorkersLost) -> list[ev.Action]:
        actions: list[ev.Action] = []
        freed: list[AgentLoad] = []
        lost = TaskError("WorkerLost", "the worker running it stopped (crashed or was killed)", kind="interrupted")
        for t in list(self.tasks.values()):
            if t.state is IN_PROGRESS and t.owner in e.worker_ids:
                actions.append(self._attempt(t, e.at, "interrupted", lost))
                self._move(t, PENDING)
                t.owner, t.ready_at, t.error = None, e.at, lost
                actions.append(ev.Save(t.task.task_id))
                if t.cancel_requested:
                    if self._cancel_one(t, t.reason or "cancelled on request", actions, e.at, freed):
                        self._cascade(t, actions, e.at, freed)
                else:
                    self._offer(t, actions, e.at)
        self._refill(freed, actions, e.at)
        return actions

    def _on_timer(self, e: ev.TimerFired) -> list[ev.Action]:
        if e.key == POOL_EXPIRY:
            return self._pool_changed(self.resources.refresh(e.at), e.at)
        kind, task_id = e.key
        t = self.tasks.get(task_id)
        if kind != "retry" or t is None or t.state is not PENDING or t.next_attempt_at is None:
            return []
        if t.next_attempt_at > e.at + 1e-9:
            return [ev.WakeAt(e.key, t.next_attempt_at)]
        t.next_attempt_at = None
        actions: list[ev.Action] = []
        self._offer(t, actions, e.at)
        return actions

    def _on_progress(self, e: ev.ProgressReported) -> list[ev.Action]:
        t = self.tasks.get(e.task_id)
        if t is None or t.state is not IN_PROGRESS or t.owner != self.worker_id or t.attempts != e.attempt:
            return []
        t.progress, t.progress_message = e.fraction, e.message
        return [ev.Save(e.task_id)]

    def _on_draining(self, e: ev.Draining) -> list[ev.Action]:
        self.accepting = False
        return []

    def _on_trim(self, e: ev.Trim) -> list[ev.Action]:
        actions: list[ev.Action] = []
        while len(self._finished) > self._keep:
            task_id = self._finished.popleft()
            t = self.tasks.get(task_id)
            if t is not None and t.state.is_final:
                del self.tasks[task_id]
                actions.append(ev.Forget(task_id))
        return actions

    # -- transitions ------------------------------------------------------------------

    def _move(self, t: LiveTask, target: TaskState) -> None:
        check_transition(t.task.task_id, t.state, target)
        t.state = target

    def _attempt(self, t: LiveTask, at: float, outcome: str, error: TaskError | None) -> ev.RecordAttempt:
        """History of an attempt the task outlives (the last attempt's facts stay on the task itself)."""
        return ev.RecordAttempt(
            t.task.task_id, t.attempts, t.agent_id, t.task.task_type, t.started_at, at, outcome, error
        )

    def _admit(self, t: LiveTask, actions: list[ev.Action], at: float, freed: list[AgentLoad]) -> None:
        """Take a task into memory and act on its state."""
        task_id = t.task.task_id
        self.tasks[task_id] = t
        waiting = self.awaiting.pop(task_id, None)
        if t.state.is_final:
            self._finished.append(task_id)
            if waiting:
                t.dependents = waiting
                if t.state is COMPLETED:
                    self._release(t, actions, at)
                else:
                    self._cascade(t, actions, at, freed)
            return
        if waiting:
            t.dependents = [*t.dependents, *waiting]
        if t.state is BLOCKED:
            self._link(t, actions, at, freed)
        elif t.state is PENDING:
            self._offer(t, actions, at)

    def _link(self, t: LiveTask, actions: list[ev.Action], at: float, freed: list[AgentLoad]) -> None:
        """Count a blocked task's open dependencies; start it if none are open."""
        task_id = t.task.task_id
        unmet = 0
        for dep in t.task.dependencies:
            d = self.tasks.get(dep)
            if d is None:
                self.awaiting.setdefault(dep, []).append(task_id)
                unmet += 1
            elif d.state is COMPLETED:
                continue
            elif d.state.is_final:
                if self._cancel_one(t, f"dependency {dep!r} {d.state.value}", actions, at, freed):
                    self._cascade(t, actions, at, freed)
                return
            else:
                if d.dependents:
                    d.dependents.append(task_id)  # type: ignore[union-attr]
                else:
                    d.dependents = [task_id]
                unmet += 1
        t.unmet = unmet
        if unmet == 0:
            self._move(t, PENDING)
            t.ready_at = at
            actions.append(ev.Save(task_id))
            self._offer(t, actions, at)

    def _adopt(
        self, t: LiveTask, record: TaskRecord, actions: list[ev.Action], at: float, freed: list[AgentLoad]
    ) -> None:
        """Mirror a change another process made to a task we know."""
        task_id = t.task.task_id
        old = t.state
        was_mine = old is IN_PROGRESS and t.owner == self.worker_id
        still_mine = record.state is IN_PROGRESS and record.owner == self.worker_id and record.attempts == t.attempts
        if was_mine and not still_mine:
            actions.append(ev.Abort(task_id, t.attempts, "the task was changed by another process"))
            self._free_slot(t, freed, actions)
        t.copy_from(record)
        t.qseq = 0
        if still_mine and record.cancel_requested:
            if self._cancel_one(t, record.reason or "cancelled on request", actions, at, freed):
                self._cascade(t, actions, at, freed)
            return
        new = t.state
        if new.is_final:
            if not old.is_final:
                actions.append(ev.Settled(task_id))
                self._finished.append(task_id)
                if new is COMPLETED:
                    self._release(t, actions, at)
                else:
                    self._cascade(t, actions, at, freed)
        elif new is PENDING:
            self._offer(t, actions, at)
        elif new is BLOCKED and old is not BLOCKED:
            self._link(t, actions, at, freed)

    def _offer(self, t: LiveTask, actions: list[ev.Action], at: float) -> None:
        """A ready task: start it on the best free agent, or queue it."""
        task_id = t.task.task_id
        if t.next_attempt_at is not None and t.next_attempt_at > at:
            actions.append(ev.WakeAt(("retry", task_id), t.next_attempt_at))
            return
        info = t.route
        if info is None:
            info = t.route = self.routing.route_of(t.task)
        needs = t.task.requirements.resources
        if not self.accepting:
            agent = None
        elif needs:
            self._resourceful = True
            agent = self.routing.free_agent(info, lambda a: not self.resources.fits(needs, a.spec.agent_id))
        else:
            agent = self.routing.free_agent(info)
        if agent is not None and info.queue.head(self._is_queued) is None:
            self._start(t, agent, actions, at)
            return
        self._enqueue(t, at)
        if agent is not None:  # tasks queued earlier may come first
            self._fill(agent, actions, at)

    def _enqueue(self, t: LiveTask, at: float) -> None:
        if t.ready_at is None:
            t.ready_at = at
        info = t.route or self.routing.route_of(t.task)
        t.route = info
        t.qseq = self.routing.enqueue(info, t.task.task_id, t.task.priority, t.ready_at)

    def _start(self, t: LiveTask, agent: AgentLoad, actions: list[ev.Action], at: float) -> None:
        task_id = t.task.task_id
        self._move(t, IN_PROGRESS)
        t.attempts += 1
        t.agent_id, t.owner, t.started_at = agent.spec.agent_id, self.worker_id, at
        t.finished_at = t.next_attempt_at = t.progress = t.progress_message = None
        t.qseq = 0
        agent.running.add(task_id)
        actions.append(ev.Save(task_id))
        needs = t.task.requirements.resources
        if needs:
            lease = self.resources.take(task_id, t.attempts, agent.spec.agent_id, needs, at)
            if lease is not None:
                actions.append(ev.TakeLease(lease))
        actions.append(ev.Start(task_id, t.attempts, agent.spec.agent_id))

    def _fill(self, agent: AgentLoad, actions: list[ev.Action], at: float) -> None:
        """Give a free agent the best queued tasks it can take."""
        if not self.accepting:
            return
        fits = self._fits_on(agent.spec.agent_id) if self._resourceful else None
        while agent.accepting and len(agent.running) < agent.spec.capacity:
            task_id = self.routing.next_for(agent, fits)
            if task_id is None:
                return
            self._start(self.tasks[task_id], agent, actions, at)

    def _fits_on(self, agent_id: str) -> Callable[[str], bool]:
        def fits(task_id: str) -> bool:
            needs = self.tasks[task_id].task.requirements.resources
            return not needs or not self.resources.fits(needs, agent_id)

        return fits

    def _refill(self, freed: list[AgentLoad], actions: list[ev.Action], at: float) -> None:
        while freed:
            self._fill(freed.pop(), actions, at)

    def _is_queued(self, task_id: str, seq: int) -> bool:
        t = self.tasks.get(task_id)
        return t is not None and t.qseq == seq

    def _release(self, t: LiveTask, actions: list[ev.Action], at: float) -> None:
        """A task completed: its dependents lose one open dependency."""
        dependents, t.dependents = t.dependents, ()
        for dep_id in dependents:
            d = self.tasks.get(dep_id)
            if d is not None and d.state is BLOCKED:
                d.unmet -= 1
                if d.unmet <= 0:
                    self._move(d, PENDING)
                    d.ready_at = at
                    actions.append(ev.Save(dep_id))
                    self._offer(d, actions, at)

    def _fail_attempt(
        self, t: LiveTask, error: TaskError | None, actions: list[ev.Action], at: float, freed: list[AgentLoad]
    ) -> None:
        task_id = t.task.task_id
        t.failures += 1
        t.error, t.owner = error, None
        if t.failures <= t.task.max_retries:
            self._move(t, PENDING)
            t.next_attempt_at = at + self._backoff.delay_for(t.failures, task_id)
            t.ready_at = at
            actions += (ev.Save(task_id), self._attempt(t, at, "retry", error))
            self._offer(t, actions, at)
        else:
            self._move(t, FAILED)
            t.finished_at = at
            actions += (ev.Save(task_id), ev.Settled(task_id))
            self._finished.append(task_id)
            self._cascade(t, actions, at, freed)

    def _cancel_one(
        self, t: LiveTask, reason: str, actions: list[ev.Action], at: float, freed: list[AgentLoad]
    ) -> bool:
        """Cancel one task; False when another worker runs it (it is asked to stop instead)."""
        task_id = t.task.task_id
        if t.state is IN_PROGRESS:
            if t.owner != self.worker_id:
                t.cancel_requested, t.reason = True, reason
                actions.append(ev.Save(task_id))
                return False
            actions.append(ev.Abort(task_id, t.attempts, reason))
            self._free_slot(t, freed, actions)
        self._move(t, CANCELLED)
        t.reason, t.finished_at, t.owner, t.qseq, t.next_attempt_at = reason, at, None, 0, None
        actions += (ev.Save(task_id), ev.Settled(task_id))
        self._finished.append(task_id)
        return True

    def _cascade(self, root: LiveTask, actions: list[ev.Action], at: float, freed: list[AgentLoad]) -> None:
        """A task failed or was cancelled: cancel everything that depends on it, transitively."""
        stack = [root]
        while stack:
            parent = stack.pop()
            reason = f"dependency {parent.task.task_id!r} {parent.state.value}"
            dependents, parent.dependents = parent.dependents, ()
            for dep_id in dependents:
                d = self.tasks.get(dep_id)
                if d is not None and not d.state.is_final and self._cancel_one(d, reason, actions, at, freed):
                    stack.append(d)

    def _free_slot(self, t: LiveTask, freed: list[AgentLoad], actions: list[ev.Action], granted: bool = True) -> None:
        """A local attempt stopped: its agent slot and its resources are free again."""
        agent = self.agents.get(t.agent_id)  # type: ignore[arg-type]
        if agent is not None:
            agent.running.discard(t.task.task_id)
            freed.append(agent)
        if t.task.requirements.resources:
            lease, pool_gained = self.resources.give_back(t.task.task_id)
            if lease is not None and granted:
                actions.append(ev.DropLease(lease.lease_id))
            if pool_gained:  # any agent drawing on the pool may start something now
                freed.extend(a for a in self.agents.values() if a.free > 0)
