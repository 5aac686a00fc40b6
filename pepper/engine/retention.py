"""Pruning in the background: a worker with ``retention`` set removes finished work older than it.

Once as the worker starts (a worker that lives shorter than an interval prunes too), then once per
interval (a quarter of the retention, at most an hour, at least a second), in a thread so the engine's
loop never waits for it. Several workers may prune at once: each prune is one write
transaction and deleting what is already gone changes nothing.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from pepper.engine.periodic import Periodic

if TYPE_CHECKING:
    from pepper.engine.shell import Engine

log = logging.getLogger("pepper.engine")
_MAX_INTERVAL = 3600.0


def prune_interval(retention: float) -> float:
    """How often a worker prunes, for a ``retention`` horizon."""
    return max(1.0, min(_MAX_INTERVAL, retention / 4))


class Retention(Periodic):
    """Prunes what ended more than ``retention`` seconds ago, as it starts and every ``interval`` seconds."""

    def __init__(self, engine: Engine, retention: float) -> None:
        self.engine = engine
        self.retention = retention
        self.interval = prune_interval(retention)
        self.last: dict[str, int] | None = None  # what the latest prune removed

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            horizon = self.engine.clock.now() - self.retention
            try:
                self.last = await loop.run_in_executor(None, self.engine.store.prune, horizon)
            except Exception:
                log.exception("pruning finished work failed; will try again")
            else:
                if any(self.last.values()):
                    removed = ", ".join(f"{n} {kind}" for kind, n in self.last.items() if n)
                    log.info("pruned work that ended more than %gs ago: %s", self.retention, removed)
            await self.engine.clock.sleep(self.interval)
