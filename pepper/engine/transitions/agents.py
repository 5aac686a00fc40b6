"""Who runs tasks: agents joining, getting their budget and leaving; other workers' agents (peers); what is
learnt about agents (history, ratings, health); workload placements; the resource pool as the store has it.

Pure: no I/O, and time comes with the turn.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from pepper.engine.transitions.placement import fill, offer, refill
from pepper.engine.transitions.turn import BLOCKED, IN_PROGRESS, PENDING, Turn
from pepper.model import events as ev

if TYPE_CHECKING:
    from pepper.engine.state import EngineState

#: The timer that wakes the scheduler when a lease expires.
POOL_EXPIRY = ("pool", "expiry")


def on_agent_added(s: EngineState, e: ev.AgentAdded) -> list[ev.Action]:
    """An agent joined: it takes queued work now, unless it waits for its budget."""
    turn = Turn(e.at, e.cause)
    agent = s.routing.add_agent(e.spec)
    held = s.held_away.pop(e.spec.agent_id, None)
    if held:  # calls it left running when it was unregistered: they keep their slots until they return
        agent.held = held
        s.routing.changed(agent)
    running = s.running_away.pop(e.spec.agent_id, None)
    if running:  # attempts it left running: they keep their slots until they end
        for task_id, (attempt, task_type, since) in running.items():
            t = s.tasks.get(task_id)
            if (t is not None and t.state is IN_PROGRESS and t.agent_id == e.spec.agent_id
                    and t.attempts == attempt and t.owner == s.worker_id):  # fmt: skip
                agent.take(task_id, task_type, since)
        s.routing.changed(agent)
    s.resources.set_off_host(e.spec.agent_id, e.off_host)
    if e.waiting_for is not None:
        agent.accepting, agent.note = False, e.waiting_for
        s.routing.changed(agent)
    fill(s, agent, turn)
    return turn.actions


def on_agent_ready(s: EngineState, e: ev.AgentReady) -> list[ev.Action]:
    """An agent that waited for its budget got it: it takes queued work."""
    turn = Turn(e.at, e.cause)
    agent = s.agents.get(e.agent_id)
    if agent is not None:
        agent.accepting, agent.note = True, None
        s.routing.changed(agent)
        fill(s, agent, turn)
    return turn.actions


def on_agent_removed(s: EngineState, e: ev.AgentRemoved) -> list[ev.Action]:
    """An agent left; its attempts still running, and its calls that outlived their attempt, are kept in mind
    until they end (an agent registered again under its id finds their slots taken)."""
    agent = s.routing.remove_agent(e.agent_id)
    if agent is not None and agent.held:
        s.held_away[e.agent_id] = agent.held
    if agent is not None and agent.running:  # "running ones finish": still taking slots if it comes back
        away = s.running_away[e.agent_id] = {}
        for task_id, (task_type, since) in agent.running_since().items():
            t = s.tasks.get(task_id)
            if t is not None:
                away[task_id] = (t.attempts, task_type, since)
    s.resources.set_off_host(e.agent_id, None)
    return []


def on_peers(s: EngineState, e: ev.PeersChanged) -> list[ev.Action]:
    """The other workers' agents changed: a task recovery moved to an agent that went away may go anywhere."""
    before, first = s.peers, not s.peers_known
    s.peers = {spec.agent_id: spec for spec in e.agents if spec.agent_id not in s.agents}
    s.peers_known = True
    takers: dict[str, list[str]] = {}
    for kind, worker_id in e.takers:
        takers.setdefault(kind, []).append(worker_id)
    s.takers = {kind: tuple(workers) for kind, workers in takers.items()}
    if not first and not before.keys() - s.peers.keys():
        return []
    turn = Turn(e.at, e.cause)
    for t in list(s.tasks.values()):
        placed = t.placement
        if (t.state is PENDING and placed is not None and t.recovery.moved_to == placed
                and placed not in s.agents and placed not in s.peers):  # fmt: skip
            t.placement, t.route, t.qseq = None, None, 0
            t.recovery = replace(t.recovery, moved_to=None)
            turn.actions.append(ev.Save(t.task.task_id, e.cause))
            offer(s, t, turn)
    return turn.actions


