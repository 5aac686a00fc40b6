"""The Graphviz graph of a workflow: ``workflow_dot`` needs nothing and returns DOT text for ``dot -Tpng``."""

from __future__ import annotations

from pepper.drawing.bars import is_dark, status_color
from pepper.model.workflow import WorkflowSpec
from pepper.model.workflow_run import WorkflowResult


def workflow_dot(spec: WorkflowSpec, result: WorkflowResult | None = None) -> str:
    """Graphviz DOT text of ``spec``, left to right: a node per step (id, task type, pinned agent,
    condition) and an edge from each dependency to its dependent; with ``result`` each node is filled
    with its step's status colour and names the status."""
    lines = [
        f"digraph {_quote(spec.name)} {{",
        "  rankdir=LR;",
        '  node [shape=box, style="rounded,filled", fillcolor="white", fontname="Helvetica", fontsize=11];',
        '  edge [color="#555555"];',
    ]
    for step in spec.steps:
        label = [step.step_id, step.task_type]
        if step.agent:
            label.append(f"@{step.agent}")
        if step.condition is not None:
            label.append(f"when: {step.condition}")
        elif step.condition_fn is not None:
            label.append("when: (Python condition)")
        attributes = {"label": "\n".join(label)}
        style = ["rounded", "filled"] + (["dashed"] if step.conditional else [])
        if result is not None and step.step_id in result.steps:
            status = result.steps[step.step_id].status
            attributes["label"] += f"\n[{status}]"
            attributes["fillcolor"] = status_color(status)
            attributes["fontcolor"] = "white" if is_dark(status_color(status)) else "black"
        attributes["style"] = ",".join(style)
        lines.append(f"  {_quote(step.step_id)} [{_attributes(attributes)}];")
    for step in spec.steps:
        for dep in step.dependencies:
            lines.append(f"  {_quote(dep)} -> {_quote(step.step_id)};")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _attributes(attributes: dict[str, str]) -> str:
    return ", ".join(f"{key}={_quote(value)}" for key, value in attributes.items())


def _quote(text: str) -> str:
    """``text`` as a DOT quoted string whose label shows it as is (newlines as line breaks)."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\r\n", "\n").replace("\r", "\n")
    return '"' + escaped.replace("\n", "\\n") + '"'
