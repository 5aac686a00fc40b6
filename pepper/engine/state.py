"""``EngineState``: the one owner of scheduling state. Events in, actions out.

Pure: no I/O, no clock (every event carries its time), no threads. The async
shell (``engine.loop``) feeds it events and carries out the actions; a test or
a simulation can do the same with a manual clock.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

from pepper.engine.live import LiveTask
from pepper.model.agent import AgentSpec
from pepper.model.events import (
    Abort,
    Action,
    AgentAdded,
    AgentRemoved,
    AttemptEnded,
    CancelRequested,
    Draining,
    Forget,
    ProgressReported,
    RecordAttempt,
    Save,
    Settled,
    Start,
    TasksAdded,
    TasksLoaded,
    TimerFired,
    Trim,
    WakeAt,
    WorkersLost,
)
from pepper.model.record import TaskRecord, initial_state
from pepper.model.retry import Backoff
from pepper.model.status import TaskError
from pepper.model.task import TaskState, check_transition
from pepper.scheduling.explain import WaitFacts
from pepper.scheduling.load import AgentLoad
from pepper.scheduling.routing import Routing

BLOCKED, PENDING, IN_PROGRESS = TaskState.BLOCKED, TaskState.PENDING, TaskState.IN_PROGRESS
COMPLETED, FAILED, CANCELLED = TaskState.COMPLETED, TaskState.FAILED, TaskState.CANCELLED


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
        self.accepting = True
        self._backoff = backoff or Backoff()
        self._keep = keep_finished
        self._finished: deque[str] = deque()
        self._handlers: dict[type, Callable[..., list[Action]]] = {
            TasksAdded: self._on_added,
            TasksLoaded: self._on_loaded,
            AttemptEnded: self._on_attempt_ended,
            CancelRequested: self._on_cancel,
            AgentAdded: self._on_agent_added,
            AgentRemoved: self._on_agent_removed,
            WorkersLost: self._on_workers_lost,
            TimerFired: self._on_timer,
            ProgressReported: self._on_progress,
            Draining: self._on_draining,
            Trim: self._on_trim,
        }

    def handle(self, event: object) -> list[Action]:
        """Apply one event; return what the shell must do, in order."""
        return self._handlers[type(event)](event)

    # -- events ---------------------------------------------------------------------

    def _on_added(self, ev: TasksAdded) -> list[Action]:
        actions: list[Action] = []
        freed: list[AgentLoad] = []
        for task in ev.tasks:
            self._admit(LiveTask(task, initial_state(task)), actions, ev.at, freed)
        self._refill(freed, actions, ev.at)
        return actions

    def _on_loaded(self, ev: TasksLoaded) -> list[Action]:
        actions: list[Action] = []
        freed: list[AgentLoad] = []
        for record in ev.records:
            live = self.tasks.get(record.task.task_id)
            if live is None:
                self._admit(LiveTask.from_record(record), actions, ev.at, freed)
            else:
                self._adopt(live, record, actions, ev.at, freed)
        self._refill(freed, actions, ev.at)
        return actions

    def _on_attempt_ended(self, ev: AttemptEnded) -> list[Action]:
        t = self.tasks.get(ev.task_id)
        if t is None or t.state is not IN_PROGRESS or t.owner != self.worker_id or t.attempts != ev.attempt:
            return []  # a late report of an attempt that was cancelled or taken over
        actions: list[Action] = []
        freed: list[AgentLoad] = []
        self._free_slot(t, freed)
        if ev.started_at is not None:
            t.started_at = ev.started_at
        if ev.ok:
            self._move(t, COMPLETED)
            t.result, t.result_json, t.error, t.finished_at, t.owner = ev.result, ev.result_json, None, ev.at, None
            actions += (Save(ev.task_id), Settled(ev.task_id))
            self._finished.append(ev.task_id)
            self._refill(freed, actions, ev.at)  # tasks already waiting go before newly ready ones
            self._release(t, actions, ev.at)
        elif ev.requeue:
            self._move(t, PENDING)
            t.owner, t.ready_at, t.error = None, ev.at, ev.error
            actions += (Save(ev.task_id), self._attempt(t, ev.at, "interrupted", ev.error))
            self._offer(t, actions, ev.at)
        else:
            self._refill(freed, actions, ev.at)
            self._fail_attempt(t, ev.error, actions, ev.at, freed)
        self._refill(freed, actions, ev.at)
        return actions

    def _on_cancel(self, ev: CancelRequested) -> list[Action]:
        t = self.tasks.get(ev.task_id)
        if t is None or t.state.is_final:
            return []
        actions: list[Action] = []
        freed: list[AgentLoad] = []
        if self._cancel_one(t, ev.reason, actions, ev.at, freed):
            self._cascade(t, actions, ev.at, freed)
        self._refill(freed, actions, ev.at)
        return actions

    def _on_agent_added(self, ev: AgentAdded) -> list[Action]:
        actions: list[Action] = []
        self._fill(self.routing.add_agent(ev.spec), actions, ev.at)
        return actions

    def _on_agent_removed(self, ev: AgentRemoved) -> list[Action]:
        self.routing.remove_agent(ev.agent_id)
        return []

    def _on_workers_lost(self, ev: WorkersLost) -> list[Action]:
        actions: list[Action] = []
        freed: list[AgentLoad] = []
        lost = TaskError("WorkerLost", "the worker running it stopped (crashed or was killed)", kind="interrupted")
        for t in list(self.tasks.values()):
            if t.state is IN_PROGRESS and t.owner in ev.worker_ids:
                actions.append(self._attempt(t, ev.at, "interrupted", lost))
                self._move(t, PENDING)
                t.owner, t.ready_at, t.error = None, ev.at, lost
                actions.append(Save(t.task.task_id))
                if t.cancel_requested:
                    if self._cancel_one(t, t.reason or "cancelled on request", actions, ev.at, freed):
                        self._cascade(t, actions, ev.at, freed)
                else:
                    self._offer(t, actions, ev.at)
        self._refill(freed, actions, ev.at)
        return actions

    def _on_timer(self, ev: TimerFired) -> list[Action]:
        kind, task_id = ev.key
        t = self.tasks.get(task_id)
        if kind != "retry" or t is None or t.state is not PENDING or t.next_attempt_at is None:
            return []
        if t.next_attempt_at > ev.at + 1e-9:
            return [WakeAt(ev.key, t.next_attempt_at)]
        t.next_attempt_at = None
        actions: list[Action] = []
        self._offer(t, actions, ev.at)
        return actions

    def _on_progress(self, ev: ProgressReported) -> list[Action]:
        t = self.tasks.get(ev.task_id)
        if t is None or t.state is not IN_PROGRESS or t.owner != self.worker_id or t.attempts != ev.attempt:
            return []
        t.progress, t.progress_message = ev.fraction, ev.message
        return [Save(ev.task_id)]

    def _on_draining(self, ev: Draining) -> list[Action]:
        self.accepting = False
        return []

    def _on_trim(self, ev: Trim) -> list[Action]:
        actions: list[Action] = []
        while len(self._finished) > self._keep:
            task_id = self._finished.popleft()
            t = self.tasks.get(task_id)
            if t is not None and t.state.is_final:
                del self.tasks[task_id]
                actions.append(Forget(task_id))
        return actions

    # -- transitions ------------------------------------------------------------------

    def _move(self, t: LiveTask, target: TaskState) -> None:
        check_transition(t.task.task_id, t.state, target)
        t.state = target

    def _attempt(self, t: LiveTask, at: float, outcome: str, error: TaskError | None) -> RecordAttempt:
        """History of an attempt the task outlives (the last attempt's facts stay on the task itself)."""
        return RecordAttempt(t.task.task_id, t.attempts, t.agent_id, t.task.task_type, t.started_at, at, outcome, error)

    def _admit(self, t: LiveTask, actions: list[Action], at: float, freed: list[AgentLoad]) -> None:
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

    def _link(self, t: LiveTask, actions: list[Action], at: float, freed: list[AgentLoad]) -> None:
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
            actions.append(Save(task_id))
            self._offer(t, actions, at)

    def _adopt(self, t: LiveTask, record: TaskRecord, actions: list[Action], at: float, freed: list[AgentLoad]) -> None:
        """Mirror a change another process made to a task we know."""
        task_id = t.task.task_id
        old = t.state
        was_mine = old is IN_PROGRESS and t.owner == self.worker_id
        still_mine = record.state is IN_PROGRESS and record.owner == self.worker_id and record.attempts == t.attempts
        if was_mine and not still_mine:
            actions.append(Abort(task_id, t.attempts, "the task was changed by another process"))
            self._free_slot(t, freed)
        t.copy_from(record)
        t.qseq = 0
        if still_mine and record.cancel_requested:
            if self._cancel_one(t, record.reason or "cancelled on request", actions, at, freed):
                self._cascade(t, actions, at, freed)
            return
        new = t.state
        if new.is_final:
            if not old.is_final:
                actions.append(Settled(task_id))
                self._finished.append(task_id)
                if new is COMPLETED:
                    self._release(t, actions, at)
                else:
                    self._cascade(t, actions, at, freed)
        elif new is PENDING:
            self._offer(t, actions, at)
        elif new is BLOCKED and old is not BLOCKED:
            self._link(t, actions, at, freed)

    def _offer(self, t: LiveTask, actions: list[Action], at: float) -> None:
        """A ready task: start it on the best free agent, or queue it."""
        task_id = t.task.task_id
        if t.next_attempt_at is not None and t.next_attempt_at > at:
            actions.append(WakeAt(("retry", task_id), t.next_attempt_at))
            return
        info = t.route
        if info is None:
            info = t.route = self.routing.route_of(t.task)
        agent = self.routing.free_agent(info) if self.accepting else None
        if agent is not None and info.queue.head(self._is_queued) is None:
            self._start(t, agent, actions, at)
            return
        if t.ready_at is None:
            t.ready_at = at
        t.qseq = self.routing.enqueue(info, task_id, t.task.priority, t.ready_at)
        if agent is not None:  # tasks queued earlier may come first
            self._fill(agent, actions, at)

    def _start(self, t: LiveTask, agent: AgentLoad, actions: list[Action], at: float) -> None:
        task_id = t.task.task_id
        self._move(t, IN_PROGRESS)
        t.attempts += 1
        t.agent_id, t.owner, t.started_at = agent.spec.agent_id, self.worker_id, at
        t.finished_at = t.next_attempt_at = t.progress = t.progress_message = None
        t.qseq = 0
        agent.running.add(task_id)
        actions.append(Save(task_id))
        actions.append(Start(task_id, t.attempts, agent.spec.agent_id))

    def _fill(self, agent: AgentLoad, actions: list[Action], at: float) -> None:
        """Give a free agent the best queued tasks it can take."""
        if not self.accepting:
            return
        while agent.accepting and len(agent.running) < agent.spec.capacity:
            task_id = self.routing.next_for(agent)
            if task_id is None:
                return
            self._start(self.tasks[task_id], agent, actions, at)

    def _refill(self, freed: list[AgentLoad], actions: list[Action], at: float) -> None:
        while freed:
            self._fill(freed.pop(), actions, at)

    def _is_queued(self, task_id: str, seq: int) -> bool:
        t = self.tasks.get(task_id)
        return t is not None and t.qseq == seq

    def _release(self, t: LiveTask, actions: list[Action], at: float) -> None:
        """A task completed: its dependents lose one open dependency."""
        dependents, t.dependents = t.dependents, ()
        for dep_id in dependents:
            d = self.tasks.get(dep_id)
            if d is not None and d.state is BLOCKED:
                d.unmet -= 1
                if d.unmet <= 0:
                    self._move(d, PENDING)
                    d.ready_at = at
                    actions.append(Save(dep_id))
                    self._offer(d, actions, at)

    def _fail_attempt(
        self, t: LiveTask, error: TaskError | None, actions: list[Action], at: float, freed: list[AgentLoad]
    ) -> None:
        task_id = t.task.task_id
        t.failures += 1
        t.error, t.owner = error, None
        if t.failures <= t.task.max_retries:
            self._move(t, PENDING)
            t.next_attempt_at = at + self._backoff.delay_for(t.failures, task_id)
            t.ready_at = at
            actions += (Save(task_id), self._attempt(t, at, "retry", error))
            self._offer(t, actions, at)
        else:
            self._move(t, FAILED)
            t.finished_at = at
            actions += (Save(task_id), Settled(task_id))
            self._finished.append(task_id)
            self._cascade(t, actions, at, freed)

    def _cancel_one(self, t: LiveTask, reason: str, actions: list[Action], at: float, freed: list[AgentLoad]) -> bool:
        """Cancel one task; False when another worker runs it (it is asked to stop instead)."""
        task_id = t.task.task_id
        if t.state is IN_PROGRESS:
            if t.owner != self.worker_id:
                t.cancel_requested, t.reason = True, reason
                actions.append(Save(task_id))
                return False
            actions.append(Abort(task_id, t.attempts, reason))
            self._free_slot(t, freed)
        self._move(t, CANCELLED)
        t.reason, t.finished_at, t.owner, t.qseq, t.next_attempt_at = reason, at, None, 0, None
        actions += (Save(task_id), Settled(task_id))
        self._finished.append(task_id)
        return True

    def _cascade(self, root: LiveTask, actions: list[Action], at: float, freed: list[AgentLoad]) -> None:
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

    def _free_slot(self, t: LiveTask, freed: list[AgentLoad]) -> None:
        agent = self.agents.get(t.agent_id)  # type: ignore[arg-type]
        if agent is not None:
            agent.running.discard(t.task.task_id)
            freed.append(agent)

    # -- queries (read-only) -----------------------------------------------------------

    def facts(self, task_id: str, now: float) -> WaitFacts | None:
        """What ``scheduling.explain`` needs to say why ``task_id`` waits."""
        t = self.tasks.get(task_id)
        if t is None:
            return None
        deps = {}
        for dep in t.task.dependencies:
            d = self.tasks.get(dep)
            # Not in memory and nobody awaits it: it finished and was trimmed.
            deps[dep] = d.state if d is not None else (None if dep in self.awaiting else COMPLETED)
        return WaitFacts(
            task=t.task,
            state=t.state,
            now=now,
            dependency_states=deps,
            agents=[(a.spec, len(a.running)) for a in self.agents.values()],
            ahead=self._ahead(t),
            next_attempt_at=t.next_attempt_at,
            failures=t.failures,
            last_error=t.error,
            accepting=self.accepting,
        )

    def _ahead(self, t: LiveTask) -> int:
        if not t.qseq or t.route is None:
            return 0
        return self.routing.ahead(t.route, t.qseq, t.task.priority, t.ready_at or 0.0)

    def has_local_work(self) -> bool:
        """True while an agent here runs something, or a task here could be started or retried."""
        if any(a.running for a in self.agents.values()) or self.routing.has_queued_work():
            return True
        return any(
            t.state is PENDING and t.next_attempt_at is not None and t.route is not None and t.route.agents
            for t in self.tasks.values()
        )

    def agent_spec(self, agent_id: str) -> AgentSpec | None:
        agent = self.agents.get(agent_id)
        return agent.spec if agent else None
