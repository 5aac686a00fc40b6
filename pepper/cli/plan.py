"""``pepper plan``: predict how a workflow file would run, before running it."""

from __future__ import annotations

from pathlib import Path

import click
from rich.table import Table
from rich.text import Text

import pepper
from pepper.cli.common import EXIT_BAD_INPUT, check_gantt_path, db_option, json_option, not_empty
from pepper.cli.inputs import parse_value
from pepper.cli.render import duration, make_console, plural, print_json
from pepper.core import load_agents
from pepper.core.planning import POLICIES, Plan, plan
from pepper.errors import suggest
from pepper.model.timing import MAX_DELAY
from pepper.model.units import parse_duration
from pepper.store.location import may_hold_data
from pepper.workflow_file import WorkflowFile, parse_workflow_file

_SHOWN = 30


def _pairs(values: tuple[str, ...], option: str) -> dict[str, object]:
    pairs: dict[str, object] = {}
    for value in values:
        key, sep, raw = value.partition("=")
        if not sep or not key.strip():
            raise click.BadParameter(f"expected NAME=VALUE, got {value!r}", param_hint=f"'{option}'")
        pairs[key.strip()] = parse_value(raw)
    return pairs


@click.command(name="plan")
@click.argument("file", metavar="FILE", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--agents", "agents_path", metavar="PATH", type=click.Path(path_type=Path), callback=not_empty,
              help="Plan on these agents (an agent file or folder) instead of the workflow file's.")  # fmt: skip
@click.option("--policy", type=click.Choice(POLICIES), default="default", show_default=True,
              help="How ready tasks are ordered: the live scheduler's default, the critical path first, "
                   "or round robin (a yardstick).")  # fmt: skip
@click.option("--duration", "durations", multiple=True, metavar="NAME=SECONDS",
              help="How long a step (by id) or a task type takes, e.g. review=30s (repeatable). "
                   "Otherwise what the database learned, else 1s.")  # fmt: skip
@click.option("--speed", "speeds", multiple=True, metavar="AGENT=FACTOR",
              help="An agent's speed: a task of duration d takes d / FACTOR on it (repeatable).")  # fmt: skip
@click.option("--gantt", metavar="PNG", type=click.Path(dir_okay=False, path_type=Path),
              help="Also draw the predicted timeline as a Gantt chart.")  # fmt: skip
@json_option
@db_option
def plan_command(
    file: Path, agents_path: Path | None, policy: str, durations: tuple[str, ...], speeds: tuple[str, ...],
    gantt: Path | None, as_json: bool, db: str | None,
) -> None:  # fmt: skip
    """Predict how a workflow file would run: when and where each step would run, the makespan beside a
    lower bound no schedule can beat, the critical path, and the busiest agent.

    Nothing runs: the workflow is played in virtual time by pepper's own
    scheduler. Step durations come from --duration, else from what the
    database (--db) learned from earlier runs, else 1 second.

    \b
    Examples:
      pepper plan workflow.yaml
      pepper plan workflow.yaml --duration documentation=20s --speed fast_agent=2 --gantt plan.png
      pepper plan workflow.yaml --policy critical_path --json
    """
    check_gantt_path(gantt, file)
    parsed = parse_workflow_file(file, with_agents=agents_path is None)
    agents = list(load_agents(agents_path)) if agents_path is not None else list(parsed.agents)
    if not agents:
        raise click.UsageError(f"{file} defines no agents: give some with --agents PATH")
    speed_of = _pairs(speeds, "--speed")
    known = {a.spec.agent_id for a in agents}
    for agent_id in speed_of:
        if agent_id not in known:
            raise click.BadParameter(f"no agent {agent_id!r} (agents: {', '.join(sorted(known))})",
                                     param_hint="'--speed'")  # fmt: skip
    pool = [{"agent_id": a.spec.agent_id, "task_types": sorted(a.spec.task_types), "skills": sorted(a.spec.skills),
             "capacity": a.spec.capacity, "resources": a.spec.resources.to_dict(), "executor": a.spec.executor,
             "speed": speed_of.get(a.spec.agent_id, 1.0)} for a in agents]  # fmt: skip
    runtime = pepper.Runtime(db=db, create=False)
    try:
        runtime.store  # noqa: B018 - learned durations come from an existing database only
    except pepper.PepperError:
        runtime.close()
        if may_hold_data(runtime.settings.db):  # there, but not usable: say so, as every command does
            raise
        runtime = pepper.Runtime(db=":memory:")
    try:
        predicted = plan(parsed.spec, pool, _durations(durations, parsed), policy, pool=_pool(runtime, parsed, agents),
                         runtime=runtime)  # fmt: skip
    finally:
        runtime.close()
    written: Path | OSError | None = None
    if gantt is not None:
        try:
            written = predicted.to_gantt(gantt)
        except OSError as exc:
            written = exc
    if as_json:
        print_json(predicted.to_dict())
    else:
        console = make_console()
        for part in _summary(predicted, written if isinstance(written, Path) else None):
            console.print(part)
    if isinstance(written, OSError):
        raise pepper.PepperError(f"could not write the Gantt chart {gantt}: {written.strerror or written}")
    if predicted.unplaced:
        raise click.exceptions.Exit(EXIT_BAD_INPUT)  # it could never finish: `pepper run` refuses it too


