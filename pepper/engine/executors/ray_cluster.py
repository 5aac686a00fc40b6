"""The Ray cluster an engine's Ray agents run on: reached, or with no address started here, and left.

Connecting waits and tries again with back-off while the cluster does not answer (``problem`` says why
meanwhile). A local Ray that pepper started (bound to this machine, without its dashboard) is shared by
every engine of the process and shut down with the last of them. Imported with ``executors.ray``, only
when the first Ray agent runs.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading

import ray

from pepper.engine.executors.ray_options import client_missing
from pepper.errors import ExecutorUnavailableError

log = logging.getLogger("pepper.engine")

_SLOW_CONNECT = 5.0  # seconds connecting before ``problem`` says the cluster has not answered yet
_CONNECT_RETRY = (0.5, 10.0)  # first and longest wait between attempts to reach the cluster
#: Set for a local Ray started by pepper: no token, bound to this machine.
LOCAL_RAY_ENV = {"RAY_AUTH_MODE": "disabled", "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}

_started_here = threading.Lock()
_users = 0  # clusters open in this process on a Ray that pepper started (shut down with the last)
_we_started = False


class RayCluster:
    """One engine's connection to Ray at ``address`` (None: a local Ray, started here if none runs)."""

    def __init__(self, address: str | None) -> None:
        self.address = address
        self.connected = False
        #: Why Ray agents' attempts cannot run now (None: they can).
        self.problem: str | None = None
        self._connecting: asyncio.Lock | None = None
        self._owns_ray = False

    async def connect(self) -> None:
        """Once connected, at once; until then, try (again) and wait. ``ExecutorUnavailableError`` for what no
        wait mends (a ``ray://`` address without Ray's client package)."""
        if self.connected:
            return
        if self._connecting is None:
            self._connecting = asyncio.Lock()
        async with self._connecting:
            missing = client_missing(self.address)
            if missing is not None:  # no wait mends it: the attempts fail, their recovery decides
                if self.problem != missing:
                    self.problem = missing
                    log.error("%s; Ray agents' attempts fail", missing)
                raise ExecutorUnavailableError(missing)
            delay = _CONNECT_RETRY[0]
            where = self.address or "a new local Ray"
            while not self.connected:
                # Ray may try for minutes before it gives up on a cluster that does not answer: say so meanwhile.
                slow = asyncio.get_running_loop().call_later(_SLOW_CONNECT, self._connecting_slowly, where)
                try:
                    await asyncio.to_thread(self._init)
                except Exception as exc:  # noqa: BLE001 - any failure to connect: wait and try again
                    self.problem = f"the Ray cluster at {where} cannot be reached: {exc}"
                    log.error("%s; Ray agents' tasks wait (trying again in %gs)", self.problem, delay)
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, _CONNECT_RETRY[1])
                else:
                    self.connected, self.problem = True, None
                finally:
                    slow.cancel()

    def leave(self) -> None:
        """This engine is done with Ray: a local Ray pepper started goes with the last engine on it."""
        global _users, _we_started
        if not self._owns_ray:
            return
        self._owns_ray = False
        with _started_here:
            _users -= 1
            if _users == 0 and _we_started:
                _we_started = False
                ray.shutdown()

    def _connecting_slowly(self, where: str) -> None:
        if self.problem is None:
            self.problem = f"the Ray cluster at {where} has not answered within {_SLOW_CONNECT:g}s (still trying)"
            log.warning("%s; Ray agents' tasks wait", self.problem)

    def _init(self) -> None:
        global _users, _we_started
        with _started_here:
            if ray.is_initialized():
                self._owns_ray = _we_started
            elif self.address is None:
                for name, value in LOCAL_RAY_ENV.items():
                    os.environ.setdefault(name, value)
                ray.init(include_dashboard=False, log_to_driver=False)
                _we_started = self._owns_ray = True
            else:
                ray.init(address=self.address, log_to_driver=False)
            if self._owns_ray:
                _users += 1
