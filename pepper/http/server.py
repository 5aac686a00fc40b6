"""Serving an app with uvicorn: in the foreground (``pepper serve``) or on a thread (tests, embedding)."""

from __future__ import annotations

import asyncio
import errno
import signal
import socket
import threading
import time
from collections.abc import Callable
from types import FrameType
from typing import Any

import uvicorn
from fastapi import FastAPI

from pepper.errors import PepperError
from pepper.http.events import ChangeFeed

#: How long open connections (event streams, waits) get to finish once the server is asked to stop.
GRACE = 5.0


class Server(uvicorn.Server):
    """uvicorn's server, ending the event streams and long waits first when it stops (they would hold the shutdown
    open until cut)."""

    def __init__(
        self, app: FastAPI, host: str, port: int, on_started: Callable[[str], None] | None = None, **options: Any
    ) -> None:
        options.setdefault("log_level", "warning")
        options.setdefault("timeout_graceful_shutdown", GRACE)
        super().__init__(uvicorn.Config(app, host=host, port=port, lifespan="on", **options))
        self.feed: ChangeFeed = app.state.feed
        self.stopping: asyncio.Event = app.state.stopping
        self.on_started = on_started

    async def startup(self, sockets: list[Any] | None = None) -> None:
        await super().startup(sockets)
        if self.started and self.on_started is not None:
            self.on_started(self.url)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        """Stop gracefully (a second Ctrl-C: at once). Unlike uvicorn's, the signal is not raised again once the
        server stopped: the command still has its runtime to close (running tasks to let finish)."""
        if self.should_exit and sig == signal.SIGINT:
            self.force_exit = True
        else:
            self.should_exit = True

    async def shutdown(self, sockets: list[Any] | None = None) -> None:
        self.stopping.set()  # requests waiting (``?wait=``) answer what stands now
        await self.feed.close()
        await super().shutdown(sockets)

    @property
    def url(self) -> str:
        """``http://HOST:PORT`` of the bound socket (the port chosen by the system when 0 was asked)."""
        servers = getattr(self, "servers", [])
        for server in servers:
            for sock in server.sockets:
                host, port = sock.getsockname()[:2]
                return f"http://{_shown(host)}:{port}"
        return f"http://{_shown(self.config.host)}:{self.config.port}"


def _shown(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def listen(host: str, port: int) -> socket.socket:
    """A socket bound to ``host``:``port`` (as uvicorn binds one), for ``Server.run(sockets=[...])``; a
    ``PepperError`` saying why and what to do when the address cannot be had (taken, not this machine's...)."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host.strip("[]"), port))
    except OSError as exc:
        sock.close()
        reason = exc.strerror or str(exc)
        if exc.errno == errno.EADDRINUSE:
            advice = "another process listens there (another `pepper serve`?): choose another --port"
        elif exc.errno == errno.EACCES:
            advice = "ports below 1024 need privileges: choose a --port from 1024 to 65535"
        else:
            advice = "give --host an address of this machine (127.0.0.1, or 0.0.0.0 for every interface)"
        raise PepperError(f"cannot listen on {_shown(host)}:{port}: {reason}; {advice}") from None
    return sock


class ThreadedServer:
    """A ``Server`` on a thread of its own: ``start()`` returns once it listens, ``stop()`` once it stopped."""

    def __init__(self, app: FastAPI, host: str = "127.0.0.1", port: int = 0, **options: Any) -> None:
        self.server = Server(app, host, port, **options)
        self._thread = threading.Thread(target=self._main, name="pepper-http", daemon=True)
        self._error: BaseException | None = None

    def _main(self) -> None:
        try:
            asyncio.run(self.server.serve())
        except BaseException as exc:  # noqa: BLE001 - told to the thread that waits in start()
            self._error = exc

    def start(self, timeout: float = 30.0) -> str:
        """Start serving; the URL once it listens (``RuntimeError`` if it could not start)."""
        self._thread.start()
        deadline = time.monotonic() + timeout  # a safety net: uvicorn offers no event to wait on
        while not self.server.started and self._thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.01)
        if not self.server.started:
            self.stop()
            raise RuntimeError(f"the HTTP server did not start: {self._error or 'no answer in time'}")
        return self.server.url

    def stop(self, timeout: float = 30.0) -> None:
        self.server.should_exit = True
        self._thread.join(timeout)
