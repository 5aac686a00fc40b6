"""Agents indexed by the task types they accept and the skills they have.

Selecting among a thousand agents should not mean looking at a thousand: the
directory narrows a request to the agents that accept its type and have its
skills with a dict lookup and set intersections, before anything is ranked.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from pepper.model.agent import ANY_TASK_TYPE
from pepper.scheduling.load import AgentLoad
from pepper.scheduling.performance import Performance

_NOBODY: frozenset[str] = frozenset()
#: Pools kept per directory (a request's type and skills each make one); beyond this they are made afresh.
_POOLS = 4096


def _agent_id(agent: AgentLoad) -> str:
    return agent.spec.agent_id


class Pool:
    """The agents matching one request (type and skills), split for ranking: those with a performance record,
    each ranked on its own, and those without (alike but for load), in order of id."""

    __slots__ = ("_order", "_split", "_unlisted", "agents")

    def __init__(self, agents: list[AgentLoad]) -> None:
        self.agents = sorted(agents, key=_agent_id)  # by id: those without a record keep this order
        #: (known agents counted when split, known, unknown), replaced whole so that a reader sees one split.
        self._split: tuple[int, dict[str, AgentLoad], list[AgentLoad]] = (-1, {}, [])
        #: (task type, known agents, agents with a mean of the type, when counted; the known without one), likewise.
        self._unlisted: tuple[str, int, int, list[AgentLoad]] = ("", -1, -1, [])
        #: (task type, changes of its order when read; that order narrowed to this pool, or None), likewise.
        self._order: tuple[str, int, list[tuple[float, str]] | None] = ("", -1, None)

    def split(self, performance: Performance) -> tuple[dict[str, AgentLoad], list[AgentLoad]]:
        """``(known, unknown)``: with a record, by id, and without, in order of id (redone when agents got
        their first record since). Records are never forgotten, so a split during which none was made is
        exact for that count, whichever thread made it: only such a split is kept. Read only."""
        seen = performance.known_agents()
        kept = self._split
        if kept[0] == seen:
            return kept[1], kept[2]
        if seen == 0:  # nobody has a record yet
            known, unknown = {}, self.agents
        else:
            is_known = performance.known
            known = {a.spec.agent_id: a for a in self.agents if is_known(a.spec.agent_id)}
            unknown = [a for a in self.agents if not is_known(a.spec.agent_id)]
        if performance.known_agents() == seen:
            self._split = (seen, known, unknown)
        return known, unknown

    def unlisted(self, performance: Performance, task_type: str) -> list[AgentLoad]:
        """Those of ``split``'s known agents with no mean duration of ``task_type`` of their own (whose estimate is
        the type's), in order of id: kept while no agent got its first record, nor its first mean of the type (both
        only ever grow), whichever thread found them, as ``split`` keeps its split. Read only."""
        seen, listed = performance.known_agents(), performance.means.listed(task_type)
        count = len(listed)
        kept = self._unlisted
        if kept[1] == seen and kept[2] == count and kept[0] == task_type:
            return kept[3]
        known, _unknown = self.split(performance)
        found = [agent for agent_id, agent in known.items() if agent_id not in listed]
        if performance.known_agents() == seen and len(listed) == count:
            self._unlisted = (task_type, seen, count, found)
        return found

    def narrowed(
        self, performance: Performance, task_type: str, ordered: Sequence[tuple[float, str]]
    ) -> Sequence[tuple[float, str]]:
        """``ordered`` (``Performance.fastest_first``: every agent with a mean of ``task_type``, by mean) narrowed to
        this pool's agents, so that a walk over it steps over no other agent. Narrowing sorts the pool's agents, so
        it is done only once the order held still from one ask to the next (no result of the type came between),
        and kept while it holds; while results keep coming, the whole order is walked. Read only,
        whichever thread asks (kept only if the order held still while it was narrowed), as ``split``."""
        means = performance.means
        changes = means.changes(task_type)
        kept = self._order
        if kept[1] != changes or kept[0] != task_type:
            self._order = (task_type, changes, None)  # seen once in this order: walked whole
            return ordered
        narrowed = kept[2]
        if narrowed is None:  # the pool's agents with a mean, as the order lists them (mean, then id)
            known, _unknown = self.split(performance)  # (an agent with a mean has a record)
            listed = means.listed(task_type)
            narrowed = sorted([(mean, agent_id) for agent_id in known if (mean := listed.get(agent_id)) is not None])
            if means.changes(task_type) != changes:
                return ordered  # changed meanwhile (on the engine's thread): what was narrowed may not hold
            self._order = (task_type, changes, narrowed)
        return narrowed


class AgentDirectory:
    """A snapshot index of agents; build a new one when the set of agents changes."""

    def __init__(self, agents: Iterable[AgentLoad]) -> None:
        self.agents: dict[str, AgentLoad] = {}
        self.by_type: dict[str, list[AgentLoad]] = {}
        self.any_type: list[AgentLoad] = []
        self.by_skill: dict[str, set[str]] = {}
        self._by_type_skill: dict[tuple[str, str], list[AgentLoad]] = {}
        self._pools: dict[tuple[str, frozenset[str]], Pool] = {}
        for agent in agents:
            spec = agent.spec
            self.agents[spec.agent_id] = agent
            for task_type in spec.task_types:
                if task_type == ANY_TASK_TYPE:
                    self.any_type.append(agent)
                else:
                    self.by_type.setdefault(task_type, []).append(agent)
            for skill in spec.skills:
                self.by_skill.setdefault(skill, set()).add(spec.agent_id)

    def matching(self, task_type: str, skills: frozenset[str] = _NOBODY) -> list[AgentLoad]:
        """Agents that accept ``task_type`` and have every one of ``skills`` (do not modify the list)."""
        if not skills:
            takers = self.by_type.get(task_type, [])
            return takers + self.any_type if self.any_type else takers
        # The rarest skill among the takers narrows most; the others are checked on that short list.
        lists = [self._takers_with(task_type, skill) for skill in skills]
        shortest = min(lists, key=len)
        if len(lists) == 1 or not shortest:
            return shortest
        return [agent for agent in shortest if skills <= agent.spec.skills]

    def pool(self, task_type: str, skills: frozenset[str] = _NOBODY) -> Pool:
        """The agents ``matching`` a request, kept for ranking again (see ``Pool``; do not modify its lists)."""
        key = (task_type, skills)
        found = self._pools.get(key)
        if found is None:
            if len(self._pools) >= _POOLS:
                self._pools.clear()
            found = self._pools[key] = Pool(self.matching(task_type, skills))
        return found

    def _takers_with(self, task_type: str, skill: str) -> list[AgentLoad]:
        key = (task_type, skill)
        found = self._by_type_skill.get(key)
        if found is None:  # built on first use: most pairs are never asked for
            holders = self.by_skill.get(skill, set())
            takers = self.by_type.get(task_type, []) + self.any_type
            found = self._by_type_skill[key] = [a for a in takers if a.spec.agent_id in holders]
        return found
