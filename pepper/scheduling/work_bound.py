"""The least time a pool of agents needs for a body of work, ignoring dependencies. Pure.

Each task can only run on some agents (task type, skills, budget); an agent
gets through ``speed x capacity`` seconds of work per second. If work could be
split freely between the agents able to do it, the whole of it would need
``T*`` seconds, where ``T*`` is the smallest ``T`` such that a flow carrying
each task group's work to its able agents, at most ``speed x capacity x T``
into each agent, carries all of it. By the max-flow / min-cut theorem that is
the largest, over every set of agents ``G``, of the work only ``G`` can do over
``G``'s total rate (so tasks confined to a few agents, or overlapping groups of
them, are bounded correctly, not only the pool as a whole). No schedule is
shorter than ``T*``. It is found by bisection, each step one max-flow on a
graph of (task groups + agents) nodes.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping

_SOURCE, _SINK = "\0source", "\0sink"
_STEPS = 60  # bisection steps: far below any duration anyone plans in


def least_time(work: Mapping[frozenset[str], float], rate: Mapping[str, float]) -> float:
    """``T*`` for ``work`` (seconds at speed 1, by the set of agents able to do it) and ``rate`` per agent.

    Groups with no able agent are left out (they never run)."""
    groups = {group: w for group, w in work.items() if group and w > 0}
    if not groups:
        return 0.0
    total = sum(groups.values())
    low = max(w / sum(rate[a] for a in group) for group, w in groups.items())  # each group on its own agents
    high = sum(w / max(rate[a] for a in group) for group, w in groups.items())  # each group on its best agent
    if _carries(groups, rate, low, total):
        return low
    for _ in range(_STEPS):
        middle = (low + high) / 2
        if middle in (low, high):
            break
        if _carries(groups, rate, middle, total):
            high = middle
        else:
            low = middle
    return low  # not enough: every shorter time is not enough either, so ``low`` is a true lower bound


def _carries(groups: Mapping[frozenset[str], float], rate: Mapping[str, float], seconds: float, total: float) -> bool:
    """Whether the agents, ``seconds`` long, get through all of the work."""
    capacity: dict[str, dict[str, float]] = {_SOURCE: {}}
    for index, (group, w) in enumerate(groups.items()):
        node = f"\0group{index}"
        capacity[_SOURCE][node] = w
        capacity[node] = {agent: total for agent in group}
    for agent in {a for group in groups for a in group}:
        capacity.setdefault(agent, {})[_SINK] = rate[agent] * seconds
    return _max_flow(capacity) >= total * (1 - 1e-12)


def _max_flow(capacity: dict[str, dict[str, float]]) -> float:
    """Edmonds-Karp on a residual graph built from ``capacity`` (edited in place)."""
    for node, edges in list(capacity.items()):
        for other in edges:
            capacity.setdefault(other, {}).setdefault(node, 0.0)
    flow = 0.0
    while True:
        before = {_SOURCE: _SOURCE}
        queue = deque([_SOURCE])
        while queue and _SINK not in before:
            node = queue.popleft()
            for other, room in capacity[node].items():
                if room > 1e-12 and other not in before:
                    before[other] = node
                    queue.append(other)
        if _SINK not in before:
            return flow
        path = []
        node = _SINK
        while node != _SOURCE:
            path.append((before[node], node))
            node = before[node]
        pushed = min(capacity[a][b] for a, b in path)
        for a, b in path:
            capacity[a][b] -= pushed
            capacity[b][a] += pushed
        flow += pushed
