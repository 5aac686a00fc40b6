"""``WorkflowController`` (a DAG of steps, run as often as you like) and ``TaskSequencer`` (tasks plus a
dependency map, run the same way).

Over 400 lines: the one face of workflows, its calls each a thin step over the Backend.
"""

from __future__ import annotations

import collections.abc as abc
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pepper.agents.base import BaseAgent
from pepper.core.component import Component
from pepper.core.runtime import Runtime, resolve
from pepper.engine.portal import blocking, on_engine_loop
from pepper.errors import AgentAlreadyRegisteredError, ValidationError, WorkflowDefinitionError, suggest
from pepper.model.agent import AgentSpec
from pepper.model.approval import Approval
from pepper.model.task_spec import STEP, task_arguments
from pepper.model.workflow import Step, WorkflowSpec, make_step
from pepper.model.workflow_run import RunRecord, RunState, WorkflowResult
from pepper.scheduling.eligibility import unrunnable_steps
from pepper.workflow_file import parse_workflow_file


def _check_timeout(timeout: Any) -> float | None:
    if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0):
        raise ValidationError(f"timeout must be a positive number of seconds, got {timeout!r}", field="timeout")
    return timeout


def _check_inputs(inputs: Any) -> dict[str, Any]:
    if inputs is None:
        return {}
    if not isinstance(inputs, abc.Mapping):
        raise ValidationError(f"a run's inputs must be a mapping, got {type(inputs).__name__}", field="inputs")
    return dict(inputs)


