"""Task logs: what attempts write is kept per attempt, bounded, written while they run, and followed."""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
import threading

import psutil
import pytest

import pepper
from pepper.core.logs import TaskLogs
from pepper.engine.task_logs import AttemptLog
from pepper.errors import TaskNotFoundError, ValidationError
from pepper.model.task_log import LogChunk, render

PY = sys.executable
log = logging.getLogger("tests.agents")


def _rows_to_chunks(rows):
    return [LogChunk(a, seq, start, end - start, text, at, bool(ended)) for (_t, a, seq, start, end, at, text, ended)
            in rows]  # fmt: skip


def test_a_log_past_its_cap_keeps_its_head_and_its_tail_and_marks_the_cut():
    # Given a log capped at 100 bytes
    attempt_log = AttemptLog("t", 1, 100, lambda: 0.0)
    stored: dict[int, LogChunk] = {}
    # When 1,000 lines are written, with writes to the store between them
    for i in range(1000):
        attempt_log.write(f"{i:04d}\n".encode())
        if i % 7 == 0:
            rows, drops = attempt_log.take()
            stored.update({c.seq: c for c in _rows_to_chunks(rows)})
            for _task, _attempt, seq in drops:
                del stored[seq]
    attempt_log.end()
    rows, drops = attempt_log.take()
    stored.update({c.seq: c for c in _rows_to_chunks(rows)})
    for _task, _attempt, seq in drops:
        del stored[seq]
    # Then the stored log keeps the first and the last lines, within the cap, and says how much was cut
    chunks = [stored[seq] for seq in sorted(stored)]
    assert sum(c.size for c in chunks) <= 100
    text = render(chunks)
    assert text.startswith("0000\n0001\n")
    assert text.endswith("0999\n")
    assert "bytes cut ..." in text
    kept = sum(c.size for c in chunks)
    cut = int(text.split("... ")[1].split(" bytes")[0])
    assert kept + cut == 5000
    assert chunks[-1].ended


def test_function_agents_log_records_and_task_log_lines_go_to_their_own_attempt(runtime, orchestrator):
    # Given two async agents and a sync one logging while they run at the same time
    gate = threading.Event()

    @pepper.agent("async_a", task_types=["a"], capacity=4)
    async def async_agent(task):
        log.warning("async says %s", task.inputs["n"])
        await asyncio.sleep(0)
        task.log(f"line of {task.task_id}")
        return 1

    @pepper.agent("sync_s", task_types=["s"], capacity=4)
    def sync_agent(task):
        log.warning("sync says %s", task.inputs["n"])
        gate.wait(10)
        return 2

    runtime.register_agent(async_agent)
    runtime.register_agent(sync_agent)
    for n in range(3):
        orchestrator.submit_task(f"a{n}", "a", inputs={"n": n})
        orchestrator.submit_task(f"s{n}", "s", inputs={"n": n})
    gate.set()
    orchestrator.wait([f"{k}{n}" for k in "as" for n in range(3)], timeout=30)
    logs = TaskLogs(runtime)
    # Then each attempt's log holds its own lines only
    for n in range(3):
        a_text = logs.get(f"a{n}").text
        assert f"async says {n}" in a_text and f"line of a{n}" in a_text
        assert a_text.count("says") == 1
        s_text = logs.get(f"s{n}").text
        assert f"sync says {n}" in s_text and s_text.count("says") == 1
    assert logs.get("a0").ended


def test_an_attempt_that_writes_nothing_stores_nothing(runtime, orchestrator):
    runtime.register_agent(pepper.agents.CommandAgent("quiet", "echo 1", task_types=["q"]))
    orchestrator.submit_task("q1", "q")
    orchestrator.wait("q1", timeout=20)
    found = TaskLogs(runtime).get("q1")
    assert found.attempt == 1 and found.ended and found.chunks == () and found.text == ""
    assert runtime.store.logs.attempts("q1") == []


def test_each_attempt_keeps_its_own_log(runtime, orchestrator):
    runtime.register_agent(pepper.agents.CommandAgent(
        "flaky", 'echo "attempt $PEPPER_ATTEMPT" >&2; test "$PEPPER_ATTEMPT" = 2', task_types=["f"]))  # fmt: skip
    orchestrator.submit_task("f1", "f", max_retries=1)
    orchestrator.wait("f1", timeout=30)
    logs = TaskLogs(runtime)
    assert logs.get("f1", 1).text == "attempt 1\n"
    assert logs.get("f1").text == "attempt 2\n" == logs.get("f1", 2).text
    with pytest.raises(ValidationError, match="its attempts: 1 to 2"):
        logs.get("f1", 3)
    with pytest.raises(TaskNotFoundError):
        logs.get("nope")


