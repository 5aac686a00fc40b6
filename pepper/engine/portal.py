"""One asyncio loop on its own thread, and the bridge that sync and async callers cross.

Why a thread of its own: the seed's API mixes blocking calls (``submit_task``,
``wait``) with awaited ones (``await workflow.execute()``), and scripts call
``asyncio.run()`` many times. A loop owned by pepper outlives any caller's
loop, so tasks keep running between and after those calls. Every public sync
method is made from its async twin by ``blocking`` below: one adapter, no
hand-written copies.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import threading
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, ParamSpec, TypeVar

from pepper.errors import BlockingCallError, RuntimeClosedError

P = ParamSpec("P")
T = TypeVar("T")


class Portal:
    """Runs coroutines on a private event loop thread."""

    def __init__(self, name: str = "pepper-engine") -> None:
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closed = False
        self._thread = threading.Thread(target=self._main, name=name, daemon=True)
        self._thread.start()
        self._ready.wait()

    def _main(self) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        self._loop = loop
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            try:
                pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
                for task in pending:
                    task.cancel()
                if pending:
                    loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
                loop.run_until_complete(loop.shutdown_asyncgens())
                loop.run_until_complete(loop.shutdown_default_executor())
            finally:
                loop.close()

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        assert self._loop is not None
        return self._loop

    def in_loop_thread(self) -> bool:
        return threading.current_thread() is self._thread

    def submit(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        """Schedule ``coro`` on the loop; a thread-safe future of its result."""
        if self._closed:
            coro.close()
            raise RuntimeClosedError("the pepper runtime is closed; create a new one (or call pepper.init())")
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def call(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        """Run ``coro`` on the loop and block this thread until it finishes."""
        if self.in_loop_thread():
            coro.close()
            raise BlockingCallError(
                "a blocking pepper call was made from inside an agent running on the engine's "
                "event loop, where it would wait for itself forever; use the async form "
                "(e.g. `await orchestrator.wait_async(...)`) or a sync agent"
            )
        return self.submit(coro).result(timeout)

    async def acall(self, coro: Coroutine[Any, Any, T]) -> T:
        """Await ``coro`` from any event loop (including the engine's own)."""
        if self.in_loop_thread():
            return await coro
        return await asyncio.wrap_future(self.submit(coro))

    def close(self, timeout: float = 10.0) -> None:
        """Stop the loop (after cancelling what still runs on it) and join the thread."""
        if self._closed:
            return
        self._closed = True
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._loop.stop)
        if not self.in_loop_thread():
            self._thread.join(timeout)


def on_engine_loop(method: Callable[P, Coroutine[Any, Any, T]]) -> Callable[P, Coroutine[Any, Any, T]]:
    """Make an async method of an object with a ``_portal`` run on the engine loop.

    Awaited from any event loop (a script's ``asyncio.run``, a web server's
    loop), the body still runs on the engine's own loop, where pepper's state lives.
    """

    @functools.wraps(method)
    async def hop(self: Any, *args: Any, **kwargs: Any) -> T:
        return await self._portal().acall(method(self, *args, **kwargs))

    return hop  # type: ignore[return-value]


def blocking(method: Callable[P, Awaitable[T]]) -> Callable[P, T]:
    """Make the sync form of an async method of an object with a ``_portal``.

    ``wait = blocking(wait_async)`` gives ``wait(...)``: it runs ``wait_async``
    on the engine loop and blocks the caller's thread until it returns.
    """

    @functools.wraps(method)
    def sync(self: Any, *args: Any, **kwargs: Any) -> T:
        return self._portal().call(method(self, *args, **kwargs))

    name = method.__name__.removesuffix("_async")
    sync.__name__ = sync.__qualname__ = name
    sync.__doc__ = (method.__doc__ or "").replace("Await", "Block until") or None
    return sync  # type: ignore[return-value]
