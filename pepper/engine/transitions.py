"""How tasks move: between states, and onto agents.

The moves shared by ``EngineState``'s event handlers: admitting a task and
counting its open dependencies, releasing dependents, offering a ready task to
the best agent or queueing it, starting and filling agents, retrying, cancelling
and cascading cancellations, giving back an agent's slot and resources. Pure,
like the state machine it belongs to: no I/O, and time is always passed in.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

from pepper.engine.live import LiveTask
from pepper.model import events as ev
from pepper.model.record import TaskRecord
from pepper.model.retry import Backoff
from pepper.model.status import TaskError
from pepper.model.task import TaskState, check_transition
from pepper.resources.view import ResourceView
from pepper.scheduling.choice import Chooser
from pepper.scheduling.load import AgentLoad
from pepper.scheduling.performance import Performance
from pepper.scheduling.routing import Routing

BLOCKED, PENDING, IN_PROGRESS, PARKED = TaskState.BLOCKED, TaskState.PENDING, TaskState.IN_PROGRESS, TaskState.PARKED
COMPLETED, FAILED, CANCELLED = TaskState.COMPLETED, TaskState.FAILED, TaskState.CANCELLED


class Transitions:
    """The state of one engine and the moves that change it (see ``EngineState`` for the events)."""

    worker_id: str
    tasks: dict[str, LiveTask]
    awaiting: dict[str, list[str]]
    routing: Routing
    agents: dict[str, AgentLoad]
    resources: ResourceView
    performance: Performance
    chooser: Chooser
    accepting: bool
    _backoff: Backoff
    _finished: deque[str]
    _resourceful: bool

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
        self.tasks[t.task.task_id] = t
        self._settle_admitted(t, actions, at, freed)

    def _settle_admitted(self, t: LiveTask, actions: list[ev.Action], at: float, freed: list[AgentLoad]) -> None:
        """Act on the state of a task just taken into memory: link, offer, or release what waited on it."""
        task_id = t.task.task_id
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
                    d.dependents.append(task_id)
                else:
                    d.dependents = [task_id]
                unmet += 1
        t.unmet = unmet
        if unmet == 0:
            self._move(t, PENDING)
            t.ready_at = at
            actions.append(ev.Save(task_id))
            self._offer(t, actions, at)

    def _take(
        self, t: LiveTask, record: TaskRecord, actions: list[ev.Action], freed: list[AgentLoad]
    ) -> TaskState | None:
        """Mirror a change another process made to a task we know.

        Only the record is taken here (and an attempt of ours that lost the task is stopped); what the new
        state means for the task and its dependents is decided by ``_settle_adopted``, once every record
        read together is in memory. Returns the state ``_settle_adopted`` expects to find, or None when
        there is nothing more to do.
        """
        task_id = t.task.task_id
        old = t.state
        was_mine = old is IN_PROGRESS and t.owner == self.worker_id
        still_mine = record.state is IN_PROGRESS and record.owner == self.worker_id and record.attempts == t.attempts
        if still_mine and not was_mine:
            # Our attempt already ended here, but another process's write reached the row before ours: what
            # we decided stands (the shell now holds the row's version); write it again. A cancel asked for
            # meanwhile (the row still showed our attempt running) is honoured.
            if record.cancel_requested and not old.is_final:
                t.cancel_requested, t.reason = True, record.reason
                return old
            actions.append(ev.Save(task_id))
            if old.is_settled:
                actions.append(ev.Settled(task_id))
            return None
        if was_mine and not still_mine:
            actions.append(ev.Abort(task_id, t.attempts, "the task was changed by another process"))
            self._free_slot(t, freed, actions)
        placed = t.placement
        t.copy_from(record)
        t.qseq = 0
        if t.placement != placed:
            t.route = None
        return record.state

    def _settle_adopted(
        self, t: LiveTask, old: TaskState, record: TaskRecord, actions: list[ev.Action], at: float,
        freed: list[AgentLoad],
    ) -> None:  # fmt: skip
        """Act on a task's new state taken from the store (``old`` is what memory held before)."""
        task_id = t.task.task_id
        if t.cancel_requested and not t.state.is_final and (t.state is not IN_PROGRESS or t.owner == self.worker_id):
            if self._cancel_one(t, t.reason or "cancelled on request", actions, at, freed):
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
        elif new is PARKED:
            if old is not PARKED:
                actions.append(ev.Settled(task_id))  # parked elsewhere: whoever waits here must learn it
        elif new is PENDING:
            self._offer(t, actions, at)
        elif new is BLOCKED and old is not BLOCKED:
            self._link(t, actions, at, freed)

    def _offer(self, t: LiveTask, actions: list[ev.Action], at: float) -> None:
        """A ready task: start it on the best free agent, or queue it (a parked one waits for a person)."""
        task_id = t.task.task_id
        if t.parked_at is not None:
            return
        if t.next_attempt_at is not None and t.next_attempt_at > at:
            actions.append(ev.WakeAt(("retry", task_id), t.next_attempt_at))
            return
        info = t.route
        if info is None:
            info = t.route = self.routing.route_of(t.task, t.placement, t.recovery.run_as)
        needs = t.task.requirements.resources
        usable = None
        if needs:
            self._resourceful = True
            usable = lambda a: not self.resources.fits(needs, a.spec.agent_id)  # noqa: E731
        agent = self.chooser.best_free(info.agents, t.task.task_type, at, usable) if self.accepting else None
        if agent is not None and info.queue.head(self._is_queued) is None:
            recheck = self.chooser.defer(agent, info.agents, t.task.task_type, at, usable)
            if recheck is None:
                self._start(t, agent, actions, at)
                return
            actions.append(ev.WakeAt(("fill", agent.spec.agent_id), recheck))
            agent = None
        self._enqueue(t, at)
        if agent is not None:  # tasks queued earlier may come first
            self._fill(agent, actions, at)

    def _enqueue(self, t: LiveTask, at: float) -> None:
        if t.ready_at is None:
            t.ready_at = at
        info = t.route or self.routing.route_of(t.task, t.placement, t.recovery.run_as)
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
                actions.append(ev.TakeLease(lease, t.attempts))
        actions.append(ev.Start(task_id, t.attempts, agent.spec.agent_id))

    def _fill(self, agent: AgentLoad, actions: list[ev.Action], at: float) -> None:
        """Give a free agent the best queued tasks it can take."""
        if not self.accepting:
            return
        fits = self._fits_on(agent, at, actions) if self._resourceful or agent.shared else None
        while agent.accepting and len(agent.running) < agent.spec.capacity:
            task_id = self.routing.next_for(agent, fits)
            if task_id is None:
                return
            self._start(self.tasks[task_id], agent, actions, at)

    def _fits_on(self, agent: AgentLoad, at: float, actions: list[ev.Action]) -> Callable[[str], bool]:
        """Whether ``agent`` should take a queued task now: it fits, and no busy agent would finish it clearly
        sooner (if one would, ``agent`` looks again when it would itself have finished)."""
        agent_id = agent.spec.agent_id

        def fits(task_id: str) -> bool:
            t = self.tasks[task_id]
            needs = t.task.requirements.resources
            if needs and self.resources.fits(needs, agent_id):
                return False
            usable = (lambda a: not self.resources.fits(needs, a.spec.agent_id)) if needs else None
            route = t.route  # its queue still holds this task (and perhaps a few stale tickets): the backlog
            recheck = (
                self.chooser.defer(agent, route.agents, t.task.task_type, at, usable, len(route.queue))
                if route else None
            )  # fmt: skip
            if recheck is not None:
                actions.append(ev.WakeAt(("fill", agent_id), recheck))
                return False
            return True

        return fits

    def _running_info(self, agent: AgentLoad) -> list[tuple[float, str]]:
        tasks = self.tasks
        return [(tasks[tid].started_at or 0.0, tasks[tid].task.task_type) for tid in agent.running if tid in tasks]

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
