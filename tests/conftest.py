"""Shared fixtures: a runtime on a real SQLite file in a temporary folder; a throw-away PostgreSQL server."""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

import pepper
from pepper.core import TaskOrchestrator
from pepper.core.runtime import reset_default_runtime
from pepper.testing import ManualClock
from tests.postgres_cluster import PostgresServer, PostgresUnavailable, start_server

#: Where the Python processes a test starts keep their compiled modules, when this run's environment writes none.
_bytecode: list[tuple[str, str]] = []


def pytest_configure(config: pytest.Config) -> None:
    """Processes the tests start (``python -m pepper ...``, workers, Ray's) compile pepper's modules once per run.

    Where ``PYTHONDONTWRITEBYTECODE`` is set, each of those hundreds of processes would compile every module from
    source again; they cache the bytecode in a folder of the run's own instead (the source tree stays as it was),
    which is removed at the end of the run.
    """
    if not os.environ.get("PYTHONDONTWRITEBYTECODE") or os.environ.get("PYTHONPYCACHEPREFIX"):
        return
    folder = tempfile.mkdtemp(prefix="pepper-tests-bytecode-")
    _bytecode.append((folder, os.environ.pop("PYTHONDONTWRITEBYTECODE")))
    os.environ["PYTHONPYCACHEPREFIX"] = folder


def pytest_unconfigure(config: pytest.Config) -> None:
    """The environment as it was, and the bytecode folder gone."""
    for folder, setting in _bytecode:
        os.environ.pop("PYTHONPYCACHEPREFIX", None)
        os.environ["PYTHONDONTWRITEBYTECODE"] = setting
        shutil.rmtree(folder, ignore_errors=True)
    _bytecode.clear()


FAST = {"retry_delay": "20ms", "poll_interval": "20ms", "heartbeat_interval": "100ms", "shutdown_timeout": "2s"}


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every test runs in its own folder, with no default runtime left over."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("PEPPER_DB", raising=False)
    monkeypatch.delenv("PEPPER_HOME", raising=False)
    monkeypatch.delenv("PEPPER_CONFIG", raising=False)
    yield
    reset_default_runtime()


@pytest.fixture
def runtime(tmp_path: Path) -> Iterator[pepper.Runtime]:
    rt = pepper.Runtime(db=str(tmp_path / "pepper.db"), home=str(tmp_path / "home"), **FAST)
    yield rt
    rt.close()


@pytest.fixture
def orchestrator(runtime: pepper.Runtime) -> TaskOrchestrator:
    return TaskOrchestrator(runtime)


#: Settings of a runtime on a manual clock: the engine's chores come seldom, so the timers a test waits for
#: (a retry's backoff, an attempt's timeout) are the only ones due within minutes.
VIRTUAL = {
    "poll_interval": "1h",
    "heartbeat_interval": "1h",
    "sample_interval": "1h",
    "retry_delay": "1m",
    "retry_max_delay": "10m",
    "shutdown_timeout": "2s",
}


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(1_700_000_000.0)


@pytest.fixture
def virtual(tmp_path: Path, clock: ManualClock) -> Iterator[pepper.Runtime]:
    """A runtime on a real SQLite file whose time moves only when the test moves ``clock``."""
    rt = pepper.Runtime(db=str(tmp_path / "pepper.db"), home=str(tmp_path / "home"), clock=clock, **VIRTUAL)
    yield rt
    rt.close()


#: Why PostgreSQL is unavailable in this run, once a test has asked for it (for the run's last line).
_postgres_skipped: list[str] = []
SKIP_PREFIX = "PostgreSQL tests skipped: "


@pytest.fixture(scope="session")
def postgres_cluster() -> Iterator[PostgresServer]:
    """One PostgreSQL server for the whole run: ``PEPPER_TEST_POSTGRES_URL``, else a cluster started here.

    Tests that use it are skipped, with the reason, where PostgreSQL cannot be started.
    """
    try:
        server = start_server(startup_timeout=60.0)
    except PostgresUnavailable as exc:
        _postgres_skipped.append(exc.reason)
        pytest.skip(SKIP_PREFIX + exc.reason)
    yield server
    server.stop()


@pytest.fixture
def postgres_url(postgres_cluster: PostgresServer) -> Iterator[str]:
    """The URL of a fresh, empty database on that server (``postgresql://pepper:...@127.0.0.1:PORT/t_...``)."""
    name = f"t_{uuid.uuid4().hex[:16]}"
    postgres_cluster.create_database(name)
    yield postgres_cluster.url(name)
    postgres_cluster.drop_database(name)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """One line at the end when the PostgreSQL tests could not run, so a skip is never silent."""
    if not _postgres_skipped:
        return
    skipped = sum(
        1
        for report in terminalreporter.stats.get("skipped", [])
        if isinstance(report.longrepr, tuple) and SKIP_PREFIX in str(report.longrepr[2])
    )
    terminalreporter.write_line(
        f"{SKIP_PREFIX}{_postgres_skipped[0]} ({skipped} test(s) skipped)", yellow=True, bold=True
    )


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[str]:
    """One local Ray for the whole test session (2 CPUs, no dashboard); its address is given to the test.

    Ray workers import the test modules (agents' functions are pickled by reference), so the repository
    is on their path."""
    import os

    ray = pytest.importorskip("ray")
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    root = str(Path(__file__).resolve().parent.parent)
    context = ray.init(
        num_cpus=2,
        include_dashboard=False,
        log_to_driver=False,
        resources={"licences": 4},
        runtime_env={"env_vars": {"PYTHONPATH": root}},
    )
    try:
        yield context.address_info["gcs_address"]
    finally:
        ray.shutdown()
