"""Task saves narrowed to the columns they change.

``save_task`` writes every stored column of a task; most saves change a few (a claim: its state, attempt, agent,
owner and start; an end: its state, result, finish and owner). A save is written over the version its writer
last read (``WHERE task_id = ? AND version = ?``), so when that version's values are known the columns a save
leaves as they are need not be written: the row cannot hold anything else, or the save writes nothing (and is a
conflict, as before). The values of a version are known for a row this store wrote itself (kept until the task
ends, for the most recently written rows only), and for a row at version 1, as ``insert_task`` left it
(``params.INSERTED``). A row's values are known within one life of its id only: they are let go when
another process is seen writing the row or a prune deletes it, and a remembered version counts only for the
row created when the remembered one was (a pruned id submitted again starts over at version 1). Each set of
changed columns is a statement of its own, made once; its rows go together.
A commit of a few saves writes every column: there, finding the columns costs more than it spares.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from operator import itemgetter, ne
from typing import Any, Protocol

from pepper.store.params import FINAL_VALUES, INSERTED, SAVE_COLUMNS
from pepper.store.protocol import TaskSave

_WIDTH = len(SAVE_COLUMNS)
_KNOWN_LIMIT = 16_384
_MAX_SHAPES = 512  # past this many statements, a save of a new set of columns writes them all
_FEW = 16  # saves in a commit below which every column is written
_NEW: Any = object()  # a set of columns no statement was made for yet
_WRITER_RE = re.compile(r"writer = (\?|%s),")

#: Rows of a statement, by the statement's name, made ready for ``SqlStore.write_rows``.
Groups = list[tuple[str, list[tuple[Any, ...]]]]


class _Statements(Protocol):
    def prepare_rows(self, name: str, rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]: ...
    def shaped_bulk(self, bulk: str, keep: Sequence[int]) -> str | None: ...


def narrowed(save_task: str, columns: Sequence[str]) -> str:
    """``save_task`` setting only ``columns`` (then the writer, version and change number, as it does)."""
    head, _, _ = save_task.partition("SET")
    tail = save_task[save_task.index("writer = ") :]
    found = _WRITER_RE.search(tail)
    placeholder = found.group(1) if found else "?"
    return f"{head}SET {', '.join(f'{column} = {placeholder}' for column in columns)}, {tail}"


class NarrowSaves:
    """Narrows a store's task saves, knowing the values of the rows it wrote."""

    def __init__(self, store: _Statements, statements: dict[str, str]) -> None:
        self._store = store
        self._q = statements  # the store's named statements: the narrowed ones are added as they are needed
        #: task id -> (version, created_at, values) of the row: a row is known by its version within one life of
        #: its id (a pruned id submitted again starts a new row at version 1, told apart by its created_at)
        self._known: dict[str, tuple[int, float, tuple[Any, ...]]] = {}
        #: rows known at most (oldest written let go first; a save over a row not known writes every column)
        self.limit = _KNOWN_LIMIT
        self._shapes: dict[tuple[bool, ...], tuple[str, Callable[[tuple[Any, ...]], Any]] | None] = {}

    def __len__(self) -> int:
        """How many rows' values are known."""
        return len(self._known)

    def groups(self, saves: Sequence[TaskSave], rows: Sequence[tuple[Any, ...]]) -> Groups:
        """``rows`` (``save_params`` of ``saves``) grouped by the statement that writes each, made ready."""
        if len(rows) < _FEW:  # a few rows: finding their columns costs more than writing them all
            return [("save_task", self._store.prepare_rows("save_task", list(rows)))] if rows else []
        grouped: dict[str, list[tuple[Any, ...]]] = {}
        known, shapes = self._known, self._shapes
        for save, row in zip(saves, rows, strict=True):
            entry = known.get(save.task.task_id)
            if entry is not None and entry[0] == save.version and entry[1] == save.task.created_at:
                base: tuple[Any, ...] | None = entry[2]
            elif save.version == 1:
                base = INSERTED
            else:
                base = None
            name = "save_task"
            if base is not None:
                changed = tuple(map(ne, row, base))  # a flag a column: does this save change it
                shape = shapes.get(changed, _NEW)
                if shape is _NEW:
                    shape = self._shape(changed)
                if shape is not None:
                    name, pick = shape
                    row = pick(row)
            grouped.setdefault(name, []).append(row)
        return [(name, self._store.prepare_rows(name, part)) for name, part in grouped.items()]

    def remember(
        self, saves: Sequence[TaskSave], rows: Sequence[tuple[Any, ...]], unwritten: Mapping[str, Any] | set[str]
    ) -> None:
        """After a commit: the values of the rows written, until their task ends; a row not written is forgotten."""
        known = self._known
        for save, row in zip(saves, rows, strict=True):
            task_id = save.task.task_id
            known.pop(task_id, None)  # written again: the newest, last to be let go
            if task_id not in unwritten and row[0] not in FINAL_VALUES:
                known[task_id] = (save.version + 1, save.task.created_at, row[:_WIDTH])
        while len(known) > self.limit:  # a task another process ended: its row is not ours to know any more
            del known[next(iter(known))]

    def forget(self, task_ids: Iterable[str]) -> None:
        """Rows written some other way (by another process, or deleted by a prune): their values are no longer
        known."""
        for task_id in task_ids:
            self._known.pop(task_id, None)

    def _shape(self, changed: tuple[bool, ...]) -> tuple[str, Callable[[tuple[Any, ...]], Any]] | None:
        """The statement writing the columns flagged in ``changed``, and what it takes of a row; None: the full
        ``save_task`` (every column changed, or too many statements made already)."""
        keep = [i for i, flag in enumerate(changed) if flag]
        if len(keep) == _WIDTH:
            self._shapes[changed] = None
            return None
        if len(self._shapes) >= _MAX_SHAPES:
            return None
        name = "save_task_" + "_".join(map(str, keep))
        self._q[name] = narrowed(self._q["save_task"], [SAVE_COLUMNS[i] for i in keep])
        keep += range(_WIDTH, _WIDTH + 3)  # the writer, the task id and the version it is written over
        bulk = self._q.get("save_task_bulk")
        if bulk is not None:
            shaped = self._store.shaped_bulk(bulk, keep)
            if shaped is not None:
                self._q[f"{name}_bulk"] = shaped
        shape = self._shapes[changed] = (name, itemgetter(*keep))
        return shape
