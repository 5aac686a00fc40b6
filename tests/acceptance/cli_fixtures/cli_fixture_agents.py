"""Python agents for the CLI acceptance tests."""

from __future__ import annotations

from typing import Any


def add(task: Any) -> dict[str, int]:
    """Sum the inputs ``a`` and ``b`` and the ``sum`` of every dependency's result."""
    upstream = sum(result["sum"] for result in task.dependency_results.values())
    return {"sum": task.inputs.get("a", 0) + task.inputs.get("b", 0) + upstream}
