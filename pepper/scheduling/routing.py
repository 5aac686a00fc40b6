"""Routing: which agents serve which tasks, and one ready queue per route.

Tasks with the same type, pinned agent and skills share a *route*. Each route
keeps the agents eligible for it and a ready queue, so matching a ready task
to a free agent (and a free agent to the best queued task) never scans all
tasks or all agents.
"""

from __future__ import annotations

import heapq
import zlib
from collections.abc import Callable, Mapping

from pepper.model.agent import AgentSpec
from pepper.model.task import Task
from pepper.scheduling.eligibility import Route, rejection
from pepper.scheduling.load import AgentLoad
from pepper.scheduling.performance import Performance
from pepper.scheduling.queue import ReadyQueue, ageing_key

IsLive = Callable[[str, int], bool]


class RouteInfo:
    """The ready queue of one route, the agents that can serve it, and which of them have a free slot."""

    __slots__ = ("agents", "free", "free_known", "idle", "known_seen", "max_capacity", "queue", "route")

    def __init__(self, route: Route, agents: list[AgentLoad]) -> None:
        self.route = route
        self.queue = ReadyQueue()
        self.agents = agents
        #: The agents with a free slot, by id.
        self.free: dict[str, AgentLoad] = {a.spec.agent_id: a for a in agents if a.free > 0}
        #: Those of them with a performance record, each with its own expected time...
        self.free_known: dict[str, AgentLoad] = {}
        #: ... and a heap of (utilisation, order, agent) holding those without one (alike but for their load),
        #: with entries gone stale (checked when they come up).
        self.idle: list[tuple[float, int, AgentLoad]] = []
        self.known_seen = -1  # ``Performance.known_agents()`` when ``free_known`` was last completed
        self.max_capacity = max((a.spec.capacity for a in agents), default=1)


#: How far (in seconds of readiness) workers sharing a task type spread their orders of tasks ready together.
STAGGER = 0.05

#: How far (in seconds of readiness) a worker sets back a ready task that another worker should take first.
HANDOFF = 2.0


def order_shift(worker_id: str, others: tuple[str, ...], task_id: str) -> float:
    """How far a worker sets back a ready task that the workers ``others`` may also claim.

    Each task has one first taker among the workers that may claim it, the same for all of them (the
    highest hash of (worker, task): rendezvous hashing), so the workers share out the tasks they all see
    instead of racing for the same ones. The others set it back by ``HANDOFF`` seconds of readiness: they
    take it once they have nothing of their own that waited as long (an idle worker takes it at once, so a
    slow or dead first taker delays nobody). Each worker also shifts each task by a fixed amount from 0 to
    ``STAGGER`` drawn from (worker, task), so that tasks ready together are taken in different orders.
    Priority still decides: at the default ageing a priority step is worth 6 s of readiness, more than
    any shift.
    """
    mine = zlib.crc32(f"{worker_id}\x00{task_id}".encode())
    shift = mine / 2**32 * STAGGER
    for other in others:
        if zlib.crc32(f"{other}\x00{task_id}".encode()) > mine:
            return shift + HANDOFF
    return shift


