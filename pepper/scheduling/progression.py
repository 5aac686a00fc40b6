"""What a workflow run does next, given where its steps stand.

Steps without a condition are submitted when the run starts and the engine
runs them as their dependencies complete. A step with a condition waits
(without a task) until every dependency is final; then, if they all
completed, its condition is decided (``release``); if one failed or was
cancelled it can never run (``doom``). Failure semantics:

- by default a failed step cancels the steps that depend on it (the engine does
  this for tasks) and independent branches run on; the run ends ``failed``;
- with ``fail_fast``, when a step's recovery policy aborts the run, or when the
  run is cancelled, every unfinished step is cancelled at once.

A run ends when every step is final: ``cancelled`` if it was cancelled, else
``failed`` if a step failed, else ``cancelled`` if a step was cancelled from
outside the run, else ``completed`` (skipped steps count as done).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from pepper.model.task import TaskState
from pepper.model.workflow import WorkflowSpec
from pepper.model.workflow_run import RunState


@dataclass(frozen=True, slots=True)
class Advance:
    """The next moves of a run."""

    release: tuple[str, ...] = ()  # conditional steps whose dependencies all completed: decide them now
    doom: Mapping[str, str] = field(default_factory=dict)  # steps without a task that can never run -> why
    cancel: Mapping[str, str] = field(default_factory=dict)  # unfinished steps to cancel -> why
    finished: RunState | None = None  # the run's final state, once every step is final
    reason: str | None = None

    def __bool__(self) -> bool:
        return bool(self.release or self.doom or self.cancel or self.finished)


def advance(
    spec: WorkflowSpec,
    states: Mapping[str, TaskState | None],
    *,
    cancelled: str | None = None,
    stopped: str | None = None,
) -> Advance:
    """The next moves for a run whose steps stand at ``states`` (step id -> state, None: no task yet).

    ``cancelled`` is the reason the run was cancelled, if it was; ``stopped`` why it must stop (a step
    aborted it).
    """
    failed = [s.step_id for s in spec.steps if states.get(s.step_id) is TaskState.FAILED]
    stop = cancelled or stopped
    if stop is None and failed and spec.fail_fast:
        stop = f"the run stopped at the first failure (fail_fast): step {failed[0]!r} failed"
    if stop is not None:
        cancel = {s.step_id: stop for s in spec.steps if (st := states.get(s.step_id)) is not None and not st.is_final}
        doom = {s.step_id: stop for s in spec.steps if states.get(s.step_id) is None}
        if cancel or doom:
            return Advance(doom=doom, cancel=cancel)
    release: list[str] = []
    doom = {}
    for step in spec.steps:
        if states.get(step.step_id) is not None:
            continue
        deps = [(d, states.get(d)) for d in step.dependencies]
        if any(st is None or not st.is_final for _, st in deps):
            continue
        broken = next(((d, st) for d, st in deps if st is not TaskState.COMPLETED), None)
        if broken is None:
            release.append(step.step_id)
        else:
            doom[step.step_id] = f"dependency {broken[0]!r} {broken[1].value}"  # type: ignore[union-attr]
    if release or doom:
        return Advance(tuple(release), doom)
    if all((st := states.get(s.step_id)) is not None and st.is_final for s in spec.steps):
        return _outcome(spec, states, cancelled, failed)
    return Advance()


def _outcome(
    spec: WorkflowSpec, states: Mapping[str, TaskState | None], cancelled: str | None, failed: list[str]
) -> Advance:
    if cancelled is not None:
        return Advance(finished=RunState.CANCELLED, reason=cancelled)
    if failed:
        names = ", ".join(repr(s) for s in failed)
        return Advance(finished=RunState.FAILED, reason=f"step{'s' if len(failed) > 1 else ''} {names} failed")
    stopped = [s.step_id for s in spec.steps if states.get(s.step_id) is TaskState.CANCELLED]
    if stopped:
        names = ", ".join(repr(s) for s in stopped)
        return Advance(finished=RunState.CANCELLED, reason=f"step{'s' if len(stopped) > 1 else ''} {names} cancelled")
    return Advance(finished=RunState.COMPLETED)
