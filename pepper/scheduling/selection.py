"""Choosing an agent: who is eligible (and why the others are not), and who is best.

The objective, shared with the live scheduler and workload plans: the
*projected finish* of a task on an agent, ``available_in + expected time`` -
when the agent could start it, plus how long it is expected to take there,
retries counted (see ``Performance.expected_time``), so agents that fail or are
rated poorly fall behind. Lowest wins; ties go to the higher score, then the
less loaded agent, then the id.

A minimum ``performance_score`` filters out agents whose record is below it;
an agent with no record yet (no results, no ratings) is not filtered by it - its
score is only a guess - and its reasons (or, when eligible, its notes) say so.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import NamedTuple

from pepper.model.agent import AgentSpec
from pepper.model.requirements import Requirements
from pepper.model.resources import describe_shortfall
from pepper.scheduling.performance import MIN_SCORE


class Candidate(NamedTuple):
    """One agent as the selector sees it at one moment (a named tuple: many are made per choice)."""

    spec: AgentSpec
    running: int = 0
    queued: int = 0
    score: float = 0.75
    estimate: float = 1.0
    available_in: float = 0.0
    accepting: bool = True
    healthy: bool = True
    free_resources: Mapping[str, float] | None = None
    note: str | None = None
    #: Expected time of the task there, retries counted (``Performance.expected_time``); if None,
    #: ``estimate / score``.
    expected: float | None = None
    #: False while the agent has no results or ratings: its score is a guess, and a minimum score skips it.
    evidence: bool = True

    @property
    def agent_id(self) -> str:
        return self.spec.agent_id

    @property
    def utilisation(self) -> float:
        return self.running / self.spec.capacity

    @property
    def projected_finish(self) -> float:
        expected = self.expected if self.expected is not None else self.estimate / max(self.score, MIN_SCORE)
        return self.available_in + expected


@dataclass(frozen=True, slots=True)
class Choice:
    """The best candidate (if any) and, for every other agent, why it was not eligible."""

    best: Candidate | None
    eligible: tuple[Candidate, ...] = ()
    rejected: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    #: What an eligible agent's standing rests on, when a person should know (e.g. a minimum score skipped).
    notes: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


def score_note(c: Candidate, req: Requirements) -> str | None:
    """Why a minimum score was not applied to ``c`` (it has no record yet), or None."""
    if req.performance_score is None or c.evidence:
        return None
    return f"has no results or ratings yet, so the minimum score {req.performance_score:.2f} does not apply to it"


def asks_only_type_and_skills(req: Requirements) -> bool:
    """True when ``req`` asks nothing beyond skills: an agent that accepts the type, has the skills and takes
    tasks is eligible."""
    return not req.availability and req.performance_score is None and not req.resources


def rejection_reasons(c: Candidate, task_type: str, req: Requirements) -> tuple[str, ...]:
    """Every reason ``c`` cannot take a ``task_type`` task with ``req`` (empty: it can)."""
    spec = c.spec
    if c.accepting and asks_only_type_and_skills(req) and spec.accepts(task_type) and req.skills <= spec.skills:
        return ()  # the common case, decided without building a list
    reasons = []
    if not spec.accepts(task_type):
        reasons.append(f"does not accept task type {task_type!r} (accepts {', '.join(sorted(spec.task_types))})")
    missing = req.skills - spec.skills
    if missing:
        reasons.append(f"lacks skill{'s' if len(missing) > 1 else ''} {', '.join(sorted(missing))}")
    if not c.accepting:
        reasons.append(c.note or "is not taking tasks")
    if req.availability:
        if not c.healthy:
            reasons.append("is failing its health checks")
        if c.running >= spec.capacity:
            reasons.append(f"is at capacity {c.running}/{spec.capacity}")
    if req.performance_score is not None and c.evidence and c.score < req.performance_score:
        reasons.append(f"has performance score {c.score:.2f}, below the {req.performance_score:.2f} asked for")
    if req.resources and c.free_resources is not None:
        short = req.resources.shortfall(c.free_resources)
        if short:
            reasons.append(f"has too few free resources: {describe_shortfall(short)}")
    note = score_note(c, req) if reasons else None
    if note is not None:  # ruled out for other reasons: say the score was not held against it
        reasons.append(note)
    return tuple(reasons)


def rank_key(c: Candidate) -> tuple[float, float, float, str]:
    """Lower is better: projected finish, then higher score, lower utilisation, agent id."""
    return (c.projected_finish, -c.score, c.utilisation, c.agent_id)


def choose(candidates: Iterable[Candidate], task_type: str, req: Requirements, *, best_only: bool = False) -> Choice:
    """The eligible candidates, best first, and the reasons of the others (``best_only``: just the best)."""
    eligible, rejected, notes = [], {}, {}
    for candidate in candidates:
        reasons = rejection_reasons(candidate, task_type, req)
        if reasons:
            rejected[candidate.agent_id] = reasons
        else:
            eligible.append(candidate)
            note = score_note(candidate, req)
            if note is not None:
                notes[candidate.agent_id] = (note,)
    if best_only:
        best = min(eligible, key=rank_key) if eligible else None
        return Choice(best, (best,) if best else (), rejected, notes)
    eligible.sort(key=rank_key)
    return Choice(eligible[0] if eligible else None, tuple(eligible), rejected, notes)
