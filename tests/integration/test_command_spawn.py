"""How a command's process starts: by ``posix_spawn`` where it can, by ``subprocess.Popen`` otherwise (forced
here too). Either way a program that cannot start says why, the command sees its environment, the agent's
working directory and only its 0, 1 and 2, signals Python ignores are back at their default, and a timeout
stops its whole process group."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

import pepper
from pepper.agents import CommandAgent
from pepper.core import TaskOrchestrator
from pepper.engine.executors import child
from pepper.engine.executors.subprocess import base_env
from pepper.model.task import TaskState
from tests.conftest import FAST
from tests.support import eventually


@pytest.fixture(params=["posix_spawn", "popen"])
def path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Which way processes start in this test (``popen``: as where there is no ``posix_spawn``)."""
    if request.param == "posix_spawn" and not child._CAN_SPAWN:
        pytest.skip("this system has no posix_spawn")
    monkeypatch.setattr(child, "_CAN_SPAWN", request.param == "posix_spawn")
    return str(request.param)


def open_fds() -> set[int]:
    return {int(name) for name in os.listdir("/proc/self/fd")} - {0, 1, 2}


def run(argv: list[str], *, env: dict[str, str] | None = None, stdin: bytes = b"") -> child.Child:
    """Start ``argv`` as a command's process and wait for its end and the end of its pipes."""

    async def main() -> child.Child:
        started = child.Child(argv, cwd=None, env=env or {}, stdin=stdin, limit=2**20, keep=2**16)
        try:
            await started.exited
            await started.drained
        finally:
            started.close()
        return started

    return asyncio.run(main())


def test_a_missing_program_raises_in_pepper_and_leaves_no_descriptor_open(path: str, tmp_path: Path) -> None:
    before = open_fds()
    with pytest.raises(FileNotFoundError):
        run([str(tmp_path / "no-such-program")])
    assert open_fds() == before


def test_a_file_that_is_not_executable_raises_in_pepper_and_leaves_no_descriptor_open(
    path: str, tmp_path: Path
) -> None:
    script = tmp_path / "script"
    script.write_text("#!/bin/sh\necho hi\n")
    script.chmod(0o644)
    before = open_fds()
    with pytest.raises(PermissionError):
        run([str(script)])
    assert open_fds() == before


def test_each_way_is_the_one_taken(path: str) -> None:
    done = run(["/bin/sh", "-c", "echo $A"], env={"A": "seen"})
    assert (bytes(done.stdout), done.returncode) == (b"seen\n", 0)
    assert (done._proc is None) is (path == "posix_spawn")


def test_what_posix_spawn_cannot_do_starts_by_popen(tmp_path: Path) -> None:
    async def main() -> list[bool]:
        kinds = []
        for argv, cwd in ((["sh", "-c", "true"], None), (["/bin/sh", "-c", "true"], tmp_path)):
            started = child.Child(argv, cwd=cwd, env={"PATH": "/usr/bin:/bin"}, stdin=b"", limit=1, keep=1)
            await started.exited
            started.close()
            kinds.append(started._proc is not None and started.returncode == 0)
        return kinds

    assert asyncio.run(main()) == [True, True]  # a name to find in PATH; a directory to change to


def test_where_descriptors_cannot_be_listed_a_process_starts_by_popen(monkeypatch: pytest.MonkeyPatch) -> None:
    if child._CLOSE_FROM is not None:
        pytest.skip("posix_spawn closes every other descriptor itself here")
    listdir = os.listdir

    def no_fd_folder(path: str) -> list[str]:
        if path in ("/proc/self/fd", "/dev/fd"):
            raise PermissionError(path)
        return listdir(path)

    monkeypatch.setattr(os, "listdir", no_fd_folder)
    monkeypatch.setattr(child, "_inheritable", None)
    done = run(["/bin/sh", "-c", "echo ran"])
    assert (bytes(done.stdout), done._proc is not None) == (b"ran\n", True)


