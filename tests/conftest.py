"""Shared fixtures: a runtime on a real SQLite file in a temporary folder."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import pepper
from pepper.core import TaskOrchestrator
from pepper.core.runtime import reset_default_runtime

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
