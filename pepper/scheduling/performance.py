"""What pepper learns about agents from outcomes: a performance score and duration estimates.

Every finished attempt is an observation ``(agent, task type, ok, duration, at)``;
every rating (1-5) a judgement. Older observations count less: an observation
``age`` seconds old weighs ``0.5 ** (age / half_life)``. Sums are kept already
decayed, so adding and reading are O(1).

The score, in [0, 1], is the weighted mean of the signals there is evidence for::

    score = (0.55 * delivery + 0.45 * rating) / (0.55 + 0.45)     (x 0.5 while unhealthy)
    score = delivery                                               with no rating yet

    delivery   = success * timeliness             (no other agent ran its task types: success)
    success    = (sum w*ok + 0.75 * 0.5) / (sum w + 0.5)   (at most 1)
    timeliness = weighted mean over its task types that another agent ran too of
                 min(1, 2 * d_peers / (d_peers + d_mine))
                 (1 when it is as fast as the others or faster, 0.5 when three times slower)
    rating     = sum w*(r - 1)/4 / sum w           (1/5 -> 0, 5/5 -> 1)

A missing signal (no rating; no peer to compare durations with) is left out,
never filled in with a guess, so it does not count against an agent: one that
completed every task on time scores at least 0.9 without a single rating. An
agent failing half its tasks, or rated 1/5, stays below 0.6. The only prior is
a light one on success (half an observation of 0.75), so that one result does
not decide everything and old evidence fades back towards it. An agent with no
evidence at all scores ``NEUTRAL_SCORE`` (0.75) and ``ScoreParts.evidence`` is
False: a minimum score does not filter it out (see ``selection``).

``estimate(agent, type)`` is the decayed mean duration of the agent's successful
attempts of that type, else the type's, else 1 second. Choosing agents uses
``expected_time = estimate / (success * (1 + score) / 2)``: the expected time
until a successful attempt, with ratings and timeliness weighing in more gently.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pepper.model.slots import quick_init
from pepper.scheduling.decayed import Decayed, DecayedMean
from pepper.scheduling.mean_index import MeanIndex

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


class _AgentRecord:
    __slots__ = ("durations", "healthy", "ok", "ratings", "seen", "types")

    def __init__(self, half_life: float) -> None:
        self.ok = Decayed(half_life)
        self.seen = Decayed(half_life)
        self.ratings = DecayedMean(half_life)  # of (rating - 1) / 4
        self.durations: dict[str, DecayedMean] = {}
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


#: The parts of an agent with no evidence (frozen: one serves all).
_NEUTRAL = ScoreParts(NEUTRAL_SCORE, SUCCESS_PRIOR, None, None, True, 0.0)
_new_parts = quick_init(ScoreParts)  # one each time an agent's score is worked out again: several a task


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
        self._types: dict[str, DecayedMean] = {}
        self._scores: dict[str, tuple[float, ScoreParts]] = {}  # agent -> (computed at, parts)
        self._type_versions: dict[str, int] = {}  # grows when a type's durations change
        #: Off when what the agents can do is known and must not drift (a simulation in virtual time).
        self.learning = True
        # (agent, type) -> (at, type version, score entry, estimate, expected): what ranking an agent needs.
        self._ranked: dict[tuple[str, str], tuple[float, int, tuple[float, ScoreParts], float, float]] = {}
        #: The agents of each type in order of their mean durations.
        self.means = MeanIndex()
        self._owner = True  # False for a ``reader``: it never changes ``means``

    def reader(self) -> Performance:
        """This model as a reader on another thread than its owner's may use it: it reads the owner's caches
        but keeps what it works out to itself, so it never writes what the owner reads. Ask, never ``record``
        (``fastest_first`` leaves the index it shares with its owner as it is)."""
        view = Performance.__new__(Performance)
        view.__dict__.update(self.__dict__)
        view._scores = _Overlay(self._scores)
        view._ranked = _Overlay(self._ranked)
        view.learning = False
        view._owner = False
        return view

    def _agent(self, agent_id: str) -> _AgentRecord:
        record = self._agents.get(agent_id)
        if record is None:
            record = self._agents[agent_id] = _AgentRecord(self.half_life)
        return record

    def record(self, agent_id: str, task_type: str, ok: bool, duration: float | None, at: float) -> None:
        """One finished attempt (ignored once ``learning`` is off).

        O(1): each sum it touches is decayed to ``at`` and added to, and the agent's sums last updated
        together share one decay factor."""
        if not self.learning:
            return
        self._scores.pop(agent_id, None)
        versions = self._type_versions
        if ok:  # the type's mean moves too, so every estimate of this type may change
            versions[task_type] = versions.get(task_type, 0) + 1
        agent = self._agents.get(agent_id)
        if agent is None:
            agent = self._agent(agent_id)
        weight = agent.types.get(task_type)
        if weight is None:
            weight = agent.types[task_type] = Decayed(self.half_life)
        mean: DecayedMean | None = None
        took = 0.0
        if ok and duration is not None and duration >= 0:
            took = duration
            mean = agent.durations.get(task_type)
            if mean is None:
                mean = agent.durations[task_type] = DecayedMean(self.half_life)
        seen = agent.seen
        since = seen.at
        shared = 1.0
        if at >= since:  # in order (an agent's sums are never updated after its ``seen``): decay and add
            half_life = self.half_life
            shared = 0.5 ** ((at - since) / half_life)  # of the sums last updated with ``seen``
            seen.value = seen.value * shared + 1.0
            seen.at = at
            if ok:
                counter = agent.ok
                decay: float = shared if counter.at == since else 0.5 ** ((at - counter.at) / half_life)
                counter.value = counter.value * decay + 1.0
                counter.at = at
            decay = shared if weight.at == since else 0.5 ** ((at - weight.at) / half_life)
            weight.value = weight.value * decay + 1.0
            weight.at = at
            if mean is not None:
                decay = shared if mean.at == since else 0.5 ** ((at - mean.at) / half_life)
                mean.total = mean.total * decay + took
                mean.count = mean.count * decay + 1.0
                mean.at = at
        else:  # an older observation arriving late
            seen.add(1.0, at)
            if ok:
                agent.ok.add(1.0, at)
            weight.add(1.0, at)
            if mean is not None:
                mean.add(took, at)
        if mean is not None:
            self.means.note(agent_id, task_type, mean)
            overall = self._types.get(task_type)
            if overall is None:
                overall = self._types[task_type] = DecayedMean(self.half_life)
            last = overall.at
            if at > last:
                decay = shared if last == since else 0.5 ** ((at - last) / self.half_life)
                overall.total = overall.total * decay + took
                overall.count = overall.count * decay + 1.0
                overall.at = at
            else:
                overall.add(took, at)

    def known_agents(self) -> int:
        """How many agents have a record (grows by one each time an agent gets its first result or rating)."""
        return len(self._agents)

    def unknown_expected(self, task_type: str, now: float) -> float:
        """``expected_time`` of ``task_type`` on any agent with no record (``known`` is False): the same for all."""
        overall = self._types.get(task_type)
        value = overall.read(now) if overall is not None else None
        estimate = value if value is not None else DEFAULT_DURATION
        return _expected(estimate, _NEUTRAL)

    def estimate_floor(self, task_type: str, now: float) -> float:
        """No agent's ``estimate`` of ``task_type`` is below this (nor, so, its ``expected_time``)."""
        overall = self._types.get(task_type)
        value = overall.read(now) if overall is not None else None
        floor = value if value is not None else DEFAULT_DURATION
        shortest = self.means.shortest(task_type)
        return floor if shortest is None or floor < shortest else shortest

    def fastest_first(self, task_type: str, now: float) -> tuple[Sequence[tuple[float, str]], bool]:
        """``(mean, agent)`` of the agents with a mean duration of ``task_type`` of their own, shortest first, and
        whether some of those means may have faded by ``now``. While none has, each mean is its agent's
        ``estimate``, so no expected time of the agent is below it (the others' estimate is ``type_estimate``,
        else ``DEFAULT_DURATION``); an agent whose mean faded has the type's estimate instead."""
        agents = self._agents
        return self.means.in_order(
            task_type, now, lambda agent_id: agents[agent_id].durations[task_type], owner=self._owner
        )

    def rate(self, agent_id: str, rating: int, at: float) -> None:
        """A rating from 1 (poor) to 5 (excellent)."""
        self._scores.pop(agent_id, None)
        agent = self._agent(agent_id)
        agent.ratings.add((rating - 1) / 4.0, at)

    def set_health(self, agent_id: str, healthy: bool) -> None:
        self._scores.pop(agent_id, None)
        self._agent(agent_id).healthy = healthy

    def estimate(self, agent_id: str, task_type: str, now: float) -> float:
        """Expected duration (seconds) of a task of ``task_type`` on ``agent_id``: its own decayed mean, else
        the type's, else ``DEFAULT_DURATION``. O(1), and read as it is (a mean moves only when a result comes)."""
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
            return _NEUTRAL
        seen = agent.seen.read(now)
        success = _success(agent, seen, now)
        timeliness = self._timeliness(agent, now)
        rated, count = agent.ratings.sums(now)
        rating = rated / count if count >= EVIDENCE_FLOOR else None
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
        return _new_parts(min(1.0, max(0.0, score)), success, timeliness, rating, healthy, seen, count)

    def cached_parts(self, agent_id: str, now: float) -> ScoreParts:
        """``parts``, reused for ``SCORE_REUSE`` seconds unless new results arrive."""
        cached = self._scores.get(agent_id)
        if cached is not None and 0.0 <= now - cached[0] < self.SCORE_REUSE:
            return cached[1]
        parts = self.parts(agent_id, now)
        self._scores[agent_id] = (now, parts)
        return parts

    def expected_ceiling(self, agent_id: str, estimate: float, now: float) -> float:
        """No ``expected_time`` of ``agent_id`` whose ``estimate`` is this exceeds the value returned (its score
        is at least 0): worked out from its success alone, without the rest of its score."""
        cached = self._scores.get(agent_id)
        if cached is not None and 0.0 <= now - cached[0] < self.SCORE_REUSE:
            success = cached[1].success  # what ``expected_time`` will use
        else:
            agent = self._agents.get(agent_id)
            success = _NEUTRAL.success if agent is None else _success(agent, agent.seen.read(now), now)
        return estimate * 2.0 / max(success, MIN_SCORE) * _CEILING_SLACK

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
            (all_total, all_count), (my_total, my_count) = overall.sums(now), mean.sums(now)
            peers = all_count - my_count  # decayed sums are linear: everyone's minus its own
            if peers < EVIDENCE_FLOOR or my_count < EVIDENCE_FLOOR:
                continue
            theirs = max(0.0, all_total - my_total) / peers
            mine = my_total / my_count
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


#: Loosens ``expected_ceiling`` so that a rounding never puts an expected time above it.
_CEILING_SLACK = 1 + 1e-9


def _success(agent: _AgentRecord, seen: float, now: float) -> float:
    """The share of attempts that succeed, with the prior (``seen``: its decayed count of attempts); at most 1,
    also when read before its latest result (a sum is not decayed back in time, so a failure stamped after
    ``now`` would count in ``seen`` while the successes were decayed)."""
    return min(1.0, (agent.ok.read(now) + SUCCESS_PRIOR * SUCCESS_STRENGTH) / (seen + SUCCESS_STRENGTH))


def _expected(estimate: float, parts: ScoreParts) -> float:
    return estimate / (max(parts.success, MIN_SCORE) * (1.0 + parts.score) / 2.0)
