"""Starting an attempt once the commit that claims it is durable.

``launch`` checks that the claim still holds (the task may have been cancelled or taken over meanwhile),
gathers what the agent receives (its dependencies' results, then each of ``Engine.preparers``) and hands the
attempt to ``engine.attempts``. An attempt that cannot start ends at once, as a failed attempt whose recovery
decides what follows.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import replace
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from pepper.engine.hooks import tell_started
from pepper.engine.task_statuses import completed_results
from pepper.errors import ExpressionError
from pepper.model.events import AttemptEnded, Start
from pepper.model.run import TaskRun
from pepper.model.slots import quick_init
from pepper.model.status import TaskError
from pepper.model.task import TaskState

if TYPE_CHECKING:
    from pepper.engine.shell import Engine

log = logging.getLogger("pepper.engine")
_NO_RESULTS: Mapping[str, Any] = MappingProxyType({})
_new_run = quick_init(TaskRun)  # one per attempt: built without the frozen dataclass's detour
_IN_PROGRESS = TaskState.IN_PROGRESS  # (an enum member read from its class costs a look-up through the metaclass)


def launch(engine: Engine, start: Start) -> None:
    """Start the attempt ``start`` claimed, if the claim still holds; else end it or leave it."""
    t = engine.state.tasks.get(start.task_id)
    if t is None or t.state is not _IN_PROGRESS or t.owner != engine.worker_id or t.attempts != start.attempt:
        return  # cancelled or taken over before its claim was committed
    if not engine.state.accepting:  # claimed before the stop began, committed after the drain: run it later
        error = TaskError("Interrupted", "the worker shut down before the attempt started", kind="interrupted")
        ended = AttemptEnded(start.task_id, start.attempt, engine.clock.now(), False, error=error, requeue=True,
                             cause=f"attempt:{start.task_id}:{start.attempt}")  # fmt: skip
        engine.dispatch(ended)
        return
    earlier = engine.attempts.running.get(start.task_id)
    if earlier is not None:  # never two attempts of one task here: the state machine holds the newer one
        log.error("task %s was still running here (attempt %d) when attempt %d started; the earlier one stops",
                  start.task_id, earlier.run.attempt, start.attempt)  # fmt: skip
        engine.attempts.abort(start.task_id, earlier.run.attempt)
    handle = engine.handles.get(start.agent_id)
    if handle is None:
        engine.dispatch(_refused_start(engine, start, "the agent was unregistered before the attempt started"))
        return
    task = t.task
    try:
        results = completed_results(engine, task.dependencies) if task.dependencies else _NO_RESULTS
        if t.recovery.run_as is not None:  # a recovery fell back to another task type
            task = replace(task, task_type=t.recovery.run_as)
        for prepare in engine.preparers:
            task, results = prepare(task, results)
    except ExpressionError as exc:
        engine.dispatch(_refused_start(engine, start, str(exc), "ExpressionError"))
        return
    except Exception as exc:  # the store could not be read: the attempt fails, its recovery decides
        log.exception("could not prepare attempt %d of task %s", start.attempt, start.task_id)
        engine.dispatch(_refused_start(engine, start, f"could not read its inputs: {exc}", "StartFailed"))
        return
    run = _new_run(task, start.attempt, start.agent_id, results, engine.report_progress, _log=engine.attempts.log_line)
    try:
        started = engine.attempts.start(handle, run)
    except Exception as exc:  # never the rest of the commit's starts: this attempt fails, its recovery decides
        log.exception("could not start attempt %d of task %s", start.attempt, start.task_id)
        engine.dispatch(_refused_start(engine, start, f"could not start: {type(exc).__name__}: {exc}", "StartFailed"))
        return
    if engine.metrics is not None or engine.hooks:
        tell_started(engine, t.task, start.attempt, start.agent_id, started)


def _refused_start(engine: Engine, start: Start, why: str, kind: str = "AgentUnavailable") -> AttemptEnded:
    return AttemptEnded(start.task_id, start.attempt, engine.clock.now(), False, error=TaskError(kind, why),
                        cause=f"attempt:{start.task_id}:{start.attempt}")  # fmt: skip
