"""What an approval or a sub-workflow step may be given besides its kind.

Neither runs on an agent: a person decides an approval, and a sub-workflow's steps run on their own agents.
So such a step takes no task type (but the one its kind implies) and no agent, and of the recovery
strategies only ``skip`` and ``abort`` apply to it: the others (``retry``, ``reassign``, ``fallback``,
``dead_letter``) act on an agent's attempt, which a rejected approval or a failed child run is not.
``check_kind`` refuses the rest when the step is made; ``stored_kind_fields`` reads a spec stored before
they were refused as it ran (what the step was given was ignored, but for its ``skip`` or ``abort``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pepper.errors import WorkflowDefinitionError
from pepper.model.approval import APPROVAL_TYPE, ending
from pepper.model.recovery import Abort, Policy, Skip

#: The task type each kind of step implies (how its stored form names it).
IMPLIED_TYPE = {"approval": APPROVAL_TYPE, "workflow": "workflow"}
_WHAT = {"approval": "an approval step (approval), which a person decides",
         "workflow": "a sub-workflow step (workflow), whose steps run on their own agents"}  # fmt: skip


def check_kind(step_id: str, kind: str, task_type: Any, agent: Any, policy: Policy | None, max_retries: int) -> None:
    """Refuse a task type, an agent, retries or a recovery other than ``skip``/``abort`` on a step of ``kind``
    (``approval`` or ``workflow``), naming the field and what applies."""
    what = f"step {step_id!r} is {_WHAT[kind]}"
    if task_type is not None and task_type != IMPLIED_TYPE[kind]:
        raise WorkflowDefinitionError(
            f"{what}: it takes no task type (got {task_type!r}); a step is one of: a task (a type), a fan-out "
            "(for_each), an approval or a sub-workflow (workflow). Leave the type out, or make it a step of its own",
            step_id=step_id,
            field="task_type",
        )
    if agent is not None:
        raise WorkflowDefinitionError(
            f"{what}: it runs on no agent (got agent {agent!r}); leave the agent out",
            step_id=step_id,
            field="agent",
        )
    applies = "only skip or abort apply to it (e.g. recovery: skip), as it has no agent's attempt to act on"
    if max_retries:
        raise WorkflowDefinitionError(
            f"{what}: it cannot be retried (got retries {max_retries}); {applies}",
            step_id=step_id,
            field="max_retries",
        )
    other = [s.name for s in (policy.strategies if policy is not None else ()) if not isinstance(s, (Skip, Abort))]
    if other:
        raise WorkflowDefinitionError(
            f"{what}: the recovery strategy {other[0]!r} (in {str(policy)!r}) does not apply to it; {applies}",
            step_id=step_id,
            field="policy",
        )


def stored_kind_fields(raw: Mapping[str, Any]) -> dict[str, Any]:
    """The type, agent, retries and recovery of a stored step as ``make_step`` takes them: as stored for a
    task step; for an approval or a sub-workflow, only what applied (its ``skip`` or ``abort``)."""
    if raw.get("approval") is None and raw.get("workflow") is None:
        return {"task_type": raw["type"], "agent": raw.get("agent"), "max_retries": raw.get("retries", 0),
                "recovery": raw.get("recovery")}  # fmt: skip
    stored = raw.get("recovery")
    then = "fail" if stored is None else ending(Policy.parse(stored))
    return {"task_type": None, "agent": None, "max_retries": 0, "recovery": None if then == "fail" else then}