def test_a_read_from_a_chunk_out_of_range_is_refused_naming_after(runtime, orchestrator):
    runtime.register_agent(pepper.agents.CommandAgent("talker", "echo hello >&2", task_types=["t"]))
    orchestrator.submit_task("t1", "t")
    orchestrator.wait("t1", timeout=20)
    logs = TaskLogs(runtime)
    for bad in (2**63, 2**64, -1, 1.5, True, "3"):
        with pytest.raises(ValidationError, match=r"after .* from 0 to 9223372036854775807") as refused:
            logs.get("t1", after=bad)  # type: ignore[arg-type]
        assert refused.value.field == "after"
    # the largest chunk number is a read like any other: nothing written that far
    far = logs.get("t1", after=2**63 - 1)
    assert far.chunks == () and far.ended and logs.get("t1").text == "hello\n"


def test_a_command_writing_50_mb_to_stderr_keeps_memory_and_the_stored_log_bounded(tmp_path):
    # Given a runtime whose attempts keep 256 KiB of log
    runtime = pepper.Runtime(db=str(tmp_path / "p.db"), home=str(tmp_path / "home"), task_log_limit="256KiB")
    try:
        script = tmp_path / "noisy.py"
        script.write_text(
            "import sys\nline = b'x' * 1023 + b'\\n'\n"
            "for i in range(50 * 1024):\n    sys.stderr.buffer.write(line)\n"
            "sys.stderr.buffer.write(b'the end\\n')\n"
        )
        runtime.register_agent(pepper.agents.CommandAgent("noisy", f"{PY} {script}", task_types=["n"]))
        orchestrator = pepper.TaskOrchestrator(runtime)
        me = psutil.Process(os.getpid())
        before = me.memory_info().rss
        peak = before
        orchestrator.submit_task("n1", "n")
        # When it writes 50 MB to stderr
        done = threading.Event()

        def watch():
            nonlocal peak
            while not done.is_set():
                peak = max(peak, me.memory_info().rss)
                done.wait(0.01)

        watcher = threading.Thread(target=watch)
        watcher.start()
        status = orchestrator.wait("n1", timeout=120)
        done.set()
        watcher.join()
        assert status.state.value == "completed"
        # Then the process grew by far less than what was written, and the stored log is within its cap
        assert peak - before < 40 * 2**20
        found = TaskLogs(runtime).get("n1")
        assert sum(c.size for c in found.chunks) <= 256 * 1024
        assert found.text.startswith("x" * 1023 + "\n")
        assert found.text.endswith("the end\n")
        assert "bytes cut ..." in found.text
    finally:
        runtime.close()


def test_pepper_logs_follow_shows_lines_of_a_running_command_as_they_come(tmp_path):
    # Given a worker running a command that writes a line, then waits for a file before it ends
    db = str(tmp_path / "p.db")
    go = tmp_path / "go"
    agents = tmp_path / "agents.yaml"
    agents.write_text(
        "agents:\n  - agent_id: talker\n    task_types: [talk]\n"
        f'    command: "echo first line >&2; while [ ! -e {go} ]; do sleep 0.05; done; echo last line >&2"\n'
    )
    env = {**os.environ, "PEPPER_DB": db}
    subprocess.run([PY, "-m", "pepper", "submit", "talk", "--id", "t1"], env=env, check=True, capture_output=True)
    worker = subprocess.Popen([PY, "-m", "pepper", "worker", "--agents", str(agents), "--until-idle"], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    follower = subprocess.Popen([PY, "-m", "pepper", "logs", "t1", "--follow"], env=env, stdout=subprocess.PIPE,
                                text=True)  # fmt: skip
    try:
        # When the first line is written, the follower shows it while the attempt still runs
        assert follower.stdout is not None
        assert follower.stdout.readline() == "first line\n"
        assert follower.poll() is None
        go.write_text("")
        # Then the last line comes too, and the follower ends with the attempt
        assert follower.stdout.readline() == "last line\n"
        assert follower.wait(timeout=60) == 0
        assert worker.wait(timeout=60) == 0
    finally:
        for process in (follower, worker):
            if process.poll() is None:
                process.kill()
                process.wait()
