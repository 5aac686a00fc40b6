"""Onto agents: offering a ready task to the best agent or queueing it, starting it, filling free agents.

Also the way back: giving a stopped attempt's agent slot and resources back.
Pure: no I/O, and time comes with the turn.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from pepper.engine.live import LiveTask
from pepper.engine.transitions.turn import IN_PROGRESS, Turn, move
from pepper.model import events as ev
from pepper.model.agent import ANY_TASK_TYPE
from pepper.model.slots import new_tuple
from pepper.scheduling.load import AgentLoad
from pepper.scheduling.routing import order_shift

if TYPE_CHECKING:
    from pepper.engine.state import EngineState


def offer(s: EngineState, t: LiveTask, turn: Turn) -> None:
    """A ready task: start it on the best free agent, or queue it (a parked one waits for a person)."""
    task_id = t.task.task_id
    if t.parked_at is not None:
        return
    at = turn.at
    not_before = t.task.not_before
    if not_before is not None and not_before > at:  # delayed: its timer offers it at its time
        turn.actions.append(ev.WakeAt(("delay", task_id), not_before, turn.cause))
        return
    if t.next_attempt_at is not None and t.next_attempt_at > at:
        turn.actions.append(ev.WakeAt(("retry", task_id), t.next_attempt_at, turn.cause))
        return
    info = t.route
    if info is None:
        info = t.route = s.routing.route_of(t.task, t.placement, t.recovery.run_as)
    needs = t.task.requirements.resources
    usable = None
    if needs:
        s.resourceful = True
        resources = s.resources
        usable = lambda a: not resources.shortfall(needs, a.spec.agent_id)  # noqa: E731
    agent = None
    if s.accepting and info.free:  # (none free: nothing to choose from, as for most tasks of a large submission)
        if usable is None:
            agent = s.chooser.best_among(*s.routing.candidates(info), t.task.task_type, at)
        else:
            agent = s.chooser.best_usable(info.free, t.task.task_type, at, usable)
    if turn.gathering and takers_of(s, t.task.task_type):
        enqueue(s, t, at)  # the freed agents take the best queued tasks once every task read is queued
        if agent is not None and agent not in turn.freed:
            turn.freed.append(agent)
        return
    if agent is not None and info.queue.head(s.is_queued) is None:
        recheck = s.chooser.defer(agent, info.agents, t.task.task_type, at, usable, max_capacity=info.max_capacity)
        if recheck is None:
            start(s, t, agent, turn)
            return
        turn.actions.append(ev.WakeAt(("fill", agent.spec.agent_id), recheck, turn.cause))
        agent = None
    enqueue(s, t, at)
    if agent is not None:  # tasks queued earlier may come first
        fill(s, agent, turn)


def enqueue(s: EngineState, t: LiveTask, at: float) -> None:
    """Put a ready task in its route's queue (ready since ``at`` unless it was before)."""
    if t.ready_at is None:
        t.ready_at = at
    info = t.route or s.routing.route_of(t.task, t.placement, t.recovery.run_as)
    t.route = info
    task_id = t.task.task_id
    others = takers_of(s, t.task.task_type)
    shift = order_shift(s.worker_id, others, task_id) if others else 0.0
    t.qseq = s.routing.enqueue(info, task_id, t.task.priority, t.ready_at, shift)


def takers_of(s: EngineState, task_type: str) -> tuple[str, ...]:
    """The other live workers whose agents may claim a task of ``task_type``."""
    takers = s.takers
    if not takers:
        return ()
    named, anything = takers.get(task_type, ()), takers.get(ANY_TASK_TYPE, ())
    return named + anything if named and anything else named or anything


def start(s: EngineState, t: LiveTask, agent: AgentLoad, turn: Turn) -> None:
    """Claim a task for ``agent``: it starts once the save that claims it is committed."""
    task_id, agent_id, cause = t.task.task_id, agent.spec.agent_id, turn.cause
    move(t, IN_PROGRESS)
    t.attempts += 1
    t.agent_id, t.owner, t.started_at = agent_id, s.worker_id, turn.at
    t.finished_at = t.next_attempt_at = t.progress = t.progress_message = None
    t.qseq = 0
    agent.take(task_id, t.task.task_type, turn.at)
    s.routing.changed(agent)
    actions = turn.actions
    actions.append(new_tuple(ev.Save, (task_id, cause)))
    needs = t.task.requirements.resources
    if needs:
        lease = s.resources.take(task_id, t.attempts, agent_id, needs, turn.at)
        if lease is not None:
            actions.append(ev.TakeLease(lease, t.attempts, cause))
    actions.append(new_tuple(ev.Start, (task_id, t.attempts, agent_id, cause)))


