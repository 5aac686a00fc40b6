"""``Periodic``: a loop of the engine's own (sampling, probing) started and stopped with the engine."""

from __future__ import annotations

import asyncio


class Periodic:
    """Runs ``_run()`` as a task on the running loop from ``start()`` until ``stop()`` cancels it."""

    _task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _run(self) -> None:
        raise NotImplementedError
