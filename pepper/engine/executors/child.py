"""A command's process, watched from the event loop without a thread or a transport per process.

Its stdout and stderr are non-blocking pipes the loop reads when they are ready; its exit is
a pidfd (Linux 5.3+) the loop polls too, so no thread waits for each child (where there is
no pidfd, one short-lived thread per child waits for it, as asyncio's own watcher does).
What the loop does per process is: start it, read its pipes, reap it.

It starts with ``os.posix_spawn`` (the C library clones and execs it, no Python runs in between) when
that can do all it needs: its pipes become its 0, 1 and 2, it leads a process group of its own (setsid) and the
signals Python ignores are back at their default, as ``subprocess`` does. It starts with
``subprocess.Popen`` instead when it needs a working directory of its own (``posix_spawn`` cannot change
it), when its program is a bare name to look up in its ``PATH``, or where there is no ``posix_spawn``.
Every descriptor pepper opens is closed on exec, so a command sees only its 0, 1 and 2; ``Popen`` closes
any other in the child, ``posix_spawn`` closes those it is told of: the inheritable ones this process has
(descriptors it was started with, mostly), looked for at most once a second (``_RESCAN``) as a look costs
more than the start of a process.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from pepper.engine.log_capture import LogSlot

_READ = 64 * 1024  # bytes read from a pipe at a time
_HAS_PIDFD = hasattr(os, "pidfd_open")
_CAN_SPAWN = hasattr(os, "posix_spawn")
#: Signals Python ignores and a command gets back at their default (``subprocess``'s ``restore_signals``).
_RESTORED = tuple(getattr(signal, name) for name in ("SIGPIPE", "SIGXFZ", "SIGXFSZ") if hasattr(signal, name))
_CLOSE_FROM = getattr(os, "POSIX_SPAWN_CLOSEFROM", None)  # Python 3.13+: close every other descriptor too
_RESCAN = 1.0  # seconds between two looks for inheritable descriptors
_inheritable: tuple[float, tuple[int, ...] | None] | None = None  # when they were looked for, what was found


def inheritable() -> tuple[int, ...] | None:
    """This process's descriptors above 2 that a program it starts would inherit (as last looked for);
    None where they cannot be listed."""
    global _inheritable
    now = time.monotonic()
    if _inheritable is not None and now - _inheritable[0] < _RESCAN:
        return _inheritable[1]
    try:
        names = os.listdir("/proc/self/fd" if os.path.isdir("/proc/self/fd") else "/dev/fd")
    except OSError:
        _inheritable = (now, None)
        return None
    found = []
    for name in names:
        fd = int(name)
        try:
            if fd > 2 and os.get_inheritable(fd):
                found.append(fd)
        except OSError:  # the one that listed them, closed since
            continue
    _inheritable = (now, tuple(found))
    return _inheritable[1]


def start(
    argv: Sequence[str], *, cwd: Path | None, env: Mapping[str, str]
) -> tuple[int, int, int, int, subprocess.Popen[bytes] | None]:
    """Start ``argv`` with its stdin, stdout and stderr piped, leading a process group of its own (setsid).

    Returns its pid, this side of its stdin, stdout and stderr (non-blocking), and the ``Popen`` when it
    started with one. ``cwd`` None: it runs where pepper runs. A program that cannot start raises
    ``OSError`` here (``FileNotFoundError``, ``PermissionError``), and no descriptor is left open."""
    fds: list[int] = []
    try:
        for _ in range(3):
            fds.extend(os.pipe())  # closed on exec, both ends
        in_r, in_w, out_r, out_w, err_r, err_w = fds
        theirs = (in_r, out_w, err_w)
        proc: subprocess.Popen[bytes] | None = None
        closing = () if _CLOSE_FROM is not None or not _CAN_SPAWN else inheritable()
        if _CAN_SPAWN and cwd is None and "/" in argv[0] and min(theirs) > 2 and closing is not None:
            actions: list[tuple[int, ...]] = [(os.POSIX_SPAWN_DUP2, fd, target) for target, fd in enumerate(theirs)]
            if _CLOSE_FROM is not None:
                actions.append((_CLOSE_FROM, 3))
            # After the dup2s: a number since taken by one of the pipes is closed only once copied.
            actions += [(os.POSIX_SPAWN_CLOSE, fd) for fd in closing]
            pid = os.posix_spawn(argv[0], list(argv), env, file_actions=actions, setsid=True, setsigdef=_RESTORED)
        else:
            proc = subprocess.Popen(
                argv, stdin=in_r, stdout=out_w, stderr=err_w, cwd=cwd, env=env, start_new_session=True
            )
            pid = proc.pid
    except BaseException:
        for fd in fds:
            os.close(fd)
        raise
    for fd in theirs:
        os.close(fd)
    for fd in (in_w, out_r, err_r):
        os.set_blocking(fd, False)
    return pid, in_w, out_r, err_r, proc


class HeadTail:
    """The first and the last ``keep`` bytes of a stream, and how many were cut between them."""

    def __init__(self, keep: int) -> None:
        self.keep = keep
        self.head = bytearray()
        self.tail = bytearray()
        self.cut = 0

    def add(self, data: bytes) -> None:
        room = self.keep - len(self.head)
        if room > 0:
            self.head += data[:room]
            data = data[room:]
        if data:
            self.tail += data
            if len(self.tail) > self.keep:
                drop = len(self.tail) - self.keep
                del self.tail[:drop]
                self.cut += drop

    def text(self) -> str:
        marker = f"\n[... {self.cut} bytes cut ...]\n" if self.cut else ""
        return (self.head.decode("utf-8", errors="replace") + marker
                + self.tail.decode("utf-8", errors="replace"))  # fmt: skip


class Child:
    """A started command: its stdout (up to ``limit`` bytes), its stderr (head and tail, also written to
    ``sink`` as it comes) and its end.

    ``exited``: the process ended (and was reaped: ``returncode`` is set; waiting for the pipes too would
    wait for a background child that holds them); ``drained``: stdout and stderr reached their end;
    ``overflowed``: stdout passed ``limit`` (the rest is not read, so the command blocks on a full pipe);
    ``stopped``: either of ``exited`` and ``overflowed`` (one future to wait for, not two)."""

    def __init__(
        self, argv: Sequence[str], *, cwd: Path | None, env: Mapping[str, str], stdin: bytes, limit: int,
        keep: int, sink: LogSlot | None = None,
    ) -> None:  # fmt: skip
        loop = self._loop = asyncio.get_running_loop()
        self.limit = limit
        self.sink = sink
        self.stdout = bytearray()
        self.stderr = HeadTail(keep)
        self.returncode: int | None = None
        self.exited: asyncio.Future[None] = loop.create_future()
        self.drained: asyncio.Future[None] = loop.create_future()
        self.overflowed: asyncio.Future[None] = loop.create_future()
        self.stopped: asyncio.Future[None] = loop.create_future()
        # It leads a process group of its own (setsid), so the whole tree can be stopped.
        self.pid, stdin_fd, stdout_fd, self._stderr_fd, self._proc = start(argv, cwd=cwd, env=env)
        self._pipes = {stdout_fd, self._stderr_fd}
        self._pidfd: int | None = None
        self._watch_exit()
        for fd in self._pipes:
            loop.add_reader(fd, self._read, fd)
        self._stdin: int | None = stdin_fd
        self._left = memoryview(stdin)
        self._write()

    def _watch_exit(self) -> None:
        if _HAS_PIDFD:
            try:
                self._pidfd = os.pidfd_open(self.pid)
            except OSError:  # the kernel has no pidfd after all
                self._pidfd = None
        if self._pidfd is not None:
            self._loop.add_reader(self._pidfd, self._reap)
            return
        loop, pid = self._loop, self.pid

        def wait() -> None:
            try:
                status = os.waitpid(pid, 0)[1]
            except ChildProcessError:  # reaped by someone else: its status is lost
                status = 255 << 8
            code = os.waitstatus_to_exitcode(status)
            with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits any more
                loop.call_soon_threadsafe(self._ended, code)

        threading.Thread(target=wait, name=f"pepper-child-{self.pid}", daemon=True).start()

    def _reap(self) -> None:
        """The pidfd says the process ended: reap it."""
        try:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
        except ChildProcessError:  # reaped by someone else (a process-wide child watcher): its status is lost
            pid, status = self.pid, 255 << 8
        if pid == 0:
            return
        self._ended(os.waitstatus_to_exitcode(status))

    def _ended(self, code: int) -> None:
        if self._pidfd is not None:
            self._loop.remove_reader(self._pidfd)
            os.close(self._pidfd)
            self._pidfd = None
        self.returncode = code
        if self._proc is not None:  # reaped here: the Popen must not look for it again
            self._proc.returncode = code
        if not self.exited.done():
            self.exited.set_result(None)
        if not self.stopped.done():
            self.stopped.set_result(None)

    def _write(self) -> None:
        """Write what is left of stdin, as much as the pipe takes now; close it at the end (or when the command
        does not read it: the pipe just breaks)."""
        stdin = self._stdin
        if stdin is None:
            return
        try:
            while self._left:
                written = os.write(stdin, self._left)
                self._left = self._left[written:]
        except BlockingIOError:
            self._loop.add_writer(stdin, self._write)
            return
        except (BrokenPipeError, ConnectionResetError):
            pass
        self._close_stdin()

    def _close_stdin(self) -> None:
        stdin, self._stdin = self._stdin, None
        if stdin is not None:
            self._loop.remove_writer(stdin)
            os.close(stdin)

    def _read(self, fd: int) -> None:
        try:
            data = os.read(fd, _READ)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self._close_pipe(fd)
            if not self._pipes and not self.drained.done():
                self.drained.set_result(None)
            return
        if fd == self._stderr_fd:
            self.stderr.add(data)
            if self.sink is not None:
                self.sink.write(data)
        elif not self.overflowed.done():
            if len(self.stdout) + len(data) <= self.limit:
                self.stdout += data
                return
            self.overflowed.set_result(None)
            if not self.stopped.done():
                self.stopped.set_result(None)
            self.stdout = bytearray()
            self._loop.remove_reader(fd)  # the command now blocks on a full pipe until it is stopped

    def _close_pipe(self, fd: int) -> None:
        if fd in self._pipes:
            self._pipes.discard(fd)
            self._loop.remove_reader(fd)
            os.close(fd)

    def close(self) -> None:
        """Let go of the pipes now; a process still running is killed (and reaped when it ends)."""
        self._close_stdin()
        for fd in list(self._pipes):
            self._close_pipe(fd)
        if self.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)
