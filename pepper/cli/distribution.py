"""``pepper why``: what keeps a task from running."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import click
from rich.console import Group, RenderableType
from rich.padding import Padding
from rich.table import Table
from rich.text import Text

import pepper
from pepper.cli.common import db_hint, db_option, json_option, open_runtime, server_option, where_hint
from pepper.cli.render import (
    attempts_text,
    clock_time,
    duration,
    make_console,
    one_line,
    print_json,
    relative,
    state_text,
)
from pepper.cli.step_notes import shaped_step, step_note
from pepper.core import AgentSelector, TaskOrchestrator
from pepper.core.agents_view import read_agents
from pepper.errors import NoEligibleAgentError, TaskNotFoundError
from pepper.model.resources import describe
from pepper.model.status import TaskStatus
from pepper.model.task import TaskState
from pepper.scheduling.backlog import waiting_from, work_ahead

_WAITING = (TaskState.PENDING, TaskState.BLOCKED, TaskState.PARKED)


# --- pepper why ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Explanation:
    """A task's status and, while it waits, how the agents see it."""

    status: TaskStatus
    requirements: Mapping[str, Any]
    pinned: str | None
    #: ``AgentProfile``s from ``AgentSelector.rank_agents``, best first.
    eligible: Sequence[Any] = ()
    rejected: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    #: Whether any worker's agent is online at all (for the hint on how to start one).
    online: bool = False

    def to_dict(self) -> dict[str, Any]:
        st = self.status
        return {
            "task_id": st.task_id,
            "state": st.state.value,
            "task_type": st.task_type,
            "agent_id": st.agent_id,
            "pinned_agent": self.pinned,
            "requirements": dict(self.requirements),
            "waiting_on": [w.to_dict() for w in st.waiting_on],
            "eligible": [p.to_dict() for p in self.eligible],
            "rejected": {agent: list(reasons) for agent, reasons in self.rejected.items()},
        }


@click.command()
@click.argument("task_id", metavar="TASK")
@json_option
@db_option
@server_option
def why(task_id: str, as_json: bool, db: str | None) -> None:
    """Explain what keeps a task from running.

    Lists what the task waits for (dependencies, agents, capacity, its place
    in the queue, a retry delay) and, while it waits, which online agents
    could take it (best first, with their score and load) or why none can.
    For a task that already ran, says who ran it, when, and how it ended.

    Always exits 0 once the task is found: it explains, it does not judge.

    \b
    Example:
      pepper why review-1
    """
    with open_runtime(db) as runtime:
        shaped = shaped_step(runtime, task_id)
        ended = shaped is not None and _has_ended(runtime, task_id)
        note = None if shaped is None else step_note(runtime, *shaped, db, ended=ended)
        if note is None or ended:
            explanation = _explain(runtime, task_id)
    if note is not None and not ended:
        if as_json:
            print_json({"task_id": task_id, "step": task_id.rpartition("/")[2], "note": note})
        else:
            make_console().print(Text.assemble((task_id, "bold"), "  ", note))
        return
    if as_json:
        print_json({**explanation.to_dict(), **({"note": note} if note is not None else {})})
        return
    make_console().print(_why_view(explanation, time.time(), db, note))


def _has_ended(runtime: pepper.Runtime, task_id: str) -> bool:
    """Whether the task of an approval, fan-out or sub-workflow step has ended (False before it has one)."""
    try:
        return TaskOrchestrator(runtime).get_task_status(task_id).state.is_final
    except TaskNotFoundError:
        return False


def _explain(runtime: pepper.Runtime, task_id: str) -> _Explanation:
    status = TaskOrchestrator(runtime).get_task_status(task_id)
    if runtime.server:  # the server's status says what the task waits for; ranking its agents needs its database
        return _Explanation(status, {}, None, online=True)
    record = runtime.store.get_tasks([task_id]).get(task_id)
    requirements = record.task.requirements.to_dict() if record is not None else {}
    pinned = (record.placement or record.task.agent) if record is not None else None
    if status.state not in _WAITING:
        return _Explanation(status, requirements, pinned)
    selector = AgentSelector(runtime)
    eligible = selector.rank_agents(status.task_type, requirements)
    rejected: Mapping[str, tuple[str, ...]] = {}
    if not eligible:
        try:
            selector.select_agent(status.task_type, requirements)
        except NoEligibleAgentError as exc:
            rejected = exc.rejected
    online = bool(eligible or rejected)
    if pinned is not None:  # only the pinned agent may take it; the others do not matter
        eligible = [p for p in eligible if p.agent_id == pinned]
        rejected = {agent: reasons for agent, reasons in rejected.items() if agent == pinned}
    if status.state is TaskState.PENDING:
        eligible = _after_the_queue(runtime, task_id, eligible)
    return _Explanation(status, requirements, pinned, eligible, rejected, online)


