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

from collections.abc import Callable, Iterable, Sequence

from pepper.scheduling.load import AgentLoad
from pepper.scheduling.performance import Performance

#: Another agent must be projected this much faster before a free agent leaves it a task.
MARGIN = 0.15

RunningInfo = Callable[[AgentLoad], Iterable[tuple[float, str]]]  # (started_at, task_type) of running tasks
Usable = Callable[[AgentLoad], bool]


class Chooser:
    """Projected-finish decisions, from learned performance and what agents are running."""

    def __init__(self, performance: Performance, running: RunningInfo) -> None:
        self.performance = performance
        self._running = running

    def available_in(self, agent: AgentLoad, now: float) -> float:
        """Seconds until ``agent`` has a free slot (an overdue task is assumed to take as long again)."""
        if agent.free > 0:
            return 0.0
        soonest = float("inf")
        for started_at, task_type in self._running(agent):
            elapsed = max(0.0, now - started_at)
            estimate = self.performance.estimate(agent.spec.agent_id, task_type, now)
            soonest = min(soonest, estimate - elapsed if estimate > elapsed else elapsed)
        return soonest if soonest != float("inf") else 0.0

    def projected_finish(self, agent: AgentLoad, task_type: str, now: float) -> float:
        return self.available_in(agent, now) + self.performance.expected_time(agent.spec.agent_id, task_type, now)

    def best_free(
        self, agents: Sequence[AgentLoad], task_type: str, now: float, usable: Usable | None = None
    ) -> AgentLoad | None:
        """The free agent where the task is expected to finish first."""
        free = [a for a in agents if a.free > 0 and (usable is None or usable(a))]
        if len(free) <= 1:
            return free[0] if free else None
        expected = self.performance.expected_time
        return min(free, key=lambda a: (expected(a.spec.agent_id, task_type, now), a.utilisation, a.order))

    def defer(
        self,
        agent: AgentLoad,
        agents: Sequence[AgentLoad],
        task_type: str,
        now: float,
        usable: Usable | None = None,
        backlog: int = 1,
    ) -> float | None:
        """If a busy agent would finish the task clearly sooner than ``agent`` starting it now, when to look again.

        ``backlog`` is how many ready tasks the route holds (this one included): a busy agent is only worth
        waiting for if it would get through all of them before ``agent`` finished this one.
        """
        if len(agents) == 1:
            return None
        mine = self.performance.expected_time(agent.spec.agent_id, task_type, now)
        for other in agents:
            if other is agent or other.free > 0 or not other.accepting or (usable is not None and not usable(other)):
                continue
            theirs = self.performance.expected_time(other.spec.agent_id, task_type, now)
            through = self.available_in(other, now) + theirs * max(1, backlog) / other.spec.capacity
            if through < mine * (1 - MARGIN):
                return now + mine
        return None
