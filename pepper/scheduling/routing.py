"""Routing: which agents serve which tasks, and one ready queue per route.

Tasks with the same type, pinned agent and skills share a *route*. Each route
keeps the agents eligible for it and a ready queue, so matching a ready task
to a free agent (and a free agent to the best queued task) never scans all
tasks or all agents.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable

from pepper.model.agent import AgentSpec
from pepper.model.task import Task
from pepper.scheduling.eligibility import Route, rejection
from pepper.scheduling.load import AgentLoad, least_loaded
from pepper.scheduling.queue import ReadyQueue, ageing_key

IsLive = Callable[[str, int], bool]


class RouteInfo:
    """The ready queue of one route and the agents that can serve it."""

    __slots__ = ("agents", "queue", "route")

    def __init__(self, route: Route, agents: list[AgentLoad]) -> None:
        self.route = route
        self.queue = ReadyQueue()
        self.agents = agents


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

    def __init__(self, is_live: IsLive, ageing_per_minute: float = 10.0) -> None:
        self.agents: dict[str, AgentLoad] = {}
        self._is_live = is_live
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
        self._agent_routes[spec.agent_id] = routes
        self._mark_shared()
        self.version += 1
        return agent

    def remove_agent(self, agent_id: str) -> AgentLoad | None:
        agent = self.agents.pop(agent_id, None)
        if agent is not None:
            agent.accepting = False
            for info in self._agent_routes.pop(agent_id, []):
                info.agents.remove(agent)
            self._mark_shared()
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
            if len(agents) > 1:
                self._mark_shared()
        return info

    def _mark_shared(self) -> None:
        for agent in self.agents.values():
            agent.shared = any(len(info.agents) > 1 for info in self._agent_routes.get(agent.spec.agent_id, ()))

    @staticmethod
    def free_agent(info: RouteInfo, usable: Callable[[AgentLoad], bool] | None = None) -> AgentLoad | None:
        """The best agent of the route with a free slot (and, if given, ``usable``), if any."""
        if usable is None:
            return least_loaded(info.agents)
        return least_loaded(a for a in info.agents if a.free > 0 and usable(a))

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
        if len(routes) == 1 and fits is None:  # the common case: one kind of task per agent
            queue = routes[0].queue
            head = queue.head(self._is_live)
            if head is None:
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
