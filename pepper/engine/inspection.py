"""Read-only questions about an ``EngineState``: why a task waits, whether work is left, how agents stand.

Each runs on the engine's thread (callers elsewhere hop there through the
runtime's portal): the state changes under any other thread, and iterating its
sets and dicts from there fails or sees them half-changed. What leaves the
engine thread is a copy (``figures.EngineFigures``, candidates, plain numbers).
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Final, Protocol, TypeVar

from pepper.engine.figures import EngineCounters as EngineCounters  # also importable from here
from pepper.engine.figures import EngineFigures as EngineFigures
from pepper.engine.live import LiveTask
from pepper.engine.state import EngineState
from pepper.engine.transitions.recovery import policy_for
from pepper.model.agent import AgentSpec
from pepper.model.lease import Tally
from pepper.model.recovery import Policy, RecoveryState
from pepper.model.status import TaskError
from pepper.model.task import Task, TaskState
from pepper.scheduling.choice import Chooser, best_ranked, lowest_ranked
from pepper.scheduling.directory import AgentDirectory, Pool
from pepper.scheduling.eligibility import Route, rejection
from pepper.scheduling.explain import WaitFacts, retry_of
from pepper.scheduling.load import AgentLoad
from pepper.scheduling.performance import Performance, ScoreParts
from pepper.scheduling.selection import Candidate

T = TypeVar("T")
#: How ``selection.rank_key`` ranks an agent: projected finish, minus its score, utilisation, id.
_RankKey = tuple[float, float, float, str]


class Waiting(Protocol):
    """A task as the waiting facts read it: a ``LiveTask`` (memory) or a ``TaskRecord`` (the store)."""

    @property
    def task(self) -> Task: ...
    @property
    def state(self) -> TaskState: ...
    @property
    def next_attempt_at(self) -> float | None: ...
    @property
    def failures(self) -> int: ...
    @property
    def error(self) -> TaskError | None: ...
    @property
    def parked_at(self) -> float | None: ...
    @property
    def placement(self) -> str | None: ...
    @property
    def recovery(self) -> RecoveryState: ...
    @property
    def agent_id(self) -> str | None: ...


def facts_of(
    t: Waiting, now: float, dependencies: Mapping[str, TaskState | None], agents: Sequence[tuple[AgentSpec, int]],
    ahead: int, *, agent_notes: Mapping[str, str] | None = None, accepting: bool = True,
    resources_short: Mapping[str, float] | None = None, resources_where: str | None = None,
    policy: Policy | None = None,
) -> WaitFacts:  # fmt: skip
    """What ``scheduling.explain`` needs to say why ``t`` waits, from what its holder (an engine's memory or
    the store) knows: its dependencies' states, the agents with their running counts, the tasks ahead of it,
    the recovery policy it follows (None: its own, else its agent's if one of ``agents``)."""
    if policy is None:
        policy = t.task.policy or next((a.recovery for a, _ in agents if a.agent_id == t.agent_id), None)
    return WaitFacts(
        task=t.task,
        state=t.state,
        now=now,
        dependency_states=dependencies,
        parked_dependencies=frozenset(d for d, s in dependencies.items() if s is TaskState.PARKED),
        agents=agents,
        agent_notes=agent_notes or {},
        ahead=ahead,
        next_attempt_at=t.next_attempt_at,
        failures=t.failures,
        retry_of=retry_of(t.recovery, policy) if t.next_attempt_at is not None else None,
        last_error=t.error,
        parked_at=t.parked_at,
        accepting=accepting,
        pinned=t.placement or t.task.agent,
        resources_short=resources_short or {},
        resources_where=resources_where,
    )


def wait_facts(state: EngineState, task_id: str, now: float) -> WaitFacts | None:
    """The waiting facts of ``task_id`` as the engine's memory knows them (None if not in memory)."""
    t = state.tasks.get(task_id)
    if t is None:
        return None
    deps = {}
    for dep in t.task.dependencies:
        d = state.tasks.get(dep)
        # Not in memory and nobody awaits it: it finished and was trimmed.
        deps[dep] = d.state if d is not None else (None if dep in state.awaiting else TaskState.COMPLETED)
    short, where = _resource_shortfall(state, t)
    pinned = t.placement or t.task.agent
    elsewhere = [state.peers[pinned]] if pinned in state.peers else []  # placed on another worker's agent
    return facts_of(
        t, now, deps, [(a.spec, len(a.running)) for a in state.agents.values()] + [(p, 0) for p in elsewhere],
        _ahead(state, t),
        agent_notes={a.spec.agent_id: a.status_note for a in state.agents.values() if a.status_note}
        | {p.agent_id: "runs on another worker, which takes the task when it has room" for p in elsewhere},
        accepting=state.accepting, resources_short=short, resources_where=where, policy=policy_for(state, t),
    )  # fmt: skip


def _ahead(state: EngineState, t: LiveTask) -> int:
    if not t.qseq or t.route is None:
        return 0
    return state.routing.ahead(t.route, t.qseq, t.task.priority, t.ready_at or 0.0)


def _resource_shortfall(state: EngineState, t: LiveTask) -> tuple[dict[str, float], str | None]:
    """What the least-short eligible agent lacks for ``t`` (empty if some agent has room)."""
    needs = t.task.requirements.resources
    if not needs or t.state is not TaskState.PENDING or t.route is None or not t.route.agents:
        return {}, None
    best: tuple[float, dict[str, float], str] | None = None
    for agent in t.route.agents:
        missing, where = state.resources.shortfall_where(needs, agent.spec.agent_id)
        if not missing:
            return {}, None
        size = sum(missing.values())
        if best is None or size < best[0]:
            best = (size, missing, where)
    assert best is not None
    return best[1], best[2]


def stored_shortfall(
    t: Waiting, agents: Sequence[tuple[AgentSpec, str]], seen_from: Callable[[str], tuple[dict[str, float], Tally]]
) -> tuple[dict[str, float], str | None]:
    """What the least-short of ``agents`` (spec, host) able to take ``t`` lacks, seen from its host as its engine
    sees it (``seen_from``: the pool there and what leases hold): room in its budget, else in the pool. Empty if
    one has room, or if one runs on Ray (which places its machine resources)."""
    needs = t.task.requirements.resources
    if not needs or t.state is not TaskState.PENDING:
        return {}, None
    route = Route(t.task.task_type, t.placement or t.task.agent, t.task.requirements.skills)
    best: tuple[float, dict[str, float], str] | None = None
    for spec, host in agents:
        if rejection(spec, route) is not None:
            continue
        if spec.executor == "ray":
            return {}, None
        capacity, tally = seen_from(host)
        available, where = tally.available(spec.agent_id, capacity)
        missing = needs.shortfall(available)
        if not missing:
            return {}, None
        if best is None or sum(missing.values()) < best[0]:
            best = (sum(missing.values()), missing, where)
    return ({}, None) if best is None else (best[1], best[2])


def has_local_work(state: EngineState) -> bool:
    """True while an agent here runs something, or a task an agent here could run is ready, waits for a retry,
    or waits for its delay (however long)."""
    if any(a.running for a in state.agents.values()) or state.routing.has_queued_work():
        return True
    routing = state.routing
    return any(
        t.state is TaskState.PENDING and _held_back(t) and routing.serves(t.task, t.placement, t.recovery.run_as)
        for t in state.tasks.values()
    )


def _held_back(t: LiveTask) -> bool:
    """``t`` waits for a retry, or for its delay (it is not queued, though no dependency or person holds it)."""
    if t.next_attempt_at is not None:
        return True
    return t.task.not_before is not None and not t.qseq and not t.unmet and t.parked_at is None


# -- agents as the selector and the balancer see them -------------------------------------


class _Index:
    """Kept per engine state to read its agents, each part replaced whole: the directory (for the agents'
    version) and a reader's performance, chooser and free resources (for the state's ``changes`` count)."""

    __slots__ = ("built", "reader")

    def __init__(self) -> None:
        self.built: tuple[int, AgentDirectory] | None = None
        self.reader: tuple[int, Performance, Chooser, Callable[[str], Mapping[str, float]]] | None = None


_indexes: weakref.WeakKeyDictionary[EngineState, _Index] = weakref.WeakKeyDictionary()


def directory(state: EngineState) -> AgentDirectory:
    """The state's agents indexed by type and skill (rebuilt, on the engine's thread, when agents come or go)."""
    index = _indexes.get(state) or _indexes.setdefault(state, _Index())
    built = index.built
    if built is not None and built[0] == state.routing.version:
        return built[1]
    agents = AgentDirectory(list(state.agents.values()))
    index.built = (state.routing.version, agents)
    return agents


class AgentsView:
    """The agents as the selector and the balancer see them at one moment, whichever source they come from:
    an engine's live state (``live_agents``; use it on the engine's thread only) or the database
    (``stored.stored_agents``). One rule for an agent's standing, fed by either."""

    __slots__ = ("_agents", "_queued", "_room", "chooser", "now", "performance")

    def __init__(
        self, agents: AgentDirectory, performance: Performance, chooser: Chooser, now: float,
        queued: Callable[[AgentLoad], float], room: Callable[[str], Mapping[str, float]] | None = None,
    ) -> None:  # fmt: skip
        self._agents = agents
        self.performance = performance
        self.chooser = chooser
        self.now = now
        self._queued = queued
        self._room = room  # free pool resources of an agent; None where they are not known

    def directory(self) -> AgentDirectory:
        return self._agents

    def candidate(self, agent: AgentLoad, task_type: str, resources: bool = False) -> Candidate:
        """One agent's standing for a task of ``task_type``: load, score, estimate, when it is free."""
        agent_id = agent.spec.agent_id
        performance, now = self.performance, self.now
        estimate, expected, score = performance.standing(agent_id, task_type, now)
        return Candidate(
            agent.spec,
            agent.busy,
            0,
            score,
            estimate,
            self.chooser.available_in(agent, now),
            agent.accepting,
            performance.healthy(agent_id),
            self._room(agent_id) if resources and self._room is not None else None,
            agent.status_note,
            expected,
            performance.has_evidence(agent_id, now),
        )

    def best_matching(self, agents: Iterable[AgentLoad], task_type: str) -> Candidate | None:
        """The best of ``agents`` that takes tasks, for a request that asks only for a type and skills they
        all match (``selection.asks_only_type_and_skills``).

        Ranks by ``selection.rank_key`` without building a ``Candidate`` for every agent.
        """
        best = self._best_of(agents, task_type, None)
        return None if best is None else self.candidate(best[0], task_type)

    def best_in(self, pool: Pool, task_type: str) -> Candidate | None:
        """``best_matching`` over a directory's ``pool``."""
        known, unknown = pool.split(self.performance)
        idle = _first_idle(unknown)
        if idle is not None and not known:  # the commonest answer, without ranking it
            return self.candidate(idle, task_type)
        best = self._best_in(known, unknown, idle, task_type, pool)
        return None if best is None else self.candidate(best[0], task_type)

    def best_agent_in(self, pool: Pool, task_type: str) -> tuple[AgentLoad, float] | None:
        """The agent ``best_in`` chooses and its projected finish, without building its ``Candidate``."""
        known, unknown = pool.split(self.performance)
        best = self._best_in(known, unknown, _first_idle(unknown), task_type, pool)
        return None if best is None else (best[0], best[1][0])

    def _best_in(
        self,
        known: Mapping[str, AgentLoad],
        unknown: Sequence[AgentLoad],
        idle: AgentLoad | None,
        task_type: str,
        pool: Pool,
    ) -> tuple[AgentLoad, _RankKey] | None:
        """The best of a pool's agents with its rank key. Of those without a performance record (``unknown``),
        only the first idle one by id (``idle``) is looked at, if there is one: they all expect the same time
        and score, so it ranks before every other of them (one that runs tasks is more loaded, or later, or
        both). Those with one (``known``, by id) are looked at as ``best_ranked`` says when there are many (a
        projected finish is never below the agent's estimate; ``pool`` keeps what the walk can reuse)."""
        best = self._best_of(unknown if idle is None else (idle,), task_type, None)
        return best_ranked(self.performance, known, task_type, self.now, lambda a: self._rank(a, task_type), best, pool)

    def _best_of(
        self, agents: Iterable[AgentLoad], task_type: str, best: tuple[AgentLoad, _RankKey] | None
    ) -> tuple[AgentLoad, _RankKey] | None:
        """The lowest-ranked of ``best`` and ``agents`` that take tasks, with its rank key."""
        return lowest_ranked(agents, lambda agent: self._rank(agent, task_type), best)

    def _rank(self, agent: AgentLoad, task_type: str) -> _RankKey | None:
        """The rank key of ``agent`` (``selection.rank_key``), None if it takes no tasks."""
        if not agent.accepting:
            return None
        spec = agent.spec
        running = agent.busy
        _estimate, expected, score = self.performance.standing(spec.agent_id, task_type, self.now)
        wait = 0.0 if running < spec.capacity else self.chooser.available_in(agent, self.now)
        return (wait + expected, -score, running / spec.capacity, spec.agent_id)

    def parts(self, agent_id: str) -> ScoreParts:
        """The parts of ``agent_id``'s score, as its ranking used them (reused for a second, see
        ``Performance.cached_parts``)."""
        return self.performance.cached_parts(agent_id, self.now)

    def expected(self, agent_id: str, task_type: str) -> float:
        return self.performance.expected_time(agent_id, task_type, self.now)

    def queued(self, agent: AgentLoad) -> float:
        """The agent's share of the ready tasks (shared ones counted in part)."""
        return self._queued(agent)


def _first_idle(agents: Iterable[AgentLoad]) -> AgentLoad | None:
    """The first of ``agents`` that takes tasks and runs none (a slot held by a call that outlived its attempt
    is taken)."""
    for agent in agents:
        if agent.accepting and not agent.busy:
            return agent
    return None


def live_agents(state: EngineState, now: float) -> AgentsView:
    """The agents of an engine state as the selector and the balancer see them (on the engine's thread)."""
    resources = state.resources
    return AgentsView(directory(state), state.performance, state.chooser, now, state.routing.queued_share,
                      lambda agent_id: resources.available(agent_id)[0])  # fmt: skip


#: What ``read_still`` answers when the state moved while it read: ask again on the engine's thread.
MOVED: Final = object()
#: How often ``read_still`` reads again after the state moved, before it gives up.
_READS = 3


def still_agents(state: EngineState, now: float) -> AgentsView | None:
    """The live agents as a reader on another thread than the engine's may see them: it reads the state and
    its caches but writes nothing the engine reads. None while the index of the current agents is not built
    (the engine's thread builds it, on the next read there)."""
    index = _indexes.get(state)
    if index is None:
        return None
    built = index.built
    if built is None or built[0] != state.routing.version:
        return None
    changes = state.changes
    reader = index.reader
    if reader is None or reader[0] != changes:  # what a reader worked out holds while the state holds still
        performance = state.performance.reader()
        resources = state.resources
        reader = (changes, performance, Chooser(performance, state.running_info),
                  lambda agent_id: resources.available(agent_id)[0])  # fmt: skip
        index.reader = reader
    return AgentsView(built[1], reader[1], reader[2], now, state.routing.queued_share, reader[3])


def read_still(state: EngineState, now: float, question: Callable[[AgentsView], T]) -> T | object:
    """``question`` over the live agents, asked from another thread without stopping the engine's: asked
    while no event is being handled, and answered only if none was handled meanwhile (``EngineState.changes``
    did not move), so the answer is the one the engine's thread would give; else ``MOVED``. An error
    ``question`` raises is its answer only if the state held still too (else it may come of a half-made
    change, and the question is asked again)."""
    for _ in range(_READS):
        before = state.changes
        if before & 1:  # an event is being handled right now
            return MOVED
        view = still_agents(state, now)
        if view is None:
            return MOVED
        try:
            answer = question(view)
        except Exception:
            if state.changes == before:
                raise
            continue
        if state.changes == before:
            return answer
    return MOVED


def candidate(state: EngineState, agent: AgentLoad, task_type: str, now: float, resources: bool = False) -> Candidate:
    """One agent's standing for a task of ``task_type`` (``AgentsView.candidate`` over the live state)."""
    return live_agents(state, now).candidate(agent, task_type, resources)


def best_matching(state: EngineState, agents: Iterable[AgentLoad], task_type: str, now: float) -> Candidate | None:
    """``AgentsView.best_matching`` over the live state."""
    return live_agents(state, now).best_matching(agents, task_type)
