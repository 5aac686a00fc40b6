"""What a workflow and a task sequence share: starting, following, cancelling, approving, resuming and
re-running their runs on a runtime (``WorkflowRuns``), and the checks of a run's inputs and timeout."""

from __future__ import annotations

import collections.abc as abc
from typing import Any

from pepper.core.component import Component
from pepper.engine.portal import blocking, on_engine_loop
from pepper.errors import ValidationError, WorkflowDefinitionError
from pepper.model import codec
from pepper.model.agent import AgentSpec
from pepper.model.approval import Approval
from pepper.model.units import check_wait
from pepper.model.workflow import WorkflowSpec, step_of
from pepper.model.workflow_run import WorkflowResult
from pepper.scheduling.eligibility import unrunnable_steps
from pepper.scheduling.rerun import rerun_plan


def check_timeout(timeout: Any) -> float | None:
    """The timeout of a run: None or a finite number of seconds above 0 (nan and inf are refused)."""
    return check_wait(timeout, zero=False)


def check_inputs(inputs: Any) -> dict[str, Any]:
    if inputs is None:
        return {}
    if not isinstance(inputs, abc.Mapping):
        raise ValidationError(f"a run's inputs must be a mapping, got {type(inputs).__name__}", field="inputs")
    return dict(inputs)


