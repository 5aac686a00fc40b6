"""The ready tasks as a process without an engine sees them in the store.

A CLI command has no ready queues in memory; it reads the pending tasks and
asks the same questions the engine's queues answer: how many tasks the agents
that could run a task will serve before it, and how much waiting work falls to
each agent. The rules are the engine's: tasks are served by ageing priority
(``queue.ageing_key``), a task counts for the agents eligible for its route,
shared equally among them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import NamedTuple

from pepper.model.agent import AgentSpec
from pepper.model.record import TaskRecord
from pepper.scheduling.eligibility import Route, rejection
from pepper.scheduling.queue import ageing_key


class Waiting(NamedTuple):
    """A ready task waiting for an agent."""

    task_id: str
    route: Route
    priority: int
    ready_at: float
    seq: int


def waiting_from(records: Iterable[TaskRecord]) -> list[Waiting]:
    """The ready tasks among ``records`` (given in submission order)."""
    return [
        Waiting(r.task.task_id, Route(r.task.task_type, r.placement or r.task.agent, r.task.requirements.skills),
                r.task.priority, r.ready_at if r.ready_at is not None else r.task.created_at, seq)
        for seq, r in enumerate(records)
    ]  # fmt: skip


def _servers(route: Route, agents: Sequence[AgentSpec], cache: dict[Route, frozenset[str]]) -> frozenset[str]:
    found = cache.get(route)
    if found is None:
        found = cache[route] = frozenset(a.agent_id for a in agents if rejection(a, route) is None)
    return found


def ahead_of(me: Waiting, waiting: Iterable[Waiting], agents: Sequence[AgentSpec], ageing_per_minute: float) -> int:
    """Waiting tasks that the agents able to run ``me`` will serve first (with no such agent: those of its
    own route)."""
    return sum(1 for _ in _ahead(me, waiting, agents, ageing_per_minute, {}))


def ahead_in_routes(route: Route, counts: Iterable[tuple[Route, int]], agents: Sequence[AgentSpec]) -> int:
    """``ahead_of`` over the tasks already known to be served first, counted by route: the store counts them
    (the store's ``ready_ahead``) so that asking about one task reads no other task's row."""
    cache: dict[Route, frozenset[str]] = {}
    servers = _servers(route, agents, cache)
    return sum(n for other, n in counts if other == route or servers & _servers(other, agents, cache))


def work_ahead(
    me: Waiting, waiting: Iterable[Waiting], agents: Sequence[AgentSpec], ageing_per_minute: float,
    expected: Callable[[str, str], float],
) -> dict[str, float]:  # fmt: skip
    """Seconds of waiting work each agent able to run ``me`` serves before it: every task ahead of ``me`` (as
    ``ahead_of`` counts them) brings ``expected(agent_id, task_type)``, shared equally among the agents that
    may take it (as ``shares`` counts them)."""
    cache: dict[Route, frozenset[str]] = {}
    mine = _servers(me.route, agents, cache)
    totals = dict.fromkeys(mine, 0.0)
    for other in _ahead(me, waiting, agents, ageing_per_minute, cache):
        servers = _servers(other.route, agents, cache)
        for agent_id in servers & mine:
            totals[agent_id] += expected(agent_id, other.route.task_type) / len(servers)
    return totals


def _ahead(
    me: Waiting, waiting: Iterable[Waiting], agents: Sequence[AgentSpec], ageing_per_minute: float,
    cache: dict[Route, frozenset[str]],
) -> Iterator[Waiting]:  # fmt: skip
    rate = ageing_per_minute / 60.0
    mine = (ageing_key(me.priority, me.ready_at, rate), me.seq)
    servers = _servers(me.route, agents, cache)
    for other in waiting:
        if other.task_id == me.task_id or (ageing_key(other.priority, other.ready_at, rate), other.seq) >= mine:
            continue
        if other.route == me.route or servers & _servers(other.route, agents, cache):
            yield other


def shares(waiting: Iterable[Waiting], agents: Sequence[AgentSpec]) -> dict[str, float]:
    """Each agent's share of the waiting tasks: a task counts ``1/n`` for each of the ``n`` agents that may
    take it."""
    cache: dict[Route, frozenset[str]] = {}
    totals = {a.agent_id: 0.0 for a in agents}
    for task in waiting:
        servers = _servers(task.route, agents, cache)
        for agent_id in servers:
            totals[agent_id] += 1.0 / len(servers)
    return totals
