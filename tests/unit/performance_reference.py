"""The performance model as it was before its sums were updated in place: what the current one must match."""

from __future__ import annotations

import heapq
from dataclasses import dataclass

DEFAULT_DURATION = 1.0
#: Weights of delivery (success x timeliness) and rating, when both are known.
WEIGHTS = (0.55, 0.45)
SUCCESS_PRIOR, SUCCESS_STRENGTH = 0.75, 0.5
#: The score of an agent with no evidence yet (it is tried, and no minimum score filters it out).
NEUTRAL_SCORE = 0.75
#: Less decayed evidence than this (results and ratings, in observations) counts as none.
EVIDENCE_FLOOR = 0.01
UNHEALTHY_FACTOR = 0.5
MIN_SCORE = 0.05  # keeps expected times finite for the worst agents


class Decayed:
    """A sum whose terms halve every ``half_life`` seconds."""

    __slots__ = ("at", "half_life", "value")

    def __init__(self, half_life: float) -> None:
        self.half_life = half_life
        self.value = 0.0
        self.at = 0.0

    def add(self, amount: float, at: float) -> None:
        if at >= self.at:
            self.value = self.read(at) + amount
            self.at = at
        else:  # an older observation arriving late counts as old as it is
            self.value += amount * 0.5 ** ((self.at - at) / self.half_life)

    def read(self, now: float) -> float:
        if self.value == 0.0 or now <= self.at:
            return self.value
        decay: float = 0.5 ** ((now - self.at) / self.half_life)  # float ** float is typed Any
        return self.value * decay


class _Mean:
    """A decayed mean: decayed sum of values over decayed count."""

    __slots__ = ("count", "total")

    def __init__(self, half_life: float) -> None:
        self.total = Decayed(half_life)
        self.count = Decayed(half_life)

    def add(self, value: float, at: float) -> None:
        self.total.add(value, at)
        self.count.add(1.0, at)

    def read(self, now: float) -> float | None:
        """The mean: the same at any time (both sums decay alike) until its evidence fades away (None)."""
        if self.count.read(now) <= 1e-9:
            return None
        return self.total.value / self.count.value  # total and count always share their last update


class _AgentRecord:
    __slots__ = ("durations", "healthy", "ok", "rating_count", "rating_total", "seen", "types")

    def __init__(self, half_life: float) -> None:
        self.ok = Decayed(half_life)
        self.seen = Decayed(half_life)
        self.rating_total = Decayed(half_life)
        self.rating_count = Decayed(half_life)
        self.durations: dict[str, _Mean] = {}
        self.types: dict[str, Decayed] = {}  # observation weight per task type
        self.healthy = True


@dataclass(frozen=True, slots=True)
class ScoreParts:
    """The score and what it is made of."""

    score: float
    success: float
    #: None: no other agent ran its task types, so there is nothing to compare its durations with.
    timeliness: float | None
    #: None: never rated.
    rating: float | None
    healthy: bool
    observations: float
    ratings: float = 0.0

    @property
    def evidence(self) -> bool:
        """False for an agent with no results and no ratings (yet, or any more): its score is a guess."""
        return self.observations + self.ratings >= EVIDENCE_FLOOR


class _Overlay(dict):  # type: ignore[type-arg]
    """A cache seen through: a key not written here is read from ``base``; writes stay here."""

    __slots__ = ("_base",)

    def __init__(self, base: dict) -> None:  # type: ignore[type-arg]
        super().__init__()
        self._base = base

    def get(self, key: object, default: object = None) -> object:
        found = dict.get(self, key, _MISSING)
        return self._base.get(key, default) if found is _MISSING else found


_MISSING = object()


