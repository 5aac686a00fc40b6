"""``pepper health``, ``perf``, ``top``, ``alerts``, ``metrics`` and ``serve-metrics``, run as a user would."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import time
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parents[2]

#: 40 tasks of which every 4th fails once for good (no retries): 10 failed, 30 completed; an error-rate alert fires.
BUSY = textwrap.dedent("""
    import sys, time
    import pepper
    from pepper.core import PerformanceMonitor, TaskOrchestrator

    runtime = pepper.Runtime(db=sys.argv[1], home=sys.argv[2], poll_interval="20ms", sample_interval="50ms")

    @pepper.agent("builder", task_types=["build"], runtime=runtime)
    def build(task):
        if int(task.task_id.split("-")[1]) % 4 == 0:
            raise RuntimeError("broken")
        return "ok"

    PerformanceMonitor(runtime).set_alert("error_rate", 0.05, lambda alert: None, window="60s")
    ids = [f"b-{i}" for i in range(40)]
    TaskOrchestrator(runtime).submit_tasks([{"id": i, "type": "build", "max_retries": 0} for i in ids])
    TaskOrchestrator(runtime).wait(ids, timeout=60)
    deadline = time.monotonic() + 10
    while not runtime.store.alerts.recent() and time.monotonic() < deadline:
        time.sleep(0.05)
    runtime.close()
""")

AGENTS = textwrap.dedent("""
    agents:
      - agent_id: echoer
        type: command
        command: cat
        task_types: [echo]
""")


def env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT)}


def pepper_cli(db: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pepper", *args, "--db", str(db)], capture_output=True, text=True,
                          env=env(), timeout=60)  # fmt: skip


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def scrape(url: str, timeout: float = 20) -> str:
    """The page at ``url``, retried until the server answers."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                return response.read().decode()
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}  # fmt: skip


@pytest.fixture(scope="module")
def busy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("busy")
    script = folder / "busy.py"
    script.write_text(BUSY)
    done = subprocess.run([sys.executable, str(script), str(folder / "m.db"), str(folder / "home")], env=env(),
                          timeout=90, capture_output=True, text=True)  # fmt: skip
    assert done.returncode == 0, done.stderr
    return folder / "m.db"


def test_perf_counts_what_ended_in_the_window(busy: Path) -> None:
    shown = pepper_cli(busy, "perf", "--window", "1h", "--json")
    assert shown.returncode == 0, shown.stderr
    report = json.loads(shown.stdout)
    assert (report["completed"], report["failed"]) == (30, 10)
    assert report["error_rate"] == pytest.approx(0.25) and report["latency"]["run_time"]["p99"] is not None
    assert set(report["by_agent"]) == {"builder"} and set(report["by_task_type"]) == {"build"}
    table = pepper_cli(busy, "perf", "--window", "1h", "--by", "agent")
    assert table.returncode == 0, table.stderr
    rows = {line.split()[0]: line.split() for line in table.stdout.splitlines() if line.strip()}
    assert rows["builder"][2:5] == ["30", "10", "25%"] and rows["all"][2:5] == ["30", "10", "25%"]


def test_perf_says_when_nothing_ended_and_rejects_bad_windows(busy: Path) -> None:
    quiet = pepper_cli(busy, "perf", "--window", "1ms")
    assert quiet.returncode == 0 and "No task ended in the last" in quiet.stdout
    for bad in ("0s", "soon"):
        wrong = pepper_cli(busy, "perf", "--window", bad)
        assert wrong.returncode == 2 and "--window" in wrong.stderr


def test_health_exit_code_says_degraded_once_work_waits_without_a_worker(busy: Path, tmp_path: Path) -> None:
    idle = pepper_cli(busy, "health", "--json")  # every task ended: no worker is needed
    assert idle.returncode == 0, idle.stdout + idle.stderr
    report = json.loads(idle.stdout)
    assert report["status"] == "healthy"
    assert set(report["components"]) == {"agents", "resources", "workflows", "store", "engine"}
    db = tmp_path / "copy.db"
    shutil.copy(busy, db)
    assert pepper_cli(db, "submit", "build", "--id", "late").returncode == 0
    waiting = pepper_cli(db, "health", "--json")
    assert waiting.returncode == 1, waiting.stdout + waiting.stderr
    report = json.loads(waiting.stdout)
    assert report["status"] == "degraded" and report["components"]["store"]["status"] == "healthy"
    assert report["components"]["engine"]["reasons"] == [
        "no worker is running: 1 task waits until one starts (`pepper worker`)"
    ]
    only = pepper_cli(db, "health", "--component", "store,resources", "-v")
    assert only.returncode == 0, only.stdout + only.stderr
    assert "pepper is healthy" in only.stdout and "write-ahead log" in only.stdout and "engine" not in only.stdout


