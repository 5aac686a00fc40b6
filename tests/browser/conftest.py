"""A real pepper server (as in tests/http) and Debian's Chromium driven by Playwright, signed in per scope.

Where Chromium or Playwright is missing the tests are skipped, and one line at the end of the run says so.
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

import pepper

#: The browser: Debian's package (``playwright install`` cannot download here).
CHROMIUM = os.environ.get("PEPPER_TEST_CHROMIUM", "/usr/bin/chromium")
SKIP_PREFIX = "Browser tests skipped: "
#: The longest any test waits for something that should happen at once (a safety net, never a pace).
PATIENCE = 30.0

_skipped: list[str] = []


def _unavailable() -> str | None:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "Playwright is not installed (pip install 'playwright>=1.40')"
    try:
        import fastapi  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError:
        return "the http extra is not installed"
    if not (Path(CHROMIUM).exists() or shutil.which(CHROMIUM)):
        return f"no Chromium at {CHROMIUM} (apt-get install chromium)"
    return None


@dataclass
class Dashboard:
    """The running server, its runtime, a token per scope, and the gates the `gated` agent's tasks wait at (by
    their input `gate`: closed, the task stays running)."""

    url: str
    runtime: pepper.Runtime
    tokens: dict[str, str]
    gates: dict[str, threading.Event]
    browser: Any
    shots: Path
    console: list[str] = field(default_factory=list)

    def page(self, scope: str = "write", width: int = 1280) -> Any:
        """A new signed-in page (its own cookies) whose console errors are collected in ``console``."""
        context = self.browser.new_context(viewport={"width": width, "height": 900}, base_url=self.url)
        page = context.new_page()
        page.set_default_timeout(PATIENCE * 1000)
        page.on("console", lambda m: self.console.append(f"{page.url}: {m.text}") if m.type == "error" else None)
        page.on("pageerror", lambda e: self.console.append(f"{page.url}: {e}"))
        page.goto("/sign-in")
        page.fill("#token", self.tokens[scope])
        page.click("#sign-in button[type=submit]")
        page.wait_for_url(f"{self.url}/")
        page.wait_for_selector("#health")
        return page

    def api(self, scope: str = "write") -> Any:
        import httpx

        return httpx.Client(
            base_url=self.url, headers={"Authorization": f"Bearer {self.tokens[scope]}"}, timeout=PATIENCE
        )

    def shot(self, page: Any, name: str) -> Path:
        path = self.shots / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path


@pytest.fixture(scope="module")
def dashboard(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dashboard]:
    reason = _unavailable()
    if reason:
        _skipped.append(reason)
        pytest.skip(SKIP_PREFIX + reason)
    from playwright.sync_api import sync_playwright

    from pepper.http.app import create_app
    from pepper.http.server import ThreadedServer
    from pepper.http.tokens import create_token
    from tests.conftest import FAST

    folder = tmp_path_factory.mktemp("dashboard")
    runtime = pepper.Runtime(db=str(folder / "pepper.db"), home=str(folder / "home"), **FAST)
    gates: dict[str, threading.Event] = defaultdict(threading.Event)

    @pepper.agent("echo", task_types=["echo"], capacity=4, runtime=runtime)
    def echo(task: pepper.TaskRun) -> object:
        return task.inputs

    @pepper.agent("breaker", task_types=["break"], runtime=runtime)
    def breaker(task: pepper.TaskRun) -> object:
        raise RuntimeError("broken on purpose")

    @pepper.agent("gated", task_types=["gated"], capacity=4, runtime=runtime)
    def gated(task: pepper.TaskRun) -> object:
        gates[task.inputs["gate"]].wait(PATIENCE)
        return {"opened": True}

    runtime.start()
    tokens = {s: create_token(runtime.store, f"test-{s}", s, time.time()) for s in ("read", "write", "admin")}
    server = ThreadedServer(create_app(runtime))
    url = server.start()
    shots = Path(os.environ.get("PEPPER_TEST_SHOTS", str(folder / "screenshots")))
    shots.mkdir(parents=True, exist_ok=True)
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
            try:
                yield Dashboard(url, runtime, tokens, gates, browser, shots)
            finally:
                browser.close()
    finally:
        for gate in list(gates.values()):
            gate.set()
        server.stop()
        runtime.close()


@pytest.fixture
def clean_console(dashboard: Dashboard) -> Iterator[None]:
    """Each test ends with no error in any page's console."""
    dashboard.console.clear()
    yield
    assert dashboard.console == []


def expect(target: Any) -> Any:
    """Playwright's ``expect`` (imported when a test runs: Playwright may be missing, and the tests skipped)."""
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect(target)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """One line at the end when the browser tests could not run, so a skip is never silent."""
    if not _skipped:
        return
    skipped = sum(
        1
        for report in terminalreporter.stats.get("skipped", [])
        if isinstance(report.longrepr, tuple) and SKIP_PREFIX in str(report.longrepr[2])
    )
    terminalreporter.write_line(f"{SKIP_PREFIX}{_skipped[0]} ({skipped} test(s) skipped)", yellow=True, bold=True)
