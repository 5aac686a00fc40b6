"""``WorkflowController`` (a DAG of steps, run as often as you like) and ``TaskSequencer`` (tasks plus a
dependency map, run the same way).

The calls both share on a run are ``core.workflow_runs``; ``TaskSequencer`` is ``core.sequencer``.
"""

from __future__ import annotations

import collections.abc as abc
from dataclasses import replace
from pathlib import Path
from typing import Any

from pepper.agents.base import BaseAgent
from pepper.core.default import resolve
from pepper.core.runtime import Runtime
from pepper.core.sequencer import Sequence, TaskSequencer
from pepper.core.workflow_runs import WorkflowRuns, check_inputs, check_timeout
from pepper.engine.portal import blocking, on_engine_loop
from pepper.errors import AgentAlreadyRegisteredError, ValidationError, WorkflowDefinitionError
from pepper.model.units import check_limit
from pepper.model.workflow import Step, WorkflowSpec, make_step
from pepper.model.workflow_run import RunRecord, RunState, WorkflowResult
from pepper.workflow_file import parse_workflow_file


class WorkflowController(WorkflowRuns):
    """A workflow: steps (task templates) and their dependencies. Each ``execute`` is a new durable run.

    Failure: a failed step cancels the steps that depend on it, independent branches run on, and the run
    ends ``failed``; with ``fail_fast=True`` the first failure cancels every unfinished step.
    """

    def __init__(
        self, name: str | None = None, runtime: Runtime | None = None, *, fail_fast: bool = False,
        description: str | None = None, policy: str = "default", predict: bool = False,
    ) -> None:  # fmt: skip
        if name is not None and (not isinstance(name, str) or not name.strip()):
            raise ValidationError(f"a workflow name must be a non-empty string, got {name!r}", field="name")
        if not isinstance(fail_fast, bool):
            raise ValidationError(f"fail_fast must be True or False, got {fail_fast!r}", field="fail_fast")
        super().__init__(runtime)
        if policy not in ("default", "critical_path"):
            raise ValidationError(f"policy must be 'default' or 'critical_path', got {policy!r}", field="policy")
        self.spec = WorkflowSpec(name or "workflow", (), fail_fast, description)
        self.run_id: str | None = None
        #: How ready steps are ordered: ``default`` (their priorities) or ``critical_path`` (the work that must
        #: still follow each one first; see ``pepper.plan``).
        self.policy = policy
        #: Store each run's predicted timeline with it (``pepper show`` compares it with what happened).
        self.predict = predict
        #: Inputs every run starts from (a workflow file's ``inputs:``); those passed to ``execute`` win.
        self.default_inputs: dict[str, Any] = {}

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def steps(self) -> tuple[Step, ...]:
        return self.spec.steps

    def add_step(
        self,
        step_id: str,
        task_type: str | None = None,
        agent: str | None = None,
        dependencies: abc.Iterable[str] = (),
        inputs: abc.Mapping[str, Any] | None = None,
        priority: str | int = "normal",
        timeout: float | str | None = None,
        max_retries: int = 0,
        requirements: abc.Mapping[str, Any] | None = None,
        condition: str | abc.Callable[..., Any] | None = None,
        metadata: abc.Mapping[str, Any] | None = None,
        recovery: Any = None,
        delay: float | str | None = None,
        for_each: str | abc.Sequence[Any] | None = None,
        max_parallel: int | None = None,
        expected_items: int | None = None,
        approval: abc.Mapping[str, Any] | None = None,
        workflow: WorkflowController | None = None,
    ) -> Step:
        """Add a step: a task of ``task_type`` (on ``agent`` if given) that runs once ``dependencies`` (step
        ids) completed. ``condition`` (an expression such as ``"steps.review.result.approved"``, or a function
        of a ``StepContext``) may skip it; ``recovery`` (e.g. ``"retry(2) -> dead_letter"``) says what a
        failure leads to; ``delay`` (e.g. ``"10m"``) holds it back until that long after the run started.
        ``for_each`` (an expression giving a list, such as
        ``"${{ steps.scan.result.modules }}"``, or a list) makes the step one task per item, at most
        ``max_parallel`` at once, each reading ``${{ item }}`` and ``${{ index }}`` in its inputs; its result
        is the list of the items' results, in order (``expected_items``: how many the planner assumes).
        ``approval`` (``{"timeout": "1h", "approvers": ["ops@example.com"]}``) makes it wait for a person
        (``approve``); ``workflow`` (another ``WorkflowController``) makes it run that workflow as a child run
        (from its ``default_inputs`` as they are now, under the run's inputs and the step's own) whose result
        (its steps' results by step id) is the step's. Neither needs a ``task_type``.
        Returns the step."""
        child = None
        if workflow is not None:
            if not isinstance(workflow, WorkflowController):
                raise WorkflowDefinitionError(
                    f"step {step_id!r}: workflow must be a WorkflowController, got {type(workflow).__name__}",
                    step_id=step_id,
                    field="workflow",
                )
            workflow.spec.validate()
            child = replace(workflow.spec, inputs=dict(workflow.default_inputs))
        step = make_step(step_id, task_type, agent=agent, dependencies=dependencies, inputs=inputs,
                         priority=priority, timeout=timeout, max_retries=max_retries, requirements=requirements,
                         condition=condition, metadata=metadata, recovery=recovery, delay=delay, for_each=for_each,
                         max_parallel=max_parallel, expected_items=expected_items, approval=approval,
                         workflow=child)  # fmt: skip
        self.spec = self.spec.with_step(step)
        return step

    def validate(self) -> list[str]:
        """Check the workflow (steps, dependencies, cycles, agents); its step ids in an order they can run."""
        order = self.spec.validate()
        self._check_agents(self.spec)
        return order

    @on_engine_loop
    async def start_async(self, inputs: abc.Mapping[str, Any] | None = None) -> str:
        """Start a run and return its id at once (``wait``, ``status``, ``cancel`` follow it)."""
        return await self._start(self.spec, {**self.default_inputs, **check_inputs(inputs)})

    @on_engine_loop
    async def execute(
        self, inputs: abc.Mapping[str, Any] | None = None, timeout: float | None = None
    ) -> WorkflowResult:
        """Run the workflow to its end and return how each step went.

        ``inputs`` reach every step (under its own inputs). With ``timeout`` seconds, a run that has not
        finished by then is cancelled and ``WorkflowTimeoutError`` raised (its ``result`` says where it stood).
        """
        check_timeout(timeout)
        run_id = await self._start(self.spec, {**self.default_inputs, **check_inputs(inputs)})
        return await self._wait(run_id, timeout, limit=True)

    @on_engine_loop
    async def wait_async(self, run_id: str | None = None, timeout: float | None = None) -> WorkflowResult:
        """Wait for a run (default: the latest) to end; ``WaitTimeoutError`` after ``timeout`` (the run goes on)."""
        return await self._wait(run_id, timeout)

    def run(self, inputs: abc.Mapping[str, Any] | None = None, timeout: float | None = None) -> WorkflowResult:
        """``execute`` for code without asyncio: blocks until the run ends."""
        return self._portal().call(self.execute(inputs, timeout))

    start = blocking(start_async)
    wait = blocking(wait_async)

    def runs(self, limit: int = 20) -> list[RunRecord]:
        """The latest runs of this workflow (by name), most recent first (at most ``limit``, from 1 to 1,000,000)."""
        check_limit(limit)
        return self.runtime.read(lambda backend: backend.list_runs(limit, workflow=self.name))

    def __repr__(self) -> str:
        return f"WorkflowController({self.name!r}, steps={[s.step_id for s in self.steps]})"