class Performance:
    """Learned performance of every agent; time is always passed in."""

    #: Scores move slowly (decay over ``half_life``); one computed is reused this long unless new results arrive.
    SCORE_REUSE = 1.0

    def __init__(self, half_life: float = 3600.0) -> None:
        self.half_life = half_life
        self._agents: dict[str, _AgentRecord] = {}
        self._types: dict[str, _Mean] = {}
        self._scores: dict[str, tuple[float, ScoreParts]] = {}  # agent -> (computed at, parts)
        self._type_versions: dict[str, int] = {}  # grows when a type's durations change
        #: Off when what the agents can do is known and must not drift (a simulation in virtual time).
        self.learning = True
        # (agent, type) -> (at, type version, score entry, estimate, expected): what ranking an agent needs.
        self._ranked: dict[tuple[str, str], tuple[float, int, tuple[float, ScoreParts], float, float]] = {}
        # type -> agent -> its mean duration, and a heap of (mean, agent) with stale entries: the shortest.
        self._means: dict[str, dict[str, float]] = {}
        self._shortest: dict[str, list[tuple[float, str]]] = {}

    def reader(self) -> Performance:
        """This model as a reader on another thread than its owner's may use it: it reads the owner's caches
        but keeps what it works out to itself, so it never writes what the owner reads. Ask, never ``record``
        (nor ``estimate_floor``, which prunes a heap it shares with its owner)."""
        view = Performance.__new__(Performance)
        view.__dict__.update(self.__dict__)
        view._scores = _Overlay(self._scores)
        view._ranked = _Overlay(self._ranked)
        view.learning = False
        return view

    def _agent(self, agent_id: str) -> _AgentRecord:
        record = self._agents.get(agent_id)
        if record is None:
            record = self._agents[agent_id] = _AgentRecord(self.half_life)
        return record

    def record(self, agent_id: str, task_type: str, ok: bool, duration: float | None, at: float) -> None:
        """One finished attempt (ignored once ``learning`` is off)."""
        if not self.learning:
            return
        self._scores.pop(agent_id, None)
        if ok:  # the type's mean moves too, so every estimate of this type may change
            self._type_versions[task_type] = self._type_versions.get(task_type, 0) + 1
        agent = self._agent(agent_id)
        agent.seen.add(1.0, at)
        if ok:
            agent.ok.add(1.0, at)
        weight = agent.types.get(task_type)
        if weight is None:
            weight = agent.types[task_type] = Decayed(self.half_life)
        weight.add(1.0, at)
        if ok and duration is not None and duration >= 0:
            mean = agent.durations.get(task_type)
            if mean is None:
                mean = agent.durations[task_type] = _Mean(self.half_life)
            mean.add(duration, at)
            self._note_mean(agent_id, task_type, mean)
            overall = self._types.get(task_type)
            if overall is None:
                overall = self._types[task_type] = _Mean(self.half_life)
            overall.add(duration, at)

    def _note_mean(self, agent_id: str, task_type: str, mean: _Mean) -> None:
        value = mean.total.value / mean.count.value
        means = self._means.setdefault(task_type, {})
        means[agent_id] = value
        heap = self._shortest.setdefault(task_type, [])
        if len(heap) > 2 * len(means) + 64:  # drop the stale entries now and then
            heap[:] = [(v, a) for a, v in means.items()]
            heapq.heapify(heap)
        else:
            heapq.heappush(heap, (value, agent_id))

    def known_agents(self) -> int:
        """How many agents have a record (grows by one each time an agent gets its first result or rating)."""
        return len(self._agents)

    def unknown_expected(self, task_type: str, now: float) -> float:
        """``expected_time`` of ``task_type`` on any agent with no record (``known`` is False): the same for all."""
        overall = self._types.get(task_type)
        value = overall.read(now) if overall is not None else None
        estimate = value if value is not None else DEFAULT_DURATION
        return _expected(estimate, ScoreParts(NEUTRAL_SCORE, SUCCESS_PRIOR, None, None, True, 0.0))

    def estimate_floor(self, task_type: str, now: float) -> float:
        """No agent's ``estimate`` of ``task_type`` is below this (nor, so, its ``expected_time``)."""
        overall = self._types.get(task_type)
        value = overall.read(now) if overall is not None else None
        floor = value if value is not None else DEFAULT_DURATION
        heap, means = self._shortest.get(task_type), self._means.get(task_type, {})
        while heap and means.get(heap[0][1]) != heap[0][0]:
            heapq.heappop(heap)  # a mean since replaced
        return min(floor, heap[0][0]) if heap else floor

    def rate(self, agent_id: str, rating: int, at: float) -> None:
        """A rating from 1 (poor) to 5 (excellent)."""
        self._scores.pop(agent_id, None)
        agent = self._agent(agent_id)
        agent.rating_total.add((rating - 1) / 4.0, at)
        agent.rating_count.add(1.0, at)

    def set_health(self, agent_id: str, healthy: bool) -> None:
        self._scores.pop(agent_id, None)
        self._agent(agent_id).healthy = healthy

    def estimate(self, agent_id: str, task_type: str, now: float) -> float:
        """Expected duration (seconds) of a task of ``task_type`` on ``agent_id`` (worked out at every call: it
        was once kept for a second, which let a mean that had faded away be read)."""
        return self._estimate(agent_id, task_type, now)

    def _estimate(self, agent_id: str, task_type: str, now: float) -> float:
        agent = self._agents.get(agent_id)
        if agent is not None:
            mean = agent.durations.get(task_type)
            if mean is not None:
                value = mean.read(now)
                if value is not None:
                    return value
        overall = self._types.get(task_type)
        value = overall.read(now) if overall is not None else None
        return value if value is not None else DEFAULT_DURATION

    def type_estimate(self, task_type: str, now: float) -> float | None:
        """The decayed mean duration of successful attempts of ``task_type`` on any agent (None: never seen)."""
        overall = self._types.get(task_type)
        return overall.read(now) if overall is not None else None

    def parts(self, agent_id: str, now: float) -> ScoreParts:
        agent = self._agents.get(agent_id)
        if agent is None:
            return ScoreParts(NEUTRAL_SCORE, SUCCESS_PRIOR, None, None, True, 0.0)
        seen = agent.seen.read(now)
        success = min(1.0, (agent.ok.read(now) + SUCCESS_PRIOR * SUCCESS_STRENGTH) / (seen + SUCCESS_STRENGTH))
        timeliness = self._timeliness(agent, now)
        count = agent.rating_count.read(now)
        rating = agent.rating_total.read(now) / count if count >= EVIDENCE_FLOOR else None
        healthy = agent.healthy
        if seen + count < EVIDENCE_FLOOR:  # nothing known (or nothing left after decay): neutral
            score = NEUTRAL_SCORE
        else:
            delivery = success * (timeliness if timeliness is not None else 1.0)
            if rating is None:
                score = delivery
            else:
                wd, wr = WEIGHTS if seen >= EVIDENCE_FLOOR else (0.0, 1.0)  # rated, but its results have faded
                score = (wd * delivery + wr * rating) / (wd + wr)
        if not healthy:
            score *= UNHEALTHY_FACTOR
        return ScoreParts(min(1.0, max(0.0, score)), success, timeliness, rating, healthy, seen, count)

    def cached_parts(self, agent_id: str, now: float) -> ScoreParts:
        """``parts``, reused for ``SCORE_REUSE`` seconds unless new results arrive."""
        cached = self._scores.get(agent_id)
        if cached is not None and 0.0 <= now - cached[0] < self.SCORE_REUSE:
            return cached[1]
        parts = self.parts(agent_id, now)
        self._scores[agent_id] = (now, parts)
        return parts

    def score(self, agent_id: str, now: float) -> float:
        return self.cached_parts(agent_id, now).score

    def has_evidence(self, agent_id: str, now: float) -> bool:
        """True when the agent's score rests on results or ratings, not on the neutral guess."""
        return self.cached_parts(agent_id, now).evidence

    def healthy(self, agent_id: str) -> bool:
        agent = self._agents.get(agent_id)
        return agent is None or agent.healthy

    def known(self, agent_id: str) -> bool:
        """True once the agent has any result or rating."""
        return agent_id in self._agents

    def _timeliness(self, agent: _AgentRecord, now: float) -> float | None:
        """How its durations compare with the other agents' on the same task types; None without peers."""
        weighted = total = 0.0
        for task_type, mean in agent.durations.items():
            overall = self._types[task_type]
            all_count, my_count = overall.count.read(now), mean.count.read(now)
            peers = all_count - my_count  # decayed sums are linear: everyone's minus its own
            if peers < EVIDENCE_FLOOR or my_count < EVIDENCE_FLOOR:
                continue
            theirs = max(0.0, overall.total.read(now) - mean.total.read(now)) / peers
            mine = mean.total.read(now) / my_count
            ratio = 1.0 if theirs + mine <= 0 else min(1.0, 2.0 * theirs / (theirs + mine))
            weight = agent.types[task_type].read(now)
            weighted += weight * ratio
            total += weight
        return weighted / total if total > 0 else None

    def estimate_and_expected(self, agent_id: str, task_type: str, now: float) -> tuple[float, float]:
        """``estimate`` and ``expected_time`` together (one lookup of each)."""
        estimate = self.estimate(agent_id, task_type, now)
        return estimate, _expected(estimate, self.cached_parts(agent_id, now))

    def standing(self, agent_id: str, task_type: str, now: float) -> tuple[float, float, float]:
        """``(estimate, expected_time, score)`` of ``agent_id`` for ``task_type``, from one cache lookup
        while nothing about the agent or the type changed (selection asks this of many agents per call)."""
        key = (agent_id, task_type)
        cached = self._ranked.get(key)
        if (
            cached is not None and 0.0 <= now - cached[0] < self.SCORE_REUSE
            and cached[1] == self._type_versions.get(task_type, 0) and cached[2] is self._scores.get(agent_id)
        ):  # fmt: skip
            return cached[3], cached[4], cached[2][1].score
        version = self._type_versions.get(task_type, 0)
        estimate = self.estimate(agent_id, task_type, now)
        parts = self.cached_parts(agent_id, now)
        expected = _expected(estimate, parts)
        entry = self._scores.get(agent_id)
        if entry is not None and entry[1] is parts:  # else new results arrived meanwhile: do not keep it
            self._ranked[key] = (now, version, entry, estimate, expected)
        return estimate, expected, parts.score

    def expected_time(self, agent_id: str, task_type: str, now: float) -> float:
        """How long a task is expected to take on this agent, retries and quality counted.

        ``estimate / success`` is the expected time until an attempt succeeds (one
        succeeding with probability p takes 1/p attempts on average); dividing by
        ``(1 + score) / 2`` lets ratings and timeliness weigh in, more gently.
        """
        return _expected(self.estimate(agent_id, task_type, now), self.cached_parts(agent_id, now))


def _expected(estimate: float, parts: ScoreParts) -> float:
    return estimate / (max(parts.success, MIN_SCORE) * (1.0 + parts.score) / 2.0)
