"""Measuring the machine and processes (psutil): what the pool holds, what agents really use."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

import psutil

if TYPE_CHECKING:
    from pepper.model.settings import Settings

_MB = float(2**20)
#: This machine's host name: its host id unless the ``host_id`` setting names another.
HOSTNAME = socket.gethostname()
_MAX_FILES = 200_000  # a working directory bigger than this is measured in part


def host_of(settings: Settings) -> str:
    """This process's host id: the ``host_id`` setting, else the machine's host name."""
    return settings.host_id or HOSTNAME


def machine_capacity(home: Path) -> dict[str, float]:
    """This machine's pool: logical cores, total memory (MB), free disk under ``home`` (MB)."""
    folder = home if home.exists() else Path(home.anchor or ".")
    while not folder.exists():
        folder = folder.parent
    return {
        "cpu": float(psutil.cpu_count(logical=True) or 1),
        "memory": round(psutil.virtual_memory().total / _MB, 1),
        "storage": round(psutil.disk_usage(str(folder)).free / _MB, 1),
    }


def folder_size_mb(path: str | Path) -> float:
    """Total size of the files under ``path`` (0 if it does not exist)."""
    total, seen = 0, 0
    stack = [str(path)]
    while stack and seen < _MAX_FILES:
        try:
            entries = os.scandir(stack.pop())
        except OSError:
            continue
        with entries:
            for entry in entries:
                seen += 1
                try:
                    if entry.is_dir(follow_symlinks=False):
                        stack.append(entry.path)
                    elif entry.is_file(follow_symlinks=False):
                        total += entry.stat(follow_symlinks=False).st_size
                except OSError:
                    continue
    return round(total / _MB, 3)


class ProcessMeter:
    """CPU % and resident memory of process trees, sampled repeatedly.

    CPU % is measured between two samples of the same process (as ``top`` does),
    so the first sample of a new process reports 0; 100 means one full core.
    """

    def __init__(self) -> None:
        self._known: dict[int, psutil.Process] = {}

    def measure(self, roots: Iterable[int]) -> tuple[float, float]:
        """``(cpu_percent, rss_mb)`` summed over ``roots`` and all their descendants."""
        cpu, rss = 0.0, 0
        alive: dict[int, psutil.Process] = {}
        for pid in roots:
            try:
                root = self._known.get(pid) or psutil.Process(pid)
                tree = [root, *root.children(recursive=True)]
            except psutil.Error:
                continue
            for proc in tree:
                proc = self._known.get(proc.pid, proc)
                try:
                    with proc.oneshot():
                        cpu += proc.cpu_percent(interval=None)
                        rss += proc.memory_info().rss
                    alive[proc.pid] = proc
                except psutil.Error:
                    continue
        self._known = alive
        return round(cpu, 1), round(rss / _MB, 1)


def cap_memory(pid: int, megabytes: float) -> None:
    """Limit a running process's address space to ``megabytes`` (prlimit, set from outside)."""
    limit = int(megabytes * _MB)
    psutil.Process(pid).rlimit(psutil.RLIMIT_AS, (limit, limit))