class WorkflowRuns(Component):
    """Starting, following, cancelling and resuming runs of a ``WorkflowSpec`` on a runtime."""

    run_id: str | None

    def _check_agents(self, spec: WorkflowSpec) -> None:
        """Refuse a workflow with a step that no agent, here or on a live worker sharing the database, can
        take (by type, pinned agent and skills): its run could never finish."""
        runtime = self.runtime
        here = [a.spec for a in runtime.agents()]
        if not unrunnable_steps(spec.steps, here):
            return
        mine = {h.agent_id for h in here}
        online = [a for a in runtime.read(lambda backend: backend.online_agents()) if a.agent_id not in mine]
        problems = unrunnable_steps(spec.steps, here + online)
        if not problems:
            return

        def listed(agents: list[AgentSpec]) -> str:
            return ", ".join(f"{a.agent_id} ({', '.join(sorted(a.task_types))})" for a in agents) or "none"

        first_step, first_key, _ = problems[0]
        raise WorkflowDefinitionError(
            "\n".join(message for _, _, message in problems)
            + f"\nAgents registered here: {listed(here)}; on live workers: {listed(online)}. Register an agent "
            "that can take it (or start a `pepper worker` with one); the run was not started, as it could never "
            "finish.",
            step_id=first_step,
            field={"type": "task_type", "skills": "requirements"}.get(first_key, first_key),
        )

    async def _start(self, spec: WorkflowSpec, inputs: Any) -> str:
        spec.validate()
        self._check_agents(spec)
        inputs = check_inputs(inputs)
        backend = await self.runtime.backend(start=True)  # a run is driven by an engine
        predicted = None
        policy = getattr(self, "policy", "default")
        if policy != "default" or getattr(self, "predict", False):
            from pepper.core.planning import prepare_run

            spec, predicted = prepare_run(spec, self.runtime, policy)
        self.run_id = await backend.start_run(spec, inputs, predicted)
        return self.run_id

    async def _wait(self, run_id: str | None, timeout: Any, *, limit: bool = False) -> WorkflowResult:
        backend = await self.runtime.backend(start=True)
        return await backend.wait_run(self._run_id(run_id), check_timeout(timeout), cancel_at_timeout=limit)

    def _run_id(self, run_id: str | None) -> str:
        if run_id is None:
            if self.run_id is None:
                raise ValidationError("no run yet: execute() or start() one, or pass run_id", field="run_id")
            return self.run_id
        if not isinstance(run_id, str) or not run_id:
            raise ValidationError(f"run_id must be a non-empty string, got {run_id!r}", field="run_id")
        return run_id

    @on_engine_loop
    async def status_async(self, run_id: str | None = None) -> WorkflowResult:
        """Where a run stands now (default: the latest run), step by step."""
        run_id = self._run_id(run_id)
        return self.runtime.read(lambda backend: backend.run_result(run_id))

    @on_engine_loop
    async def cancel_async(self, run_id: str | None = None, reason: str | None = None) -> bool:
        """Cancel a run (default: the latest): its unfinished steps are cancelled. False if it had ended."""
        run_id = self._run_id(run_id)
        _check_text("reason", reason)
        backend = await self.runtime.backend(start=True)
        return await backend.cancel_run(run_id, reason or "the run was cancelled on request")

    @on_engine_loop
    async def approve_async(
        self, run_id: str, step_id: str, *, approve: bool = True, reason: str | None = None, by: str | None = None
    ) -> Approval:
        """Approve (``approve=False``: reject) a step of a run that waits for a person; ``by`` says who
        decides (required when the step names its approvers; on a remote runtime it is the token's name, and
        another name raises ``ImpersonationError``). The first decision wins: a second one, a step
        that does not wait, or an unknown run or step raise a typed error and change nothing."""
        for name, given in (("run_id", run_id), ("step_id", step_id)):
            if not isinstance(given, str) or not given:
                raise ValidationError(f"{name} must be a non-empty string, got {given!r}", field=name)
        for name, text in (("reason", reason), ("by", by)):
            _check_text(name, text)
        backend = await self.runtime.backend()
        return await backend.approve_step(run_id, step_id, bool(approve), reason, by)

    def approve(
        self, run_id: str, step_id: str, *, approve: bool = True, reason: str | None = None, by: str | None = None
    ) -> Approval:
        """``approve_async`` for code without asyncio."""
        return self._portal().call(self.approve_async(run_id, step_id, approve=approve, reason=reason, by=by))

    @on_engine_loop
    async def resume_async(self, run_id: str, timeout: float | None = None) -> WorkflowResult:
        """Drive a run whose process stopped (a crash, a kill) to its end from here; steps that completed are
        not run again. Python conditions come from this workflow."""
        run_id = self._run_id(run_id)
        limit = check_timeout(timeout)
        backend = await self.runtime.backend(start=True)
        spec = getattr(self, "spec", None)
        await backend.resume_run(run_id, spec)
        self.run_id = run_id
        return await backend.wait_run(run_id, limit)

    @on_engine_loop
    async def take_over_async(self, run_id: str) -> None:
        """``resume`` without waiting: this process drives the run from now on (its end is awaited elsewhere)."""
        backend = await self.runtime.backend(start=True)
        await backend.resume_run(self._run_id(run_id), getattr(self, "spec", None))

    @on_engine_loop
    async def rerun_async(
        self, run_id: str, failed_only: bool = True, from_step: str | None = None, timeout: float | None = None
    ) -> WorkflowResult:
        """Run an ended run's failed and cancelled steps again (``failed_only``), or ``from_step`` and every step
        downstream of it, in the same run, and wait for its end: completed steps are kept, and every earlier
        attempt stays in the history. ``RunNotFoundError`` for an unknown run, ``RerunError`` for a run that has
        not ended, an unknown step or nothing to run again, and ``ValidationError`` for a bad ``timeout``;
        nothing is changed then."""
        limit = check_timeout(timeout)
        await self.start_rerun_async(run_id, failed_only, from_step)
        backend = await self.runtime.backend(start=True)
        return await backend.wait_run(self._run_id(run_id), limit)

    def rerun_steps(self, run_id: str, from_step: str | None = None) -> list[str]:
        """The steps ``rerun`` would run again, read from the store without starting anything (no engine, no
        agent): it raises what ``rerun`` raises when it could run nothing."""
        run_id = self._run_id(run_id)
        store = self.runtime.store
        return [step_of(task_id) for task_id in rerun_plan(store.runs.get(run_id), store.runs.tasks(run_id), from_step)]

    @on_engine_loop
    async def start_rerun_async(self, run_id: str, failed_only: bool = True, from_step: str | None = None) -> list[str]:
        """``rerun`` without waiting: this process drives the run from now on (``wait`` follows it). Returns the
        step ids run again."""
        if from_step is None and not failed_only:
            raise ValidationError("rerun() needs failed_only=True or a step to run again from (from_step)",
                                  field="from_step")  # fmt: skip
        run_id = self._run_id(run_id)
        backend = await self.runtime.backend(start=True)
        steps = await backend.rerun_run(run_id, from_step)
        self.run_id = run_id
        return steps

    status = blocking(status_async)
    cancel = blocking(cancel_async)
    resume = blocking(resume_async)
    rerun = blocking(rerun_async)
    start_rerun = blocking(start_rerun_async)


def _check_text(name: str, text: Any) -> None:
    """``text`` (None, or text the database can store) or a ``ValidationError`` naming ``name``."""
    if text is None:
        return
    if not isinstance(text, str):
        raise ValidationError(f"{name} must be text, got {type(text).__name__}", field=name)
    codec.check_utf8(text, text, name)
