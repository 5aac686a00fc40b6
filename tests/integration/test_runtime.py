"""Setting up runtimes: configuration sources, the default runtime, closing."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

import pepper
from pepper.core import ResourceManager, TaskOrchestrator
from pepper.errors import ConfigError, RuntimeClosedError
from pepper.testing import run_until_idle, test_runtime


def test_the_default_state_file_is_under_dot_pepper_in_the_working_directory(tmp_path):
    runtime = pepper.init()
    assert Path(runtime.settings.db) == Path(".pepper/pepper.db")
    TaskOrchestrator().submit_task("t", "nobody")
    assert (tmp_path / ".pepper" / "pepper.db").exists()


def test_pepper_toml_then_environment_then_arguments(tmp_path, monkeypatch):
    (tmp_path / "pepper.toml").write_text(
        '[pepper]\ndb = "from-file.db"\npoll_interval = "500ms"\n\n[pepper.resources]\ncpu = 3\nmemory = "2Gi"\n'
    )
    runtime = pepper.Runtime()
    assert runtime.settings.db == str(tmp_path / "from-file.db") and runtime.settings.poll_interval == 0.5
    assert dict(runtime.settings.resources) == {"cpu": 3.0, "memory": 2048.0}
    monkeypatch.setenv("PEPPER_DB", str(tmp_path / "from-env.db"))
    assert pepper.Runtime().settings.db == str(tmp_path / "from-env.db")
    assert pepper.Runtime(db=":memory:").settings.db == ":memory:"
    monkeypatch.delenv("PEPPER_DB")
    monkeypatch.setenv("PEPPER_HOME", str(tmp_path / "elsewhere"))
    (tmp_path / "pepper.toml").unlink()
    assert pepper.Runtime().settings.db == str(tmp_path / "elsewhere" / "pepper.db")


def test_bad_settings_are_refused_before_anything_is_created(tmp_path):
    (tmp_path / "pepper.toml").write_text("[pepper]\npoll_intervall = 1\n")
    with pytest.raises(ConfigError, match=r"pepper\.toml: unknown setting 'poll_intervall'"):
        pepper.Runtime()
    (tmp_path / "pepper.toml").unlink()
    with pytest.raises(ConfigError, match="Did you mean 'shutdown_timeout'"):
        pepper.init(db=":memory:", shutdown_timout=1)
    assert not (tmp_path / ".pepper").exists()


def test_init_replaces_the_default_runtime_and_keeps_its_agents(tmp_path):
    first = pepper.init(db=str(tmp_path / "one.db"))

    @pepper.agent("echo", task_types=["echo"])
    def echo(task):
        return task.inputs

    second = pepper.init(db=str(tmp_path / "two.db"))
    assert first.closed and pepper.default_runtime() is second
    assert [a.spec.agent_id for a in second.agents()] == ["echo"]
    assert TaskOrchestrator().get_result(TaskOrchestrator().submit_task(None, "echo", inputs=[1]).task_id, 10) == [1]


def test_components_of_a_closed_init_runtime_say_so_and_open_no_other(tmp_path):
    # Given the default runtime pepper.init() made, components attached to it, and that runtime closed
    first = pepper.init(db=":memory:", resources={"gpu": 1})
    orchestrator, resources = TaskOrchestrator(), ResourceManager()
    first.close()
    # When they are called, here or on another thread
    errors: list[BaseException] = []

    def call() -> None:
        try:
            resources.pool()
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=call)
    thread.start()
    thread.join(30)
    # Then each call is refused as closed, saying what to do, and no other runtime was opened
    assert len(errors) == 1 and isinstance(errors[0], RuntimeClosedError)
    with pytest.raises(RuntimeClosedError, match=r"call pepper\.init\(\)"):
        orchestrator.submit_task("after-close", "doc")
    with pytest.raises(RuntimeClosedError):
        pepper.default_runtime()
    assert not (tmp_path / ".pepper").exists()
    # ... until pepper.init() makes another
    second = pepper.init(db=str(tmp_path / "again.db"))
    assert orchestrator.submit_task("after-init", "doc").task_id == "after-init" and not second.closed


def test_a_default_runtime_created_on_first_use_is_created_again_once_closed(tmp_path):
    first = pepper.default_runtime()
    first.close()
    again = pepper.default_runtime()
    assert again is not first and not again.closed
    assert TaskOrchestrator().submit_task("t", "nobody").task_id == "t"


def test_a_closed_runtime_says_so(tmp_path):
    runtime = pepper.Runtime(db=str(tmp_path / "x.db"))
    runtime.close()
    runtime.close()  # closing twice is fine
    with pytest.raises(RuntimeClosedError, match="closed"):
        TaskOrchestrator(runtime).submit_task("t", "t")


def test_closing_lets_running_tasks_finish_within_the_shutdown_timeout(tmp_path):
    import time

    runtime = pepper.Runtime(db=str(tmp_path / "x.db"), shutdown_timeout="5s")
    pepper.agent("slow", task_types=["t"], runtime=runtime)(lambda task: time.sleep(0.3) or "done")
    orchestrator = TaskOrchestrator(runtime)
    orchestrator.submit_task("t", "t")
    deadline = time.monotonic() + 5
    while orchestrator.get_task_status("t").state.value != "in_progress" and time.monotonic() < deadline:
        time.sleep(0.01)
    runtime.close()
    with pepper.Runtime(db=str(tmp_path / "x.db")) as again:
        assert TaskOrchestrator(again).get_task_status("t").result == "done"


def test_run_until_idle_returns_once_the_work_is_done():
    with test_runtime() as runtime:
        pepper.agent("echo", task_types=["echo"], runtime=runtime)(lambda task: task.inputs)
        orchestrator = TaskOrchestrator(runtime)
        orchestrator.submit_tasks([{"id": f"t{i}", "type": "echo", "inputs": {"i": i}} for i in range(20)])
        run_until_idle(runtime, timeout=10)
        assert all(s.state.value == "completed" for s in orchestrator.list_tasks())