def _durations(values: tuple[str, ...], parsed: WorkflowFile) -> dict[str, object]:
    """``--duration`` pairs, each naming a step or a task type of the workflow."""
    given = _pairs(values, "--duration")
    names = {s.step_id for s in parsed.spec.steps} | {s.task_type for s in parsed.spec.steps}
    for name, value in given.items():
        if name not in names:
            raise click.BadParameter(f"{name!r} is neither a step nor a task type of {parsed.path.name} (steps and "
                                     f"types: {', '.join(sorted(names))}){suggest(name, names)}",
                                     param_hint="'--duration'")  # fmt: skip
        try:
            seconds = parse_duration(value, f"{name}={value}")
        except pepper.PepperError as exc:
            raise click.BadParameter(str(exc), param_hint="'--duration'") from None
        if seconds > MAX_DELAY:
            raise click.BadParameter(f"{name}={value}: a duration must be at most 366 days", param_hint="'--duration'")
    return given


def _pool(runtime: pepper.Runtime, parsed: WorkflowFile, agents: list[pepper.BaseAgent]) -> dict[str, float]:
    """The pool a run would have: this machine's (or pepper.toml's), and none of what it does not list."""
    named = {n for a in agents for n in a.spec.resources} | {
        n for s in parsed.spec.steps for n in s.template.requirements.resources
    }
    return {name: 0.0 for name in named} | dict(runtime.pool())


def _summary(p: Plan, gantt: Path | None) -> list[Text | Table]:
    ratio = f" ({p.ratio:.2f}x)" if p.ratio else ""
    count = plural(len(p.schedule) + len(p.unplaced), "step")
    head = Text.assemble(("Plan of ", "bold"), (p.workflow, "bold"), f"  {count}, {p.policy} policy\n")
    if p.unplaced:
        head.append(f"{plural(len(p.unplaced), 'step')} can never run, so `pepper run` would refuse this workflow: "
                    f"{', '.join(p.unplaced)} (no agent takes them, the pool cannot give what they need, or they "
                    "need such a step); the figures below are for the others\n", style="red")  # fmt: skip
    bound = (
        f"{duration(p.lower_bound)}  (critical path {duration(p.critical_path_length)}, "
        f"all the work on the pool {duration(p.work_bound)}"
        + (f", resources {duration(p.resource_bound)})" if p.resource_bound else ")")
    )
    rows = [
        ("makespan", f"{duration(p.makespan)}{ratio}"),
        ("lower bound", bound),
        ("critical path", " → ".join(p.critical_path) or "-"),
        ("bottleneck", f"{p.bottleneck} ({p.utilisation[p.bottleneck]:.0%} busy)" if p.bottleneck else "-"),
    ]
    width = max(len(label) for label, _ in rows) + 2
    facts = Text("\n").join(Text.assemble(("  " + label.ljust(width), "dim"), value) for label, value in rows)
    agents = Table(box=None, header_style="bold", pad_edge=False, padding=(0, 2, 0, 0), title=None)
    for name in ("AGENT", "BUSY", "STEPS"):
        agents.add_column(name, justify="left" if name == "AGENT" else "right")
    for agent_id, use in sorted(p.utilisation.items(), key=lambda kv: -kv[1]):
        agents.add_row(agent_id, f"{use:.0%}", str(sum(1 for s in p.schedule if s.agent_id == agent_id)))
    steps = Table(box=None, header_style="bold", pad_edge=False, padding=(0, 2, 0, 0))
    for name in ("STEP", "AGENT", "START", "END"):
        steps.add_column(name, justify="right" if name in ("START", "END") else "left")
    for slot in p.schedule[:_SHOWN]:
        steps.add_row(slot.task_id, slot.agent_id, f"{slot.start:.2f}s", f"{slot.end:.2f}s")
    out: list[Text | Table] = [head + facts, Text(""), agents, Text(""), steps]
    if len(p.schedule) > _SHOWN:
        out.append(Text(f"... {len(p.schedule) - _SHOWN} more steps (--json lists them all)", style="dim"))
    for note in p.notes:
        out.append(Text(f"note: {note}", style="yellow"))
    if gantt is not None:
        out.append(Text(f"Gantt chart of the plan: {gantt}"))
    return out
