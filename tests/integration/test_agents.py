"""Agents defined in YAML, command agents as real subprocesses."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest

import pepper
from pepper.errors import AgentAlreadyRegisteredError, AgentDefinitionError, AgentNotFoundError
from pepper.model.task import TaskState

PY = sys.executable


def write(path: Path, text: str) -> Path:
    path.write_text(textwrap.dedent(text))
    return path


def test_a_command_agent_gets_the_task_on_stdin_and_in_its_environment(runtime, orchestrator, tmp_path):
    script = write(
        tmp_path / "echo_task.py",
        """
        import json, os, sys
        task = json.load(sys.stdin)
        print(json.dumps({"stdin": task, "env_inputs": json.loads(os.environ["PEPPER_TASK_INPUTS"]),
                          "env_id": os.environ["PEPPER_TASK_ID"], "cwd": os.getcwd()}))
    """,
    )
    runtime.register_agent(pepper.agents.CommandAgent("cmd", f"{PY} {script}", task_types=["cmd"]))
    orchestrator.submit_task("first", "cmd", inputs={"n": 1})
    orchestrator.submit_task("second", "cmd", inputs={"n": 2}, dependencies=["first"])
    result = orchestrator.get_result("second", timeout=20)
    assert result["env_id"] == "second" and result["env_inputs"] == {"n": 2}
    assert result["stdin"]["inputs"] == {"n": 2} and result["stdin"]["attempt"] == 1
    assert result["stdin"]["dependency_results"]["first"]["env_id"] == "first"
    assert Path(result["cwd"]) == (tmp_path / "home" / "agents" / "cmd").resolve()


def test_task_inputs_never_reach_the_shell(runtime, orchestrator, tmp_path):
    runtime.register_agent(pepper.agents.CommandAgent("echo", "echo done", task_types=["t"]))
    evil = f"x; touch {tmp_path}/pwned; $(touch {tmp_path}/pwned2)"
    orchestrator.submit_task("t", "t", inputs={"name": evil}, metadata={"note": evil})
    assert orchestrator.get_result("t", timeout=20) == "done"  # plain text output is kept as text
    assert not (tmp_path / "pwned").exists() and not (tmp_path / "pwned2").exists()


def test_a_failing_command_fails_its_task_with_the_end_of_stderr(runtime, orchestrator):
    code = "import sys; print('warming up', file=sys.stderr); print('disk full', file=sys.stderr); sys.exit(3)"
    command = f'{PY} -c "{code}"'
    runtime.register_agent(pepper.agents.CommandAgent("bad", command, task_types=["t"]))
    orchestrator.submit_task("t", "t")
    status = orchestrator.wait("t", timeout=20)
    assert status.state is TaskState.FAILED
    assert status.error.type == "CommandFailed" and "status 3" in status.error.message
    assert status.error.message.rstrip().endswith("disk full")


def test_a_command_killed_by_a_signal_is_reported_as_a_crash(runtime, orchestrator):
    runtime.register_agent(pepper.agents.CommandAgent("killer", "kill -9 $$", task_types=["t"]))
    orchestrator.submit_task("t", "t")
    status = orchestrator.wait("t", timeout=20)
    assert (status.error.type, status.error.kind) == ("CommandKilled", "crash")
    assert "SIGKILL" in status.error.message


def test_a_command_past_its_timeout_is_stopped_with_its_children(runtime, orchestrator, tmp_path):
    marker = tmp_path / "survived"
    runtime.register_agent(pepper.agents.CommandAgent("sleepy", f"sleep 5; touch {marker}", task_types=["t"]))
    orchestrator.submit_task("t", "t", timeout=0.3)
    assert orchestrator.wait("t", timeout=20).error.kind == "timeout"
    runtime.close()
    assert not marker.exists()


def test_agents_load_from_yaml_files_with_every_kind(tmp_path):
    write(
        tmp_path / "helpers.py",
        """
        def shout(task):
            return task.inputs["text"].upper()

        import pepper

        class Counter(pepper.BaseAgent):
            async def execute(self, task):
                return len(task.inputs["text"])
    """,
    )
    write(
        tmp_path / "agents.yaml",
        """
        - agent_id: shouter
          task_types: [shout]
          skills: [text]
          capacity: 2
          function: helpers:shout
        - agent_id: counter
          task_types: [count]
          class: helpers:Counter
        - agent_id: lister
          type: command
          task_types: [list]
          command: "echo '[1, 2, 3]'"
          env: {LANG: C}
    """,
    )
    pepper.init(db=str(tmp_path / "p.db"), home=str(tmp_path / "home"))
    agents = pepper.load_agents(tmp_path / "agents.yaml")
    assert [a.spec.agent_id for a in agents] == ["shouter", "counter", "lister"]
    assert agents[0].spec.capacity == 2 and agents[0].spec.skills == {"text"}
    orchestrator = pepper.TaskOrchestrator()
    orchestrator.submit_tasks(
        [
            {"id": "a", "type": "shout", "inputs": {"text": "hi"}},
            {"id": "b", "type": "count", "inputs": {"text": "four"}},
            {"id": "c", "type": "list"},
        ]
    )
    assert [s.result for s in orchestrator.wait(["a", "b", "c"], timeout=20)] == ["HI", 4, [1, 2, 3]]


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("- agent_id: a\n  task_types: [x\n", 3, "invalid YAML"),
        ("- agent_id: a\n  task_types: [x]\n  capacty: 2\n  command: echo\n", 3, "unknown field 'capacty'"),
        ("- agent_id: a\n  task_types: [x]\n  capacity: 0\n  command: echo\n", 3, "capacity must be"),
        ("- agent_id: a\n  task_types: [x]\n", 1, "needs exactly one of 'command', 'function' or 'class'"),
        ("- agent_id: a\n  task_types: [x]\n  function: nowhere:thing\n", 3, "cannot import module 'nowhere'"),
        (
            "- agent_id: a\n  task_types: [x]\n  command: echo\n- agent_id: a\n  task_types: [y]\n  command: echo\n",
            4,
            "defined twice",
        ),
    ],
)
def test_malformed_agent_files_are_refused_with_file_and_line(tmp_path, text, line, message):
    path = tmp_path / "agents.yaml"
    path.write_text(text)
    pepper.init(db=":memory:")
    with pytest.raises(AgentDefinitionError, match=message) as caught:
        pepper.load_agents(path)
    assert caught.value.path == str(path) and caught.value.line == line
    assert f"{path}:{line}:" in str(caught.value)
    assert pepper.default_runtime().agents() == []  # nothing half-registered


def test_agent_ids_are_unique_per_runtime(runtime):
    pepper.agent("one", task_types=["t"], runtime=runtime)(lambda task: None)
    with pytest.raises(AgentAlreadyRegisteredError):
        pepper.agent("one", task_types=["t"], runtime=runtime)(lambda task: None)
    runtime.unregister_agent("one")
    with pytest.raises(AgentNotFoundError, match="registered: none"):
        runtime.unregister_agent("one")


def test_an_agent_function_must_take_the_task(runtime):
    with pytest.raises(AgentDefinitionError, match="must accept one argument"):
        pepper.agent("zero", task_types=["t"], runtime=runtime)(lambda: None)


def test_two_agent_folders_with_same_module_name_do_not_collide(tmp_path):
    for name in ("left", "right"):
        folder = tmp_path / name
        folder.mkdir()
        write(
            folder / "agents.py",
            f"""
            def handle(task):
                return "{name}"
        """,
        )
        write(
            folder / "agents.yaml",
            f"""
            agent_id: {name}
            task_types: [{name}]
            function: agents:handle
        """,
        )
    pepper.init(db=":memory:")
    left = pepper.load_agents(tmp_path / "left" / "agents.yaml")[0]
    right = pepper.load_agents(tmp_path / "right" / "agents.yaml")[0]
    assert (left.function(None), right.function(None)) == ("left", "right")


def test_yaml_command_agents_can_reach_scripts_beside_their_file(tmp_path):
    write(
        tmp_path / "hello.py",
        """
        print('{"hello": "from beside the yaml"}')
    """,
    )
    write(
        tmp_path / "agents.yaml",
        f"""
        agent_id: greeter
        task_types: [greet]
        command: '{PY} "$PEPPER_AGENT_DIR/hello.py"'
    """,
    )
    pepper.init(db=str(tmp_path / "p.db"), home=str(tmp_path / "home"))
    pepper.load_agents(tmp_path / "agents.yaml")
    orchestrator = pepper.TaskOrchestrator()
    orchestrator.submit_task("g", "greet")
    assert orchestrator.get_result("g", timeout=20) == {"hello": "from beside the yaml"}


def test_a_raising_hook_is_logged_and_the_engine_carries_on(runtime, orchestrator, caplog):
    from pepper.engine.hooks import EngineHook

    class Broken(EngineHook):
        def on_started(self, task, attempt, agent_id, at):
            raise UnicodeEncodeError("ascii", "✓", 0, 1, "cannot print")

    settled = []

    class Recorder(EngineHook):
        def on_settled(self, task_id, state):
            settled.append((task_id, state.value))

    runtime.add_hook(Broken())
    runtime.add_hook(Recorder())
    pepper.agent("echo", task_types=["t"], runtime=runtime)(lambda task: "ok")
    orchestrator.submit_task("t", "t")
    orchestrator.submit_task("c", "nobody")
    orchestrator.cancel_task("c")
    assert orchestrator.get_result("t", timeout=10) == "ok"
    assert ("t", "completed") in settled and ("c", "cancelled") in settled
    assert "engine hook Broken.on_started failed" in caplog.text


def test_metrics_that_fail_are_logged_and_the_engine_carries_on(runtime, orchestrator, caplog, monkeypatch):
    from pepper.engine.metrics import MetricsHook

    def broken(self, *args):
        raise ZeroDivisionError("a bug in the counting")

    for method in ("on_submitted", "on_started", "on_attempt_ended", "on_settled", "on_recovery"):
        monkeypatch.setattr(MetricsHook, method, broken)
    pepper.agent("echo", task_types=["t"], runtime=runtime)(lambda task: "ok")
    pepper.agent("boom", task_types=["f"], runtime=runtime)(lambda task: 1 / 0)
    orchestrator.submit_tasks([{"id": "t", "type": "t"}, {"id": "f", "type": "f", "max_retries": 0}])
    assert orchestrator.get_result("t", timeout=10) == "ok"
    assert orchestrator.wait(["f"], timeout=10)[0].state is pepper.TaskState.FAILED
    for what in ("a submission", "an attempt's start", "an attempt's end", "a settled task", "a recovery"):
        assert f"the engine's metrics failed to count {what}" in caplog.text


def test_commands_still_running_when_the_interpreter_exits_are_stopped(tmp_path):
    import subprocess
    import time

    marker = tmp_path / "marker"
    script = write(
        tmp_path / "abandon.py",
        f"""
        import os, sys, time
        import pepper
        runtime = pepper.Runtime(db=r"{tmp_path / "p.db"}", home=r"{tmp_path / "home"}")
        runtime.register_agent(pepper.agents.CommandAgent("slow", "echo $$ > {marker}.pid; sleep 60; touch {marker}",
                                                          task_types=["t"]))
        orchestrator = pepper.TaskOrchestrator(runtime)
        orchestrator.submit_task("t", "t")
        from pepper.engine.executors.subprocess import _RUNNING_GROUPS
        while not os.path.exists(r"{marker}.pid") or not open(r"{marker}.pid").read().strip():  # the shell runs
            time.sleep(0.01)
        while not _RUNNING_GROUPS:  # and the engine has recorded its process group
            time.sleep(0.01)
        runtime.close = lambda *args, **kwargs: None  # exit without draining, as after a second Ctrl-C
        sys.exit(0)
    """,
    )
    done = subprocess.run([PY, str(script)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    shell = int((tmp_path / "marker.pid").read_text())
    deadline = time.monotonic() + 30  # a safety net: the shell is stopped as the interpreter exits
    while _alive(shell) and time.monotonic() < deadline:
        time.sleep(0.01)
    # Stopped long before its sleep could end, however slow the machine (left alone it would run a minute).
    assert not _alive(shell) and not marker.exists()


def _alive(pid: int) -> bool:
    import psutil

    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