def on_history(s: EngineState, e: ev.HistoryLoaded) -> list[ev.Action]:
    """Past outcomes and ratings to learn agents' speed and reliability from."""
    for agent_id, task_type, ok, duration, at in e.outcomes:
        s.performance.record(agent_id, task_type, ok, duration, at)
    for agent_id, rating, at in e.ratings:
        s.performance.rate(agent_id, rating, at)
    return []


def on_rated(s: EngineState, e: ev.Rated) -> list[ev.Action]:
    s.performance.rate(e.agent_id, e.rating, e.at)
    return []


def on_health(s: EngineState, e: ev.HealthChanged) -> list[ev.Action]:
    s.performance.set_health(e.agent_id, e.healthy)
    return []


def on_placement(s: EngineState, e: ev.PlacementSet) -> list[ev.Action]:
    """A workload plan placed a waiting task on an agent (or lifted its placement): it leaves its old queue."""
    t = s.tasks.get(e.task_id)
    if t is None or t.state not in (PENDING, BLOCKED) or t.placement == e.agent_id:
        return []
    t.placement, t.route, t.qseq = e.agent_id, None, 0
    turn = Turn(e.at, e.cause)
    turn.actions.append(ev.Save(e.task_id, e.cause))
    if t.state is PENDING:
        offer(s, t, turn)
    return turn.actions


def on_leases(s: EngineState, e: ev.LeasesLoaded) -> list[ev.Action]:
    """The pool and its live leases as the store has them now."""
    return pool_changed(s, s.resources.load(e.capacity, e.leases, e.at), Turn(e.at, e.cause))


def pool_changed(s: EngineState, next_expiry: float | None, turn: Turn) -> list[ev.Action]:
    """The pool may have room now: every agent with a free slot looks for work; wake when a lease expires."""
    if next_expiry is not None:
        turn.actions.append(ev.WakeAt(POOL_EXPIRY, next_expiry, turn.cause))
    turn.freed.extend(a for a in s.agents.values() if a.free > 0)
    refill(s, turn)
    return turn.actions


def on_call_held(s: EngineState, e: ev.CallHeld) -> list[ev.Action]:
    """A call outlived its attempt and still runs on its thread: its agent's slot stays taken."""
    agent = s.agents.get(e.agent_id)
    if agent is not None:
        agent.held.add((e.task_id, e.attempt))
        s.routing.changed(agent)
    else:  # unregistered meanwhile: its slot is taken again if it comes back before the call returns
        s.held_away.setdefault(e.agent_id, set()).add((e.task_id, e.attempt))
    return []


def on_call_returned(s: EngineState, e: ev.CallReturned) -> list[ev.Action]:
    """A call that outlived its attempt returned (or an aborted attempt stopped): its agent's slot is free, and
    it takes queued work. An empty ``agent_id`` (an aborted attempt that never started here): whichever agent
    holds the slot."""
    key = (e.task_id, e.attempt)
    holders = [s.agents.get(e.agent_id)] if e.agent_id else [a for a in s.agents.values() if key in a.held]
    agent = holders[0] if holders else None
    if agent is None:  # unregistered meanwhile: nothing to free, but it no longer waits to return
        for agent_id in [e.agent_id] if e.agent_id else list(s.held_away):
            away = s.held_away.get(agent_id)
            if away is not None:
                away.discard(key)
                if not away:
                    del s.held_away[agent_id]
        return []
    if key not in agent.held:
        return []
    turn = Turn(e.at, e.cause)
    agent.held.discard(key)
    s.routing.changed(agent)
    turn.freed.append(agent)
    refill(s, turn)
    return turn.actions
