"""Reads and writes of schedules (the ``schedules`` table): shared by every process on the database.

A tick is claimed with one conditional UPDATE (``claim``): the row moves on from the tick read only if
nobody moved it first, so of several workers that saw the same tick exactly one starts its run.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pepper.errors import ScheduleNotFoundError
from pepper.model import codec
from pepper.model.schedule import ScheduleRecord, ScheduleSpec, next_tick

if TYPE_CHECKING:
    from pepper.store.sql_store import SqlStore


class ScheduleLog:
    """Schedules by name, with their next tick."""

    def __init__(self, store: SqlStore) -> None:
        self._store = store

    def put(self, spec: ScheduleSpec, now: float) -> ScheduleRecord:
        """Store a schedule, or replace the one of that name. Kept as they were when the timing is the same:
        its next tick and whether it is paused; otherwise it counts afresh from ``now``."""
        store = self._store
        values = (spec.workflow, codec.encode(dict(spec.spec)), codec.encode(dict(spec.inputs)), spec.cron,
                  spec.every, spec.timezone, int(spec.catch_up))  # fmt: skip
        with store.typed_errors(), store.transaction() as conn:
            rows = conn.execute(store.statement("schedule_by_name"), (spec.name,)).fetchall()
            old = ScheduleRecord.from_row(rows[0]) if rows else None
            if old is not None and old.spec.same_timing(spec):
                created, next_at = old.created_at, old.next_fire_at
            else:
                created, next_at = now, next_tick(spec, now, now)
            if old is None:
                conn.execute(store.statement("insert_schedule"), (spec.name, *values, next_at, created))
                return ScheduleRecord(spec, next_at, created)
            conn.execute(store.statement("update_schedule"), (*values, next_at, created, spec.name))
        return ScheduleRecord(spec, next_at, created, old.paused, old.last_fire_at, old.last_run_id)

    def get(self, name: str) -> ScheduleRecord:
        rows = self._store.query("schedule_by_name", (name,))
        if not rows:
            raise ScheduleNotFoundError(name)
        return ScheduleRecord.from_row(rows[0])

    def list(self) -> list[ScheduleRecord]:
        """Every schedule, by name."""
        return [ScheduleRecord.from_row(row) for row in self._store.query("list_schedules")]

    def set_paused(self, name: str, paused: bool, now: float) -> ScheduleRecord:
        """Pause a schedule, or resume it from its next tick after ``now`` (ticks while paused never run)."""
        record = self.get(name)
        next_at = record.next_fire_at if paused else next_tick(record.spec, now, record.created_at)
        if self._store.execute("pause_schedule", (int(paused), next_at, name)) != 1:
            raise ScheduleNotFoundError(name)
        return self.get(name)

    def delete(self, name: str) -> None:
        if self._store.execute("delete_schedule", (name,)) != 1:
            raise ScheduleNotFoundError(name)

    def claim(self, name: str, tick: float, next_fire_at: float, fired: float | None) -> bool:
        """Move a schedule from ``tick`` (as read) to ``next_fire_at``; True for the one process that did.
        ``fired``: the tick whose run the caller starts (None: the ticks were skipped)."""
        params = {"next": next_fire_at, "fired": fired, "name": name, "tick": tick}
        return self._store.execute("claim_tick", params) == 1  # type: ignore[arg-type]

    def note_run(self, name: str, run_id: str) -> None:
        """Record the run a tick of the schedule started."""
        self._store.execute("note_schedule_run", (run_id, name))
