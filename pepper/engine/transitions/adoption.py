"""What the store says: rows read back (at start-up, written by another process, after a conflict),
workers found dead, and writes the store refused for good.

Pure: no I/O, and time comes with the turn.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pepper.engine.hooks import WORKER_LOST
from pepper.engine.live import LiveTask
from pepper.engine.transitions.admission import link, release, settle_admitted
from pepper.engine.transitions.cancellation import cancel_and_cascade, cascade
from pepper.engine.transitions.placement import abort, offer, refill
from pepper.engine.transitions.pruning import drop, forget_finished
from pepper.engine.transitions.turn import Turn, attempt_record, move, save_and_settle
from pepper.model import events as ev
from pepper.model.record import TaskRecord
from pepper.model.status import TaskError
from pepper.model.task import TaskState

if TYPE_CHECKING:
    from pepper.engine.state import EngineState

_LOST = TaskError(
    WORKER_LOST, "the worker running it was found gone (its process had exited, or it was not heard from for the "
    "visibility timeout)", kind="interrupted",
)  # fmt: skip


def on_loaded(s: EngineState, e: ev.TasksLoaded) -> list[ev.Action]:
    """Rows read from the store: new tasks are admitted, known ones take the stored facts."""
    # Two passes: every record is taken into memory before any of them is acted on. Acting on one
    # record first (a completed dependency releasing and starting its dependent) and only then taking
    # the dependent's own newer record would decide on stale facts and start the dependent twice.
    turn = Turn(e.at, e.cause, gathering=bool(s.takers))
    taken: list[tuple[LiveTask, TaskState | None, TaskState]] = []
    replaced: list[str] = []
    for record in e.records:
        live = s.tasks.get(record.task.task_id)
        if live is not None and live.task.created_at != record.task.created_at:
            # Another task under a known id: the one held here was pruned and the id submitted again. Nothing
            # of the old one carries over to it.
            drop(s, live, "its row was deleted by a prune", turn)
            replaced.append(record.task.task_id)
            live = None
        if live is None:
            live = LiveTask.from_record(record)
            s.tasks[record.task.task_id] = live
            taken.append((live, None, record.state))
        else:
            unstored = s.cascades_unstored.get(record.task.task_id)
            before = live.state if unstored is None else unstored[0]  # what the row held before that cancel
            expected = take(s, live, record, turn)
            if expected is not None:
                taken.append((live, before, expected))
    forget_finished(s, replaced)
    for live, old, expected in taken:
        if live.state is not expected:
            continue  # acting on an earlier record of this batch already moved it (released, cancelled)
        if old is None:
            settle_admitted(s, live, turn)
        else:
            settle_adopted(s, live, old, turn)
    refill(s, turn)
    return turn.actions


def take(s: EngineState, t: LiveTask, record: TaskRecord, turn: Turn) -> TaskState | None:
    """Mirror a change another process made to a task we know.

    Only the record is taken here (and an attempt of ours that lost the task is stopped); what the new
    state means for the task and its dependents is decided by ``settle_adopted``, once every record
    read together is in memory. Returns the state ``settle_adopted`` expects to find, or None when
    there is nothing more to do.
    """
    task_id = t.task.task_id
    old = t.state
    was_mine = old is TaskState.IN_PROGRESS and t.owner == s.worker_id
    still_mine = record.state is TaskState.IN_PROGRESS and record.owner == s.worker_id and record.attempts == t.attempts
    if still_mine and not was_mine:
        # Our attempt already ended here, but another process's write reached the row before ours: what
        # we decided stands (the shell now holds the row's version); write it again. A cancel asked for
        # meanwhile (the row still showed our attempt running) is honoured.
        if record.cancel_requested and not old.is_final:
            t.cancel_requested, t.reason = True, record.reason
            return old
        turn.actions.append(ev.Save(task_id, turn.cause))
        if old.is_settled:
            turn.actions.append(ev.Settled(task_id, turn.cause))
        return None
    if was_mine and not still_mine:
        abort(s, t, "the task was changed by another process", turn)
    unstored = s.cascades_unstored.pop(task_id, None)
    if unstored is not None:
        forget_finished(s, (task_id,))  # final again only if the row says so (``settle_adopted``)
    placed = t.placement
    t.copy_from(record)
    t.qseq = 0
    if t.placement != placed:
        t.route = None
    if unstored is not None and unstored[1] is not None and not record.state.is_final and not record.cancel_requested:
        # A cancel decided here on an older row lost to this one: it is decided again on this row. A task
        # another worker runs now is asked to stop (its worker reads the request from the row); any other is
        # cancelled by ``settle_adopted``. (A failure that lost is not decided again: the row tells the end.)
        t.cancel_requested, t.reason = True, unstored[1]
        if record.state is TaskState.IN_PROGRESS and record.owner != s.worker_id:
            turn.actions.append(ev.Save(task_id, turn.cause))
    return record.state


def settle_adopted(s: EngineState, t: LiveTask, old: TaskState, turn: Turn) -> None:
    """Act on a task's new state taken from the store (``old`` is what memory held before)."""
    task_id = t.task.task_id
    if t.cancel_requested and not t.state.is_final and (t.state is not TaskState.IN_PROGRESS or t.owner == s.worker_id):
        cancel_and_cascade(s, t, t.reason or "cancelled on request", turn)
        return
    new = t.state
    if new.is_final:
        if not old.is_final:
            turn.actions.append(ev.Settled(task_id, turn.cause))
            s.finished.append(task_id)
            if new is TaskState.COMPLETED:
                release(s, t, turn)
            else:
                cascade(s, t, turn)
    elif new is TaskState.PARKED:
        if old is not TaskState.PARKED:
            turn.actions.append(ev.Settled(task_id, turn.cause))  # parked elsewhere: whoever waits here must learn it
    elif new is TaskState.PENDING:
        offer(s, t, turn)
    elif new is TaskState.BLOCKED and old is not TaskState.BLOCKED:
        link(s, t, turn)


