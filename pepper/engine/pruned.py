"""The shell's side of tasks whose rows a prune deleted (the state machine's is ``transitions.pruning``).

Memory of such a task goes when the prune is known: at once in the process that pruned (``Store.on_pruned``),
at the next catch-up elsewhere (``Store.pruned_since``), and wherever a row read or an insert shows it (a row of
a held id created at another time; a dependency held as final that is no longer stored; an insert of a held id
that went through).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from pepper.model.events import Pruned
from pepper.model.record import TaskRecord
from pepper.model.task import Task

if TYPE_CHECKING:
    from pepper.engine.shell import Engine


def forget_pruned(engine: Engine, tasks: Iterable[tuple[str, float]]) -> None:
    """Tasks whose rows a prune deleted, as ``(id, created_at)``: memory of them goes, and their ids are free
    again (a task held under such an id but created at another time is a newer one, and stays)."""
    held = engine.state.tasks
    gone = tuple((task_id, created_at) for task_id, created_at in tasks if task_id in held)
    if gone:
        engine.dispatch(Pruned(gone, engine.clock.now(), "pruned"))


def forget_held(engine: Engine, task_ids: Iterable[str]) -> None:
    """Tasks held in memory whose rows are no longer stored (a prune deleted them): memory of them goes."""
    held = engine.state.tasks
    forget_pruned(engine, [(task_id, held[task_id].task.created_at) for task_id in task_ids if task_id in held])


def stored_dependencies(engine: Engine, deps: set[str], check: set[str]) -> list[TaskRecord]:
    """The stored records of the dependencies ``deps`` the engine does not hold, and of those in ``check`` it
    holds as final (a prune in another process may have deleted them since: those no longer stored are
    forgotten here, and a task stored again under such an id is read as the new task it is)."""
    known = engine.state.tasks
    unknown = {d for d in deps if d not in known}
    ended = {d for d in check if d in known and known[d].state.is_final}
    if not unknown and not ended:
        return []
    found = engine.store.get_tasks(unknown | ended)
    gone = ended - found.keys()
    if gone:
        forget_held(engine, gone)
    return [r for d, r in found.items() if d in unknown or r.task.created_at != known[d].task.created_at]


def before_admitting(engine: Engine, tasks: Sequence[Task]) -> None:
    """Before tasks this process just stored are taken in: a task held under one of their ids was pruned (else
    the insert would have found its row), and a dependency held as final may have been since."""
    known = engine.state.tasks
    stale = {t.task_id for t in tasks if t.task_id in known}
    if stale:
        forget_held(engine, stale)
    deps = {d for t in tasks for d in t.dependencies if d in known and known[d].state.is_final}
    newer = stored_dependencies(engine, deps, deps) if deps else []
    if newer:
        engine.ingest(newer, "changed by another process")


def forget_missed_prunes(engine: Engine) -> None:
    """Prunes whose records went before this engine read them: every finished task it holds is looked up, and
    those no longer stored (or stored as another task of their id) are forgotten."""
    held = engine.state.tasks
    ended = [task_id for task_id, t in held.items() if t.state.is_final]
    found = engine.store.get_tasks(ended) if ended else {}
    gone = [task_id for task_id in ended
            if task_id not in found or found[task_id].task.created_at != held[task_id].task.created_at]  # fmt: skip
    if gone:
        forget_held(engine, gone)
