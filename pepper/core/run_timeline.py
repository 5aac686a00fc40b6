"""A run's timeline as data: every attempt of every step on its agent, the plan beside it, the critical path.

What a Gantt chart of a run shows, for pages that draw it themselves (the dashboard): the same attempts the
PNG chart draws (``pepper.drawing``), the predicted timeline stored with the run, and the chain of steps that
set the run's length, measured on the steps' actual durations (a running step counts until now; a step that
has not run counts its planned duration, or nothing).
"""

from __future__ import annotations

from typing import Any

from pepper.core.chart_inputs import earlier_attempts, fan_out_items
from pepper.core.runtime import Runtime
from pepper.core.workflow import WorkflowController
from pepper.scheduling.planning import PlanTask, critical_path


def run_timeline(runtime: Runtime, run_id: str) -> dict[str, Any]:
    """The timeline of run ``run_id`` (``RunNotFoundError`` if there is none); times are epoch seconds, the
    plan's are seconds from the run's creation."""
    result = WorkflowController(runtime=runtime).status(run_id)
    now = runtime.clock.now()
    plan = result.plan or {}
    slots: dict[str, Any] = plan.get("steps") or {}
    bars: list[dict[str, Any]] = []
    for step_id, attempts in earlier_attempts(runtime, result).items():
        bars += [{"step_id": step_id, "attempt": a.attempt, "agent_id": a.agent_id, "start": a.started_at,
                  "end": a.ended_at, "status": a.status, "error": a.error} for a in attempts]  # fmt: skip
    cost: dict[str, float] = {}
    items = fan_out_items(runtime, result)
    for step in result.steps.values():
        for item in items.get(step.step_id, ()):  # a fanned-out step: a bar per item instead of its own
            if item.started_at is not None:
                bars.append({"step_id": item.label, "attempt": 1, "agent_id": item.agent_id, "start": item.started_at,
                             "end": item.finished_at, "status": item.status, "error": None})  # fmt: skip
        if step.started_at is not None and step.step_id in items:
            end = step.finished_at
            cost[step.step_id] = max(0.0, (end if end is not None else now) - step.started_at)
        elif step.started_at is not None:
            end = step.finished_at
            bars.append({"step_id": step.step_id, "attempt": step.attempts, "agent_id": step.agent_id,
                         "start": step.started_at, "end": end, "status": step.status,
                         "error": str(step.error) if step.error else None})  # fmt: skip
            cost[step.step_id] = max(0.0, (end if end is not None else now) - step.started_at)
        else:
            slot = slots.get(step.step_id)
            cost[step.step_id] = float(slot[2] - slot[1]) if slot else 0.0
    tasks = [PlanTask(s.step_id, "", cost[s.step_id], tuple(s.dependencies)) for s in result.steps.values()]
    length, path = critical_path(tasks, cost)
    return {
        "run_id": result.run_id, "state": result.status.value, "created_at": result.created_at,
        "finished_at": result.finished_at, "now": now,
        "dependencies": {s.step_id: list(s.dependencies) for s in result.steps.values()},
        "bars": sorted(bars, key=lambda b: (b["start"] or 0.0, b["step_id"], b["attempt"])),
        "critical_path": path, "critical_path_length": length,
        "planned": {step: {"agent_id": s[0], "start": s[1], "end": s[2]} for step, s in slots.items()},
        "planned_makespan": plan.get("makespan"), "lower_bound": plan.get("lower_bound"),
        "assumed": list(plan.get("assumed") or ()),
    }  # fmt: skip
