"""Reads and writes of the ``alert_states`` table: where each configured alert rule stands, for all workers.

Firing and resolving are conditional updates (``firing = 0`` -> 1, 1 -> 0): of several workers seeing the
same crossing, exactly one changes the row, and only that one notifies.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pepper.store.sql_store import SqlStore


@dataclass(frozen=True, slots=True)
class AlertState:
    """A rule's shared state: firing or not, the value when it last changed, and how often it fired."""

    rule: str
    firing: bool
    value: float | None
    changed_at: float
    fired_count: int

    @classmethod
    def from_row(cls, row: Any) -> AlertState:
        return cls(row["rule"], bool(row["firing"]), row["value"], float(row["changed_at"]), int(row["fired_count"]))

    def to_dict(self) -> dict[str, Any]:
        return {"rule": self.rule, "firing": self.firing, "value": self.value, "changed_at": self.changed_at,
                "fired_count": self.fired_count}  # fmt: skip


class AlertStateLog:
    """The shared state of configured alert rules."""

    def __init__(self, store: SqlStore) -> None:
        self._store = store

    def fire(self, rule: str, value: float, now: float, alert: tuple[Any, ...] | None = None) -> bool:
        """Mark ``rule`` firing; True for the one caller that changed it (that caller notifies). That caller's
        ``alert`` (an ``Alert.to_row()``) is stored with the change, so the firing is listed once."""
        with self._store.typed_errors(), self._store.transaction() as conn:
            conn.execute(self._store.statement("ensure_alert_state"), (rule, now))
            changed = int(conn.execute(self._store.statement("fire_alert_state"), (value, now, rule)).rowcount) == 1
            if changed and alert is not None:
                conn.execute(self._store.statement("insert_alert"), alert)
            return changed

    def resolve(self, rule: str, value: float, now: float) -> bool:
        """Mark ``rule`` resolved; True for the one caller that changed it."""
        with self._store.typed_errors():
            return self._store.execute("resolve_alert_state", (value, now, rule)) == 1

    def states(self) -> dict[str, AlertState]:
        """Every rule's state, by rule name (rules that never fired have none)."""
        return {row["rule"]: AlertState.from_row(row) for row in self._store.query("alert_states")}
