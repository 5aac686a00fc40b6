"""Running a command agent's task as a subprocess.

The task never reaches the command line: its id, type and attempt are in the
environment, its inputs too (``PEPPER_TASK_INPUTS``, when small), the worker that
started it (``PEPPER_WORKER_ID``: by it another worker of the host finds and stops
what the command left running if this worker dies, see ``engine.orphans``), and the whole
task as JSON on stdin. So task inputs cannot inject shell commands. Stdout is
the result (JSON if it parses, else text; at most the agent's result cap, 10 MB
unless its config's ``max_result_mb`` says otherwise); a non-zero exit is a
failure that carries the tail of stderr (of which the first and last 64 KB are
kept). Stderr also goes, as it is read, to the attempt's log (``engine.task_logs``).
A timeout or cancel stops the command's whole process group: SIGTERM, then
SIGKILL after a grace period.

The command runs as ``/bin/sh -c``, the shell changing to the agent's working directory before anything
else (so the process can be started by ``posix_spawn``, which cannot change it: see ``child``). Pepper's
environment with the agent's ``config.env`` over it is built once per agent (again when either changes);
each task adds only its own variables to a copy.
"""

from __future__ import annotations

import asyncio
import atexit
import json
import os
import shlex
import shutil
import signal
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import psutil

from pepper.engine import log_capture
from pepper.engine.executors.child import Child
from pepper.engine.executors.limits import ResultTooLarge, result_limit, result_limit_mb
from pepper.engine.orphans import WORKER_ENV
from pepper.engine.usage import cap_memory
from pepper.errors import NestingTooDeepError
from pepper.model import codec
from pepper.model.agent import AgentSpec
from pepper.model.run import TaskRun

_ENV_INPUTS_LIMIT = 64 * 1024
_STDERR_TAIL = 2000  # characters of stderr an error message quotes
_STDERR_KEEP = 64 * 1024  # bytes of stderr kept from its start, and as many from its end
_KILL_GRACE = 2.0  # seconds between SIGTERM and SIGKILL
_GROUP_POLL = 0.02  # seconds between checks that a stopping process group is gone
#: Process groups of commands running now, killed if the interpreter exits before they end.
_RUNNING_GROUPS: set[int] = set()
#: Agent id -> its spec, pepper's environment (encoded) and the agent's base environment built from them.
_BASE_ENVS: dict[str, tuple[AgentSpec, dict[Any, Any], dict[str, str]]] = {}


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


class CommandError(Exception):
    """The command ended badly: what happened, then the end of what it wrote to stderr (``stderr``)."""

    def __init__(self, command: str, what: str, stderr: str) -> None:
        self.stderr = stderr[-_STDERR_TAIL:].strip()
        super().__init__(f"{what}{_said(self.stderr)}")
        self.command = command


class CommandFailed(CommandError):
    """The command exited with a non-zero status."""

    def __init__(self, command: str, code: int, stderr: str) -> None:
        super().__init__(command, f"command exited with status {code}", stderr)
        self.code = code


class CommandKilled(CommandError):
    """The command was killed by a signal (crashed, or was killed from outside)."""

    def __init__(self, command: str, signum: int, stderr: str) -> None:
        try:
            name = signal.Signals(signum).name
        except ValueError:
            name = f"signal {signum}"
        super().__init__(command, f"command was killed by {name}", stderr)
        self.signal = signum


class MemoryLimitExceeded(CommandError):
    """The command used more memory than its allocation allows."""

    def __init__(self, command: str, cap_mb: float, stderr: str) -> None:
        what = f"memory limit exceeded: the task may use {cap_mb:g} MB (its memory allocation)"
        super().__init__(command, what, stderr)
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


def base_env(spec: AgentSpec) -> dict[str, str]:
    """Pepper's environment with the agent's ``config.env`` over it (not to be changed: copy it).

    Built once per agent; built again when the agent's spec is a new one or ``os.environ`` was written to
    (a look at the encoded environment behind it, far cheaper than decoding it)."""
    ours: dict[Any, Any] | None = getattr(os.environ, "_data", None)
    known = _BASE_ENVS.get(spec.agent_id)
    if known is not None and known[0] is spec and known[1] == ours:
        return known[2]
    env = dict(os.environ)
    extra = spec.config.get("env") or {}
    if isinstance(extra, Mapping):
        env.update({str(k): str(v) for k, v in extra.items()})
    if ours is not None:
        _BASE_ENVS[spec.agent_id] = (spec, dict(ours), env)
    return env


def command_env(spec: AgentSpec, run: TaskRun, workdir: Path, worker_id: str | None = None) -> dict[str, str]:
    """The environment of the subprocess: ours, the agent's ``config.env``, then the task's (and the id of the
    worker starting it, when given)."""
    env = base_env(spec).copy()
    env.update(
        PEPPER_TASK_ID=run.task_id,
        PEPPER_TASK_TYPE=run.task_type,
        PEPPER_ATTEMPT=str(run.attempt),
        PEPPER_AGENT_ID=run.agent_id,
        PEPPER_WORKDIR=str(workdir),
        PEPPER_PYTHON=sys.executable,  # the interpreter running pepper, with its packages
    )
    if worker_id is not None:
        env[WORKER_ENV] = worker_id
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
        except RecursionError:  # JSON, nested deeper than any value pepper keeps
            raise NestingTooDeepError("the command's output", codec.MAX_DEPTH) from None
    return text.rstrip("\n")


