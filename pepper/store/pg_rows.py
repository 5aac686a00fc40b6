"""How rows travel between pepper and PostgreSQL: rows read back as ``Row``s, and many rows of one statement
written as one, a column array per parameter (``Columns``)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from typing import Any

_ARRAY_CAST_RE = re.compile(r"%s::(\w+)\[\]")
#: How one value of each array type of the ``_bulk`` statements is written in an array literal.
_ELEMENT: dict[str, Any] = {
    "text": lambda v: '"' + str(v).replace("\\", "\\\\").replace('"', '\\"') + '"',
    "bigint": lambda v: str(int(v)),
    "float8": lambda v: repr(float(v)),
}


def _array_literal(values: Sequence[Any], kind: str) -> str:
    """PostgreSQL's text form of an array (``{"a","b",NULL}``): far quicker to build than to dump a list."""
    element = _ELEMENT[kind]
    return "{" + ",".join("NULL" if v is None else element(v) for v in values) + "}"


class Row(dict):  # type: ignore[type-arg]
    """A row readable by column name or position, like ``sqlite3.Row`` (iterating gives its values). A dict
    underneath: rows are read by the thousand, and a lookup by name is then the dict's own."""

    __slots__ = ("_values",)

    def __init__(self, values: Sequence[Any], names: Sequence[str]) -> None:
        super().__init__(zip(names, values, strict=True))
        self._values = values

    def __missing__(self, key: int | str) -> Any:
        if isinstance(key, int):
            return self._values[key]
        raise KeyError(key)

    def __iter__(self) -> Iterator[Any]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    @staticmethod
    def factory(cursor: Any) -> Callable[[Sequence[Any]], Row]:
        """psycopg's row factory making ``Row``s."""
        names = [column.name for column in cursor.description or ()]
        return lambda values: Row(values, names)


class Columns(list):  # type: ignore[type-arg]
    """Rows of a bulk write, with their columns already written as array literals (its parameters)."""

    def __init__(self, rows: list[tuple[Any, ...]], arrays: list[str]) -> None:
        super().__init__(rows)
        self.arrays = arrays


def array_parameters(bulk: str, rows: list[tuple[Any, ...]]) -> Columns:
    """``rows`` with the parameters of ``bulk`` (a statement taking a ``%s::type[]`` array per column) made."""
    types = _ARRAY_CAST_RE.findall(bulk)
    return Columns(rows, [_array_literal(col, t) for t, col in zip(types, zip(*rows, strict=True), strict=True)])


_COLUMN_NAMES_RE = re.compile(r"AS v\(([^)]*)\)")
_TRAILING = ("writer", "task_id", "version")  # what every save writes or matches on, after the columns it sets


def shaped_bulk(bulk: str, keep: Sequence[int]) -> str:
    """``bulk`` (``save_task_bulk``: ``SET column = v.column, ...`` from a ``%s::type[]`` array per parameter)
    taking only the parameters at ``keep``, so setting only their columns."""
    types = _ARRAY_CAST_RE.findall(bulk)
    names_at = _COLUMN_NAMES_RE.search(bulk)
    if names_at is None or "SET" not in bulk or "FROM unnest(" not in bulk:
        raise ValueError("not a save_task_bulk statement: " + bulk[:60])
    names = [name.strip() for name in names_at.group(1).split(",")]
    kept = [names[i] for i in keep]
    sets = ", ".join(f"{name} = v.{name}" for name in kept if name not in _TRAILING)
    head = bulk[: bulk.index("SET") + 3]
    middle = bulk[bulk.index("writer = v.writer") : bulk.index("FROM unnest(")]
    arrays = ", ".join(f"%s::{types[i]}[]" for i in keep)
    return f"{head} {sets}, {middle}FROM unnest({arrays}) AS v({', '.join(kept)}){bulk[names_at.end() :]}"
