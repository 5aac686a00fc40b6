"""``EngineState``: the one owner of scheduling state. Events in, actions out.

Pure: no I/O, no clock (every event carries its time), no threads. The async
shell (``engine.shell``) feeds it events and carries out the actions; a test or
a simulation can do the same with a manual clock.

The state is one plain object; what each event does is a function in
``engine.transitions`` (one module per concern), chosen by the event's type.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from pepper.engine.live import LiveTask
from pepper.engine.transitions import (
    admission,
    adoption,
    agents,
    cancellation,
    outcomes,
    pruning,
    recovery,
    rerun,
    timers,
)
from pepper.engine.transitions.agents import POOL_EXPIRY
from pepper.model import events as ev
from pepper.model.agent import AgentSpec
from pepper.model.recovery import Policy
from pepper.model.retry import Backoff
from pepper.model.task import TaskState
from pepper.resources.view import ResourceView
from pepper.scheduling.choice import Chooser
from pepper.scheduling.load import AgentLoad
from pepper.scheduling.performance import Performance
from pepper.scheduling.routing import Routing

__all__ = ["POOL_EXPIRY", "EngineState"]


class EngineState:
    """Tasks, agents and ready queues of one engine; changed only by ``handle``.

    ``worker_id`` identifies this engine's process: tasks it runs are stored
    with that owner. ``ageing`` is priority points gained per minute of waiting.
    """

    def __init__(
        self,
        worker_id: str,
        *,
        ageing: float = 10.0,
        backoff: Backoff | None = None,
        recovery: Policy | None = None,
        keep_finished: int = 10_000,
        score_half_life: float = 3600.0,
    ) -> None:
        self.worker_id = worker_id
        self.tasks: dict[str, LiveTask] = {}
        self.awaiting: dict[str, list[str]] = {}  # id not seen yet -> tasks depending on it
        self.performance = Performance(score_half_life)
        self.routing = Routing(self.is_queued, ageing, self.performance)
        self.agents = self.routing.agents
        #: Calls that outlived their attempt, of agents unregistered since, by agent id: an agent registered
        #: again under that id gets their slots back taken until they return.
        self.held_away: dict[str, set[tuple[str, int]]] = {}
        #: Attempts still running of agents unregistered since, by agent id, then task id: (attempt, task type,
        #: started at). An agent registered again under that id counts those still running against its capacity.
        self.running_away: dict[str, dict[str, tuple[int, str, float]]] = {}
        self.peers: dict[str, AgentSpec] = {}  # agents of other workers: not run here, but tasks may be moved there
        self.peers_known = False
        self.takers: dict[str, tuple[str, ...]] = {}  # task type ("*": any) -> other live workers whose agents take it
        self.resources = ResourceView(worker_id)
        self.chooser = Chooser(self.performance, self.running_info)
        self.resourceful = False  # has any task asked for resources? (keeps the common path lean)
        self.accepting = True
        self.backoff = backoff or Backoff()
        self.default_recovery = None if recovery is None else Policy.parse(recovery)
        self.keep_finished = keep_finished
        self.finished: deque[str] = deque()  # final tasks, oldest first: forgotten beyond ``keep_finished``
        #: Cancels and failures decided here and not stored yet, by task id: (the state the task ended from, the
        #: cancel's reason; None for a failure). What depends on such a task is cancelled only once its end is
        #: stored (``EndsStored``); a cancel whose write loses to another process's row is decided again on that
        #: row (``adoption.take``), a failure that loses was not the task's end.
        self.cascades_unstored: dict[str, tuple[TaskState, str | None]] = {}
        #: Grows by one as ``handle`` begins and again as it ends (odd: the state is changing). A reader on
        #: another thread keeps an answer only if this did not move while it read (``inspection.read_still``).
        self.changes = 0

    def handle(self, event: ev.Event) -> list[ev.Action]:
        """Apply one event; return what the shell must do, in order."""
        self.changes += 1
        try:
            return _HANDLERS[type(event)](self, event)
        finally:
            self.changes += 1

    def is_queued(self, task_id: str, seq: int) -> bool:
        """Whether a queue ticket ``seq`` of ``task_id`` is still the task's own (else it is stale)."""
        t = self.tasks.get(task_id)
        return t is not None and t.qseq == seq

    def running_info(self, agent: AgentLoad) -> Mapping[str, Sequence[float]]:
        """When the tasks running on ``agent`` started, in order, by task type."""
        return agent.starts


def on_draining(s: EngineState, e: ev.Draining) -> list[ev.Action]:
    """Stop starting tasks (shutdown); running ones may finish."""
    s.accepting = False
    return []


def on_trim(s: EngineState, e: ev.Trim) -> list[ev.Action]:
    """Forget the oldest finished tasks beyond the memory budget (they stay in the store)."""
    actions: list[ev.Action] = []
    finished, tasks = s.finished, s.tasks
    kept: list[str] = []  # ended, but their end is not stored yet: forgotten by a later Trim
    while len(finished) > s.keep_finished:
        task_id = finished.popleft()
        t = tasks.get(task_id)
        if t is None or not t.state.is_final:
            continue
        if task_id in s.cascades_unstored:
            kept.append(task_id)
            continue
        del tasks[task_id]
        actions.append(ev.Forget(task_id, e.cause))
    finished.extendleft(reversed(kept))
    return actions


_HANDLERS: dict[type, Callable[[EngineState, Any], list[ev.Action]]] = {
    ev.TasksAdded: admission.on_added,
    ev.TasksLoaded: adoption.on_loaded,
    ev.AttemptEnded: outcomes.on_attempt_ended,
    ev.CancelRequested: cancellation.on_cancel,
    ev.EndsStored: cancellation.on_ends_stored,
    ev.CallHeld: agents.on_call_held,
    ev.CallReturned: agents.on_call_returned,
    ev.AgentAdded: agents.on_agent_added,
    ev.AgentReady: agents.on_agent_ready,
    ev.AgentRemoved: agents.on_agent_removed,
    ev.LeasesLoaded: agents.on_leases,
    ev.ClaimRefused: outcomes.on_claim_refused,
    ev.HistoryLoaded: agents.on_history,
    ev.Rated: agents.on_rated,
    ev.HealthChanged: agents.on_health,
    ev.PlacementSet: agents.on_placement,
    ev.WorkersLost: adoption.on_workers_lost,
    ev.PeersChanged: agents.on_peers,
    ev.TimerFired: timers.on_timer,
    ev.ProgressReported: outcomes.on_progress,
    ev.ErrorHandled: recovery.on_error_handled,
    ev.Replayed: recovery.on_replayed,
    ev.Dropped: recovery.on_dropped,
    ev.RunAgain: rerun.on_run_again,
    ev.WriteRefused: adoption.on_write_refused,
    ev.Draining: on_draining,
    ev.Pruned: pruning.on_pruned,
    ev.Trim: on_trim,
}
