"""Which agent starts a ready task now (the live side of the selector's objective).

Among the free eligible agents, the one with the earliest projected finish
(expected time = estimated duration / score). A free agent also leaves a task
for a busy one when that one is projected to get through the route's ready
tasks clearly before it would finish this one - so an agent that keeps
failing, or is slow, falls behind on its own, yet still helps with a backlog -
and looks again when it would itself have finished, in case the projection
was wrong.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Protocol, TypeVar

from pepper.scheduling.load import AgentLoad
from pepper.scheduling.performance import DEFAULT_DURATION, MIN_SCORE, Performance

#: Another agent must be projected this much faster before a free agent leaves it a task.
MARGIN = 0.15
#: Bounds are loosened by this factor, so that a rounding never hides an agent that would win.
_SLACK = 1 - 1e-9
#: No expected time exceeds its estimate by more than this factor (success and score are at least 0.05 and 0).
_MOST_EXPECTED = 1 / (MIN_SCORE * 0.5) * (1 + 1e-9)
#: An agent's own estimate times this bounds from above what another must beat to be waited for.
_OWN_BOUND = _MOST_EXPECTED * (1 - MARGIN)
#: Up to this many free agents with a record are compared one by one; more, in order of their mean durations.
_FEW_KNOWN = 8

#: When the tasks running on an agent started: task type -> start times in increasing order.
RunningInfo = Callable[[AgentLoad], Mapping[str, Sequence[float]]]
Usable = Callable[[AgentLoad], bool]


def _until_free(starts: Sequence[float], estimate: float, now: float) -> float:
    """The soonest of ``estimate - elapsed`` (a task not yet overdue) and ``elapsed`` (an overdue one, assumed
    to take as long again) over tasks started at ``starts`` (in order), looking only around the start that
    became overdue last: either side of it the value only grows."""
    cut = bisect_right(starts, now - estimate)
    soonest = float("inf")
    for started_at in starts[max(0, cut - 2) : cut + 2]:  # two each side: rounding may blur the cut
        elapsed = max(0.0, now - started_at)
        soonest = min(soonest, estimate - elapsed if estimate > elapsed else elapsed)
    return soonest


class Chooser:
    """Projected-finish decisions, from learned performance and what agents are running."""

    def __init__(self, performance: Performance, running: RunningInfo) -> None:
        self.performance = performance
        self._running = running

    def available_in(self, agent: AgentLoad, now: float) -> float:
        """Seconds until ``agent`` has a free slot (an overdue task is assumed to take as long again); infinite
        while calls that outlived their attempt hold all its slots (when one returns is not known)."""
        if agent.free > 0:
            return 0.0
        soonest = float("inf")
        estimate = self.performance.estimate
        for task_type, starts in self._running(agent).items():
            if starts:
                soonest = min(soonest, _until_free(starts, estimate(agent.spec.agent_id, task_type, now), now))
        if soonest != float("inf"):
            return soonest
        return soonest if len(agent.held) >= agent.spec.capacity else 0.0

    def projected_finish(self, agent: AgentLoad, task_type: str, now: float) -> float:
        return self.available_in(agent, now) + self.performance.expected_time(agent.spec.agent_id, task_type, now)

    def best_free(
        self, agents: Iterable[AgentLoad], task_type: str, now: float, usable: Usable | None = None
    ) -> AgentLoad | None:
        """The free agent where the task is expected to finish first (then the least loaded, then the oldest).

        ``agents`` need only hold those with a free slot (a route's ``free``): the others are skipped. Agents
        with no record yet all have the same expected time, computed once."""
        free = [a for a in agents if a.free > 0 and (usable is None or usable(a))]
        if len(free) <= 1:
            return free[0] if free else None
        found = lowest_ranked(free, self._free_rank(task_type, now), None)
        return None if found is None else found[0]

    def best_among(
        self, idle: AgentLoad | None, known: Mapping[str, AgentLoad], task_type: str, now: float
    ) -> AgentLoad | None:
        """``best_free`` of a route's free agents as ``Routing.candidates`` gives them: ``idle``, the least loaded
        of those with no record, and ``known``, those with one (many of them are looked at as ``best_ranked``
        says)."""
        if len(known) <= _FEW_KNOWN:
            return self.best_free([idle, *known.values()] if idle is not None else known.values(), task_type, now)
        rank = self._free_rank(task_type, now)
        best = lowest_ranked((idle,) if idle is not None else (), rank, None)
        found = best_ranked(self.performance, known, task_type, now, rank, best)
        return None if found is None else found[0]

    def best_usable(
        self, free: Mapping[str, AgentLoad], task_type: str, now: float, usable: Usable
    ) -> AgentLoad | None:
        """``best_free`` of a route's free agents (by id) that are ``usable`` (they have the resources the task
        needs): those with a record and without are all looked at as ``best_ranked`` says (no agent without a
        record is expected to finish sooner than the type's estimate)."""
        if len(free) <= _FEW_KNOWN:
            return self.best_free(free.values(), task_type, now, usable)
        found = best_ranked(self.performance, free, task_type, now, self._free_rank(task_type, now, usable))
        return None if found is None else found[0]

    def _free_rank(
        self, task_type: str, now: float, usable: Usable | None = None
    ) -> Callable[[AgentLoad], tuple[float, float, int] | None]:
        """The rank of a free agent for a task of ``task_type``: its expected time (the same for every agent with
        no record, worked out once), its load, its age; None for an agent with no free slot, or not ``usable``."""
        performance = self.performance
        known, expected = performance.known, performance.expected_time
        unknown: list[float] = []  # the expected time of an agent with no record, once worked out

        def rank(a: AgentLoad) -> tuple[float, float, int] | None:
            if a.free <= 0 or (usable is not None and not usable(a)):
                return None
            agent_id = a.spec.agent_id
            if known(agent_id):
                time = expected(agent_id, task_type, now)
            else:
                if not unknown:
                    unknown.append(performance.unknown_expected(task_type, now))
                time = unknown[0]
            return time, a.busy / a.spec.capacity, a.order

        return rank

    def defer(
        self,
        agent: AgentLoad,
        agents: Sequence[AgentLoad],
        task_type: str,
        now: float,
        usable: Usable | None = None,
        backlog: int = 1,
        *,
        max_capacity: int | None = None,
    ) -> float | None:
        """If a busy agent would finish the task clearly sooner than ``agent`` starting it now, when to look again.

        ``backlog`` is how many ready tasks the route holds (this one included): a busy agent is only worth
        waiting for if it would get through all of them before ``agent`` finished this one. ``max_capacity``
        (the largest capacity among ``agents``) lets a bound settle most calls without looking at each agent:
        no busy agent gets through the backlog faster than the shortest expected time allows.
        """
        if len(agents) == 1:
            return None
        performance, agent_id = self.performance, agent.spec.agent_id
        if max_capacity is None:
            max_capacity = max(a.spec.capacity for a in agents)
        own = performance.estimate(agent_id, task_type, now)
        fastest = (  # no agent's expected time is below this
            performance.estimate_floor(task_type, now) if performance.known_agents()
            else performance.unknown_expected(task_type, now)
        )  # fmt: skip
        tasks = max(1, backlog)
        reach = fastest * tasks / max_capacity * _SLACK  # no busy agent gets through the backlog sooner
        if reach >= own * _OWN_BOUND:
            return None  # settled without working out this agent's own expected time
        if reach >= performance.expected_ceiling(agent_id, own, now) * (1 - MARGIN):
            return None  # settled by its success alone (its score, with its timeliness, costs more)
        mine = performance.expected_time(agent_id, task_type, now)
        beat = mine * (1 - MARGIN)  # what a busy agent must get through the backlog in
        if reach >= beat or now + mine <= now:  # (or it would be through before the clock moves: no time to wait)
            return None
        estimate, expected = performance.estimate, performance.expected_time
        for other in agents:
            if other is agent or other.free > 0 or not other.accepting or (usable is not None and not usable(other)):
                continue
            other_id, capacity = other.spec.agent_id, other.spec.capacity
            if estimate(other_id, task_type, now) * tasks / capacity * _SLACK >= beat:
                continue  # its expected time is no shorter than its estimate: it cannot be through in time
            if self.available_in(other, now) + expected(other_id, task_type, now) * tasks / capacity < beat:
                return now + mine
        return None


K = TypeVar("K", bound=tuple[Any, ...])


class KeptMembers(Protocol):
    """What a caller of ``best_ranked`` keeps of its members from one walk to the next (a directory pool does)."""

    def narrowed(
        self, performance: Performance, task_type: str, ordered: Sequence[tuple[float, str]]
    ) -> Sequence[tuple[float, str]]:
        """``ordered`` (``Performance.fastest_first``) as it is, or narrowed to the members, in the same order."""
        ...

    def unlisted(self, performance: Performance, task_type: str) -> Iterable[AgentLoad]:
        """The members with no mean duration of ``task_type`` of their own."""
        ...


def best_ranked(
    performance: Performance,
    members: Mapping[str, AgentLoad],
    task_type: str,
    now: float,
    rank: Callable[[AgentLoad], K | None],
    best: tuple[AgentLoad, K] | None = None,
    kept: KeptMembers | None = None,
) -> tuple[AgentLoad, K] | None:
    """The lowest of ``best`` and of ``(agent, rank(agent))`` over ``members`` (agents by id; a rank of None
    passes the agent over), where the first item of a rank is never below the agent's ``estimate`` of
    ``task_type`` (an expected time, or a projected finish).

    Many members are looked at in order of their mean durations of the type (``Performance.fastest_first``: a
    mean is its agent's estimate) until a mean is above the best rank found: no member after it can rank
    lower. Then those with no mean of the type, whose estimate is the type's, only if that is not above the
    best either. While some mean may have faded (its agent's estimate is the type's then), the walk stops only
    where the type's estimate is above the best too. ``kept``: what the caller keeps of its members (a directory
    pool), the order narrowed to them and those with no mean."""
    if len(members) <= _FEW_KNOWN:
        return lowest_ranked(members.values(), rank, best)
    ordered, fading = performance.fastest_first(task_type, now)
    typical = performance.type_estimate(task_type, now)
    if typical is None:
        typical = DEFAULT_DURATION
    if fading and ordered:  # (a rank worked out before the type's own mean faded may still hold its last value)
        typical = min(typical, ordered[0][0])
    best_key = None if best is None else best[1]
    # A mean above ``limit`` rules out its agent and every later one (while a mean may have faded, only once the
    # type's estimate is above the best too).
    limit = math.inf if best_key is None or (fading and typical * _SLACK <= best_key[0]) else best_key[0] / _SLACK
    looked, steps, most = 0, 0, 4 * len(members)
    for mean, agent_id in ordered if kept is None else kept.narrowed(performance, task_type, ordered):
        if mean > limit:
            break
        steps += 1
        if steps > most:  # the members are few among the type's agents: ranking each of them costs less
            return lowest_ranked(members.values(), rank, best)
        member = members.get(agent_id)
        if member is None:
            continue  # not a member (busy, or of another route or pool)
        looked += 1
        key = rank(member)
        if key is not None and (best_key is None or key < best_key):
            best, best_key = (member, key), key
            if not fading or typical * _SLACK > key[0]:
                limit = key[0] / _SLACK
    if looked < len(members) and (best_key is None or typical * _SLACK <= best_key[0]):
        # passed over: those the bound ruled out, and those with no mean of the type, which it may not rule out
        if kept is None:  # (each member looked up: a set difference would go through all the listed)
            listed = performance.means.listed(task_type)
            best = lowest_ranked((agent for agent_id, agent in members.items() if agent_id not in listed), rank, best)
        else:
            best = lowest_ranked(kept.unlisted(performance, task_type), rank, best)
    return best


def lowest_ranked(
    agents: Iterable[AgentLoad], rank: Callable[[AgentLoad], K | None], best: tuple[AgentLoad, K] | None
) -> tuple[AgentLoad, K] | None:
    """The lowest of ``best`` and of ``(agent, rank(agent))`` over ``agents`` (a rank of None passes the agent
    over)."""
    best_key = None if best is None else best[1]
    for agent in agents:
        key = rank(agent)
        if key is not None and (best_key is None or key < best_key):
            best, best_key = (agent, key), key
    return best
