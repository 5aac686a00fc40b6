"""The process-wide default runtime: the one components built without a ``runtime`` attach to.

It is created from configuration on first use, or by ``pepper.init()``; ``pepper.connect(default=True)``
sets it. It is the only module-level runtime pepper keeps. Once closed, one created on first use is created
again at the next use; one made by ``pepper.init()`` (or set) is not: the components attached to it raise
``RuntimeClosedError`` until ``pepper.init()`` makes another, rather than writing elsewhere unawares.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from pepper.errors import RuntimeClosedError

if TYPE_CHECKING:
    from pepper.core.runtime import Runtime

_default: Runtime | None = None
_explicit = False  # the default runtime was made by ``init`` or set, not created on first use
_default_lock = threading.RLock()


def default_runtime() -> Runtime:
    """The runtime argument-less components attach to (created from configuration on first use, and again
    once closed). Raises ``RuntimeClosedError`` when the one ``pepper.init()`` made (or that was set) is closed."""
    from pepper.core.runtime import Runtime  # pepper.core.runtime re-exports this module's functions

    global _default
    with _default_lock:
        if _default is not None and _default.closed and _explicit:
            raise RuntimeClosedError(
                "the default runtime (made by pepper.init() or pepper.connect(default=True)) was closed; "
                "call pepper.init() to make a new one, or pass a runtime= that is open"
            )
        if _default is None or _default.closed:
            _default = Runtime()
        return _default


def init(db: str | None = None, resources: Any = None, **settings: Any) -> Runtime:
    """Configure the default runtime and return it.

    Replaces (and closes) a previous default runtime; agents registered on it
    are registered on the new one.
    """
    from pepper.core.runtime import Runtime  # pepper.core.runtime re-exports this module's functions

    global _default, _explicit
    with _default_lock:
        new = Runtime(db=db, resources=resources, **settings)
        old, _default, _explicit = _default, new, True
        if old is not None and not old.closed:
            agents = old.agents()
            old.close()
            for agent in agents:
                new.register_agent(agent)
        return new


def set_default_runtime(runtime: Runtime) -> Runtime:
    """Make ``runtime`` (e.g. one ``pepper.connect`` returned) the default runtime; a previous default is closed."""
    global _default, _explicit
    with _default_lock:
        old, _default, _explicit = _default, runtime, True
        if old is not None and old is not runtime and not old.closed:
            old.close()
        return runtime


def reset_default_runtime() -> None:
    """Close and forget the default runtime and its agents (for tests): the next use creates one again."""
    global _default, _explicit
    with _default_lock:
        if _default is not None:
            _default.close()
        _default, _explicit = None, False


def resolve(runtime: Runtime | None) -> Runtime:
    """``runtime`` or, if None, the default runtime."""
    return runtime if runtime is not None else default_runtime()