class _Runs(Component):
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
        inputs = _check_inputs(inputs)
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
        return await backend.wait_run(self._run_id(run_id), _check_timeout(timeout), cancel_at_timeout=limit)

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
        backend = await self.runtime.backend(start=True)
        return await backend.cancel_run(run_id, reason or "the run was cancelled on request")

    @on_engine_loop
    async def approve_async(
        self, run_id: str, step_id: str, *, approve: bool = True, reason: str | None = None, by: str | None = None
    ) -> Approval:
        """Approve (``approve=False``: reject) a step of a run that waits for a person; ``by`` says who
        decides (required when the step names its approvers). The first decision wins: a second one, a step
        that does not wait, or an unknown run or step raise a typed error and change nothing."""
        for name, given in (("run_id", run_id), ("step_id", step_id)):
            if not isinstance(given, str) or not given:
                raise ValidationError(f"{name} must be a non-empty string, got {given!r}", field=name)
        for name, text in (("reason", reason), ("by", by)):
            if text is not None and not isinstance(text, str):
                raise ValidationError(f"{name} must be text, got {type(text).__name__}", field=name)
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
        backend = await self.runtime.backend(start=True)
        spec = getattr(self, "spec", None)
        await backend.resume_run(run_id, spec)
        self.run_id = run_id
        return await backend.wait_run(run_id, _check_timeout(timeout))

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
        not ended, an unknown step or nothing to run again; nothing is changed then."""
        await self.start_rerun_async(run_id, failed_only, from_step)
        backend = await self.runtime.backend(start=True)
        return await backend.wait_run(self._run_id(run_id), _check_timeout(timeout))

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


class WorkflowController(_Runs):
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
        whose result (its steps' results by step id) is the step's. Neither needs a ``task_type``.
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
            child = workflow.spec
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
        return await self._start(self.spec, {**self.default_inputs, **_check_inputs(inputs)})

    @on_engine_loop
    async def execute(
        self, inputs: abc.Mapping[str, Any] | None = None, timeout: float | None = None
    ) -> WorkflowResult:
        """Run the workflow to its end and return how each step went.

        ``inputs`` reach every step (under its own inputs). With ``timeout`` seconds, a run that has not
        finished by then is cancelled and ``WorkflowTimeoutError`` raised (its ``result`` says where it stood).
        """
        _check_timeout(timeout)
        run_id = await self._start(self.spec, {**self.default_inputs, **_check_inputs(inputs)})
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
        """The latest runs of this workflow (by name), most recent first."""
        found = self.runtime.read(lambda backend: backend.list_runs(max(limit * 5, 100)))
        return [r for r in found if r.workflow == self.name][:limit]

    def __repr__(self) -> str:
        return f"WorkflowController({self.name!r}, steps={[s.step_id for s in self.steps]})"


@dataclass(frozen=True, slots=True)
class Sequence:
    """Tasks and their dependencies, checked: ``order`` is a topological order of the task ids."""

    spec: WorkflowSpec
    order: tuple[str, ...]

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def tasks(self) -> tuple[Step, ...]:
        return self.spec.steps

    def __len__(self) -> int:
        return len(self.spec.steps)


class TaskSequencer(_Runs):
    """Runs a list of tasks with a dependency map, on the same engine and with the same results as a workflow."""

    def __init__(self, runtime: Runtime | None = None) -> None:
        super().__init__(runtime)
        self.run_id: str | None = None

    def create_sequence(
        self,
        tasks: abc.Iterable[abc.Mapping[str, Any]],
        dependencies: abc.Mapping[str, abc.Iterable[str]] | None = None,
        *,
        name: str = "sequence",
        fail_fast: bool = False,
    ) -> Sequence:
        """Check ``tasks`` (``{"id", "type", ...}`` mappings) and ``dependencies`` (id -> ids it needs first)."""
        if isinstance(tasks, (str, bytes, abc.Mapping)) or not isinstance(tasks, abc.Iterable):
            raise ValidationError(
                "tasks must be a list of mappings such as {'id': 'a', 'type': 'review'}", field="tasks"
            )
        if dependencies is not None and not isinstance(dependencies, abc.Mapping):
            raise ValidationError("dependencies must map a task id to the ids it depends on", field="dependencies")
        spec = WorkflowSpec(name, (), fail_fast)
        extra = {k: list(v) if not isinstance(v, str) else [v] for k, v in (dependencies or {}).items()}
        for item in tasks:
            fields = _task_fields(item)
            step_id = fields.pop("step_id")
            deps = fields.pop("dependencies", None) or ()
            fields["dependencies"] = [*([deps] if isinstance(deps, str) else deps), *extra.get(step_id, ())]
            spec = spec.with_step(make_step(step_id, fields.pop("task_type"), **fields))
        known = spec.by_id
        for task_id in extra:
            if task_id not in known:
                raise WorkflowDefinitionError(
                    f"dependencies name task {task_id!r}, which is not among the tasks "
                    f"({', '.join(known)}).{suggest(task_id, known)}",
                    field="dependencies",
                )
        return Sequence(spec, tuple(spec.validate()))

    @on_engine_loop
    async def execute_sequence(
        self, sequence: Sequence, inputs: abc.Mapping[str, Any] | None = None, timeout: float | None = None
    ) -> WorkflowResult:
        """Run the sequence to its end (each call is a new run) and return how each task went."""
        if not isinstance(sequence, Sequence):
            raise ValidationError("execute_sequence() takes what create_sequence() returned", field="sequence")
        _check_timeout(timeout)
        run_id = await self._start(sequence.spec, inputs)
        return await self._wait(run_id, timeout, limit=True)

    def run_sequence(
        self, sequence: Sequence, inputs: abc.Mapping[str, Any] | None = None, timeout: float | None = None
    ) -> WorkflowResult:
        """``execute_sequence`` for code without asyncio."""
        return self._portal().call(self.execute_sequence(sequence, inputs, timeout))


def _task_fields(item: Any) -> dict[str, Any]:
    """``make_step``'s arguments from a task mapping, read through the one task-spec schema."""
    if not isinstance(item, abc.Mapping):
        raise ValidationError(f"each task must be a mapping such as {{'id': 'a', 'type': 'review'}}, got {item!r}")
    try:
        fields = task_arguments(item, STEP)
    except ValidationError as exc:
        raise WorkflowDefinitionError(str(exc), field=exc.field) from None
    if "policy" in fields:
        fields["recovery"] = fields.pop("policy")
    fields["step_id"] = fields.pop("task_id", None)
    return fields


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
