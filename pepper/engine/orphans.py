"""What a dead worker's commands left running on this host, found by their mark and stopped.

Every command a worker starts carries the worker's id in its environment (``PEPPER_WORKER_ID``), and so does
whatever the command starts in turn, unless it clears its environment. A worker killed outright (``kill -9``,
the OOM killer) cannot stop its commands: they lead process groups of their own (``setsid``) and run on. Before
another worker of the same host gives back the dead worker's leases and runs its tasks again, it looks through
this host's processes of the same user for that mark and kills their process groups (SIGKILL), then waits a
moment for them to end. A process without the mark is never signalled on its own account: a group is killed
whole only when its leader carries the mark or is gone (the command's shell, or the group it left behind);
otherwise only the marked processes of it are.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import signal
import time

import psutil

log = logging.getLogger("pepper.engine")

#: The environment variable that names the worker a command was started by.
WORKER_ENV = "PEPPER_WORKER_ID"
#: How long (seconds) a take-over waits at most for the killed processes to end.
KILL_WAIT = 5.0
_POLL = 0.01  # seconds between two looks, where the processes' ends cannot be waited for (no pidfd)


def marked(worker_id: str) -> list[psutil.Process]:
    """This user's processes on this host started (directly or not) by a command of worker ``worker_id``,
    this process and its own group left out."""
    uid, me, my_group = os.getuid(), os.getpid(), os.getpgrp()
    found = []
    for proc in psutil.process_iter(["uids"]):
        try:
            uids = proc.info["uids"]
            if uids is None or uids.real != uid or proc.pid == me or os.getpgid(proc.pid) == my_group:
                continue
            if proc.environ().get(WORKER_ENV) == worker_id:
                found.append(proc)
        except (psutil.Error, OSError):  # gone meanwhile, or not ours to read
            continue
    return found


def stop_commands_of(worker_id: str) -> int:
    """Kill (SIGKILL) what the commands of the dead worker ``worker_id`` left running on this host, and wait
    (``KILL_WAIT`` at most) for it to end. Returns how many marked processes were found."""
    procs = marked(worker_id)
    if not procs:
        return 0
    pids = {proc.pid for proc in procs}
    groups: set[int] = set()
    killed: list[psutil.Process] = []
    for proc in procs:
        try:
            group = os.getpgid(proc.pid)
        except OSError:
            continue
        if group in groups:
            continue
        if group in pids or _leader_gone(group):
            # a group the command's tree made (its leader is marked, or has ended): killed whole
            groups.add(group)
            killed += _members(group)  # unmarked ones included, they are waited for too
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(group, signal.SIGKILL)
        else:  # in a group led by a process without the mark: only this process
            with contextlib.suppress(psutil.Error):
                proc.send_signal(signal.SIGKILL)
        killed.append(proc)
    left = _wait_gone(killed, KILL_WAIT)
    log.warning("stopped %d %s left running by the commands of worker %s%s", len(procs),
                "process" if len(procs) == 1 else "processes", worker_id,
                f" ({left} not yet ended)" if left else "")  # fmt: skip
    return len(procs)


def _members(group: int) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter():
        with contextlib.suppress(psutil.Error, OSError):
            if os.getpgid(proc.pid) == group:
                found.append(proc)
    return found


def _leader_gone(group: int) -> bool:
    """The process that made ``group`` (its pid is the group's id) has ended."""
    try:
        return _gone(psutil.Process(group))
    except psutil.Error:
        return True


def _gone(proc: psutil.Process) -> bool:
    """Ended: no such process any more, or a zombie (its parent has yet to reap it)."""
    try:
        return proc.status() == psutil.STATUS_ZOMBIE
    except psutil.Error:
        return True


def _wait_gone(procs: list[psutil.Process], timeout: float) -> int:
    """Wait up to ``timeout`` seconds for ``procs`` to end; how many are still running then."""
    deadline = time.monotonic() + timeout
    pidfds: dict[int, psutil.Process] = {}
    waiting = []
    for proc in {p.pid: p for p in procs}.values():
        try:
            pidfds[os.pidfd_open(proc.pid)] = proc
        except (AttributeError, OSError):  # no pidfd here, or gone already
            waiting.append(proc)
    poller = select.poll()  # (not ``select.select``: it refuses a descriptor numbered 1024 or more)
    for fd in pidfds:
        poller.register(fd, select.POLLIN)
    try:
        while pidfds and (left := deadline - time.monotonic()) > 0:
            for fd, _events in poller.poll(max(1, int(left * 1000))):
                poller.unregister(fd)
                os.close(fd)
                del pidfds[fd]
        while (waiting := [p for p in waiting if not _gone(p)]) and time.monotonic() < deadline:
            time.sleep(_POLL)
    finally:
        for fd in pidfds:
            os.close(fd)
    return len(pidfds) + len(waiting)
