"""What ``pepper status``, ``pepper tasks`` and ``pepper agents`` show."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from rich.console import JustifyMethod
from rich.table import Table
from rich.text import Text

from pepper.cli.render import (
    attempts_text,
    clip_lines,
    clock_time,
    duration,
    one_line,
    plural,
    pretty,
    relative,
    state_text,
)
from pepper.core.online import AgentStanding
from pepper.model.status import TaskError, TaskStatus
from pepper.model.task import TaskState

_WAITING = (TaskState.PENDING, TaskState.BLOCKED, TaskState.PARKED)
_RESULT_LINES = 40


# --- pepper status -------------------------------------------------------------------------


def status_view(st: TaskStatus, now: float, *, traceback: bool = False, where: str = "") -> Text:
    """Everything about one task, in sections: facts, result or error, why it waits; ``where`` (`` --server URL``
    or `` --db PATH``) goes with the command it suggests."""
    view = Text.assemble(("Task ", "bold"), (st.task_id, "bold"), "  ", state_text(st.state), "\n")
    view.append_text(_indent(_facts(st, now)))
    if st.state is TaskState.COMPLETED:
        view.append_text(_section("Result", _result(st, where)))
    if st.error is not None and st.state is not TaskState.COMPLETED:
        title = "Error" if st.state is TaskState.FAILED else "Last error"
        view.append_text(_section(title, _error(st.error, traceback)))
    if st.state in _WAITING and st.waiting_on:
        reasons = Text("\n").join(Text.assemble("• ", w.message.replace("\n", "\n  ")) for w in st.waiting_on)
        view.append_text(_section("Why it is waiting", reasons))
    return view


def _section(title: str, body: Text) -> Text:
    return Text.assemble("\n\n", (title, "bold"), "\n", _indent(body))


def _indent(text: Text, prefix: str = "  ") -> Text:
    return Text("\n").join(Text(prefix) + line for line in text.split("\n"))


def _facts(st: TaskStatus, now: float) -> Text:
    rows: list[tuple[str, str]] = [
        ("type", st.task_type),
        ("priority", _priority(st)),
        ("agent", st.agent_id or "-"),
        ("attempts", attempts_text(st.attempts, st.max_retries, st.policy)),
    ]
    if st.policy:
        rows.append(("recovery", st.policy))
    if st.dependencies:
        rows.append(("depends on", ", ".join(st.dependencies)))
    rows += _times(st, now)
    if st.progress is not None and st.state is TaskState.IN_PROGRESS:
        rows.append(("progress", f"{st.progress:.0%}" + (f"  {st.progress_message}" if st.progress_message else "")))
    if st.reason and st.state is TaskState.CANCELLED:
        rows.append(("cancelled", st.reason))
    elif st.reason:
        rows.append(("note", st.reason))
    width = max(len(label) for label, _ in rows) + 2
    return Text("\n").join(Text.assemble((label.ljust(width), "dim"), value) for label, value in rows)


def _priority(st: TaskStatus) -> str:
    name = st.priority_name
    return name if name == str(st.priority) else f"{name} ({st.priority})"


def _times(st: TaskStatus, now: float) -> list[tuple[str, str]]:
    rows = []
    if st.created_at is not None:
        rows.append(("submitted", f"{clock_time(st.created_at)}  ({relative(st.created_at, now)})"))
    if st.started_at is not None:
        waited = f"waited {duration(st.started_at - st.created_at)}" if st.created_at is not None else ""
        rows.append(("started", f"{clock_time(st.started_at)}  ({waited})" if waited else clock_time(st.started_at)))
        if st.finished_at is None and st.state is TaskState.IN_PROGRESS:
            rows.append(("running for", duration(now - st.started_at)))
    if st.finished_at is not None:
        took = f"  (ran {duration(st.duration)})" if st.duration is not None else ""
        rows.append(("finished", clock_time(st.finished_at) + took))
    if st.next_attempt_at is not None and st.state is TaskState.PENDING:
        rows.append(("next attempt", f"{clock_time(st.next_attempt_at)}  ({relative(st.next_attempt_at, now)})"))
    return rows


def _result(st: TaskStatus, where: str) -> Text:
    if st.result is None:
        return Text("(no result)", style="dim")
    text, dropped = clip_lines(pretty(st.result), _RESULT_LINES)
    body = Text(text)
    if dropped:
        more = plural(dropped, "more line")
        body.append(f"\n… {more}; `pepper status {st.task_id} --json{where}` shows all", style="dim")
    return body


def _error(error: TaskError, traceback: bool) -> Text:
    text, dropped = clip_lines(error.message, _RESULT_LINES)
    body = Text.assemble((error.type, "bold red"), ": ", text)
    if error.kind not in ("error", ""):
        body.append(f"\n(kind: {error.kind})", style="dim")
    if dropped:
        body.append(f"\n… {plural(dropped, 'more line')}", style="dim")
    if error.traceback and traceback:
        body.append("\n\n" + error.traceback.rstrip(), style="dim")
    elif error.traceback:
        body.append("\n(--traceback shows where it was raised)", style="dim")
    return body


# --- pepper tasks ----------------------------------------------------------------------------


def tasks_table(statuses: Sequence[TaskStatus], now: float) -> Table:
    """One row per task, newest first."""
    table = Table(box=None, header_style="bold", pad_edge=False, padding=(0, 2, 0, 0))
    table.add_column("ID", no_wrap=True, min_width=min(40, max((len(st.task_id) for st in statuses), default=2)))
    table.add_column("TYPE", no_wrap=True)
    table.add_column("STATE", no_wrap=True)
    table.add_column("PRIORITY", no_wrap=True)
    table.add_column("AGENT", no_wrap=True)
    table.add_column("TRIES", justify="right", no_wrap=True)
    table.add_column("TIME", no_wrap=True)
    table.add_column("OUTCOME", overflow="ellipsis", min_width=12, max_width=60)
    for st in statuses:
        table.add_row(
            Text(st.task_id),
            Text(st.task_type),
            state_text(st.state),
            Text(st.priority_name),
            Text(st.agent_id or "-"),
            Text(attempts_text(st.attempts, st.max_retries, st.policy).replace(" of ", "/")),
            Text(_age(st, now)),
            _outcome(st),
        )
    return table


def _age(st: TaskStatus, now: float) -> str:
    if st.state.is_final:
        if st.duration is not None:
            return f"took {duration(st.duration)}"
        return f"ended {relative(st.finished_at, now)}" if st.finished_at is not None else "-"
    if st.state is TaskState.IN_PROGRESS and st.started_at is not None:
        return f"running {duration(now - st.started_at)}"
    return f"waiting {duration(now - st.created_at)}" if st.created_at is not None else "-"


def _outcome(st: TaskStatus) -> Text:
    if st.state is TaskState.COMPLETED:
        return _cell(one_line(st.result, 60))
    if st.state is TaskState.CANCELLED:
        return _cell(one_line(st.reason or "cancelled", 60), "dim")
    if st.error is not None:
        prefix = "" if st.state is TaskState.FAILED else "last try: "
        return _cell(one_line(f"{prefix}{st.error.type}: {st.error.message}", 60), "red")
    return Text("")


def _cell(text: str, style: str = "") -> Text:
    """A cell cut with an ellipsis rather than wrapped."""
    return Text(text, style=style, no_wrap=True, overflow="ellipsis")


def counts_line(counts: Mapping[str, int], shown: int, wanted: TaskState | None) -> Text:
    """``5 tasks: 3 completed, 1 failed, 1 pending`` plus a note when the list was cut."""
    total = sum(counts.values())
    parts = [Text.assemble(str(counts[s.value]), " ", state_text(s)) for s in TaskState if counts.get(s.value)]
    line = Text.assemble(plural(total, "task"), " in the database")
    if parts:
        line.append(": ")
        line.append(Text(", ").join(parts))
    available = total if wanted is None else counts.get(wanted.value, 0)
    if shown < available:
        line.append(f"\nshowing the newest {shown}; use --limit N to see more", style="dim")
    return line


# --- pepper agents ---------------------------------------------------------------------------


def agents_table(agents: Sequence[Any], running: Mapping[str, int], standing: Mapping[str, AgentStanding]) -> Table:
    """Agents of live workers: what they take, how loaded they are, their learned score, where they live."""
    table = Table(box=None, header_style="bold", pad_edge=False, padding=(0, 2, 0, 0))
    for name in ("AGENT", "KIND", "TASK TYPES", "SKILLS", "LOAD", "QUEUED", "SCORE", "WORKER"):
        justify: JustifyMethod = "right" if name in ("LOAD", "QUEUED", "SCORE") else "left"
        table.add_column(name, justify=justify, no_wrap=name in ("AGENT", "LOAD", "QUEUED", "SCORE", "WORKER"))
    for agent in agents:
        spec = agent.spec
        known = standing.get(spec.agent_id)
        table.add_row(
            Text(spec.agent_id),
            Text(spec.kind),
            Text(", ".join(sorted(spec.task_types))),
            Text(", ".join(sorted(spec.skills)) or "-"),
            Text(f"{running.get(spec.agent_id, 0)}/{spec.capacity}"),
            Text("-" if known is None else _count(known.queued)),
            Text("-" if known is None else f"{known.score:.2f}"),
            Text(f"{agent.hostname}:{agent.pid}"),
        )
    return table


def _count(value: float) -> str:
    """Whole numbers as such; a share of tasks (waiting for several agents) to one decimal."""
    return f"{round(value, 1):g}"
