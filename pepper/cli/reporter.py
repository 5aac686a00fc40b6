"""The engine hook ``pepper worker`` uses to print a line per task and count outcomes."""

from __future__ import annotations

import threading
from collections import OrderedDict

from rich.console import Console
from rich.text import Text

from pepper.cli.render import duration, plural
from pepper.engine.hooks import WORKER_LOST, EngineHook
from pepper.model.events import AttemptEnded, RecordError
from pepper.model.record import TaskRecord
from pepper.model.task import Task, TaskState

_ERROR_LINES = 6
_MARKS = {"start": "→", "ok": "✓", "failed": "✗", "requeued": "↺", "lost": "⤳"}
_ASCII_MARKS = {"start": "->", "ok": "ok", "failed": "FAILED", "requeued": "again", "lost": "lost"}
_ENDS_KEPT = 1000  # the latest attempt ends remembered, to take back one whose write lost
_COUNTED = {"retry": "retried", "reassign": "retried", "fallback": "retried", "dead_letter": "parked",
            "skip": "skipped"}  # fmt: skip
_MARK_STYLES = {"start": "cyan", "ok": "green", "failed": "red", "requeued": "yellow", "lost": "yellow"}


class Reporter(EngineHook):
    """Prints ``✓ id (type) on agent in 0.12s`` / ``✗ ...`` lines and keeps the counts.

    Runs on the engine thread: it only formats and prints.
    """

    def __init__(self, console: Console, *, quiet: bool = False, where: str = "") -> None:
        self.console = console
        self.where = where  # `` --db PATH`` for the command it suggests
        self.quiet = quiet
        self.completed = 0
        self.failed = 0
        self.retried = 0
        self.requeued = 0
        self.parked = 0
        self.skipped = 0
        self.lost = 0  # attempts whose task another worker took over before their end was written
        #: The latest ends: how each was counted, and on which agent it ran.
        self._ended: OrderedDict[tuple[str, int], tuple[str, str | None]] = OrderedDict()
        self._lost: set[tuple[str, int]] = set()  # stopped attempts told lost whose late end may still come
        self._decided: dict[tuple[str, int], RecordError] = {}
        self._lock = threading.Lock()
        self._agents: dict[tuple[str, int], str] = {}
        self._marks = _MARKS if console.encoding.startswith("utf") else _ASCII_MARKS
        self._held: list[Text] | None = None

    def hold(self) -> None:
        """Keep the lines of tasks back until ``release`` (while the worker starts and has not said so yet)."""
        with self._lock:
            self._held = [] if self._held is None else self._held

    def release(self) -> None:
        """Print the lines held back, in their order, and every later one at once."""
        with self._lock:
            held, self._held = self._held or [], None
        for line in held:
            self._print(line)

    def on_started(self, task: Task, attempt: int, agent_id: str, at: float) -> None:
        with self._lock:
            self._agents[(task.task_id, attempt)] = agent_id
        tries = f" (attempt {attempt})" if attempt > 1 else ""
        self._print(self._line("start", _name(task.task_id, task), f" started on {agent_id}{tries}"))

    def on_recovery(self, record: RecordError) -> None:
        with self._lock:  # comes just before on_attempt_ended, which prints the line with it
            self._decided[(record.task_id, record.attempt)] = record

    def on_attempt_lost(self, task_id: str, attempt: int, record: TaskRecord) -> None:
        key = (task_id, attempt)
        with self._lock:
            agent_id = self._agents.pop(key, None)
            counted = self._ended.pop(key, None)
            if counted is None:
                self._lost.add(key)  # stopped here: its end, if it comes, is not counted
            else:
                outcome, agent_id = counted
                setattr(self, outcome, getattr(self, outcome) - 1)
            self.lost += 1
        done = "finished here" if counted is not None else "stopped here"
        where = f" on {agent_id}" if agent_id else ""
        name = _name(task_id, record.task)
        self._print(self._line("lost", name, where, f" {done}, but {_taken_over(record)}"))

    def on_attempt_ended(self, event: AttemptEnded, task: Task | None) -> None:
        key = (event.task_id, event.attempt)
        with self._lock:
            agent_id = self._agents.pop(key, None)
            decided = self._decided.pop(key, None)
            if key in self._lost:  # told already: another worker took the task over
                self._lost.discard(key)
                return
        where = f" on {agent_id}" if agent_id else ""
        took = duration(event.at - event.started_at) if event.started_at is not None else None
        name = _name(event.task_id, task)
        if event.ok:
            self._count("completed", key, agent_id)
            self._print(self._line("ok", name, where, f" in {took}" if took else ""))
            return
        if event.requeue:
            self._count("requeued", key, agent_id)
            self._print(self._line("requeued", name, where, " was interrupted; it will run again"))
            return
        action = decided.action if decided is not None else "fail"
        self._count(_COUNTED.get(action, "failed"), key, agent_id)
        line = self._line("failed", name, where, f" after {took}" if took else "")
        if decided is not None and action != "fail":
            line.append(f" ({decided.detail or action.replace('_', ' ')})", style="yellow")
        if event.error is not None:
            line.append(": ")
            status = f"pepper status {event.task_id}{self.where}"
            line.append(_clip(f"{event.error.type}: {event.error.message}", status), style="red")
        self._print(line)

    def summary(self) -> Text:
        """How the attempts run by this worker ended, in one line."""
        with self._lock:
            parts = [f"{self.completed} completed", f"{self.failed} failed"]
            if self.retried:
                parts.append(f"{plural(self.retried, 'attempt')} retried")
            if self.parked:
                parts.append(f"{self.parked} parked in the dead-letter queue")
            if self.skipped:
                parts.append(f"{self.skipped} skipped")
            if self.requeued:
                parts.append(f"{self.requeued} interrupted and left for another run")
            if self.lost:
                parts.append(f"{self.lost} taken over by another worker (what ran here is not kept)")
        return Text("worker stopped; tasks run here: " + ", ".join(parts))

    def _line(self, mark: str, *parts: str) -> Text:
        return Text.assemble((self._marks[mark] + " ", _MARK_STYLES[mark]), *parts)

    def _count(self, outcome: str, key: tuple[str, int], agent_id: str | None) -> None:
        with self._lock:
            setattr(self, outcome, getattr(self, outcome) + 1)
            self._ended[key] = (outcome, agent_id)
            if len(self._ended) > _ENDS_KEPT:
                self._ended.popitem(last=False)

    def _print(self, line: Text) -> None:
        if self.quiet:
            return
        with self._lock:
            if self._held is not None:
                self._held.append(line)
                return
        try:
            self.console.print(line)
        except (OSError, ValueError):  # a closed or broken stdout must not disturb the engine
            pass


