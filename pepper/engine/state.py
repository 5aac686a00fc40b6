"""``EngineState``: the one owner of scheduling state. Events in, actions out.

Pure: no I/O, no clock (every event carries its time), no threads. The async
shell (``engine.loop``) feeds it events and carries out the actions; a test or
a simulation can do the same with a manual clock.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import replace

from pepper.engine.live import LiveTask
from pepper.engine.recovery import Recovery
from pepper.engine.transitions import BLOCKED, COMPLETED, FAILED, IN_PROGRESS, PENDING
from pepper.model import events as ev
from pepper.model.agent import AgentSpec
from pepper.model.record import TaskRecord, initial_state
from pepper.model.recovery import Policy
from pepper.model.retry import Backoff
from pepper.model.status import TaskError
from pepper.model.task import Task, TaskState
from pepper.resources.view import ResourceView
from pepper.scheduling.choice import Chooser
from pepper.scheduling.load import AgentLoad
from pepper.scheduling.performance import Performance
from pepper.scheduling.routing import Routing

#: The timer that wakes the scheduler when a lease expires.
POOL_EXPIRY = ("pool", "expiry")


class EngineState(Recovery):
    """Tasks, agents and ready queues of one engine; changed only by ``handle``.

    ``worker_id`` identifies this engine's process: tasks it runs are stored
    with that owner. ``ageing`` is priority points gained per minute of waiting.
    """

    def __init__(
        self,
        worker_id: str,
        *,
        ageing: float = 10.0,
        backoff: Backoff | None = None,
        recovery: Policy | None = None,
        keep_finished: int = 10_000,
        score_half_life: float = 3600.0,
    ) -> None:
        self.worker_id = worker_id
        self.tasks: dict[str, LiveTask] = {}
        self.awaiting: dict[str, list[str]] = {}  # id not seen yet -> tasks depending on it
        self.routing = Routing(self._is_queued, ageing)
        self.agents = self.routing.agents
        self.peers: dict[str, AgentSpec] = {}  # agents of other workers: not run here, but tasks may be moved there
        self._peers_known = False
        self.resources = ResourceView(worker_id)
        self.performance = Performance(score_half_life)
        self.chooser = Chooser(self.performance, self._running_info)
        self._resourceful = False  # has any task asked for resources? (keeps the common path lean)
        self.accepting = True
        self._backoff = backoff or Backoff()
        self.default_recovery = None if recovery is None else Policy.parse(recovery)
        self.last_decision = None
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
            ev.HistoryLoaded: self._on_history,
            ev.Rated: self._on_rated,
            ev.HealthChanged: self._on_health,
            ev.PlacementSet: self._on_placement,
            ev.WorkersLost: self._on_workers_lost,
            ev.PeersChanged: self._on_peers,
            ev.TimerFired: self._on_timer,
            ev.ProgressReported: self._on_progress,
            ev.ErrorHandled: self._on_error_handled,
            ev.Replayed: self._on_replayed,
            ev.Dropped: self._on_dropped,
            ev.WriteRefused: self._on_write_refused,
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
        tasks: Sequence[Task] = e.tasks
        if len(tasks) > 1 and any(t.priority != tasks[0].priority for t in tasks):
            tasks = sorted(tasks, key=lambda t: -t.priority)  # a batch is served by priority, not by position
        for task in tasks:
            self._admit(LiveTask(task, initial_state(task)), actions, e.at, freed)
        self._refill(freed, actions, e.at)
        return actions

    def _on_loaded(self, e: ev.TasksLoaded) -> list[ev.Action]:
        # Two passes: every record is taken into memory before any of them is acted on. Acting on one
        # record first (a completed dependency releasing and starting its dependent) and only then taking
        # the dependent's own newer record would decide on stale facts and start the dependent twice.
        actions: list[ev.Action] = []
        freed: list[AgentLoad] = []
        taken: list[tuple[LiveTask, TaskState | None, TaskState, TaskRecord]] = []
        for record in e.records:
            live = self.tasks.get(record.task.task_id)
            if live is None:
                live = LiveTask.from_record(record)
                self.tasks[record.task.task_id] = live
                taken.append((live, None, record.state, record))
            else:
                before = live.state
                expected = self._take(live, record, actions, freed)
                if expected is not None:
                    taken.append((live, before, expected, record))
        for live, old, expected, record in taken:
            if live.state is not expected:
                continue  # acting on an earlier record of this batch already moved it (released, cancelled)
            if old is None:
                self._settle_admitted(live, actions, e.at, freed)
            else:
                self._settle_adopted(live, old, record, actions, e.at, freed)
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
        if not e.requeue and t.agent_id is not None:
            took = e.at - t.started_at if t.started_at is not None else None
            self.performance.record(t.agent_id, t.task.task_type, e.ok, took, e.at)
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
        actions.append(ev.Save(e.task_id))  # the row may still show an earlier attempt of ours as running
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
        if kind == "fill":  # an agent that left a task to a better one looks again
            actions: list[ev.Action] = []
            agent = self.agents.get(task_id)
            if agent is not None:
                self._fill(agent, actions, e.at)
            return actions
        t = self.tasks.get(task_id)
        if kind != "retry" or t is None or t.state is not PENDING or t.next_attempt_at is None:
            return []
        if t.next_attempt_at > e.at + 1e-9:
            return [ev.WakeAt(e.key, t.next_attempt_at)]
        t.next_attempt_at = None
        actions = []
        self._offer(t, actions, e.at)
        return actions

    def _on_progress(self, e: ev.ProgressReported) -> list[ev.Action]:
        t = self.tasks.get(e.task_id)
        if t is None or t.state is not IN_PROGRESS or t.owner != self.worker_id or t.attempts != e.attempt:
            return []
        t.progress, t.progress_message = e.fraction, e.message
        return [ev.Save(e.task_id)]

    def _on_history(self, e: ev.HistoryLoaded) -> list[ev.Action]:
        for agent_id, task_type, ok, duration, at in e.outcomes:
            self.performance.record(agent_id, task_type, ok, duration, at)
        for agent_id, rating, at in e.ratings:
            self.performance.rate(agent_id, rating, at)
        return []

    def _on_peers(self, e: ev.PeersChanged) -> list[ev.Action]:
        before, first = self.peers, not self._peers_known
        self.peers = {spec.agent_id: spec for spec in e.agents if spec.agent_id not in self.agents}
        self._peers_known = True
        if not first and not before.keys() - self.peers.keys():
            return []
        actions: list[ev.Action] = []
        for t in list(self.tasks.values()):  # a task recovery moved to an agent that went away may go anywhere
            placed = t.placement
            if (t.state is PENDING and placed is not None and t.recovery.moved_to == placed
                    and placed not in self.agents and placed not in self.peers):  # fmt: skip
                t.placement, t.route, t.qseq = None, None, 0
                t.recovery = replace(t.recovery, moved_to=None)
                actions.append(ev.Save(t.task.task_id))
                self._offer(t, actions, e.at)
        return actions

    def _on_rated(self, e: ev.Rated) -> list[ev.Action]:
        self.performance.rate(e.agent_id, e.rating, e.at)
        return []

    def _on_health(self, e: ev.HealthChanged) -> list[ev.Action]:
        self.performance.set_health(e.agent_id, e.healthy)
        return []

    def _on_placement(self, e: ev.PlacementSet) -> list[ev.Action]:
        t = self.tasks.get(e.task_id)
        if t is None or t.state not in (PENDING, BLOCKED) or t.placement == e.agent_id:
            return []
        t.placement, t.route, t.qseq = e.agent_id, None, 0  # leaves its old queue
        actions: list[ev.Action] = [ev.Save(e.task_id)]
        if t.state is PENDING:
            self._offer(t, actions, e.at)
        return actions

    def _on_write_refused(self, e: ev.WriteRefused) -> list[ev.Action]:
        t = self.tasks.get(e.task_id)
        if t is None:
            return []
        actions: list[ev.Action] = []
        freed: list[AgentLoad] = []
        if t.state is IN_PROGRESS and t.owner == self.worker_id:
            actions.append(ev.Abort(e.task_id, t.attempts, e.error.message))  # its claim was never stored
            self._free_slot(t, freed, actions)
        was_final, released = t.state.is_final, t.state is COMPLETED
        # Set, not moved: what memory held was never stored, so the table's "from" would be a state the
        # database never saw (the row keeps its last stored state until this failure is written).
        t.state, t.error, t.reason = FAILED, e.error, e.error.message
        # Nothing an agent supplied is written again (it may be the very value the database refused).
        t.result = t.result_json = t.owner = t.next_attempt_at = t.progress = t.progress_message = None
        t.finished_at, t.qseq = e.at, 0
        actions += (ev.Save(e.task_id), ev.Settled(e.task_id))
        if not was_final:
            self._finished.append(e.task_id)
        if released:  # its dependents were released on a completion that was never stored: they may not run
            t.dependents = [
                tid for tid, d in self.tasks.items() if e.task_id in d.task.dependencies and not d.state.is_final
            ]
        self._cascade(t, actions, e.at, freed)
        self._refill(freed, actions, e.at)
        return actions

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
