"""A real pepper HTTP server on 127.0.0.1 and a free port, over a SQLite file, with function agents."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")
httpx = pytest.importorskip("httpx")

import pepper  # noqa: E402
from pepper.http.app import create_app  # noqa: E402
from pepper.http.server import ThreadedServer  # noqa: E402
from pepper.http.tokens import create_token  # noqa: E402
from tests.conftest import FAST  # noqa: E402

#: The longest any test waits for something that should happen at once (a safety net, never a pace).
PATIENCE = 30.0


@dataclass
class Api:
    """The running server: its URL, the runtime behind it, a token per scope, and the gate the `gated`
    agent waits at (closed: its tasks stay running)."""

    url: str
    runtime: pepper.Runtime
    tokens: dict[str, str]
    gate: threading.Event

    def client(self, scope: str | None = "write") -> httpx.Client:
        headers = {} if scope is None else {"Authorization": f"Bearer {self.tokens[scope]}"}
        return httpx.Client(base_url=self.url, headers=headers, timeout=PATIENCE)


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    folder: Path = tmp_path_factory.mktemp("http")
    runtime = pepper.Runtime(db=str(folder / "pepper.db"), home=str(folder / "home"), **FAST)
    gate = threading.Event()

    @pepper.agent("echo", task_types=["echo"], runtime=runtime)
    def echo(task: pepper.TaskRun) -> object:
        return task.inputs

    @pepper.agent("breaker", task_types=["break"], runtime=runtime)
    def breaker(task: pepper.TaskRun) -> object:
        raise RuntimeError("broken on purpose")

    @pepper.agent("gated", task_types=["gated"], runtime=runtime)
    def gated(task: pepper.TaskRun) -> object:
        gate.wait(PATIENCE)
        return {"opened": True}

    runtime.start()
    tokens = {
        scope: create_token(runtime.store, f"test-{scope}", scope, time.time()) for scope in ("read", "write", "admin")
    }
    server = ThreadedServer(create_app(runtime))
    url = server.start()
    try:
        yield Api(url, runtime, tokens, gate)
    finally:
        gate.set()
        server.stop()
        runtime.close()