def test_a_command_sees_only_0_1_2_not_even_a_descriptor_pepper_inherited(
    path: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    inherited = os.open(tmp_path / "inherited", os.O_WRONLY | os.O_CREAT)
    os.set_inheritable(inherited, True)  # as a descriptor this process was started with
    monkeypatch.setattr(child, "_inheritable", None)  # looked for afresh
    with open(tmp_path / "own", "w"):  # one of pepper's own, open meanwhile
        try:
            done = run(["/bin/sh", "-c", "ls /proc/$$/fd"])
        finally:
            os.close(inherited)
    assert bytes(done.stdout).split() == [b"0", b"1", b"2"]


def test_signals_python_ignores_are_at_their_default_in_the_command(path: str) -> None:
    done = run(["/bin/sh", "-c", "yes | head -n 1"])  # yes ends by SIGPIPE, quietly
    assert (bytes(done.stdout), done.stderr.text(), done.returncode) == (b"y\n", "", 0)


def test_stdin_goes_in_whole_and_stderr_comes_out(path: str) -> None:
    data = os.urandom(300_000)  # more than a pipe holds
    done = run(["/bin/sh", "-c", "wc -c; echo problem >&2; exit 4"], stdin=data)
    assert (bytes(done.stdout).strip(), done.stderr.text(), done.returncode) == (b"300000", "problem\n", 4)


def test_a_task_sees_pepper_s_environment_the_agent_s_and_its_own(
    path: str, runtime: pepper.Runtime, orchestrator: TaskOrchestrator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PEPPER_TEST_OUTER", "first")
    command = 'echo "$PEPPER_TEST_OUTER $PEPPER_TEST_AGENT $PEPPER_TASK_ID $PEPPER_ATTEMPT"'
    agent = CommandAgent("env", command, task_types=["t"], config={"env": {"PEPPER_TEST_AGENT": "a"}})
    runtime.register_agent(agent)
    orchestrator.submit_task("one", "t")
    assert orchestrator.get_result("one", timeout=60) == "first a one 1"
    monkeypatch.setenv("PEPPER_TEST_OUTER", "second")  # pepper's environment changed since the first task
    orchestrator.submit_task("two", "t")
    assert orchestrator.get_result("two", timeout=60) == "second a two 1"


@pytest.mark.parametrize("home", ['it\'s a "home" $HOME', "relative home"])
def test_a_command_runs_in_its_agent_s_working_directory(path: str, tmp_path: Path, home: str) -> None:
    where = home if home.startswith("relative") else str(tmp_path / home)  # relative: to pepper's directory
    with pepper.Runtime(db=str(tmp_path / "p.db"), home=where, **FAST) as runtime:
        runtime.register_agent(CommandAgent("here", "pwd", task_types=["t"]))
        runtime.register_agent(CommandAgent("bad", "nosuchcommand", task_types=["b"]))
        orchestrator = TaskOrchestrator(runtime)
        orchestrator.submit_task("t", "t", max_retries=0)
        orchestrator.submit_task("b", "b", max_retries=0)
        assert orchestrator.get_result("t", timeout=60) == os.path.realpath(tmp_path / where / "agents" / "here")
        error = orchestrator.wait("b", timeout=60).error
    assert error is not None and error.type == "CommandFailed" and "status 127" in error.message
    # The error names the line of the command as written: the change of directory takes no line of its own.
    assert ": 1: nosuchcommand" in error.message or "line 1: nosuchcommand" in error.message


def test_a_command_that_cannot_run_is_a_failed_attempt(
    path: str, runtime: pepper.Runtime, orchestrator: TaskOrchestrator, tmp_path: Path
) -> None:
    script = tmp_path / "script"
    script.write_text("#!/bin/sh\necho hi\n")
    script.chmod(0o644)
    runtime.register_agent(CommandAgent("missing", str(tmp_path / "absent"), task_types=["m"]))
    runtime.register_agent(CommandAgent("plain", str(script), task_types=["p"]))
    orchestrator.submit_task("m", "m", max_retries=0)
    orchestrator.submit_task("p", "p", max_retries=0)
    missing, plain = orchestrator.wait("m", timeout=60), orchestrator.wait("p", timeout=60)
    assert (missing.state, missing.error.type, plain.state, plain.error.type) == (
        TaskState.FAILED, "CommandFailed", TaskState.FAILED, "CommandFailed",
    )  # fmt: skip
    assert "status 127" in missing.error.message and "not found" in missing.error.message
    assert "status 126" in plain.error.message and "Permission denied" in plain.error.message


@pytest.fixture
def stubborn() -> Iterator[list[int]]:
    """Pids of processes that ignore SIGTERM; whatever a failing test leaves alive is killed at its end."""
    pids: list[int] = []
    yield pids
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_a_timeout_stops_the_whole_group_even_what_ignores_sigterm(
    path: str, runtime: pepper.Runtime, orchestrator: TaskOrchestrator, tmp_path: Path, stubborn: list[int]
) -> None:
    pidfile = tmp_path / "pid"
    command = f"(trap '' TERM; exec sleep 1000) & echo $! > {pidfile}; sleep 1000"
    runtime.register_agent(CommandAgent("slow", command, task_types=["t"]))
    orchestrator.submit_task("t", "t", timeout=1.0, max_retries=0)
    pid = int(eventually(lambda: pidfile.exists() and pidfile.read_text().strip(), "the grandchild's pid"))
    stubborn.append(pid)
    shell = psutil.Process(pid).ppid()
    assert os.getpgid(pid) == shell  # the shell leads the group its children are in
    assert orchestrator.wait("t", timeout=60).error.kind == "timeout"
    eventually(lambda: not alive(pid) and not alive(shell), "the shell and the grandchild are killed")


def test_an_agent_s_base_environment_is_built_once_and_again_when_either_side_changes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    spec = CommandAgent("base", "true", task_types=["t"], config={"env": {"PEPPER_TEST_AGENT": "1"}}).spec
    first = base_env(spec)
    assert base_env(spec) is first and first["PEPPER_TEST_AGENT"] == "1"
    monkeypatch.setenv("PEPPER_TEST_OUTER", "set")  # pepper's environment changed
    second = base_env(spec)
    assert second is not first and second["PEPPER_TEST_OUTER"] == "set" and "PEPPER_TEST_OUTER" not in first
    monkeypatch.delenv("PEPPER_TEST_OUTER")
    assert "PEPPER_TEST_OUTER" not in base_env(spec)
    again = CommandAgent("base", "true", task_types=["t"], config={"env": {"PEPPER_TEST_AGENT": "2"}}).spec
    assert base_env(again)["PEPPER_TEST_AGENT"] == "2"  # the agent registered anew
