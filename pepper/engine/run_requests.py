"""What is asked of driven runs from outside: cancel one, wait for one to end, read where one stands
(``RunRequests``, a part of ``RunDriver``)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import TYPE_CHECKING

from pepper.errors import WaitTimeoutError, WorkflowTimeoutError
from pepper.model.events import CancelRequested
from pepper.model.status import TaskStatus
from pepper.model.workflow import task_id_of
from pepper.model.workflow_run import StepResult, WorkflowResult

if TYPE_CHECKING:
    from pepper.engine.runs import _Run
    from pepper.engine.shell import Engine


class RunRequests:
    """``RunDriver``'s answers to requests about runs; every method runs on the engine loop."""

    engine: Engine
    runs: dict[str, _Run]

    if TYPE_CHECKING:  # the driver's own

        def _advance(self, run_id: str) -> None: ...

    def cancel(self, run_id: str, reason: str) -> bool:
        """Cancel a run: every unfinished step is cancelled. False if it had already ended."""
        engine = self.engine
        if not engine.request_run_cancel(run_id, reason):
            engine.store.runs.get(run_id)  # raises RunNotFoundError for an unknown id
            return False
        run = self.runs.get(run_id)
        if run is not None:
            run.cancelled = reason
            self._advance(run_id)
        else:  # driven elsewhere (or not at all): cancel its steps and sub-workflows; their driver sees it
            for child in engine.store.runs.children_of_run(run_id):
                if not child.state.is_final:
                    self.cancel(child.run_id, reason)
            for tid, record in engine.store.runs.tasks(run_id).items():
                if not record.state.is_final:
                    if tid not in engine.state.tasks:
                        engine.load([tid], cause="run cancelled")
                    engine.dispatch(CancelRequested(tid, engine.clock.now(), reason, f"cancel:run:{run_id}"))
        return True

    async def wait(self, run_id: str, timeout: float | None, *, cancel_at_timeout: bool = False) -> WorkflowResult:
        """Wait for a run to end and return its result.

        At ``timeout``: with ``cancel_at_timeout`` (a run's own time limit) a run driven here is cancelled and
        ``WorkflowTimeoutError`` raised; otherwise ``WaitTimeoutError``, and the run goes on.
        """
        run = self.runs.get(run_id)
        deadline = None if timeout is None else self.engine.loop.time() + timeout
        try:
            if run is None:  # driven by another process (or by nobody yet): follow the store
                await self._follow(run_id, deadline)
            else:
                await asyncio.wait_for(asyncio.shield(run.done), timeout)
        except TimeoutError:
            unfinished = [s.step_id for s in self.result(run_id) if s.state is None or not s.state.is_final]
            if not cancel_at_timeout or run_id not in self.runs:
                raise WaitTimeoutError([f"{run_id}/{s}" for s in unfinished], timeout or 0.0) from None
            self.cancel(run_id, f"the run did not finish within its timeout of {timeout:g}s")
            await self.engine.committed()
            raise WorkflowTimeoutError(run_id, timeout or 0.0, unfinished, self.result(run_id)) from None
        await self.engine.committed()
        return self.result(run_id)

    async def _follow(self, run_id: str, deadline: float | None) -> None:
        loop = self.engine.loop
        delay = 0.02
        while not self.engine.store.runs.get(run_id).state.is_final:
            if run_id in self.runs:  # adopted meanwhile
                left = None if deadline is None else max(0.0, deadline - loop.time())
                await asyncio.wait_for(asyncio.shield(self.runs[run_id].done), left)
                return
            if deadline is not None and loop.time() >= deadline:
                raise TimeoutError
            await asyncio.sleep(delay if deadline is None else min(delay, max(0.0, deadline - loop.time())))
            delay = min(delay * 2, 0.5)

    def result(self, run_id: str) -> WorkflowResult:
        """Where a run stands (or how it ended), step by step."""
        engine = self.engine
        record = engine.store.runs.get(run_id)
        run = self.runs.get(run_id)
        spec = run.spec if run is not None else record.spec
        ids = {s.step_id: task_id_of(run_id, s.step_id) for s in spec.steps}
        statuses = self._statuses(list(ids.values()))
        steps = {s.step_id: StepResult.of(s.step_id, ids[s.step_id], statuses.get(ids[s.step_id]), s.dependencies)
                 for s in spec.steps}  # fmt: skip
        return WorkflowResult(run_id, spec.name, record.state, steps, record.inputs, record.created_at,
                              record.finished_at, record.reason, record.plan)  # fmt: skip

    def _statuses(self, task_ids: Sequence[str]) -> dict[str, TaskStatus]:
        tasks = self.engine.state.tasks
        found = {tid: tasks[tid].to_status() for tid in task_ids if tid in tasks}
        missing = [tid for tid in task_ids if tid not in found]
        if missing:
            found.update(self.engine.store.get_statuses(missing))
        return found