def _after_the_queue(runtime: pepper.Runtime, task_id: str, eligible: list[Any]) -> list[Any]:
    """``eligible`` with each agent's projected finish pushed back by its share of the work queued ahead of the
    task, spread over its capacity (the selector's projection is for a task starting at the next free slot)."""
    waiting = waiting_from(runtime.store.ready_tasks(runtime.clock.now()))
    me = next((w for w in waiting if w.task_id == task_id), None)
    if me is None or not eligible:
        return eligible
    specs = [a.spec for a in runtime.store.workers.agents()]
    ageing = runtime.settings.priority_ageing
    work = read_agents(runtime, lambda view: work_ahead(me, waiting, specs, ageing, view.expected))
    return [
        p
        if p.projected_finish is None
        else replace(p, projected_finish=p.projected_finish + work.get(p.agent_id, 0.0) / p.capacity)
        for p in eligible
    ]


def _why_view(ex: _Explanation, now: float, db: str | None, note: str | None = None) -> Group:
    st = ex.status
    header = Text.assemble(("Task ", "bold"), (st.task_id, "bold"), "  ", state_text(st.state))
    parts: list[RenderableType] = [header, _indent(_facts(ex))]
    if st.state not in _WAITING:
        title = "It is running" if st.state is TaskState.IN_PROGRESS else "It has finished"
        outcome = _outcome(st, now, db)
        if note is not None:  # what an approval, fan-out or sub-workflow step became
            outcome = Text("\n").join([outcome, Text(note[0].upper() + note[1:] + ".")])
        return Group(*parts, *_section(title, outcome))
    if st.waiting_on:
        replay = f"`pepper dlq replay {st.task_id}"  # the command it names takes this database too
        told = [w.message.replace(f"{replay}`", f"{replay}{where_hint(db)}`") for w in st.waiting_on]
        reasons = Text("\n").join(Text.assemble("• ", m.replace("\n", "\n  ")) for m in told)
    else:
        reasons = Text("nothing recorded: a worker with a matching agent should start it shortly", style="dim")
    title = "Why it is blocked" if st.state is TaskState.BLOCKED else "Why it is not running"
    return Group(*parts, *_section(title, reasons), *_agents_section(ex, db))


def _section(title: str, body: RenderableType) -> list[RenderableType]:
    indented = _indent(body) if isinstance(body, Text) else Padding(body, (0, 0, 0, 2), expand=False)
    return [Text(""), Text(title, style="bold"), indented]


def _indent(text: Text, prefix: str = "  ") -> Text:
    """Each line of ``text`` behind ``prefix`` (unlike ``Padding``, without spaces after the text)."""
    return Text("\n").join(Text(prefix) + line for line in text.split("\n"))


def _facts(ex: _Explanation) -> Text:
    st = ex.status
    rows = [("type", st.task_type), ("priority", st.priority_name)]
    if ex.requirements:
        rows.append(("needs", _needs(ex.requirements)))
    if ex.pinned:
        rows.append(("pinned to", ex.pinned))
    if st.dependencies:
        rows.append(("depends on", ", ".join(st.dependencies)))
    width = max(len(label) for label, _ in rows) + 2
    return Text("\n").join(Text.assemble((label.ljust(width), "dim"), value) for label, value in rows)


def _needs(requirements: Mapping[str, Any]) -> str:
    parts = []
    skills = requirements.get("skills") or []
    if skills:
        parts.append(f"{'skill' if len(skills) == 1 else 'skills'} {', '.join(skills)}")
    if requirements.get("resources"):
        parts.append(describe(requirements["resources"]))
    if requirements.get("performance_score") is not None:
        parts.append(f"a score of at least {requirements['performance_score']:.2f}")
    if requirements.get("availability"):
        parts.append("an agent with a free slot")
    return "; ".join(parts)