def load_workflow(path: str | Path, runtime: Runtime | None = None) -> WorkflowController:
    """A ``WorkflowController`` from a workflow file (see ``pepper.workflow_file``)."""
    return read_workflow_file(Path(path), runtime)


def read_workflow_file(path: Path, runtime: Runtime | None = None) -> WorkflowController:
    """A ``WorkflowController`` for a workflow file, its agents registered on ``runtime`` (default: the
    default runtime). An agent id already registered there is left as it is, so a file can be loaded again
    in one process. ``controller.default_inputs`` holds the file's ``inputs``."""
    parsed = parse_workflow_file(path)
    spec = parsed.spec
    controller = WorkflowController(spec.name, runtime, fail_fast=spec.fail_fast, description=spec.description)
    controller.spec = spec
    controller.default_inputs = dict(parsed.inputs)
    target = resolve(runtime)
    registered = {a.spec.agent_id for a in target.agents()}
    done: list[BaseAgent] = []
    try:
        for agent in parsed.agents:
            if agent.spec.agent_id in registered:
                continue
            try:
                done.append(target.register_agent(agent))
            except AgentAlreadyRegisteredError:
                continue  # registered meanwhile by another thread
    except BaseException:
        for agent in done:
            target.unregister_agent(agent.spec.agent_id)
        raise
    return controller


__all__ = ["RunState", "Sequence", "TaskSequencer", "WorkflowController", "WorkflowResult", "load_workflow"]
