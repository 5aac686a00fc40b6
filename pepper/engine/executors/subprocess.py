"""Running a command agent's task as a subprocess.

The task never reaches the command line: its id, type and attempt are in the
environment, its inputs too (``PEPPER_TASK_INPUTS``, when small), and the whole
task as JSON on stdin. So task inputs cannot inject shell commands. Stdout is
the result (JSON if it parses, else text); a non-zero exit is a failure that
carries the tail of stderr.
"""

from __future__ import annotations

import asyncio
import atexit
import json
import os
import shutil
import signal
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import psutil

from pepper.engine.usage import cap_memory
from pepper.model import codec
from pepper.model.agent import AgentSpec
from pepper.model.run import TaskRun

_ENV_INPUTS_LIMIT = 64 * 1024
_STDERR_TAIL = 2000
_KILL_GRACE = 2.0
#: Process groups of commands running now, killed if the interpreter exits before they end.
_RUNNING_GROUPS: set[int] = set()


@atexit.register
def _kill_leftovers() -> None:
    for group in list(_RUNNING_GROUPS):
        try:
            os.killpg(group, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


def _said(tail: str) -> str:
    """``: <the last line of stderr>``, then the whole tail when it has more lines (the line first, as one-line
    views of an error keep only its start)."""
    if not tail:
        return ""
    lines = tail.splitlines()
    return f": {lines[-1].strip()}" + (f"\nstderr ends with:\n{tail}" if len(lines) > 1 else "")


class CommandFailed(Exception):
    """The command exited with a non-zero status."""

    def __init__(self, command: str, code: int, stderr: str) -> None:
        tail = stderr[-_STDERR_TAIL:].strip()
        super().__init__(f"command exited with status {code}{_said(tail)}")
        self.command = command
        self.code = code
        self.stderr = tail


class CommandKilled(Exception):
    """The command was killed by a signal (crashed, or was killed from outside)."""

    def __init__(self, command: str, signum: int, stderr: str) -> None:
        try:
            name = signal.Signals(signum).name
        except ValueError:
            name = f"signal {signum}"
        tail = stderr[-_STDERR_TAIL:].strip()
        super().__init__(f"command was killed by {name}{_said(tail)}")
        self.command = command
        self.signal = signum
        self.stderr = tail


class MemoryLimitExceeded(Exception):
    """The command used more memory than its allocation allows."""

    def __init__(self, command: str, cap_mb: float, stderr: str) -> None:
        tail = stderr[-_STDERR_TAIL:].strip()
        super().__init__(f"memory limit exceeded: the task may use {cap_mb:g} MB (its memory allocation){_said(tail)}")
        self.command = command
        self.cap_mb = cap_mb


_CRASH_SIGNALS = frozenset(int(s) for s in (signal.SIGKILL, signal.SIGSEGV, signal.SIGABRT, signal.SIGBUS,
                                              signal.SIGILL, signal.SIGFPE, signal.SIGTERM))  # fmt: skip
_OUT_OF_MEMORY = ("MemoryError", "Cannot allocate memory", "bad_alloc", "out of memory")


def _ran_out_of_memory(code: int, stderr: str) -> bool:
    if code in (-signal.SIGSEGV, -signal.SIGABRT):  # C programs that meet a failed allocation
        return True
    return code != 0 and any(marker in stderr for marker in _OUT_OF_MEMORY)


def task_document(run: TaskRun) -> dict[str, Any]:
    """The JSON document a command receives on stdin."""
    return {
        "task_id": run.task_id,
        "task_type": run.task_type,
        "attempt": run.attempt,
        "agent_id": run.agent_id,
        "inputs": run.inputs,
        "dependency_results": dict(run.dependency_results),
        "metadata": dict(run.metadata),
    }


def command_env(spec: AgentSpec, run: TaskRun, workdir: Path) -> dict[str, str]:
    """The environment of the subprocess: ours, the agent's ``config.env``, then the task's."""
    env = dict(os.environ)
    extra = spec.config.get("env") or {}
    if isinstance(extra, Mapping):
        env.update({str(k): str(v) for k, v in extra.items()})
    env.update(
        PEPPER_TASK_ID=run.task_id,
        PEPPER_TASK_TYPE=run.task_type,
        PEPPER_ATTEMPT=str(run.attempt),
        PEPPER_AGENT_ID=run.agent_id,
        PEPPER_WORKDIR=str(workdir),
        PEPPER_PYTHON=sys.executable,  # the interpreter running pepper, with its packages
    )
    inputs = run.task.inputs_json
    if len(inputs) <= _ENV_INPUTS_LIMIT:
        env["PEPPER_TASK_INPUTS"] = inputs
    return env


def parse_output(stdout: bytes) -> Any:
    """JSON if stdout is a JSON document, else the text (without the final newline)."""
    text = stdout.decode("utf-8", errors="replace")
    stripped = text.strip()
    if stripped:
        try:
            return json.loads(stripped)
        except ValueError:
            pass
    return text.rstrip("\n")


async def run_command(
    spec: AgentSpec, run: TaskRun, workdir: Path, *, memory_cap: float | None = None, pids: set[int] | None = None
) -> Any:
    """Run ``spec.command`` for one attempt; return its parsed stdout or raise.

    ``memory_cap`` (MB) becomes a hard limit on the process's address space, set
    right after it starts (never in a pre-exec hook: pepper has threads).
    ``pids`` is kept up to date with the running process, for measurements.
    """
    assert spec.command is not None
    workdir.mkdir(parents=True, exist_ok=True)
    stdin = codec.encode(task_document(run), "task").encode()
    launcher = shutil.which("prlimit") if memory_cap else None
    argv = ["/bin/sh", "-c", spec.command]
    if launcher:  # the shell starts already limited, so no child can escape the cap
        argv = [launcher, f"--as={int(memory_cap * 2**20)}", "--", *argv]  # type: ignore[operator]
    proc = await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=workdir,
        env=command_env(spec, run, workdir),
        start_new_session=True,  # its own process group, so the whole tree can be stopped
    )
    _RUNNING_GROUPS.add(proc.pid)
    if pids is not None:
        pids.add(proc.pid)
    try:
        if memory_cap and not launcher:
            _cap_tree(proc.pid, memory_cap)
        stdout, stderr = await proc.communicate(stdin)
    except BaseException:
        await _stop(proc)
        raise
    finally:
        _RUNNING_GROUPS.discard(proc.pid)
        if pids is not None:
            pids.discard(proc.pid)
    code = proc.returncode
    assert code is not None
    errors = stderr.decode("utf-8", errors="replace")
    if memory_cap and _ran_out_of_memory(code, errors):
        raise MemoryLimitExceeded(spec.command, memory_cap, errors)
    if code < 0:
        raise CommandKilled(spec.command, -code, errors)
    if code - 128 in _CRASH_SIGNALS:  # the shell reports a child killed by signal N as status 128 + N
        raise CommandKilled(spec.command, code - 128, errors)
    if code != 0:
        raise CommandFailed(spec.command, code, stderr.decode("utf-8", errors="replace"))
    return parse_output(stdout)


def _cap_tree(pid: int, memory_cap: float) -> None:
    """Limit a started process and its children (when no launcher can limit it from the start)."""
    try:
        tree = [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]
    except psutil.Error:
        return
    for proc in tree:
        try:
            cap_memory(proc.pid, memory_cap)
        except psutil.Error:
            continue


async def _stop(proc: asyncio.subprocess.Process) -> None:
    """SIGTERM the process group, then SIGKILL it if it lingers; then release its pipes."""
    try:
        for signum, grace in ((signal.SIGTERM, _KILL_GRACE), (signal.SIGKILL, None)):
            if proc.returncode is not None:
                return
            try:
                os.killpg(proc.pid, signum)
            except (ProcessLookupError, PermissionError):
                return
            try:
                await asyncio.wait_for(asyncio.shield(proc.wait()), grace)
                return
            except (TimeoutError, asyncio.CancelledError):
                continue
    finally:
        # asyncio's Process has no public close(); without this the pipes would be released
        # a few loop turns later, possibly after the engine's loop has closed.
        transport = getattr(proc, "_transport", None)
        if transport is not None:
            transport.close()
