"""What a chart of a run needs from a runtime: the earlier attempts of its steps and the agents' capacities."""

from __future__ import annotations

from pepper.core.runtime import Runtime
from pepper.drawing import EarlierAttempt, ItemRun
from pepper.model import codec
from pepper.model.workflow_run import WorkflowResult

#: How a stored earlier attempt ended, by its ``outcome`` (one ended by a re-run is stored as it ended).
_EARLIER = {"retry": "failed", "interrupted": "interrupted"}


def earlier_attempts(runtime: Runtime, result: WorkflowResult) -> dict[str, list[EarlierAttempt]]:
    """The earlier attempts of each step of ``result`` that ran more than once, first to last."""
    found: dict[str, list[EarlierAttempt]] = {}
    if runtime.server is not None:  # a server's history of attempts is not sent (yet): the last attempts only
        return found
    for step in result.steps.values():
        if step.attempts > 1 or (step.attempts == 1 and step.started_at is None):
            rows = runtime.store.attempts(step.task_id)
            found[step.step_id] = [
                EarlierAttempt(r["attempt"], r["agent_id"], r["started_at"], r["ended_at"],
                               _EARLIER.get(r["outcome"], r["outcome"]), _error_line(r["error"]))
                for r in rows
            ]  # fmt: skip
    return {step_id: attempts for step_id, attempts in found.items() if attempts}


def fan_out_items(runtime: Runtime, result: WorkflowResult) -> dict[str, list[ItemRun]]:
    """The tasks of the items of each fanned-out step of ``result`` that has some, in item order."""
    if runtime.server is not None:  # the server sends a run's steps, not its items
        return {}
    found: dict[str, list[tuple[int, ItemRun]]] = {}
    for task_id, record in runtime.store.runs.tasks(result.run_id).items():
        last = task_id.rpartition("/")[2]
        step_id, bracket, index = last.partition("[")
        if not bracket or not index[:-1].isdigit() or step_id not in result.steps:
            continue
        state = "skipped" if record.outcome is not None and record.outcome.value == "skipped" else record.state.value
        item = ItemRun(last, record.agent_id, record.started_at, record.finished_at, state)
        found.setdefault(step_id, []).append((int(index[:-1]), item))
    return {step_id: [item for _, item in sorted(items, key=lambda x: x[0])] for step_id, items in found.items()}


def agent_capacities(runtime: Runtime) -> dict[str, int]:
    """The capacity of each agent known here: this process's, and those of the live workers."""
    capacities = {spec.agent_id: spec.capacity for spec in runtime.read(lambda backend: backend.online_agents())}
    capacities.update({a.spec.agent_id: a.spec.capacity for a in runtime.agents()})
    return capacities


def _error_line(encoded: str | None) -> str:
    error = codec.decode(encoded) if encoded else None
    if not isinstance(error, dict):
        return ""
    lines = [line.strip() for line in str(error.get("message") or "").splitlines() if line.strip()]
    return f"{error.get('type', 'Error')}: {lines[0]}" if lines else str(error.get("type", "Error"))
