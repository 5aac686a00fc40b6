"""An agent as the scheduler sees it: its spec and what it is running now."""

from __future__ import annotations

from bisect import bisect_left, insort

from pepper.model.agent import AgentSpec


class AgentLoad:
    """Live bookkeeping for one agent: the tasks it runs, whether it takes more."""

    __slots__ = ("_since", "accepting", "held", "note", "order", "running", "shared", "spec", "starts")

    def __init__(self, spec: AgentSpec, order: int) -> None:
        self.spec = spec
        self.running: set[str] = set()
        #: When each running task started, per task type, in order (see ``take``): what ``Chooser.available_in``
        #: reads without looking at every running task.
        self.starts: dict[str, list[float]] = {}
        self._since: dict[str, tuple[str, float]] = {}
        self.order = order
        self.accepting = True
        self.note: str | None = None  # why it takes no tasks, when it does not
        self.shared = False  # does it serve a route together with other agents?
        #: ``(task id, attempt)`` of calls that outlived their attempt (a timeout or cancel a thread cannot
        #: obey) and still run: each keeps its slot until it returns.
        self.held: set[tuple[str, int]] = set()

    @property
    def agent_id(self) -> str:
        return self.spec.agent_id

    @property
    def free(self) -> int:
        """Slots left before the agent reaches its capacity (calls still running after their attempt count)."""
        return self.spec.capacity - len(self.running) - len(self.held) if self.accepting else 0

    @property
    def busy(self) -> int:
        """Slots taken: the tasks it runs, and the calls that outlived their attempt and still run."""
        return len(self.running) + len(self.held)

    @property
    def utilisation(self) -> float:
        return self.busy / self.spec.capacity

    @property
    def status_note(self) -> str | None:
        """Why it takes no tasks, or fewer than its capacity (None: nothing to say)."""
        if self.note or not self.held:
            return self.note
        return (
            f"has {len(self.held)} of its {self.spec.capacity} slot(s) held by calls that outlived their attempt "
            "(a timeout or cancel a thread cannot obey) and still run; each is freed when its call returns"
        )

    def running_since(self) -> dict[str, tuple[str, float]]:
        """Each task it runs, by id: its task type and since when (as ``take`` was told)."""
        return dict(self._since)

    def take(self, task_id: str, task_type: str, started_at: float) -> None:
        """``task_id`` (of ``task_type``) runs here since ``started_at``."""
        self.drop(task_id)
        self.running.add(task_id)
        self._since[task_id] = (task_type, started_at)
        insort(self.starts.setdefault(task_type, []), started_at)

    def drop(self, task_id: str) -> None:
        """``task_id`` no longer runs here."""
        self.running.discard(task_id)
        since = self._since.pop(task_id, None)
        if since is not None:
            starts = self.starts[since[0]]
            del starts[bisect_left(starts, since[1])]
            if not starts:
                del self.starts[since[0]]
