"""What the executor contract's agents do, told by their inputs: one body for every executor.

``run_sync`` is a plain function (a thread, or a Ray actor), ``run_async`` an async one (the engine's
loop); run as a script, it is a command agent (the task as JSON on stdin, the result on stdout). Agents
leave marks in the folder ``inputs["dir"]``: ``started-<attempt>`` (with their pid), ``stopped-<attempt>``
once they saw their cancel. ``do`` is one of ``double``, ``fail``, ``hang``, ``crash``, ``progress``.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any


def _mark(inputs: dict[str, Any], name: str, attempt: int) -> None:
    """Leaves the mark whole at once (written aside, then renamed): who sees it sees the pid in it."""
    mark = Path(inputs["dir"]) / f"{name}-{attempt}"
    aside = mark.with_name(f".{mark.name}.{os.getpid()}")
    aside.write_text(str(os.getpid()))
    aside.replace(mark)


def _instant(inputs: dict[str, Any], attempt: int, deps: dict[str, Any]) -> tuple[bool, Any]:
    """The behaviours that need no waiting: (True, result), or (False, None) for the waiting ones."""
    do = inputs["do"]
    _mark(inputs, "started", attempt)
    if do == "double":
        return True, {"n": inputs["n"] * 2, "deps": deps, "pid": os.getpid()}
    if do == "fail":
        raise RuntimeError(f"asked to fail (attempt {attempt})")
    if do == "crash":
        if attempt == 1:
            os.kill(os.getpid(), signal.SIGKILL)
        return True, "survived"
    return False, None


def run_sync(task: Any) -> Any:
    inputs = task.inputs
    done, result = _instant(inputs, task.attempt, dict(task.dependency_results))
    if done:
        return result
    if inputs["do"] == "progress":
        task.report_progress(0.5, "half way")
    go = Path(inputs["dir"]) / "go"
    while not task.cancelled and not go.exists():
        time.sleep(0.01)
    if task.cancelled:
        _mark(inputs, "stopped", task.attempt)
    return "went"


async def run_async(task: Any) -> Any:
    inputs = task.inputs
    done, result = _instant(inputs, task.attempt, dict(task.dependency_results))
    if done:
        return result
    if inputs["do"] == "progress":
        task.report_progress(0.5, "half way")
    go = Path(inputs["dir"]) / "go"
    try:
        while not go.exists():
            await asyncio.sleep(0.01)
    except asyncio.CancelledError:
        _mark(inputs, "stopped", task.attempt)
        raise
    return "went"


def main() -> None:
    doc = json.load(sys.stdin)
    inputs, attempt = doc["inputs"], doc["attempt"]
    try:
        done, result = _instant(inputs, attempt, doc["dependency_results"])
    except RuntimeError as exc:
        print(exc, file=sys.stderr)
        sys.exit(3)
    if not done:
        time.sleep(600)  # stopped by pepper (its pid is in the started mark)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
