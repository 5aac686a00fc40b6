"""Shared fixtures: a runtime on a real SQLite file in a temporary folder."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import pepper
from pepper.core import TaskOrchestrator
from pepper.core.runtime import reset_default_runtime
from pepper.testing import ManualClock

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


# -- provisional: a PostgreSQL database per test from $PEPPER_TEST_POSTGRES_URL -------------
import uuid as _uuid  # noqa: E402


@pytest.fixture
def postgres_url():
    import os

    base = os.environ.get("PEPPER_TEST_POSTGRES_URL")
    if not base:
        pytest.skip("no PostgreSQL")
    import psycopg

    name = "t_" + _uuid.uuid4().hex[:12]
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    yield base.rsplit("/", 1)[0] + "/" + name
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE {name} WITH (FORCE)")
