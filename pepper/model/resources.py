"""Resource amounts: a frozen mapping from resource name to quantity."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from pepper.errors import ValidationError
from pepper.model import codec
from pepper.model.units import parse_quantity

#: Units of the well-known resources; any other name is a plain count.
RESOURCE_UNITS = {"cpu": "cores", "memory": "MB", "storage": "MB"}
_NAME_RE = re.compile(r"^[a-z][a-z0-9_.\-]{0,63}$")


class Resources(Mapping[str, float]):
    """An immutable, hashable bag of resource quantities, e.g. ``{"cpu": 1.5, "memory": 512}``.

    Zero amounts are dropped, so ``Resources()`` and ``Resources({"gpu": 0})`` are equal.
    """

    __slots__ = ("_hash", "_items")

    def __init__(self, amounts: Mapping[str, float] | None = None) -> None:
        items = {k: float(v) for k, v in (amounts or {}).items() if v}
        self._items = dict(sorted(items.items()))
        self._hash = hash(tuple(self._items.items()))

    @classmethod
    def parse(cls, value: Any, what: str = "resources") -> Resources:
        """Validate a user mapping such as ``{"cpu": "500m", "memory": "4Gi", "gpu": 1}``."""
        if value is None:
            return EMPTY
        if isinstance(value, Resources):
            return value
        value = codec.mapping(value, what, "of resource name to amount, e.g. {'cpu': 2, 'memory': '4Gi'}")
        amounts = {}
        for name, amount in value.items():
            if not isinstance(name, str) or not _NAME_RE.match(name):
                raise ValidationError(
                    f"{what}: {name!r} is not a valid resource name (lower-case letters, digits, "
                    "'_', '.', '-'; e.g. 'cpu', 'memory', 'storage', 'gpu', 'llm_tokens')",
                    field=what,
                )
            amounts[name] = parse_quantity(name, amount)
        return cls(amounts)

    def __getitem__(self, name: str) -> float:
        return self._items[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __hash__(self) -> int:
        return self._hash

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Resources):
            return self._items == other._items
        if isinstance(other, Mapping):
            return self._items == {k: float(v) for k, v in other.items() if v}
        return NotImplemented

    def __repr__(self) -> str:
        return f"Resources({self._items!r})"

    def to_dict(self) -> dict[str, float]:
        """A plain dict, for JSON."""
        return dict(self._items)

    def fits_within(self, capacity: Mapping[str, float]) -> bool:
        """True when every amount here is at most the same amount in ``capacity``."""
        return all(amount <= capacity.get(name, 0.0) + 1e-9 for name, amount in self._items.items())

    def shortfall(self, available: Mapping[str, float]) -> dict[str, float]:
        """How much of each resource is missing from ``available`` (only the short ones)."""
        return {
            name: amount - available.get(name, 0.0)
            for name, amount in self._items.items()
            if amount > available.get(name, 0.0) + 1e-9
        }


EMPTY = Resources()


def describe_amount(name: str, amount: float) -> str:
    """``cpu 1.5 cores``, ``memory 512 MB``, ``gpu 1``."""
    unit = RESOURCE_UNITS.get(name)
    text = f"{amount:g}"
    if unit == "cores" and amount == 1:
        unit = "core"
    return f"{name} {text} {unit}" if unit else f"{name} {text}"


def describe(amounts: Mapping[str, float]) -> str:
    """``cpu 2 cores, memory 512 MB`` (or ``nothing``)."""
    return ", ".join(describe_amount(name, amount) for name, amount in sorted(amounts.items())) or "nothing"


def describe_shortfall(missing: Mapping[str, float]) -> str:
    """``cpu short by 1.5 cores, memory short by 512 MB``."""
    return ", ".join(describe_amount(name, amount).replace(f"{name} ", f"{name} short by ", 1)
                     for name, amount in missing.items())  # fmt: skip


class OffHost:
    """Where an agent whose machine resources another system places (an agent on Ray) finds its resources.

    Its declared ``budget`` of every resource that is not a shared pool (cpu, gpu, memory, custom ones) is
    the other system's to place: pepper's own pool grants none of it, and its tasks' needs of such resources
    are checked within it (a task needing more than it never runs there). Only the shared pools (``shared``)
    are pepper's to grant, for the agent's budget and for its tasks alike.
    """

    __slots__ = ("placed", "pooled", "shared")

    def __init__(self, budget: Mapping[str, float], shared: Iterable[str]) -> None:
        self.shared = frozenset(shared)
        self.placed = Resources({n: a for n, a in budget.items() if n not in self.shared})
        self.pooled = Resources({n: a for n, a in budget.items() if n in self.shared})

    def split(self, request: Mapping[str, float]) -> tuple[Resources, Resources]:
        """``request`` as (what pepper's pool grants: the shared pools, what the placed budget holds: the rest)."""
        return (Resources({n: a for n, a in request.items() if n in self.shared}),
                Resources({n: a for n, a in request.items() if n not in self.shared}))  # fmt: skip

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, OffHost):
            return NotImplemented
        return (self.placed, self.pooled, self.shared) == (other.placed, other.pooled, other.shared)

    def __hash__(self) -> int:
        return hash((self.placed, self.pooled, self.shared))

    def __repr__(self) -> str:
        return f"OffHost(placed={self.placed!r}, shared={sorted(self.shared)!r})"
