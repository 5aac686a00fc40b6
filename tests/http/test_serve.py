"""``pepper serve`` as a process: the first admin token printed once, a worker inside, a clean stop."""

from __future__ import annotations

import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.http.conftest import PATIENCE

AGENTS = """\
- agent_id: shouter
  task_types: [shout]
  function: loud:shout
"""
LOUD = "def shout(task):\n    return task.inputs['word'].upper()\n"


class Serving:
    """A ``pepper serve`` process and the lines it printed so far."""

    def __init__(self, *args: str, cwd: Path) -> None:
        env = {**os.environ, "COLUMNS": "200"}
        self.process = subprocess.Popen([sys.executable, "-m", "pepper", "serve", *args], cwd=cwd, env=env,
                                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)  # fmt: skip
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def expect(self, pattern: str) -> re.Match[str]:
        """The first line (from here on) matching ``pattern``."""
        while True:
            line = self.lines.get(timeout=PATIENCE)
            if line is None:
                raise AssertionError(f"pepper serve ended without printing {pattern!r}: {self.seen}")
            self.seen.append(line)
            found = re.search(pattern, line)
            if found:
                return found

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(PATIENCE)


@pytest.fixture
def serving(tmp_path: Path) -> Iterator[list[Serving]]:
    started: list[Serving] = []
    yield started
    for server in started:
        if server.process.poll() is None:
            server.process.kill()
            server.process.wait(PATIENCE)


def test_the_first_start_prints_an_admin_token_that_works_and_runs_the_agents(
    tmp_path: Path, serving: list[Serving]
) -> None:
    (tmp_path / "agents.yaml").write_text(AGENTS)
    (tmp_path / "loud.py").write_text(LOUD)
    server = Serving("--db", "p.db", "--port", "0", "--agents", "agents.yaml", cwd=tmp_path)
    serving.append(server)
    url = server.expect(r"serving (http://127\.0\.0\.1:\d+)/api/v1").group(1)
    server.expect("shown once")
    token = server.expect(r"^(pepper_\S+)$").group(1)
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=url, headers=headers, timeout=PATIENCE) as client:
        submitted = client.post(
            "/api/v1/tasks", json={"task_id": "hello", "task_type": "shout", "inputs": {"word": "hi"}}
        )
        ended = client.get("/api/v1/tasks/hello", params={"wait": PATIENCE}).json()
        anonymous = httpx.get(f"{url}/api/v1/tasks", timeout=PATIENCE)
    assert submitted.status_code == 201
    assert ended["state"] == "completed" and ended["result"] == "HI"
    assert anonymous.status_code == 401
    assert server.stop() == 0
    server.expect("stopped")


def test_a_second_start_prints_no_token(tmp_path: Path, serving: list[Serving]) -> None:
    first = Serving("--db", "p.db", "--port", "0", cwd=tmp_path)
    serving.append(first)
    first.expect(r"^pepper_")
    assert first.stop() == 0
    again = Serving("--db", "p.db", "--port", "0", cwd=tmp_path)  # a token exists now: none is printed
    serving.append(again)
    again.expect(r"serving http://")
    assert again.stop() == 0
    rest = iter(lambda: again.lines.get(timeout=PATIENCE), None)  # what it printed until it ended
    assert not [line for line in [*again.seen, *rest] if line.startswith("pepper_")]


def test_a_non_loopback_host_is_refused_while_no_token_exists(tmp_path: Path) -> None:
    refused = subprocess.run([sys.executable, "-m", "pepper", "serve", "--db", "p.db", "--host", "0.0.0.0"],
                             cwd=tmp_path, capture_output=True, text=True, timeout=PATIENCE)  # fmt: skip
    assert refused.returncode == 2
    assert "refusing to listen on 0.0.0.0" in refused.stderr
    assert "pepper_" not in refused.stdout + refused.stderr


def _serve_once(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pepper", "serve", "--db", "p.db", *args], cwd=folder,
                          capture_output=True, text=True, timeout=PATIENCE)  # fmt: skip


def test_a_start_that_fails_makes_no_token_so_the_next_start_prints_one(tmp_path: Path,
                                                                        serving: list[Serving]) -> None:  # fmt: skip
    with socket.socket() as taken:  # the port is someone else's
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        busy = _serve_once(tmp_path, "--port", str(port))
    assert busy.returncode == 2 and "Traceback" not in busy.stderr, busy.stderr
    assert busy.stderr.startswith(f"error: cannot listen on 127.0.0.1:{port}: ") and "another --port" in busy.stderr
    missing = _serve_once(tmp_path, "--port", "0", "--agents", "no-such-agents.yaml")
    assert missing.returncode == 2 and "no-such-agents.yaml" in missing.stderr
    for done in (busy, missing):
        assert "pepper_" not in done.stdout + done.stderr
    server = Serving("--db", "p.db", "--port", "0", cwd=tmp_path)  # no token was made unseen: this start shows one
    serving.append(server)
    url = server.expect(r"serving (http://127\.0\.0\.1:\d+)/api/v1").group(1)
    token = server.expect(r"^(pepper_\S+)$").group(1)
    answer = httpx.get(f"{url}/api/v1/tasks", headers={"Authorization": f"Bearer {token}"}, timeout=PATIENCE)
    assert answer.status_code == 200
    assert server.stop() == 0


def test_an_address_that_is_not_this_machines_is_refused_with_what_to_give(tmp_path: Path) -> None:
    for host, said in (("no-such-host.invalid", "cannot listen on no-such-host.invalid:0"),
                       ("", "give an address to listen on")):  # fmt: skip
        subprocess.run([sys.executable, "-m", "pepper", "token", "create", "--scope", "read", "--name", "r",
                        "--db", "p.db"], cwd=tmp_path, capture_output=True, timeout=PATIENCE)  # fmt: skip
        refused = _serve_once(tmp_path, "--port", "0", "--host", host)
        assert refused.returncode == 2 and "Traceback" not in refused.stderr, refused.stderr
        assert said in refused.stderr and "127.0.0.1" in refused.stderr, refused.stderr


def test_ctrl_c_stops_the_server_with_130(tmp_path: Path, serving: list[Serving]) -> None:
    server = Serving("--db", "p.db", "--port", "0", cwd=tmp_path)
    serving.append(server)
    server.expect(r"serving http://")
    server.process.send_signal(signal.SIGINT)
    assert server.process.wait(PATIENCE) == 130  # stopped by hand, as every command says; SIGTERM is 0
    server.expect("^stopped$")