def fill(s: EngineState, agent: AgentLoad, turn: Turn) -> None:
    """Give a free agent the best queued tasks it can take."""
    if not s.accepting:
        return
    fits = fits_on(s, agent, turn) if s.resourceful or agent.shared else None
    tasks = s.tasks
    while agent.free > 0:
        task_id = s.routing.next_for(agent, fits)
        if task_id is None:
            return
        start(s, tasks[task_id], agent, turn)


def fits_on(s: EngineState, agent: AgentLoad, turn: Turn) -> Callable[[str], bool]:
    """Whether ``agent`` should take a queued task now: it fits, and no busy agent would finish it clearly
    sooner (if one would, ``agent`` looks again when it would itself have finished)."""
    agent_id = agent.spec.agent_id
    resources = s.resources

    def fits(task_id: str) -> bool:
        t = s.tasks[task_id]
        usable = None
        if s.resourceful:  # (else no task asks for any)
            needs = t.task.requirements.resources
            if needs and resources.shortfall(needs, agent_id):
                return False
            usable = (lambda a: not resources.shortfall(needs, a.spec.agent_id)) if needs else None
        route = t.route  # its queue still holds this task (and perhaps a few stale tickets): the backlog
        recheck = (
            s.chooser.defer(agent, route.agents, t.task.task_type, turn.at, usable, len(route.queue),
                            max_capacity=route.max_capacity)
            if route else None
        )  # fmt: skip
        if recheck is not None:
            turn.actions.append(ev.WakeAt(("fill", agent_id), recheck, turn.cause))
            return False
        return True

    return fits


def refill(s: EngineState, turn: Turn) -> None:
    """Every agent that freed a slot this turn looks for work."""
    freed = turn.freed
    while freed:
        fill(s, freed.pop(), turn)


def abort(s: EngineState, t: LiveTask, reason: str, turn: Turn) -> None:
    """Stop a running attempt of this worker that the engine no longer wants (cancelled, taken over, handled
    by hand, refused by the store). Its resources are free at once; its agent slot stays held until the shell
    reports the call stopped (``CallReturned``): a sync agent's call may run on long after its attempt ended,
    and the slot must count as taken before anything else is placed in this very turn."""
    turn.actions.append(ev.Abort(t.task.task_id, t.attempts, reason, turn.cause))
    free_slot(s, t, turn, held=True)


def free_slot(s: EngineState, t: LiveTask, turn: Turn, *, claimed: bool = True, held: bool = False) -> None:
    """A local attempt stopped: its agent slot and its resources are free again.

    ``claimed=False``: the claim was never stored (the pool refused its lease), so there is no lease to drop,
    and the agents do not look for work before the shell has read the pool again. ``held=True``: the attempt
    was aborted and its call may still run; its slot stays taken until ``CallReturned`` (see ``abort``).
    """
    agent = s.agents.get(t.agent_id)  # type: ignore[arg-type]
    if agent is not None:
        agent.drop(t.task.task_id)
        if held:
            agent.held.add((t.task.task_id, t.attempts))
        s.routing.changed(agent)
        if claimed and not held:
            turn.freed.append(agent)
    elif t.agent_id in s.running_away:  # its agent was unregistered meanwhile: nothing to carry over any more
        s.running_away[t.agent_id].pop(t.task.task_id, None)
    if t.task.requirements.resources:
        lease, pool_gained = s.resources.give_back(t.task.task_id)
        if not claimed:
            return
        if lease is not None:
            turn.actions.append(ev.DropLease(lease.lease_id, turn.cause))
        if pool_gained:  # any agent drawing on the pool may start something now
            turn.freed.extend(a for a in s.agents.values() if a.free > 0)