class Routing:
    """Agents, the routes they serve, and the ready queues.

    ``is_live(task_id, ticket)`` (given by the owner of the tasks) tells whether
    a queue ticket is still valid, so tasks leave queues lazily.
    """

    def __init__(
        self, is_live: IsLive, ageing_per_minute: float = 10.0, performance: Performance | None = None
    ) -> None:
        self.agents: dict[str, AgentLoad] = {}
        self._is_live = is_live
        self._performance = performance or Performance()
        self._routes: dict[Route, RouteInfo] = {}
        self._agent_routes: dict[str, list[RouteInfo]] = {}
        self._rate = ageing_per_minute / 60.0
        self._tickets = 0
        self._order = 0
        self.version = 0  # grows whenever an agent joins or leaves

    def add_agent(self, spec: AgentSpec) -> AgentLoad:
        self._order += 1
        agent = AgentLoad(spec, self._order)
        self.agents[spec.agent_id] = agent
        routes = [info for info in self._routes.values() if rejection(spec, info.route) is None]
        for info in routes:
            info.agents.append(agent)
            info.max_capacity = max(info.max_capacity, spec.capacity)
        self._agent_routes[spec.agent_id] = routes
        self.changed(agent)
        self._mark_shared(agent, routes)
        self.version += 1
        return agent

    def remove_agent(self, agent_id: str) -> AgentLoad | None:
        agent = self.agents.pop(agent_id, None)
        if agent is not None:
            agent.accepting = False
            routes = self._agent_routes.pop(agent_id, [])
            for info in routes:
                info.agents.remove(agent)
                info.free.pop(agent_id, None)
                info.free_known.pop(agent_id, None)
                info.max_capacity = max((a.spec.capacity for a in info.agents), default=1)
            for info in routes:
                if len(info.agents) == 1:  # its last agent may share nothing any more
                    self._mark_shared(info.agents[0], self._agent_routes.get(info.agents[0].spec.agent_id, []))
            self.version += 1
        return agent

    def route_of(self, task: Task, placement: str | None = None, run_as: str | None = None) -> RouteInfo:
        """The route of ``task``; a ``placement`` (a workload plan's, or a recovery's) pins it like
        ``task.agent`` does; ``run_as`` (a recovery's fallback task type) replaces its type."""
        route = Route(run_as or task.task_type, placement or task.agent, task.requirements.skills)
        info = self._routes.get(route)
        if info is None:
            agents = [a for a in self.agents.values() if rejection(a.spec, route) is None]
            info = self._routes[route] = RouteInfo(route, agents)
            for agent in agents:
                self._agent_routes[agent.spec.agent_id].append(info)
                self._place(info, agent)
            if len(agents) > 1:
                for agent in agents:
                    agent.shared = True
        return info

    def serves(self, task: Task, placement: str | None = None, run_as: str | None = None) -> bool:
        """True if some agent here could run ``task`` (as ``route_of`` would route it), without adding its
        route."""
        route = Route(run_as or task.task_type, placement or task.agent, task.requirements.skills)
        info = self._routes.get(route)
        if info is not None:
            return bool(info.agents)
        return any(rejection(a.spec, route) is None for a in self.agents.values())

    def changed(self, agent: AgentLoad) -> None:
        """``agent`` started or stopped a task, or started or stopped taking tasks: its routes learn whether it
        has a free slot."""
        for info in self._agent_routes.get(agent.spec.agent_id, ()):
            self._place(info, agent)

    def _place(self, info: RouteInfo, agent: AgentLoad) -> None:
        agent_id = agent.spec.agent_id
        if agent.free <= 0:
            info.free.pop(agent_id, None)
            info.free_known.pop(agent_id, None)
            return
        info.free[agent_id] = agent
        if self._performance.known(agent_id):
            info.free_known[agent_id] = agent
            return
        if len(info.idle) > 2 * len(info.agents) + 64:  # drop the stale entries now and then
            info.idle = [(a.busy / a.spec.capacity, a.order, a) for a in info.free.values()]
            heapq.heapify(info.idle)
        else:
            heapq.heappush(info.idle, (agent.busy / agent.spec.capacity, agent.order, agent))

    def candidates(self, info: RouteInfo) -> tuple[AgentLoad | None, Mapping[str, AgentLoad]]:
        """The agents of ``info`` with a free slot that may be the best to start a task (``Chooser.best_among``),
        in two: the least loaded free agent with no performance record (None if none is free: those without one
        all expect the same time) and, by id, the free agents with one (read only)."""
        performance, free, free_known = self._performance, info.free, info.free_known
        if info.known_seen != performance.known_agents():  # some agents got their first record since
            info.known_seen = performance.known_agents()
            for agent_id, agent in free.items():
                if agent_id not in free_known and performance.known(agent_id):
                    free_known[agent_id] = agent
        heap = info.idle
        while heap:
            utilisation, _order, agent = heap[0]
            agent_id = agent.spec.agent_id
            current = free.get(agent_id) is agent and utilisation == agent.busy / agent.spec.capacity
            if current and agent_id not in free_known:
                return agent, free_known
            heapq.heappop(heap)  # stale: busy since, or loaded differently (a newer entry holds it), or known
        return None, free_known

    def _mark_shared(self, agent: AgentLoad, routes: list[RouteInfo]) -> None:
        """``agent`` joined (or was left alone on) ``routes``: who serves a route together with others now."""
        agent.shared = False
        for info in routes:
            if len(info.agents) > 1:
                agent.shared = True
                if len(info.agents) == 2:  # the one already there shares it from now on
                    info.agents[0].shared = info.agents[1].shared = True
        if not agent.shared:
            agent.shared = any(len(info.agents) > 1 for info in self._agent_routes.get(agent.spec.agent_id, ()))

    def key(self, priority: int, ready_at: float) -> float:
        return ageing_key(priority, ready_at, self._rate)

    def enqueue(self, info: RouteInfo, task_id: str, priority: int, ready_at: float, stagger: float = 0.0) -> int:
        """Queue a ready task; returns its ticket. ``stagger`` seconds are added to its ready time in the
        ordering only (see ``order_shift``)."""
        self._tickets += 1
        info.queue.push(self.key(priority, ready_at + stagger), self._tickets, task_id)
        return self._tickets

    def next_for(self, agent: AgentLoad, fits: Callable[[str], bool] | None = None) -> str | None:
        """Pop the queued task ``agent`` should run next, if any.

        With ``fits``, a route whose first task does not fit waits (tasks of one
        route keep their order); another route's first task may go instead.
        """
        routes = self._agent_routes.get(agent.spec.agent_id)
        if not routes:
            return None
        if len(routes) == 1:  # the common case: one kind of task per agent
            queue = routes[0].queue
            head = queue.head(self._is_live)
            if head is None or (fits is not None and not fits(head[2])):
                return None
            queue.pop()
            return head[2]
        heads = sorted((item, info.queue) for info in routes if (item := info.queue.head(self._is_live)) is not None)
        for (_key, _ticket, task_id), queue in heads:
            if fits is None or fits(task_id):
                queue.pop()
                return task_id
        return None

    def ahead(self, info: RouteInfo, ticket: int, priority: int, ready_at: float) -> int:
        """Queued tasks that the agents of ``info`` will serve before this ticket."""
        key = self.key(priority, ready_at)
        queues = {id(info): info.queue}
        for agent in info.agents:
            for other in self._agent_routes.get(agent.spec.agent_id, ()):
                queues[id(other)] = other.queue
        return sum(q.count_before(key, ticket, self._is_live) for q in queues.values())

    def queued_share(self, agent: AgentLoad) -> float:
        """Queued tasks this agent may take, each shared equally among the agents that may take it."""
        total = 0.0
        for info in self._agent_routes.get(agent.spec.agent_id, ()):
            live = sum(1 for _k, ticket, task_id in info.queue.items() if self._is_live(task_id, ticket))
            total += live / max(1, len(info.agents))
        return total

    def has_queued_work(self) -> bool:
        """True if some route with an agent has a live queued task."""
        return any(info.agents and info.queue.head(self._is_live) for info in self._routes.values())
