"""An agent as the scheduler sees it: its spec and what it is running now."""

from __future__ import annotations

from collections.abc import Iterable

from pepper.model.agent import AgentSpec


class AgentLoad:
    """Live bookkeeping for one agent: the tasks it runs, whether it takes more."""

    __slots__ = ("accepting", "note", "order", "running", "shared", "spec")

    def __init__(self, spec: AgentSpec, order: int) -> None:
        self.spec = spec
        self.running: set[str] = set()
        self.order = order
        self.accepting = True
        self.note: str | None = None  # why it takes no tasks, when it does not
        self.shared = False  # does it serve a route together with other agents?

    @property
    def agent_id(self) -> str:
        return self.spec.agent_id

    @property
    def free(self) -> int:
        """Slots left before the agent reaches its capacity."""
        return self.spec.capacity - len(self.running) if self.accepting else 0

    @property
    def utilisation(self) -> float:
        return len(self.running) / self.spec.capacity


def least_loaded(candidates: Iterable[AgentLoad]) -> AgentLoad | None:
    """The agent with a free slot and the lowest utilisation (then fewest running, then oldest)."""
    best: AgentLoad | None = None
    best_key: tuple[float, int, int] | None = None
    for agent in candidates:
        running = len(agent.running)
        capacity = agent.spec.capacity
        if running >= capacity or not agent.accepting:
            continue
        key = (running / capacity, running, agent.order)
        if best_key is None or key < best_key:
            best, best_key = agent, key
    return best