def _outcome(st: TaskStatus, now: float, db: str | None) -> Text:
    """Who ran it, when, and how it ended, in a sentence or two."""
    hint = where_hint(db)  # status and feedback take --server
    agent = f"agent {st.agent_id}" if st.agent_id else "no agent"
    attempt = f"attempt {attempts_text(st.attempts, st.max_retries, st.policy)}"
    lines: list[Text] = []
    if st.state is TaskState.IN_PROGRESS:
        since = f" since {clock_time(st.started_at)} ({duration(now - st.started_at)})" if st.started_at else ""
        lines.append(Text(f"It is running on {agent}{since}, {attempt}."))
        if st.progress is not None:
            extra = f": {st.progress_message}" if st.progress_message else ""
            lines.append(Text(f"Progress {st.progress:.0%}{extra}"))
    elif st.state is TaskState.COMPLETED and not st.agent_id:  # a step no agent runs (an approval, a fan-out...)
        lines.append(Text(f"It completed at {clock_time(st.finished_at)}."))
        lines.append(Text(f"`pepper status {st.task_id}{hint}` shows its result.", style="dim"))
    elif st.state is TaskState.COMPLETED:
        took = f" after running {duration(st.duration)}" if st.duration is not None else ""
        lines.append(Text(f"It completed on {agent} at {clock_time(st.finished_at)}{took} ({attempt})."))
        lines.append(Text(f"`pepper status {st.task_id}{hint}` shows its result; "
                          f"`pepper feedback {st.task_id} --rating 1-5{hint}` rates it.", style="dim"))  # fmt: skip
    elif st.state is TaskState.FAILED:
        where = f"on {agent}" if st.agent_id else "before any agent ran it"
        lines.append(Text(f"It failed {where} at {clock_time(st.finished_at)} ({attempt})."))
        if st.error is not None:
            lines.append(Text(one_line(f"{st.error.type}: {st.error.message}", 160), style="red"))
        more = " --traceback" if st.error is not None and st.error.traceback else ""
        lines.append(Text(f"`pepper status {st.task_id}{more}{hint}` shows the whole error.", style="dim"))
    else:  # cancelled
        ran = f" (it had run on {agent})" if st.agent_id else " before it ran"
        when = f" at {clock_time(st.finished_at)} ({relative(st.finished_at, now)})" if st.finished_at else ""
        lines.append(Text(f"It was cancelled{when}{ran}: {(st.reason or 'no reason given').rstrip('.')}."))
    return Text("\n").join(lines)


def _agents_section(ex: _Explanation, db: str | None) -> list[RenderableType]:
    st = ex.status
    if ex.eligible:
        later = " once its dependencies complete" if st.state is TaskState.BLOCKED else ""
        return _section(f"Agents that could take it{later}, best first", _profiles_table(ex.eligible))
    title = f"Agents for {st.task_type!r} tasks"
    if ex.rejected:
        width = max(len(agent) for agent in ex.rejected) + 2
        rows = [
            Text.assemble((agent.ljust(width), "bold"), "; ".join(reasons))
            for agent, reasons in sorted(ex.rejected.items())
        ]
        return _section(title, Text("\n").join([Text("No online agent can take it:"), *rows]))
    if ex.pinned and ex.online:
        return _section(
            title, Text(f"Its pinned agent {ex.pinned!r} is not among the online agents that could take it.")
        )
    body = Text.assemble(
        "No agents are online. Agents appear while a `pepper worker` runs; start one with:\n",
        (f"  pepper worker --agents agents.yaml{db_hint(db)}", "dim"),
    )
    return _section(title, body)


def _profiles_table(profiles: Sequence[Any]) -> Table:
    table = Table(box=None, header_style="bold", pad_edge=False, padding=(0, 2, 0, 0))
    for name in ("AGENT", "SCORE", "LOAD", "WOULD FINISH", "SKILLS"):
        table.add_column(name, justify="right" if name in ("SCORE", "LOAD") else "left", no_wrap=True)
    for p in profiles:
        finish = "-" if p.projected_finish is None else f"in ~{duration(p.projected_finish)}"
        table.add_row(
            Text(p.agent_id),
            Text(f"{p.performance_score:.2f}"),
            Text(f"{p.running}/{p.capacity}"),
            Text(finish),
            Text(", ".join(sorted(p.skills)) or "-"),
        )
    return table
