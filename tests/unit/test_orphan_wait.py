"""Waiting for a dead worker's commands to end works whatever the number of the descriptors it waits on."""

from __future__ import annotations

import os
import resource
import subprocess
import sys

import psutil
import pytest

from pepper.engine.orphans import _wait_gone


def test_the_wait_takes_descriptors_numbered_past_1024():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 1100:
        pytest.skip(f"this process may not open 1,100 descriptors (hard limit {hard})")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, 1100), hard))
    held: list[int] = []
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        while not held or held[-1] < 1030:  # what a busy server holds: the next descriptor is past 1024
            held.append(os.open(os.devnull, os.O_RDONLY))
        proc = psutil.Process(child.pid)
        child.kill()
        assert _wait_gone([proc], timeout=30) == 0
    finally:
        child.kill()
        child.wait()
        for fd in held:
            os.close(fd)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
