"""A command's process, watched from the event loop without a thread or a transport per process.

Its stdout and stderr are non-blocking pipes the loop reads when they are ready; its exit is
a pidfd (Linux 5.3+) the loop polls too, so no thread waits for each child (where there is
no pidfd, one short-lived thread per child waits for it, as asyncio's own watcher does).
What the loop does per process is: start it, read its pipes, reap it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO

from pepper.engine.log_capture import LogSlot

_READ = 64 * 1024  # bytes read from a pipe at a time
_HAS_PIDFD = hasattr(os, "pidfd_open")


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
    ``overflowed``: stdout passed ``limit`` (the rest is not read, so the command blocks on a full pipe)."""

    def __init__(
        self, argv: Sequence[str], *, cwd: Path, env: Mapping[str, str], stdin: bytes, limit: int,
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
        self._proc = proc = subprocess.Popen(
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=cwd, env=env,
            bufsize=0, start_new_session=True,  # its own process group, so the whole tree can be stopped
        )  # fmt: skip
        self.pid = proc.pid
        assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
        self._pipes: dict[int, IO[bytes]] = {proc.stdout.fileno(): proc.stdout, proc.stderr.fileno(): proc.stderr}
        self._stderr_fd = proc.stderr.fileno()
        self._pidfd: int | None = None
        self._watch_exit()
        for fd in self._pipes:
            os.set_blocking(fd, False)
            loop.add_reader(fd, self._read, fd)
        self._stdin: IO[bytes] | None = proc.stdin
        self._left = memoryview(stdin)
        os.set_blocking(proc.stdin.fileno(), False)
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
        loop, proc = self._loop, self._proc

        def wait() -> None:
            code = proc.wait()
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
        self.returncode = self._proc.returncode = code
        if not self.exited.done():
            self.exited.set_result(None)

    def _write(self) -> None:
        """Write what is left of stdin, as much as the pipe takes now; close it at the end (or when the command
        does not read it: the pipe just breaks)."""
        stdin = self._stdin
        if stdin is None:
            return
        try:
            while self._left:
                written = os.write(stdin.fileno(), self._left)
                self._left = self._left[written:]
        except BlockingIOError:
            self._loop.add_writer(stdin.fileno(), self._write)
            return
        except (BrokenPipeError, ConnectionResetError):
            pass
        self._close_stdin()

    def _close_stdin(self) -> None:
        stdin, self._stdin = self._stdin, None
        if stdin is not None:
            self._loop.remove_writer(stdin.fileno())
            stdin.close()

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
            self.stdout = bytearray()
            self._loop.remove_reader(fd)  # the command now blocks on a full pipe until it is stopped

    def _close_pipe(self, fd: int) -> None:
        pipe = self._pipes.pop(fd, None)
        if pipe is not None:
            self._loop.remove_reader(fd)
            pipe.close()

    def close(self) -> None:
        """Let go of the pipes now; a process still running is killed (and reaped when it ends)."""
        self._close_stdin()
        for fd in list(self._pipes):
            self._close_pipe(fd)
        if self.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)