def _name(task_id: str, task: Task | None) -> str:
    return f"{task_id} ({task.task_type})" if task is not None else task_id


def _taken_over(record: TaskRecord) -> str:
    """What became of a task another worker took over, from its stored record."""
    there = f"attempt {record.attempts}" + (f" on {record.agent_id}" if record.agent_id else "")
    if record.state is TaskState.IN_PROGRESS and record.owner:
        return f"worker {record.owner} had taken it over ({there}); its outcome will be kept, not this attempt's"
    if record.state is TaskState.PENDING and record.error is not None and record.error.type == WORKER_LOST:
        queued = "another worker presumed this one dead and queued the task to run again"
        return f"{queued}; this attempt's outcome is not kept"
    if record.state is TaskState.COMPLETED:
        return f"another worker had taken it over and completed it ({there}); its result was kept, not this attempt's"
    return f"another worker had taken it over ({there}, now {record.state.value}); this attempt's outcome is not kept"


def _clip(message: str, status: str) -> str:
    """An error message indented under the task line: its first line and its last few (where stderr ends)."""
    lines = message.strip().splitlines() or [""]
    if len(lines) > _ERROR_LINES:
        note = f"… {plural(len(lines) - _ERROR_LINES, 'line')} not shown (`{status}` shows them)"
        lines = [lines[0], note, *lines[-(_ERROR_LINES - 1) :]]
    return "\n    ".join(lines)