def test_health_rejects_unknown_components_and_missing_databases(busy: Path, tmp_path: Path) -> None:
    wrong = pepper_cli(busy, "health", "--component", "agentz")
    assert wrong.returncode == 2
    assert "agentz" in wrong.stderr and "agents, resources, workflows, store, engine" in wrong.stderr
    missing = pepper_cli(tmp_path / "nowhere.db", "health")
    assert missing.returncode == 2 and "no pepper database" in missing.stderr


def test_alerts_lists_the_alert_that_fired(busy: Path) -> None:
    listed = pepper_cli(busy, "alerts", "--json")
    assert listed.returncode == 0, listed.stderr
    fired = json.loads(listed.stdout)
    assert len(fired) == 1 and fired[0]["metric"] == "error_rate" and fired[0]["value"] > 0.05
    assert fired[0]["above"] is True
    table = pepper_cli(busy, "alerts")
    assert table.stdout.splitlines()[0].split() == ["WHEN", "SOURCE", "SUBJECT", "METRIC", "VALUE", "MESSAGE"]
    assert "error_rate" in table.stdout and "1 alert" in table.stdout


def test_metrics_prints_prometheus_text_matching_the_database(busy: Path) -> None:
    printed = pepper_cli(busy, "metrics")
    assert printed.returncode == 0, printed.stderr
    seen = samples(printed.stdout)
    assert seen[("pepper_tasks", (("state", "completed"), ("task_type", "build")))] == 30
    assert seen[("pepper_tasks", (("state", "failed"), ("task_type", "build")))] == 10
    assert seen[("pepper_workers", ())] == 0


def test_top_once_shows_agents_and_performance(busy: Path) -> None:
    shown = pepper_cli(busy, "top", "--once", "--window", "1h")
    assert shown.returncode == 0, shown.stderr
    text = shown.stdout
    assert "pepper top" in text and "health healthy" in text and "30 completed" in text and "10 failed" in text
    builder = next(line.split() for line in text.splitlines() if line.startswith("builder"))
    assert builder[1] == "offline" and builder[4:6] == ["30", "10"]
    assert "error rate 25%" in text
    wrong = pepper_cli(busy, "top", "--interval", "1ms", "--once")
    assert wrong.returncode == 2 and "--interval" in wrong.stderr


def test_a_worker_serves_its_own_counters_and_health_turns_healthy(tmp_path: Path) -> None:
    db, agents = tmp_path / "w.db", tmp_path / "agents.yaml"
    agents.write_text(AGENTS)
    port = free_port()
    worker = subprocess.Popen([sys.executable, "-m", "pepper", "worker", "--agents", str(agents), "-q", "--db", str(db),
                               "--metrics-port", str(port), "--database-metrics"], env=env(), cwd=tmp_path,
                              stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        scrape(f"http://127.0.0.1:{port}/metrics")
        for i in range(3):
            assert pepper_cli(db, "submit", "echo", "--id", f"e{i}").returncode == 0
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            seen = samples(scrape(f"http://127.0.0.1:{port}/metrics"))
            done = seen.get(("pepper_completed_total", (("agent", "echoer"), ("task_type", "echo"))), 0)
            if done == 3:
                break
            time.sleep(0.1)
        assert done == 3 and seen[("pepper_workers", ())] == 1
        healthy = pepper_cli(db, "health")
        assert healthy.returncode == 0, healthy.stdout
        busy_port = pepper_cli(db, "serve-metrics", "--port", str(port))
        assert busy_port.returncode == 2 and f"port {port} is already in use" in busy_port.stderr
    finally:
        worker.terminate()
        worker.communicate(timeout=30)
    assert worker.returncode == 0


def test_serve_metrics_serves_the_database_until_stopped(busy: Path) -> None:
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "pepper", "serve-metrics", "--port", str(port), "--db", str(busy)],
                              env=env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        seen = samples(scrape(f"http://127.0.0.1:{port}/metrics"))
        assert seen[("pepper_tasks", (("state", "completed"), ("task_type", "build")))] == 30
    finally:
        server.terminate()
        out, _ = server.communicate(timeout=30)
    assert server.returncode == 0 and f"http://127.0.0.1:{port}/metrics" in out
    argv = [sys.executable, "-m", "pepper", "serve-metrics", "--port", str(port), "--db", str(busy)]
    by_hand = subprocess.Popen(argv, env=env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        scrape(f"http://127.0.0.1:{port}/metrics")
    finally:
        by_hand.send_signal(signal.SIGINT)  # Ctrl-C
        by_hand.communicate(timeout=30)
    assert by_hand.returncode == 130