def on_workers_lost(s: EngineState, e: ev.WorkersLost) -> list[ev.Action]:
    """Workers found dead: their running tasks run again (or end cancelled, if a cancel was asked for)."""
    turn = Turn(e.at, e.cause)
    for t in list(s.tasks.values()):
        if t.state is TaskState.IN_PROGRESS and t.owner in e.worker_ids:
            turn.actions.append(attempt_record(t, turn, "interrupted", _LOST))
            move(t, TaskState.PENDING)
            t.owner, t.ready_at, t.error = None, e.at, _LOST
            turn.actions.append(ev.Save(t.task.task_id, e.cause))
            if t.cancel_requested:
                cancel_and_cascade(s, t, t.reason or "cancelled on request", turn)
            else:
                offer(s, t, turn)
    refill(s, turn)
    return turn.actions


def on_write_refused(s: EngineState, e: ev.WriteRefused) -> list[ev.Action]:
    """The store refused a task's changes for good: the task ends failed, and what depends on it cancelled."""
    t = s.tasks.get(e.task_id)
    if t is None:
        return []
    turn = Turn(e.at, e.cause)
    s.cascades_unstored.pop(e.task_id, None)  # a cancel of it the store refused: the failure is what is stored
    if t.state is TaskState.IN_PROGRESS and t.owner == s.worker_id:
        abort(s, t, e.error.message, turn)  # its claim may never have been stored
    was_final, released = t.state.is_final, t.state is TaskState.COMPLETED
    # Set, not moved: what memory held was never stored, so the table's "from" would be a state the
    # database never saw (the row keeps its last stored state until this failure is written).
    t.state, t.error, t.reason = TaskState.FAILED, e.error, e.error.message
    # Nothing an agent supplied is written again (it may be the very value the database refused).
    t.result = t.result_json = t.owner = t.next_attempt_at = t.progress = t.progress_message = None
    t.finished_at, t.qseq = e.at, 0
    save_and_settle(e.task_id, turn)
    if not was_final:
        s.finished.append(e.task_id)
    if released:  # its dependents were released on a completion that was never stored: they may not run
        t.dependents = [tid for tid, d in s.tasks.items() if e.task_id in d.task.dependencies and not d.state.is_final]
    cascade(s, t, turn)
    refill(s, turn)
    return turn.actions
