"""What a task (or a caller of AgentSelector) asks of the agent that runs it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pepper.errors import ValidationError, suggest
from pepper.model import codec
from pepper.model.resources import EMPTY, Resources

VALID_KEYS = ("skills", "resources", "performance_score", "availability")
#: Requirements parsed from plain dicts, by ``_key``; beyond this many they are parsed afresh.
_PARSED_MAX = 1024
_parsed: dict[tuple[Any, ...], Requirements] = {}
#: Values a key holds as they are: a type with one meaning per value (``True`` and ``1`` are told apart by type).
_PLAIN = frozenset({str, int, float, bool, type(None)})


def parse_names(value: Any, what: str) -> frozenset[str]:
    """A set of non-empty strings from a list/tuple/set; a lone string is a list of one (``task_types: docs``),
    or of several if it separates them with commas (``skills: markdown, latex``)."""
    if value is None:
        return frozenset()
    if isinstance(value, str):  # "docs" or "build, test"
        value = [part for part in value.split(",") if part.strip()] or [value]
    if not isinstance(value, (list, tuple, set, frozenset)):
        raise ValidationError(
            f"{what} must be a list of strings, e.g. ['markdown', 'api_docs']; got {value!r}",
            field=what,
        )
    names = set()
    for item in value:
        if not isinstance(item, str) or not item.strip():
            raise ValidationError(f"{what} must contain non-empty strings; got {item!r}", field=what)
        if not item.strip().isprintable():  # control characters, or a lone surrogate SQLite cannot store
            raise ValidationError(f"{what} must be printable text; {item!r} is not", field=what)
        names.add(item.strip())
    return frozenset(names)


@dataclass(frozen=True, slots=True)
class Requirements:
    """Skills and resources a task needs; optionally a minimum score and availability."""

    skills: frozenset[str] = frozenset()
    resources: Resources = EMPTY
    performance_score: float | None = None
    availability: bool = False

    @classmethod
    def parse(cls, value: Any) -> Requirements:
        """Validate ``{"skills": [...], "resources": {...}, "performance_score": 0.8, "availability": True}``."""
        if value is None:
            return NO_REQUIREMENTS
        if isinstance(value, Requirements):
            return value
        key = _key(value) if type(value) is dict else None
        if key is not None:
            found = _parsed.get(key)
            if found is not None:
                return found
        parsed = cls._parse(value)
        if key is not None:
            if len(_parsed) >= _PARSED_MAX:
                _parsed.clear()
            _parsed[key] = parsed
        return parsed

    @classmethod
    def _parse(cls, value: Any) -> Requirements:
        value = codec.mapping(value, "requirements", "such as {'skills': ['markdown'], 'resources': {'cpu': 1}}")
        for key in value:
            if key not in VALID_KEYS:
                raise ValidationError(
                    f"unknown requirement {key!r}; valid keys: {', '.join(VALID_KEYS)}.{suggest(key, VALID_KEYS)}",
                    field="requirements",
                )
        score = value.get("performance_score")
        if score is not None:
            if isinstance(score, bool) or not isinstance(score, (int, float)) or not 0 <= score <= 1:
                raise ValidationError(
                    f"performance_score must be a number between 0 and 1, got {score!r}",
                    field="performance_score",
                )
            score = float(score)
        availability = value.get("availability", False)
        if not isinstance(availability, bool):
            raise ValidationError(f"availability must be True or False, got {availability!r}", field="availability")
        return cls(
            skills=parse_names(value.get("skills"), "skills"),
            resources=Resources.parse(value.get("resources"), "resources"),
            performance_score=score,
            availability=availability,
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, omitting defaults."""
        out: dict[str, Any] = {}
        if self.skills:
            out["skills"] = sorted(self.skills)
        if self.resources:
            out["resources"] = self.resources.to_dict()
        if self.performance_score is not None:
            out["performance_score"] = self.performance_score
        if self.availability:
            out["availability"] = True
        return out


NO_REQUIREMENTS = Requirements()


def _key(value: dict[Any, Any]) -> tuple[Any, ...] | None:
    """What decides how the plain dict ``value`` parses, as a hashable key: each entry's name, its value's type
    and its value (a list or tuple of plain strings: their tuple); None when some value is of another kind
    (a mapping of resources, a set, a subclass), which is parsed every time. Only what parsed without error
    is kept, and a ``Requirements`` is immutable: the same key always gives an equal answer."""
    key: list[Any] = []
    for name, item in value.items():
        kind = type(item)
        if type(name) is not str:
            return None
        if kind is list or kind is tuple:
            for part in item:
                if type(part) is not str:
                    return None
            key.append((name, kind, *item))
        elif kind in _PLAIN:
            key.append((name, kind, item))
        else:
            return None
    return tuple(key)