async def run_command(
    spec: AgentSpec,
    run: TaskRun,
    workdir: Path,
    *,
    memory_cap: float | None = None,
    pids: set[int] | None = None,
    worker_id: str | None = None,
) -> Any:
    """Run ``spec.command`` for one attempt; return its parsed stdout or raise.

    The attempt ends when the command's own process (the shell) ends: whatever it
    left running in its process group is stopped then (SIGTERM, then SIGKILL), so a
    background child holding stdout neither keeps the attempt running nor outlives
    it. Stdout is read up to the agent's result cap (``limits``): past it the command
    is stopped and ``ResultTooLarge`` raised. Stderr keeps its first and last
    ``_STDERR_KEEP`` bytes. ``memory_cap`` (MB) becomes a hard limit on the address
    space, set right after it starts (never in a pre-exec hook: pepper has threads).
    ``pids`` is kept up to date with the running process, for measurements. ``worker_id`` marks the
    command's environment (``PEPPER_WORKER_ID``) with the worker that runs it.
    """
    assert spec.command is not None
    if not workdir.is_dir():  # a look is cheaper than a mkdir that fails
        workdir.mkdir(parents=True, exist_ok=True)
    stdin = codec.encode(task_document(run), "task").encode()
    launcher = shutil.which("prlimit") if memory_cap else None
    argv, cwd = _in_workdir(spec.command, workdir)
    if launcher:  # the shell starts already limited, so no child can escape the cap
        argv = [launcher, f"--as={int(memory_cap * 2**20)}", "--", *argv]  # type: ignore[operator]
    child = Child(argv, cwd=cwd, env=command_env(spec, run, workdir, worker_id), stdin=stdin, limit=result_limit(spec),
                  keep=_STDERR_KEEP, sink=log_capture.CURRENT.get())  # fmt: skip
    group = child.pid  # started with setsid: it leads its process group
    _RUNNING_GROUPS.add(group)
    if pids is not None:
        pids.add(group)
    try:
        if memory_cap and not launcher:
            _cap_tree(group, memory_cap)
        await child.stopped
        await _stop_group(group)
        if not child.overflowed.done() and not child.drained.done():
            # What is left in the pipes is read to their end, unless a process that left the group holds them.
            await asyncio.wait((child.drained,), timeout=_KILL_GRACE)
    except BaseException:
        await _stop_group(group)
        raise
    finally:
        child.close()
        _RUNNING_GROUPS.discard(group)
        if pids is not None:
            pids.discard(group)
    if child.overflowed.done():
        raise ResultTooLarge(spec.agent_id, result_limit_mb(spec), "the command's output on stdout (its result)")
    code = child.returncode
    assert code is not None
    errors = child.stderr.text()
    if memory_cap and _ran_out_of_memory(code, errors):
        raise MemoryLimitExceeded(spec.command, memory_cap, errors)
    if code < 0:
        raise CommandKilled(spec.command, -code, errors)
    if code - 128 in _CRASH_SIGNALS:  # the shell reports a child killed by signal N as status 128 + N
        raise CommandKilled(spec.command, code - 128, errors)
    if code != 0:
        raise CommandFailed(spec.command, code, errors)
    return parse_output(bytes(child.stdout))


def _in_workdir(command: str, workdir: Path) -> tuple[list[str], Path | None]:
    """The shell's argv running ``command`` in ``workdir``, and the directory to start it in (None: the
    shell changes to it first, on the command's first line, so line numbers in its errors stay as written)."""
    where = os.path.abspath(workdir)  # against pepper's directory, as a relative cwd would be
    if "\n" in where:  # quoted, it would take lines of its own
        return ["/bin/sh", "-c", command], workdir
    return ["/bin/sh", "-c", f"cd -P -- {shlex.quote(where)} || exit; {command}"], None


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


def _signal_group(group: int, signum: int) -> bool:
    """Send ``signum`` (0: only look) to every process of ``group``; False when none is left."""
    try:
        os.killpg(group, signum)
    except (ProcessLookupError, PermissionError):
        return False
    return True


async def _stop_group(group: int) -> None:
    """SIGTERM every process of ``group``, then SIGKILL those still there after a grace period, even when
    the shell that led the group has ended (a grandchild may ignore SIGTERM). Cancelled, it kills at once."""
    if not _signal_group(group, signal.SIGTERM):
        return
    loop = asyncio.get_running_loop()
    deadline = loop.time() + _KILL_GRACE
    try:
        while loop.time() < deadline:
            await asyncio.sleep(_GROUP_POLL)
            if not _signal_group(group, 0):
                return
    except BaseException:
        _signal_group(group, signal.SIGKILL)
        raise
    _signal_group(group, signal.SIGKILL)
