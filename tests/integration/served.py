"""A pepper server on 127.0.0.1 (its app served by uvicorn) over a SQLite file with function agents, and remote
runtimes connected to it with a read or a write token: the faces asked both ways must answer alike."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

import pepper
from pepper.http.app import create_app
from pepper.http.remote import RemoteRuntime
from pepper.http.server import ThreadedServer
from pepper.http.tokens import create_token
from tests.conftest import FAST

#: The longest any test waits for something that should happen at once (a safety net, never a pace).
PATIENCE = 30.0


@dataclass
class Served:
    """The server's own runtime (``local``), a remote runtime with a write token (``remote``) and one with a
    read token (``reader``), the tokens by scope; ``gate`` holds the `gated` agent's tasks running until set;
    ``runs`` counts the executions of each agent."""

    url: str
    local: pepper.Runtime
    remote: RemoteRuntime
    reader: RemoteRuntime
    gate: threading.Event
    runs: dict[str, int]
    tokens: dict[str, str]


@contextmanager
def serving(db: str, home: str) -> Iterator[Served]:
    """A server over the database ``db`` (a SQLite file or a PostgreSQL URL), and remote runtimes on it."""
    local = pepper.Runtime(db=db, home=home, resources={"cpu": 4}, **FAST)
    gate = threading.Event()
    runs = {"documentation_agent": 0, "review_agent": 0, "gated": 0, "breaker": 0}

    @pepper.agent("documentation_agent", task_types=["documentation"], skills=["markdown", "api_docs"],
                  runtime=local)  # fmt: skip
    def docs(task: pepper.TaskRun) -> object:
        runs["documentation_agent"] += 1
        return {"page": task.task_id}

    @pepper.agent("review_agent", task_types=["documentation", "review"], skills=["markdown"], capacity=2,
                  runtime=local)  # fmt: skip
    def review(task: pepper.TaskRun) -> object:
        runs["review_agent"] += 1
        return {"reviewed": task.task_id}

    @pepper.agent("gated", task_types=["gated"], runtime=local)
    def gated(task: pepper.TaskRun) -> object:
        runs["gated"] += 1
        gate.wait(PATIENCE)
        return {"opened": True}

    @pepper.agent("breaker", task_types=["break"], runtime=local)
    def breaker(task: pepper.TaskRun) -> object:
        runs["breaker"] += 1
        raise RuntimeError("broken on purpose")

    try:
        local.start()
        tokens = {scope: create_token(local.store, f"faces-{scope}", scope, time.time()) for scope in ("read", "write")}
        server = ThreadedServer(create_app(local))
        url = server.start()
        remote = RemoteRuntime(url, tokens["write"])
        reader = RemoteRuntime(url, tokens["read"])
        try:
            yield Served(url, local, remote, reader, gate, runs, tokens)
        finally:
            gate.set()
            remote.close()
            reader.close()
            server.stop()
    finally:
        local.close()


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """A server over a SQLite file, for the tests of one module."""
    folder: Path = tmp_path_factory.mktemp("served")
    with serving(str(folder / "pepper.db"), str(folder / "home")) as running:
        yield running
